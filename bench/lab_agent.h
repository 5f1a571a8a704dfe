#pragma once

// What the whole-agent benchmarks share: a lab bridge with HOSTS namespaces on it, a real
// bulkheadd protecting that bridge, and the real bulkhead-cni to attach the hosts as a runtime
// would. Root only; the lab removes everything (namespaces, bridge, the agent's wire) at the end.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/integration/lab.h"
#include "tests/support/binaries.h"
#include "tests/support/run_command.h"

namespace bulkhead::bench {

inline unsigned fromEnv(const char* name, unsigned fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && std::atoi(value) > 0 ? static_cast<unsigned>(std::atoi(value))
                                                  : fallback;
}

inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, size_t(q * double(values.size())))];
}

inline double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// BULKHEADD and BULKHEAD_CNI point at another build's binaries, to compare builds in one run.
inline std::string binary(const char* variable, const std::string& name) {
  const char* value = std::getenv(variable);
  return value != nullptr && *value != 0 ? value : testing::builtBinary(name);
}

// The main() of a whole-agent benchmark: without root it says so and exits 2; a setup that fails
// says why and exits 1 (the lab still cleans up behind it).
inline int runLabBenchmark(const char* name, const std::function<void()>& body) {
  if (::geteuid() != 0) {
    std::cerr << name << ": needs root (namespaces, a DPDK agent)\n";
    return 2;
  }
  try {
    body();
  } catch (const std::exception& error) {
    std::cerr << name << ": " << error.what() << "\n";
    return 1;
  }
  return 0;
}

class LabAgent {
 public:
  // Hosts 10.78.0.2, .3, ... on one bridge; `policy` selects them by `app: load`.
  LabAgent(unsigned hosts, const std::string& policy) {
    for (unsigned i = 0; i < hosts; ++i) {
      hosts_.push_back(
          &lab_.addHost("c" + std::to_string(i), "10.78.0." + std::to_string(i + 2) + "/24"));
    }
    bridge_ = lab_.bridgeHosts();
    socket_ = lab_.dir().file("api.sock");
    policy_ = lab_.dir().write("policy.yaml", policy);
  }

  void start(const std::string& extraConfig = "") {
    const std::string config = lab_.dir().write(
        "bulkhead.yaml", "policy: " + policy_ + "\napiSocket: " + socket_ +
                             "\nviolationLog: " + lab_.dir().file("violations.log") +
                             "\ninstance: " + lab_.agentInstance() + "\nstateDirectory: " +
                             lab_.dir().file("state") + "\nprotectBridges: [" + bridge_ +
                             "]\nhugepages: off\nmemoryMegabytes: 512\n" + extraConfig);
    agent_ = &lab_.spawn(nullptr, {binary("BULKHEADD", "bulkheadd"), "--config", config},
                         "agent" + std::to_string(++starts_) + ".log");
    if (!agent_->waitForLog("bulkheadd ready", 30)) {
      throw std::runtime_error("bulkheadd did not start:\n" + agent_->log());
    }
  }
  void stop() {
    if (agent_ != nullptr) {
      agent_->stop(10);
      agent_ = nullptr;
    }
  }
  pid_t pid() const { return agent_->pid(); }

  // `bulkhead-cni` ADD or DEL for host `i`, as a runtime runs it (a shell line for runCommand).
  std::string cniCommand(const std::string& command, unsigned i) {
    const testing::Host& host = *hosts_.at(i);
    const nlohmann::json conf = {
        {"cniVersion", "1.0.0"},
        {"name", "load"},
        {"type", "bulkhead-cni"},
        {"agentSocket", socket_},
        {"labels", {{"app", "load"}}},
        {"prevResult",
         {{"cniVersion", "1.0.0"},
          {"interfaces",
           {{{"name", bridge_}},
            {{"name", host.hostIfname}},
            {{"name", "eth0"}, {"mac", host.mac}, {"sandbox", "/run/netns/" + host.netns}}}},
          {"ips", {{{"address", host.cidr}, {"interface", 2}}}}}}};
    const std::string input =
        lab_.dir().write(command + "-" + std::to_string(i) + ".json", conf.dump());
    return "CNI_COMMAND=" + command + " CNI_CONTAINERID=load" + std::to_string(i) +
           " CNI_NETNS=/run/netns/" + host.netns + " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni exec " +
           binary("BULKHEAD_CNI", "bulkhead-cni") + " < " + input;
  }
  void cni(const std::string& command, unsigned i) {
    const auto result = testing::runCommand({"/bin/sh", "-c", cniCommand(command, i)}, 30);
    if (result.exitCode != 0) {
      throw std::runtime_error("CNI " + command + " failed: " + result.out + result.err);
    }
  }

  testing::Lab& lab() { return lab_; }
  const testing::Host& host(unsigned i) const { return *hosts_.at(i); }
  const std::string& socket() const { return socket_; }

 private:
  testing::Lab lab_;
  std::vector<testing::Host*> hosts_;
  std::string bridge_;
  std::string socket_;
  std::string policy_;
  testing::Process* agent_ = nullptr;
  int starts_ = 0;
};

}  // namespace bulkhead::bench
