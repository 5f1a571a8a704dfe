// bulkhead-cni on arbitrary stdin (the network configuration and prevResult) and CNI_ARGS: what
// a runtime passes it. The first byte picks the command; no agent listens, as when it is down.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "cni/plugin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  if (size == 0) {
    return 0;
  }
  static const char* commands[] = {"ADD", "DEL", "CHECK", "VERSION"};
  const std::string command = commands[data[0] % 4];
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  // The part after a NUL, if any, is CNI_ARGS.
  std::string args = "IgnoreUnknown=1;K8S_POD_NAME=web-1";
  if (const size_t nul = input.find('\0'); nul != std::string::npos) {
    args = input.substr(nul + 1);
    input.resize(nul);
  }
  // The socket an input names would be called: only the default is, and scripts/fuzz.sh
  // runs the target where nothing listens on it. agentSocket's own checks are unit-tested.
  if (input.find("Socket") != std::string::npos) {
    return 0;
  }
  const cni::Environment env = {{"CNI_COMMAND", command},
                                {"CNI_CONTAINERID", "3f2a9c1d7e4b"},
                                {"CNI_NETNS", "/run/netns/fuzz"},
                                {"CNI_IFNAME", "eth0"},
                                {"CNI_ARGS", args},
                                {"CNI_PATH", "/usr/lib/cni"}};
  cni::Options options;
  options.sysClassNet = "/nonexistent";
  options.apiTimeoutSeconds = 1;
  const cni::Outcome outcome = cni::run(env, input, options);
  // A failure is one CNI error object on stdout; so is ADD's or VERSION's result. DEL and
  // CHECK print nothing when they succeed.
  const bool quiet = outcome.exitCode == 0 && (command == "DEL" || command == "CHECK");
  const auto answer = nlohmann::json::parse(outcome.out, nullptr, false);
  if (!(quiet && outcome.out.empty()) && !answer.is_object()) {
    __builtin_trap();
  }
  return 0;
}
