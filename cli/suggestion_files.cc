#include "cli/suggestion_files.h"

#include <filesystem>
#include <ostream>

#include "controlplane/atomic_file.h"

namespace bulkhead::cli {
namespace {

bool policyFileName(const std::string& name) {
  if (name.empty() || name.size() > 253 || name.front() == '.') {
    return false;
  }
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool writePolicies(const std::vector<NamedPolicy>& policies, const std::string& directory,
                   std::ostream& out, std::ostream& err, const std::string& command) {
  for (const auto& policy : policies) {
    if (!policyFileName(policy.name)) {
      err << "bulkhead " << command << ": refusing a policy named '" << policy.name.substr(0, 64)
          << "': not a policy name\n";
      return false;
    }
  }
  if (directory.empty()) {
    bool first = true;
    for (const auto& policy : policies) {
      out << (first ? "" : "---\n") << policy.yaml;
      first = false;
    }
    return true;
  }
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    err << "bulkhead " << command << ": cannot create " << directory << ": " << ec.message()
        << "\n";
    return false;
  }
  for (const auto& policy : policies) {
    std::string error;
    if (!controlplane::writeFileAtomically(directory + "/" + policy.name + ".yaml", policy.yaml,
                                           &error)) {
      err << "bulkhead " << command << ": " << error << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace bulkhead::cli
