#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

constexpr const char* Usage = R"(bulkhead - operator's CLI for the bulkhead micro-segmentation agent

Usage:
  bulkhead policy check PATH...      validate policy files or directories
  bulkhead simulate --policy PATH --pcap FILE [--endpoints FILE] [--json] [--write-allowed OUT]
                                     run a capture through the pipeline and report each flow's verdict
  bulkhead help COMMAND              options of one command (also: COMMAND --help)
  bulkhead --version

Exit codes: 0 success, 1 invalid input (policy, endpoints, corrupt capture), 2 usage or I/O error.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace bulkhead::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
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
  if (args[0] == "simulate") {
    return simulateCommand({args.begin() + 1, args.end()}, std::cout, std::cerr);
  }
  std::cerr << "bulkhead: unknown command '" << args[0] << "'\n\n" << Usage;
  return ExitUsage;
}
