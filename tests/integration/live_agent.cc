#include "tests/integration/live_agent.h"

#include <signal.h>

#include <fstream>

#include "tests/support/binaries.h"

namespace bulkhead::testing {
namespace {

using testing::builtBinary;

}  // namespace

bool LiveAgent::start(const std::string& policyYaml, const std::vector<Endpoint>& endpoints,
                      std::string* why, const std::string& extraConfig) {
  policyPath_ = lab_.dir().write("policy.yaml", policyYaml);
  socket_ = lab_.dir().file("api.sock");
  violationLog_ = lab_.dir().file("violations.jsonl");
  std::string config = "policy: " + policyPath_ + "\napiSocket: " + socket_ +
                       "\nviolationLog: " + violationLog_ + "\ninstance: " + lab_.agentInstance() +
                       "\nstateDirectory: " + lab_.dir().file("state") +
                       "\nhugepages: off\nmemoryMegabytes: 512\nmbufsPerPort: 4095\n"
                       "violationIntervalSeconds: 1\nlogLevel: debug\n" +
                       extraConfig + "\nendpoints:\n";
  for (const auto& endpoint : endpoints) {
    std::string labels;
    for (const auto& [key, value] : endpoint.labels) {
      labels += (labels.empty() ? "" : ", ") + key + ": " + value;
    }
    config += "  - {name: " + endpoint.host->role + ", interface: " + endpoint.host->hostIfname +
              ", labels: {" + labels + "}, ips: [" + endpoint.host->ip + "], macs: [\"" +
              endpoint.host->mac + "\"]}\n";
  }
  const std::string path = lab_.dir().write("bulkhead.yaml", config);
  process_ = &lab_.spawn(nullptr, {builtBinary("bulkheadd"), "--config", path}, "agent.log");
  if (!process_->waitForLog("bulkheadd ready", 30)) {
    *why = process_->log();
    return false;
  }
  return true;
}

std::optional<int> LiveAgent::stop() {
  if (process_ == nullptr) {
    return std::nullopt;
  }
  process_->stop(10);
  const auto code = process_->exitCode();
  process_ = nullptr;
  return code;
}

void LiveAgent::kill() {
  if (process_ == nullptr) {
    return;
  }
  ::kill(process_->pid(), SIGKILL);
  process_->stop(1);  // reaps it
  process_ = nullptr;
}

CommandResult LiveAgent::cli(std::vector<std::string> args, int timeoutSeconds) const {
  args.insert(args.begin(), builtBinary("bulkhead"));
  args.push_back("--socket");
  args.push_back(socket_);
  return runCommand(args, timeoutSeconds);
}

std::vector<nlohmann::json> LiveAgent::flows() const {
  const auto result = cli({"flows", "--json"});
  if (result.exitCode != 0) {
    return {};
  }
  const auto parsed = nlohmann::json::parse(result.out, nullptr, false);
  if (!parsed.is_array()) {
    return {};
  }
  return {parsed.begin(), parsed.end()};
}

std::vector<nlohmann::json> readViolations(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded()) {
      out.push_back(std::move(parsed));
    }
  }
  return out;
}

std::optional<nlohmann::json> awaitViolation(
    const std::string& path, const std::function<bool(const nlohmann::json&)>& predicate,
    int timeoutSeconds) {
  std::optional<nlohmann::json> found;
  waitFor(
      [&] {
        for (const auto& line : readViolations(path)) {
          if (predicate(line)) {
            found = line;
            return true;
          }
        }
        return false;
      },
      timeoutSeconds);
  return found;
}

std::vector<nlohmann::json> LiveAgent::violations() const {
  return readViolations(violationLog_);
}

std::optional<nlohmann::json> LiveAgent::violation(
    const std::function<bool(const nlohmann::json&)>& predicate, int timeoutSeconds) const {
  return awaitViolation(violationLog_, predicate, timeoutSeconds);
}

}  // namespace bulkhead::testing
