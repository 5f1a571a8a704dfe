#include <boost/program_options.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/policy_summary.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_loader.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

int policyCheckCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options("bulkhead policy check PATH... (files or directories)");
  options.add_options()("help,h", "show this help")(
      "quiet,q", "print nothing when the policy is valid");
  po::options_description hidden;
  hidden.add_options()("path", po::value<std::vector<std::string>>(), "policy path");
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("path", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    err << "bulkhead policy check: " << e.what() << "\n" << options;
    return ExitUsage;
  }
  if (vm.count("help")) {
    out << options;
    return ExitOk;
  }
  if (!vm.count("path")) {
    err << "bulkhead policy check: give at least one policy file or directory\n" << options;
    return ExitUsage;
  }
  const dpi::NdpiProtocolCatalog catalog;
  const auto result = rules::loadPolicies(vm["path"].as<std::vector<std::string>>(), catalog);
  for (const auto& error : result.errors) {
    err << rules::format(error) << "\n";
  }
  for (const auto& warning : result.warnings) {
    err << rules::formatWarning(warning) << "\n";
  }
  if (result.ioFailure) {
    return ExitUsage;
  }
  if (!result.ok()) {
    err << result.errors.size() << (result.errors.size() == 1 ? " error" : " errors") << "\n";
    return ExitInvalid;
  }
  if (!vm.count("quiet")) {
    out << "valid: " << result.set.policies.size() << " "
        << (result.set.policies.size() == 1 ? "policy" : "policies") << " in "
        << result.set.sources.size() << (result.set.sources.size() == 1 ? " file" : " files")
        << "\n";
    for (const auto& policy : result.set.policies) {
      summarisePolicy(policy, out);
    }
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
