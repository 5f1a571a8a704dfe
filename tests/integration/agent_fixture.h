#pragma once

// The agent tests' fixture: three network namespaces (web, api, db) whose veths are attached to
// a real bulkheadd, with the ways a test drives it (the CLI, the API, real clients and servers)
// and reads what it did (status, flows, the violation log).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/client.h"
#include "tests/integration/lab.h"
#include "tests/integration/live_agent.h"
#include "tests/support/binaries.h"
#include "tests/support/run_command.h"

namespace bulkhead {

using nlohmann::json;
using testing::Host;
using testing::Lab;

inline constexpr const char* WebIp = "10.213.0.11";
inline constexpr const char* ApiIp = "10.213.0.12";
inline constexpr const char* DbIp = "10.213.0.13";

// api takes HTTP from web on 8080 (L7) and TCP from web on 8443 (L4 only); db takes TCP 5432
// from api. `extra` is appended to api's ingress rules.
inline std::string policy(const std::string& mode, const std::string& extra = "") {
  return "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: api}\n"
         "spec:\n  mode: " +
         mode +
         "\n  endpointSelector: {matchLabels: {app: api}}\n"
         "  ingress:\n"
         "    - fromEndpoints: [{matchLabels: {app: web}}]\n"
         "      toPorts: [{ports: [{port: 8080, protocol: TCP}], l7: {protocols: [HTTP]}}]\n"
         "    - fromEndpoints: [{matchLabels: {app: web}}]\n"
         "      toPorts: [{ports: [{port: 8443, protocol: TCP}]}]\n"
         "    - fromEndpoints: [{matchLabels: {app: web}}]\n"
         "      toPorts: [{ports: [{protocol: ICMP}]}]\n" +
         extra +
         "---\napiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: db}\n"
         "spec:\n  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n"
         "    - fromEndpoints: [{matchLabels: {app: api}}]\n"
         "      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]\n";
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::haveRoot()) {
      GTEST_SKIP() << "needs root: creates network namespaces and runs a DPDK agent";
    }
    if (const auto tool = testing::missingTool({"ip", "curl"}); !tool.empty()) {
      GTEST_SKIP() << "needs '" << tool << "' (scripts/setup.sh installs it)";
    }
    if (!std::filesystem::exists("/usr/bin/python3")) {
      GTEST_SKIP() << "needs Debian's /usr/bin/python3 for the test servers";
    }
    lab_ = std::make_unique<Lab>();
    web_ = &lab_->addHost("web", std::string(WebIp) + "/24");
    api_ = &lab_->addHost("api", std::string(ApiIp) + "/24");
    db_ = &lab_->addHost("db", std::string(DbIp) + "/24");
    policyPath_ = lab_->dir().write("policy.yaml", policy("enforce"));
    socket_ = lab_->dir().file("api.sock");
    violationLog_ = lab_->dir().file("violations.jsonl");
  }

  void TearDown() override {
    if (agent_ != nullptr) {
      agent_->stop(10);
      // A clean stop leaves nothing of the agent behind: its socket is gone, and under the
      // sanitizers no leak or error report changed the exit code.
      EXPECT_FALSE(std::filesystem::exists(socket_)) << agent_->log();
      EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
    }
  }

  std::string endpointYaml(const Host& host, const std::string& app) {
    return "  - {name: " + host.role + ", interface: " + host.hostIfname +
           ", labels: {app: " + app + "}, ips: [" + host.ip + "], macs: [\"" + host.mac + "\"]}\n";
  }

  std::string writeConfig(bool withDb = true, const std::string& uplink = "") {
    std::string config =
        "policy: " + policyPath_ + "\napiSocket: " + socket_ +
        (uplink.empty() ? "" : "\nuplink: " + uplink) + "\nviolationLog: " + violationLog_ +
        "\ninstance: " + lab_->agentInstance() + "\nstateDirectory: " + lab_->dir().file("state") +
        "\nhugepages: off\nmemoryMegabytes: 512\nmbufsPerPort: 4095\n"
        "violationIntervalSeconds: 1\nlogLevel: debug\n" +
        extraConfig_ + "endpoints:\n" + endpointYaml(*web_, "web") + endpointYaml(*api_, "api");
    if (withDb) {
      config += endpointYaml(*db_, "db");
    }
    config += extraEndpoints_;
    return lab_->dir().write("bulkhead.yaml", config);
  }

  void startAgent(bool withDb = true, const std::string& uplink = "") {
    const std::string path = writeConfig(withDb, uplink);
    std::vector<std::string> argv = launcher_;
    argv.insert(argv.end(), {testing::builtBinary("bulkheadd"), "--config", path});
    agent_ = &lab_->spawn(nullptr, argv, "agent.log");
    ASSERT_TRUE(agent_->waitForLog("bulkheadd ready", 30)) << agent_->log();
  }

  json call(const json& request) {
    std::string error;
    auto reply = api::callApi(socket_, request, &error);
    EXPECT_FALSE(reply.is_null()) << error;
    return reply;
  }

  testing::CommandResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), testing::builtBinary("bulkhead"));
    args.push_back("--socket");
    args.push_back(socket_);
    return testing::runCommand(args, 30);
  }

  // An HTTP server in `host` serving `directory` on `port`; returns once it accepts.
  void httpServer(const Host& host, int port, const std::string& directory = "/tmp") {
    lab_->spawn(&host,
                {"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind", host.ip,
                 "--directory", directory},
                host.role + "-http-" + std::to_string(port) + ".log");
    // Probe from inside the server's own namespace: no traffic through the agent.
    ASSERT_TRUE(testing::waitFor(
        [&] {
          return lab_->exec(host,
                            {"/usr/bin/python3", "-c",
                             "import socket; socket.create_connection(('" + host.ip + "', " +
                                 std::to_string(port) + "), 1)"},
                            5)
                     .exitCode == 0;
        },
        10));
  }

  // curl from `from` to `to`; the HTTP status, or 0 when no answer came.
  int httpGet(const Host& from, const Host& to, int port, int timeoutSeconds = 3) {
    const auto result = lab_->exec(
        from,
        {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
         std::to_string(timeoutSeconds), "http://" + to.ip + ":" + std::to_string(port) + "/"},
        timeoutSeconds + 5);
    return std::atoi(result.out.c_str());
  }

  // Workers publish counters every ~100 ms: wait until one reaches `minimum`.
  bool counterReaches(const std::string& name, uint64_t minimum) {
    return testing::waitFor(
        [&] {
          const auto status = cli({"status", "--json"});
          return status.exitCode == 0 &&
                 json::parse(status.out)["counters"][name].get<uint64_t>() >= minimum;
        },
        5);
  }

  std::vector<json> violations() { return testing::readViolations(violationLog_); }

  // The first flow of `bulkhead flows --json` that `predicate` picks, waited for (10 s at
  // most); null when none came.
  json awaitFlow(const std::function<bool(const json&)>& predicate) {
    json found;
    testing::waitFor(
        [&] {
          for (const auto& candidate : json::parse(cli({"flows", "--json"}).out)) {
            if (predicate(candidate)) {
              found = candidate;
              return true;
            }
          }
          return false;
        },
        10);
    return found;
  }

  // A tmpfs on `path` with mount `options`, unmounted (lazily: the agent may still hold a file
  // on it) when the returned guard goes; nullptr when it cannot be mounted.
  struct Mounted {
    std::string path;
    ~Mounted() { testing::runCommand({"/usr/bin/umount", "-l", path}); }
  };
  std::unique_ptr<Mounted> mountTmpfs(const std::string& path, const std::string& options) {
    std::filesystem::create_directories(path);
    const auto mounted =
        testing::runCommand({"/usr/bin/mount", "-t", "tmpfs", "-o", options, "tmpfs", path});
    EXPECT_EQ(mounted.exitCode, 0) << mounted.err;
    if (mounted.exitCode != 0) {
      return nullptr;
    }
    auto guard = std::make_unique<Mounted>();  // not from a temporary: its destructor unmounts
    guard->path = path;
    return guard;
  }

  // Waits for a violation line matching `predicate` (the agent writes within ~50 ms).
  std::optional<json> violation(const std::function<bool(const json&)>& predicate) {
    return testing::awaitViolation(violationLog_, predicate);
  }

  std::unique_ptr<Lab> lab_;
  Host* web_ = nullptr;
  Host* api_ = nullptr;
  Host* db_ = nullptr;
  testing::Process* agent_ = nullptr;
  std::string policyPath_;
  std::string socket_;
  std::string violationLog_;
  std::string extraConfig_;     // configuration lines a test adds, each ending in a newline
  std::string extraEndpoints_;  // endpoint lines a test adds (endpointYaml)
  std::vector<std::string> launcher_;  // runs the agent (setpriv ...), when a test sets one
};

}  // namespace bulkhead
