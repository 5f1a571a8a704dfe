#pragma once

#include <string>
#include <vector>

#include "controlplane/endpoint_loader.h"
#include "dataplane/port_manager.h"
#include "rules/diagnostic.h"

namespace bulkhead::controlplane {

enum class Hugepages { Auto, On, Off };

// The agent's configuration: /etc/bulkhead/bulkhead.yaml, then command-line flags on top.
// Every key and flag is documented in docs/agent.md and `bulkheadd --help`.
struct AgentConfig {
  std::vector<std::string> policyPaths;
  bool watchPolicy = true;  // apply edits of the policy files as they happen (inotify)
  std::string apiSocket = "/run/bulkhead/api.sock";
  std::string apiSocketGroup;  // empty: root only (0600); else 0660 with this group
  std::string violationLog = "/var/log/bulkhead/violations.jsonl";
  std::string stateDirectory = "/var/lib/bulkhead";  // identities.json lives here
  unsigned violationIntervalSeconds = 10;
  unsigned workers = 1;
  dataplane::PortDriver portDriver = dataplane::PortDriver::Auto;
  std::string uplink;  // kernel interface toward the host bridge or NIC; empty: none
  Hugepages hugepages = Hugepages::Auto;
  unsigned memoryMegabytes = 512;  // EAL memory without hugepages
  std::vector<std::string> ealArguments;  // extra arguments for DPDK's EAL
  unsigned dpiBudget = 32;
  // Undecided payload of a flow only an enforced L7 rule could allow is held back this long
  // (0: never held), at most dpiHoldPackets packets per worker at once.
  unsigned dpiHoldMicros = 2000;
  unsigned dpiHoldPackets = 256;
  unsigned maxFlows = 262144;
  unsigned mbufsPerPort = 4095;
  bool busyPoll = false;
  std::string logLevel = "info";
  // Docker: the containers on `dockerNetwork` become endpoints as the engine starts and stops
  // them. Off while dockerNetwork is empty.
  std::string dockerSocket = "/var/run/docker.sock";
  std::string dockerNetwork;
  // What becomes of the containers' veths while no agent runs: false (the default) leaves them
  // cut off from their bridge; true puts them back on it at exit, and at the next start after a
  // crash, so traffic flows unfiltered until the agent takes them again.
  bool failOpen = false;
  EndpointFile staticEndpoints;  // with interfaces
};

struct AgentConfigLoad {
  AgentConfig config;
  rules::Diagnostics errors;
  bool ok() const { return errors.empty(); }
};

// Reads the YAML file over the defaults. A missing file is an error only when `required`.
AgentConfigLoad loadAgentConfig(const std::string& path, bool required);
AgentConfigLoad loadAgentConfigText(const std::string& text, const std::string& fileName);

}  // namespace bulkhead::controlplane
