// bulkhead policy convert: any loaded document kind, printed as bulkhead's own.
#include <boost/program_options.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/policy_yaml.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_loader.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

int policyConvertCommand(const std::vector<std::string>& args, std::ostream& out,
                         std::ostream& err) {
  po::options_description options(
      "bulkhead policy convert PATH... (files or directories)\n"
      "Every policy document (NetworkPolicy, SegmentationPolicy) as the SegmentationPolicy it is\n"
      "judged as, on standard output");
  options.add_options()("help,h", "show this help");
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
    err << "bulkhead policy convert: " << e.what() << "\n" << options;
    return ExitUsage;
  }
  if (vm.count("help")) {
    out << options;
    return ExitOk;
  }
  if (!vm.count("path")) {
    err << "bulkhead policy convert: give at least one policy file or directory\n" << options;
    return ExitUsage;
  }
  const dpi::NdpiProtocolCatalog catalog;
  const auto result = rules::loadPolicies(vm["path"].as<std::vector<std::string>>(), catalog);
  for (const auto& error : result.errors) {
    err << rules::format(error) << "\n";
  }
  if (!result.ok()) {
    // Nothing half-converted: a document that did not load has no equivalent.
    return result.ioFailure ? ExitUsage : ExitInvalid;
  }
  bool first = true;
  for (const auto& policy : result.set.policies) {
    out << (first ? "" : "---\n") << "# from " << policy.where.file << ":" << policy.where.line
        << "\n"
        << segmentationPolicyYaml(policy);
    first = false;
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
