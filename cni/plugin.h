#pragma once

#include <map>
#include <string>

namespace bulkhead::cni {

// bulkhead-cni, a chained CNI plugin (spec 1.0.0, configs 0.4.0 and 1.0.0 accepted): on ADD it
// hands the container's host-side veth to the agent as an endpoint, on DEL it takes it back, on
// CHECK it asks whether the endpoint is still attached. docs/cni.md describes it for operators.

inline constexpr const char* DefaultAgentSocket = "/run/bulkhead/api.sock";

// The spec's well-known error codes ("Error codes" in SPEC.md); 999 is ours for the rest.
enum class ErrorCode : int {
  IncompatibleVersion = 1,
  UnsupportedField = 2,
  UnknownContainer = 3,
  InvalidEnvironment = 4,
  IoFailure = 5,
  DecodeFailure = 6,
  InvalidConfig = 7,
  TryAgainLater = 11,
  Failed = 999,
};

struct Options {
  // Where interfaces are looked up to tell a bridge from a veth; tests point it at a scratch
  // directory so the rule does not depend on the machine's interfaces.
  std::string sysClassNet = "/sys/class/net";
  int apiTimeoutSeconds = 10;
};

// What the process prints and returns: stdout (a result or a CNI error object), stderr
// (warnings for the runtime's log) and the exit code.
struct Outcome {
  std::string out;
  std::string err;
  int exitCode = 0;
};

using Environment = std::map<std::string, std::string>;

// One invocation: the CNI_* variables and the network configuration read from stdin. Never
// throws: every failure becomes a CNI error object.
Outcome run(const Environment& env, const std::string& input, const Options& options = {});

}  // namespace bulkhead::cni
