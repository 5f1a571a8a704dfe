#pragma once

#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/endpoint_request.h"
#include "api/server.h"
#include "controlplane/agent_config.h"
#include "controlplane/agent_journal.h"
#include "controlplane/audit_log.h"
#include "controlplane/cluster_member.h"
#include "controlplane/docker_client.h"
#include "controlplane/docker_reconciler.h"
#include "controlplane/docker_watcher.h"
#include "controlplane/endpoint_registry.h"
#include "controlplane/fast_path.h"
#include "controlplane/host_links.h"
#include "controlplane/link_watcher.h"
#include "controlplane/policy_manager.h"
#include "controlplane/policy_watcher.h"
#include "controlplane/runtime_labels.h"
#include "controlplane/violation_log.h"
#include "controlplane/wire.h"
#include "dataplane/flow_offload.h"
#include "dpi/protocol_catalog.h"
#include "dpi/protocol_report.h"
#include "learning/edge_store.h"
#include "metrics/metrics_server.h"

namespace bulkhead::controlplane {

// bulkheadd's control thread: the loop and the order things start and stop in. What it drives
// has a file each -- the fast path (DPDK), the wire (BPF and nftables), the endpoint registry,
// the policy, the Docker reconciler -- and the Agent is what ties them together:
//  - an endpoint (configuration, API/CNI, Docker) becomes attachments in the registry and plugs
//    on the wire (agent_endpoints.cc);
//  - every change marks the forwarding state dirty; it is published once per loop turn, and
//    the policy compiled again only when the set of identities changed (flush());
//  - the API's requests are answered in agent_api.cc, Prometheus's scrapes in agent_metrics.cc;
//  - every judged flow is an observed edge for `policy suggest` (agent_learning.cc).
// A start that fails half-way undoes what it did (stop()).
class Agent {
 public:
  explicit Agent(AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Starts everything and serves until SIGTERM or SIGINT; SIGHUP reloads the policy and reopens
  // the violation log. Returns the process exit code.
  int run();

  // `bulkheadd --release`: removes everything an agent of this instance left in the kernel (its
  // journal names it) so the containers talk unfiltered. Refuses while that agent still runs.
  static int release(const AgentConfig& config);

  // What the API and signals do; the control thread calls them.
  nlohmann::json handle(const nlohmann::json& request);

 private:
  // One interface to attach, wherever the request came from.
  struct AttachSpec {
    std::string name;
    rules::Labels labels;
    std::string source;  // "config", "api" (CLI, CNI) or "docker"
    std::string containerId;
    std::string interface;
    std::string bridge;  // where the interface is, when the kernel cannot tell (any more)
    std::vector<dataplane::MacAddress> macs;
    std::vector<rules::IpAddress> ips;
    std::string netns;
    std::string containerInterface;
    nlohmann::json request;   // API endpoints: replayed after a restart
    bool askRuntime = false;  // a new endpoint waits, cut off, for the runtime's labels
  };

  static uint64_t monotonicMs();

  // agent.cc: lifecycle and loop.
  bool start(std::string* error);
  void stop();
  void serve();
  // Publishes the forwarding state if anything changed since the last time.
  void flush();
  void saveJournal(bool running);
  nlohmann::json reloadPolicy(const std::string& trigger);
  void drainViolations();
  // To the violation log, or a flow record to the flow log.
  void writeEvent(const dataplane::ViolationEvent& event);
  // The closest rule and what it did not match, from the snapshot that judged the flow.
  std::optional<rules::Explanation> explain(const dataplane::ViolationEvent& event) const;

  // agent_endpoints.cc: endpoints, bridges and the links under them.
  std::string attach(const AttachSpec& spec);
  std::string detach(const std::string& name, const std::string& why);
  std::string detachInterface(const std::string& name, const std::string& interface,
                              const std::string& why);
  bool protectBridge(const std::string& bridge, std::string* error);
  void unprotectBridge(const std::string& bridge, const std::string& why);
  // Whether veths on `bridge` stay quarantined while no endpoint holds them (at `nowMs`).
  bool holdsBridge(const std::string& bridge, uint64_t nowMs);
  // Looks at every link: veths on bridges nobody protects are let through the quarantine,
  // protected ones are not; endpoints whose interface is gone are detached.
  void reconcileLinks();
  void applyDocker(const DockerUpdate& update);
  void applyDockerNetworks(const std::vector<DockerNetwork>& networks);
  // True when it attached (or re-attached) something.
  bool upsertContainer(const DesiredEndpoint& desired);
  std::string attachRequest(const api::EndpointRequest& request, const nlohmann::json& raw);
  void applyRuntimeLabels(const RuntimeContainer& answer);
  void recover(const AgentJournal& previous);

  // agent_api.cc: the API's answers.
  nlohmann::json status();
  nlohmann::json endpointsJson() const;
  nlohmann::json flowsJson() const;
  nlohmann::json identitiesJson() const;
  // `bulkhead policy explain`: the verdict of the policy in force on a flow described by the
  // request, and for a denial the closest rule and what it did not match.
  nlohmann::json explainJson(const nlohmann::json& request);

  // agent_learning.cc: observed edges and the policy they suggest.
  void openLearning();
  // Writes edges.json when edges changed: at once with `now`, else at most every 30 s.
  void saveEdges(bool now);
  void observe(const dataplane::ViolationEvent& event);
  nlohmann::json learningStatusJson() const;
  nlohmann::json edgesJson(const nlohmann::json& request) const;
  nlohmann::json suggestJson(const nlohmann::json& request) const;

  // agent_cluster.cc: beyond one host (docs/multihost.md).
  bool openCluster(std::string* error);
  // Asks the cluster's numbers for label sets it has not asked for, publishes the endpoints.
  void syncCluster();
  // The cluster's answers and the other hosts' endpoints, when its fd is readable.
  void applyCluster();
  // The believed remote endpoints' identities for the policy, their addresses for the workers.
  void addRemote(rules::IdentityList& identities, dataplane::ForwardingState& state);
  std::optional<EndpointInfo> remoteInfo(const rules::IpAddress& ip) const;
  // `bulkhead policy apply` and `delete`: the cluster's policy documents.
  nlohmann::json applyClusterPolicy(const nlohmann::json& request);
  nlohmann::json deleteClusterPolicy(const nlohmann::json& request);
  // The cluster's documents changed: loaded with the files, or refused (the policy in force
  // stays).
  void reloadClusterPolicy();

  // agent_metrics.cc: the Prometheus exposition (docs/metrics.md).
  bool openMetrics(std::string* error);
  std::string metricsText();

  AgentConfig config_;
  WireNames names_;
  std::unique_ptr<dpi::NdpiProtocolCatalog> catalog_;
  std::unique_ptr<dpi::ProtocolReporter> protocols_;  // names protocols in flows and violations
  std::unique_ptr<PolicyManager> policy_;
  std::unique_ptr<PolicyWatcher> watcher_;
  std::unique_ptr<EndpointRegistry> registry_;
  std::unique_ptr<HostLinks> links_;
  std::unique_ptr<LinkWatcher> linkWatcher_;
  std::unique_ptr<Wire> wire_;
  // The wire's offload map as the workers use it; null with `offload: none`. Outlives them.
  std::unique_ptr<dataplane::FlowOffload> offload_;
  std::unique_ptr<FastPath> fastPath_;
  std::unique_ptr<ViolationLog> violationLog_;
  std::unique_ptr<ViolationLog> flowLog_;  // the same writer, for flow records; null: none
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<api::ApiServer> api_;
  std::unique_ptr<metrics::MetricsServer> metrics_;  // null: off, or the default port was taken
  std::string metricsError_;                         // why there is none at the default
  std::unique_ptr<learning::EdgeStore> edges_;       // null: learning is off
  std::string edgesPath_;
  bool edgesDirty_ = false;
  uint64_t edgesSavedMs_ = 0;
  uint64_t observationsUnresolved_ = 0;  // records of endpoints whose labels were gone
  std::unique_ptr<ClusterMember> cluster_;  // null: one host (no kvstore)
  std::set<rules::Labels> clusterAsked_;    // label sets whose number was asked for
  std::vector<kvstore::RemoteEndpoint> remote_;
  std::map<rules::IpAddress, size_t> remoteByIp_;  // index into remote_
  std::vector<rules::IdentityId> remoteOnly_;      // identities no endpoint here has, sorted
  std::unique_ptr<DockerWatcher> docker_;
  std::unique_ptr<RuntimeLabels> runtime_;  // labels of CNI containers
  DockerScope dockerScope_;
  std::set<std::string> protected_;          // bridges with an uplink and the quarantine
  std::set<std::string> dockerUnprotected_;  // the engine's bridges out of scope
  std::set<std::string> dockerBridges_;      // every bridge the engine reported
  // Bridges neither protected nor the engine's, by when the agent first saw a veth on them:
  // while Docker is followed they are held a moment, in case the engine's word on a network it
  // just created is still on its way.
  std::map<std::string, uint64_t> unknownBridgeSinceMs_;
  uint64_t nextLinksCheckMs_ = 0;  // reconcileLinks() again then (0: no need)
  uint64_t lastLinksCheckMs_ = 0;
  // From the engine's start event to the state that enforces the container being published:
  // the events of containers attached this turn, and the last latencies measured (ms).
  // The agent's own part starts when the watcher hands the update over.
  struct PendingAttach {
    uint64_t eventNs = 0;
    uint64_t pushedNs = 0;
  };
  std::vector<PendingAttach> attachEvents_;
  std::deque<double> attachLatenciesMs_;
  std::deque<double> agentLatenciesMs_;
  double lastResyncMs_ = -1;
  std::string journalPath_;
  bool dirty_ = true;              // the forwarding state must be published again
  bool identitiesChanged_ = true;  // and the policy compiled again for it
  bool journalDirty_ = false;
  bool linksDirty_ = false;  // reconcileLinks() at the end of this turn
  uint64_t publishes_ = 0;
  bool failedStart_ = false;
  bool tookOverQuarantine_ = false;  // an earlier agent's table was there at start
};

}  // namespace bulkhead::controlplane
