#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

constexpr const char* Usage = R"(bulkhead - operator's CLI for the bulkhead micro-segmentation agent

Usage:
  bulkhead policy check PATH...      validate policy files or directories
  bulkhead protocols [NAME...]        protocols a rule may name: how nDPI reaches each, which are proven
  bulkhead simulate --policy PATH --pcap FILE [--endpoints FILE] [--json] [--write-allowed OUT]
                                     run a capture through the pipeline and report each flow's verdict
  bulkhead status [--json]           the running agent: endpoints, counters, policy generation
  bulkhead policy reload             make the agent load its policy again (kept if invalid)
  bulkhead policy show               the policy in force: generation, sha256, files, rules
  bulkhead endpoints                 endpoints attached to the agent
  bulkhead identities                identities (label sets) and the endpoints that have them
  bulkhead flows                     the agent's tracked flows with protocol and verdict
  bulkhead violations [--follow]     the violation log, readable (or --json lines)
  bulkhead endpoint attach NAME --interface IF [--label K=V]... [--ip A]... [--mac M]...
  bulkhead endpoint detach NAME      plug an endpoint's interface into / out of the agent
  bulkhead help COMMAND              options of one command (also: COMMAND --help)
  bulkhead --version

Commands that talk to the agent take --socket PATH (default /run/bulkhead/api.sock).
Exit codes: 0 success, 1 invalid input (policy, endpoints, corrupt capture) or the agent refused,
2 usage or I/O error (including: the agent is not running).
)";

int dispatch(std::vector<std::string> args) {
  using namespace bulkhead::cli;
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << Usage;
    return args.empty() ? ExitUsage : ExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "bulkhead " << BULKHEAD_VERSION << "\n";
    return ExitOk;
  }
  if (args[0] == "help" && args.size() == 2) {
    args = {args[1], "--help"};
    if (args[0] == "policy") {
      args = {"policy", "check", "--help"};
    }
  }
  if (args[0] == "policy" && args.size() >= 2 && args[1] == "check") {
    return policyCheckCommand({args.begin() + 2, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "policy" && args.size() >= 2 && args[1] == "reload") {
    return reloadCommand({args.begin() + 2, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "policy" && args.size() >= 2 && args[1] == "show") {
    return policyShowCommand({args.begin() + 2, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "endpoints") {
    return endpointsCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "flows") {
    return flowsCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "identities") {
    return identitiesCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "violations") {
    return violationsCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "status") {
    return statusCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "endpoint") {
    return endpointCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "protocols") {
    return protocolsCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  if (args[0] == "simulate") {
    return simulateCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  std::cerr << "bulkhead: unknown command '" << args[0] << "'\n\n" << Usage;
  return ExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // A command that meets an answer or a file it cannot read says so; it does not abort.
  try {
    return dispatch({argv + 1, argv + argc});
  } catch (const std::exception& e) {
    std::cerr << "bulkhead: " << e.what() << "\n";
    return bulkhead::cli::ExitUsage;
  }
}
