#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/lab.h"

namespace bulkhead::testing {

// Every line of a violation log (docs/violations.md) so far; lines that are not JSON are left out.
std::vector<nlohmann::json> readViolations(const std::string& path);
// The first line `predicate` accepts, waiting up to `timeoutSeconds` for the agent to write it.
std::optional<nlohmann::json> awaitViolation(
    const std::string& path, const std::function<bool(const nlohmann::json&)>& predicate,
    int timeoutSeconds = 5);

// A real bulkheadd that a test starts inside a Lab: lab hosts as configuration endpoints, a
// policy file the test writes, and the ways a test reads what the agent did (the CLI, the
// violation log). Stopping it checks the clean exit that sanitizer builds depend on.
class LiveAgent {
 public:
  struct Endpoint {
    const Host* host;
    std::map<std::string, std::string> labels;
  };

  explicit LiveAgent(Lab& lab) : lab_(lab) {}
  ~LiveAgent() { stop(); }
  LiveAgent(const LiveAgent&) = delete;
  LiveAgent& operator=(const LiveAgent&) = delete;

  // Starts the agent and waits until it says it is ready; false (with its log in *why) if it
  // did not within 30 s. `extraConfig` lines are appended to the configuration file.
  bool start(const std::string& policyYaml, const std::vector<Endpoint>& endpoints,
             std::string* why, const std::string& extraConfig = "");
  // SIGTERM, then waits; the exit code, or nullopt when it had to be killed.
  std::optional<int> stop();
  // SIGKILL, as a crash: nothing of its own shutdown runs (what it left in the kernel goes with
  // the lab).
  void kill();

  // The `bulkhead` CLI against this agent's socket.
  CommandResult cli(std::vector<std::string> args, int timeoutSeconds = 30) const;
  // `bulkhead flows --json`: the agent's tracked flows (empty on failure).
  std::vector<nlohmann::json> flows() const;
  // Every line of the violation log so far.
  std::vector<nlohmann::json> violations() const;
  // The first violation line `predicate` accepts, waiting up to `timeoutSeconds` for it.
  std::optional<nlohmann::json> violation(
      const std::function<bool(const nlohmann::json&)>& predicate, int timeoutSeconds = 5) const;

  std::string log() const { return process_ != nullptr ? process_->log() : ""; }
  const std::string& policyPath() const { return policyPath_; }

 private:
  Lab& lab_;
  Process* process_ = nullptr;
  std::string policyPath_;
  std::string socket_;
  std::string violationLog_;
};

}  // namespace bulkhead::testing
