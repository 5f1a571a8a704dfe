#include "controlplane/identity_allocator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controlplane/atomic_file.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {

namespace fs = std::filesystem;

IdentityAllocator::IdentityAllocator(std::string stateFile, std::string* warning)
    : stateFile_(std::move(stateFile)) {
  std::error_code ec;
  if (stateFile_.empty() || !fs::exists(stateFile_, ec)) {
    return;
  }
  std::ifstream in(stateFile_);
  std::ostringstream text;
  text << in.rdbuf();
  std::string problem;
  const auto state =
      text::parseUntrusted(text.str(), text::StateFileLimits, &problem).value_or(nullptr);
  std::map<rules::Labels, rules::IdentityId> loaded;
  rules::IdentityId next = rules::reserved_identity::FirstEndpoint;
  bool valid = state.is_object() && state.contains("identities") && state["identities"].is_array();
  if (valid) {
    for (const auto& entry : state["identities"]) {
      if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_number_unsigned() ||
          !entry.contains("labels") || !entry["labels"].is_object()) {
        valid = false;
        break;
      }
      const auto id = entry["id"].get<rules::IdentityId>();
      rules::Labels labels;
      for (const auto& [key, value] : entry["labels"].items()) {
        valid = valid && value.is_string();
        if (value.is_string()) {
          labels[key] = value.get<std::string>();
        }
      }
      if (!valid || id < rules::reserved_identity::FirstEndpoint ||
          !loaded.emplace(labels, id).second) {
        valid = false;
        break;
      }
      next = std::max(next, id + 1);
    }
  }
  if (!valid) {
    fs::rename(stateFile_, stateFile_ + ".corrupt", ec);
    *warning = "identity state " + stateFile_ + " is unreadable or corrupt; moved to " +
               stateFile_ + ".corrupt and starting a new numbering";
    return;
  }
  byLabels_ = std::move(loaded);
  next_ = next;
}

rules::IdentityId IdentityAllocator::allocate(const rules::Labels& labels) {
  if (shared_) {
    const auto found = byLabels_.find(labels);
    return found == byLabels_.end() ? rules::reserved_identity::Unknown : found->second;
  }
  const auto [found, inserted] = byLabels_.emplace(labels, next_);
  if (inserted) {
    ++next_;
    dirty_ = true;
  }
  return found->second;
}

bool IdentityAllocator::assign(const rules::Labels& labels, rules::IdentityId id) {
  const auto found = byLabels_.find(labels);
  if (found != byLabels_.end() && found->second == id) {
    return false;
  }
  for (auto it = byLabels_.begin(); it != byLabels_.end();) {
    it = it->second == id ? byLabels_.erase(it) : std::next(it);
  }
  byLabels_[labels] = id;
  next_ = std::max(next_, id + 1);
  dirty_ = true;
  return true;
}

bool IdentityAllocator::forget(const rules::Labels& labels) {
  if (byLabels_.erase(labels) == 0) {
    return false;
  }
  dirty_ = true;
  return true;
}

rules::IdentityList IdentityAllocator::identities() const {
  rules::IdentityList out;
  for (const auto& [labels, id] : byLabels_) {
    out.push_back({id, labels});
  }
  return out;
}

bool IdentityAllocator::save(std::string* error) {
  if (!dirty_ || stateFile_.empty()) {
    return true;
  }
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& [labels, id] : byLabels_) {
    entries.push_back({{"id", id}, {"labels", labels}});
  }
  if (!writeFileAtomically(stateFile_,
                           nlohmann::json{{"version", 1}, {"identities", entries}}.dump(2) + "\n",
                           error)) {
    return false;
  }
  dirty_ = false;
  return true;
}

}  // namespace bulkhead::controlplane
