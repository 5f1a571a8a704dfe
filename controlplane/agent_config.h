#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "controlplane/endpoint_loader.h"
#include "dataplane/flow_table.h"
#include "dataplane/port_manager.h"
#include "kvstore/etcd_client.h"
#include "rules/cidr.h"
#include "rules/diagnostic.h"

namespace bulkhead::controlplane {

enum class Hugepages { Auto, On, Off };
// Whether a flow the fast path has allowed for good is handed to the wire (docs/architecture.md,
// "Offloaded flows"): its established packets then go from veth to veth in the kernel.
enum class Offload { Established, None };

inline constexpr std::string_view DefaultMetricsAddress = "127.0.0.1:9968";

// Beyond one host (docs/multihost.md): identities, endpoints and policy shared through etcd. Off
// while `etcd.endpoints` is empty.
struct KvstoreConfig {
  kvstore::EtcdOptions etcd;  // endpoints, TLS, user and password, request timeout
  std::string prefix = "/bulkhead";
  std::string host;            // this host's name in the cluster; empty: the machine's hostname
  unsigned leaseSeconds = 15;  // what this host published goes this long after it stopped
  // The addresses this host's endpoints have: other hosts believe its endpoints only inside
  // them, and it believes no other host's endpoint inside them.
  std::vector<rules::Cidr> subnets;
  bool enabled() const { return !etcd.endpoints.empty(); }
};

// The agent's configuration: /etc/bulkhead/bulkhead.yaml, then command-line flags on top.
// Every key and flag is documented in docs/agent.md and `bulkheadd --help`.
struct AgentConfig {
  std::vector<std::string> policyPaths;
  bool watchPolicy = true;  // apply edits of the policy files as they happen (inotify)
  std::string apiSocket = "/run/bulkhead/api.sock";
  std::string apiSocketGroup;  // empty: root only (0600); else 0660 with this group
  // A file, stdout or syslog (controlplane/log_sink.h, docs/violations.md).
  std::string violationLog = "/var/log/bulkhead/violations.jsonl";
  // One JSON line per flow that ended, allowed or not; empty: none. The same targets.
  std::string flowLog;
  // The audit trail (policy applied or refused, endpoints attached and detached) as JSON lines
  // to one more target; empty: the agent's own log (the journal) only, where it always goes.
  std::string auditLog;
  // File logs rotate past logMaxBytes, keeping logFiles older files (0: never; logrotate and
  // SIGHUP instead). Syslog messages go to syslogFacility.
  uint64_t logMaxBytes = 0;
  unsigned logFiles = 5;
  unsigned syslogFacility = 16;                      // local0
  std::string stateDirectory = "/var/lib/bulkhead";  // identities.json lives here
  unsigned violationIntervalSeconds = 10;
  // The container label whose value is its namespace (bulkhead.io/namespace, for Kubernetes'
  // namespaceSelector): the compose project by default.
  std::string namespaceLabel = std::string(rules::reserved_labels::DefaultNamespaceLabel);
  // `namespaces: {shop: {team: shop}}`: a namespace's labels, for namespaceSelector on labels
  // other than the name (bulkhead.io/namespace.labels.<key> on its endpoints).
  rules::NamespaceLabels namespaces;
  // Learning (docs/operations.md, "Learning a policy"): every judged flow becomes an observed
  // edge, at most learnedEdges of them (the longest unseen go first), kept in edges.json.
  bool learning = true;
  unsigned learnedEdges = 20000;
  // The Prometheus endpoint (docs/metrics.md): host:port, or "off". Left at the default, a port
  // someone else holds costs the agent its metrics (logged, and said in `bulkhead status`);
  // an address the operator chose must be had, or the agent does not start.
  std::string metricsAddress = std::string(DefaultMetricsAddress);
  bool metricsAddressChosen = false;
  unsigned workers = 1;
  dataplane::PortDriver portDriver = dataplane::PortDriver::Auto;
  std::string uplink;  // kernel interface toward the host bridge or NIC; empty: none
  Hugepages hugepages = Hugepages::Auto;
  unsigned memoryMegabytes = 512;         // EAL memory without hugepages
  std::vector<std::string> ealArguments;  // extra arguments for DPDK's EAL
  unsigned dpiBudget = 32;
  // Undecided payload of a flow only an enforced L7 rule could allow is held back this long
  // (0: never held), at most dpiHoldPackets packets per worker at once.
  unsigned dpiHoldMicros = 2000;
  unsigned dpiHoldPackets = 256;
  unsigned maxFlows = 1048576;
  // The flows one endpoint may have open as their initiator, per worker; 0: an eighth of
  // maxFlows. maxFlows itself switches the limit off.
  unsigned maxFlowsPerEndpoint = 0;
  // A new flow in a full table: refused (drop), or the longest-idle of a sample of flows idle
  // 1 s or more is ended for it (evict-idle).
  dataplane::FullTable flowTableFull = dataplane::FullTable::Drop;
  unsigned mbufsPerPort = 4095;
  bool busyPoll = false;
  Offload offload = Offload::Established;
  std::string logLevel = "info";
  // Names everything the agent makes in the kernel (docs/agent.md, "Instances"): two agents
  // with different instances never touch each other's trunk, programs or tables.
  std::string instance = "bh0";
  // Docker: the containers of every bridge network (or of `dockerNetworks` only) become
  // endpoints as the engine starts and stops them, networks created later included.
  bool docker = false;
  std::string dockerSocket = "/var/run/docker.sock";
  std::vector<std::string> dockerNetworks;  // empty: every network
  // A Docker-compatible API (podman's `podman system service`) the agent asks for the labels
  // of a CNI container by its container id; empty: CNI endpoints have the labels CNI sent.
  std::string runtimeSocket;
  // Bridges quarantined from the agent's start, before any endpoint on them is attached: a CNI
  // network's bridge, so that even its first container has no moment unfiltered.
  std::vector<std::string> protectBridges;
  // What becomes of the containers while no agent runs: false (the default) keeps the
  // quarantine, so they stay cut off from everything; true removes it at a clean stop (and a
  // start that fails), so they talk unfiltered on their bridges until an agent runs again.
  bool failOpen = false;
  EndpointFile staticEndpoints;  // with interfaces
  KvstoreConfig kvstore;
};

struct AgentConfigLoad {
  AgentConfig config;
  rules::Diagnostics errors;
  bool ok() const { return errors.empty(); }
};

// "drop" or "evict-idle" (the configuration's and the flag's spelling); false for anything else.
bool parseFullTable(std::string_view text, dataplane::FullTable& out);

// "off", or host:port as metrics::parseListenAddress reads it; false with *error otherwise.
bool validMetricsAddress(const std::string& text, std::string* error);

// "104857600", "64K", "100M", "1G": bytes; false for anything else (or past 1 PiB).
bool parseByteSize(std::string_view text, uint64_t& out);

// A host's name in the cluster (it is part of keys in etcd): 1 to 63 of a-z, 0-9, '-' and '.',
// starting with a letter or digit.
bool validHostName(std::string_view name);

// "established" or "none"; false for anything else.
bool parseOffload(std::string_view text, Offload& out);

// Reads the YAML file over the defaults. A missing file is an error only when `required`.
AgentConfigLoad loadAgentConfig(const std::string& path, bool required);
AgentConfigLoad loadAgentConfigText(const std::string& text, const std::string& fileName);

}  // namespace bulkhead::controlplane
