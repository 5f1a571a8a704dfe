// bulkhead policy suggest: the allow-list the agent's observed edges amount to.
#include <boost/program_options.hpp>

#include <iostream>

#include "cli/agent_call.h"
#include "cli/commands.h"
#include "cli/suggestion_files.h"
#include "learning/edge_store.h"
#include "learning/suggestion_diff.h"
#include "text/json_text.h"
#include "text/untrusted_json.h"

namespace bulkhead::cli {
namespace po = boost::program_options;

int suggestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  po::options_description options(
      "bulkhead policy suggest [--since DURATION] [--endpoint NAME] [--output DIR] [--diff]\n"
      "A minimal allow-list from the flows the agent observed, in monitor and in enforce mode: "
      "one\n"
      "policy per workload, its evidence in comments. Review it, check it (bulkhead policy "
      "check),\n"
      "then apply it");
  options.add_options()("since", po::value<std::string>(),
                        "only edges seen within this long (90s, 15m, 24h, 7d); default all kept")(
      "endpoint", po::value<std::string>(), "only the workload of the endpoint of this name")(
      "output,o", po::value<std::string>(),
      "write DIR/<policy>.yaml, one file per policy (default: the YAML on stdout)")(
      "diff",
      "what the suggestion opens and closes against the policy in force (with --output "
      "after writing; without it, the diff alone)")(
      "include-denied", "also allow what enforce-mode policies dropped (left out by default)")(
      "host-wildcards", "allow *.parent for two or more names seen under one parent domain")(
      "mode", po::value<std::string>()->default_value("enforce"),
      "the suggested policies' mode: enforce or monitor");
  const auto parsed = parse(args, options, {}, out, err, "policy suggest");
  if (parsed.exitCode >= 0) {
    return parsed.exitCode;
  }
  const po::variables_map& vm = parsed.vm;
  const std::string mode = vm["mode"].as<std::string>();
  if (mode != "enforce" && mode != "monitor") {
    err << "bulkhead policy suggest: --mode must be enforce or monitor\n";
    return ExitUsage;
  }
  nlohmann::json request = {{"command", "suggest"},
                            {"mode", mode},
                            {"diff", vm.count("diff") > 0},
                            {"includeDenied", vm.count("include-denied") > 0},
                            {"hostWildcards", vm.count("host-wildcards") > 0}};
  for (const char* key : {"since", "endpoint"}) {
    if (vm.count(key)) {
      request[key] = vm[key].as<std::string>();
    }
  }
  const auto reply = call(vm, request, err, "policy suggest");
  if (reply.is_null()) {
    return ExitUsage;
  }
  if (vm.count("json") || !reply.value("ok", false)) {
    return finish(reply, vm, out, err, "policy suggest", "");
  }
  std::vector<NamedPolicy> policies;
  for (const auto& policy : reply.value("policies", nlohmann::json::array())) {
    policies.push_back({text::stringMember(policy, "name"), text::stringMember(policy, "yaml")});
  }
  const std::string directory = vm.count("output") ? vm["output"].as<std::string>() : "";
  const bool diffOnly = vm.count("diff") && directory.empty();
  if (!diffOnly && !writePolicies(policies, directory, out, err, "policy suggest")) {
    return ExitUsage;
  }
  // What the suggestion leaves out is the operator's to decide on: said, never silently.
  std::ostream& notes = directory.empty() && !diffOnly ? err : out;
  if (!directory.empty()) {
    notes << "wrote " << policies.size() << " policies to " << directory << " from "
          << reply.value("edges", 0) << " observed edges; check them with: bulkhead policy check "
          << directory << "\n";
  }
  for (const auto& edge : reply.value("leftOut", nlohmann::json::array())) {
    std::string error;
    if (const auto left = learning::edgeFromJson(edge, &error)) {
      notes << "left out (dropped in enforce mode; --include-denied allows it): "
            << learning::edgeText(left->key) << ": " << left->stats.flows << " flows\n";
    }
  }
  if (vm.count("diff")) {
    out << text::stringMember(reply, "diff");
  }
  return ExitOk;
}

}  // namespace bulkhead::cli
