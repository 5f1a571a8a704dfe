#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/agent_config.h"
#include "controlplane/api_server.h"
#include "controlplane/attachment_journal.h"
#include "controlplane/docker_watcher.h"
#include "controlplane/host_links.h"
#include "controlplane/link_watcher.h"
#include "controlplane/identity_allocator.h"
#include "controlplane/policy_watcher.h"
#include "controlplane/violation_log.h"
#include "dataplane/endpoint.h"
#include "dataplane/forwarding_state.h"
#include "dataplane/port_manager.h"
#include "dataplane/worker.h"
#include "dpi/protocol_catalog.h"
#include "dpi/protocol_report.h"
#include "rules/policy.h"

struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace bulkhead::controlplane {

// bulkheadd's control thread. It owns DPDK's resources, the ports and the workers, the policy
// and the endpoints, and is the only writer of the forwarding state: every change (endpoint
// attached or detached, policy reloaded) builds a new state, publishes it, waits for the RCU
// grace period and only then frees the old one or detaches a port.
class Agent {
 public:
  explicit Agent(AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Starts everything and serves until SIGTERM or SIGINT; SIGHUP reloads the policy and reopens
  // the violation log. Returns the process exit code.
  int run();

  // What the API and signals do; the control thread calls them.
  nlohmann::json handle(const nlohmann::json& request);

 private:
  // Where an endpoint came from and what attaching it changed on the host.
  struct AttachOptions {
    std::string source = "api";  // "config", "api" (CLI, CNI) or "docker"
    std::string bridgeHint;      // the bridge to join when the interface is on none (any more)
    std::string netns;           // the container's namespace and its end of the veth: offloads
    std::string containerInterface;
    std::string containerId;     // docker
    nlohmann::json request;      // api: the endpoint as requested, replayed after a restart
  };

  struct AttachedEndpoint {
    uint32_t slot = 0;
    dataplane::Endpoint endpoint;
    std::string interface;
    dataplane::PortInfo port;
    std::string bridge;  // the bridge the interface was taken off; "" when it was on none
    AttachOptions options;
  };

  bool start(std::string* error);
  void stop();
  // Validates the policy files; on success they become the policy in force (new generation).
  bool loadPolicy(std::vector<std::string>* errors);
  // loadPolicy + publish, with an audit line naming the trigger, generation and sha256.
  nlohmann::json reloadPolicy(const std::string& trigger);
  void publish();
  std::string attach(dataplane::Endpoint endpoint, const std::string& interface,
                     AttachOptions options);
  std::string detach(const std::string& name, const std::string& why);
  // The dataplane's port into `bridge`: a veth pair the agent creates, unless an uplink was
  // configured. One bridge per agent: the dataplane has one uplink.
  std::string ensureUplink(const std::string& bridge);
  void removeManagedUplink();
  // What a previous agent left: stale uplinks removed; after a crash with failOpen, veths put
  // back on their bridges; endpoints the API had attached attached again.
  void recoverFromJournal();
  void saveJournal(bool running = true);
  void onLinksRemoved();
  void applyDocker(const DockerUpdate& update);
  void upsertContainer(const DockerContainer& container);
  void drainViolations();
  nlohmann::json status() const;
  nlohmann::json flows() const;
  std::optional<EndpointInfo> endpointForSlot(uint32_t slot) const;

  AgentConfig config_;
  std::unique_ptr<dpi::NdpiProtocolCatalog> catalog_;
  std::unique_ptr<dpi::ProtocolReporter> protocols_;  // names protocols in flows and violations
  rules::PolicySet policies_;
  std::string policySha256_;
  std::unique_ptr<PolicyWatcher> watcher_;
  uint64_t generation_ = 0;
  IdentityAllocator identities_;
  std::vector<AttachedEndpoint> endpoints_;
  std::map<uint32_t, EndpointInfo> slotInfo_;  // kept after detach: events may still be queued
  uint32_t nextSlot_ = 0;
  std::optional<dataplane::PortInfo> uplink_;
  AttachmentJournal::Uplink managedUplink_;  // empty interface: the uplink is configured, not ours
  std::vector<rules::IpAddress> bridgeHostIps_;
  std::unique_ptr<HostLinks> links_;
  std::unique_ptr<LinkWatcher> linkWatcher_;
  std::unique_ptr<DockerWatcher> docker_;
  std::string journalPath_;

  rte_mempool* packetPool_ = nullptr;
  rte_mempool* eventPool_ = nullptr;
  rte_ring* violations_ = nullptr;
  rte_rcu_qsbr* rcu_ = nullptr;
  std::unique_ptr<dataplane::PortManager> ports_;
  dataplane::WorkerShared shared_;
  std::vector<std::unique_ptr<dataplane::Worker>> workers_;
  std::unique_ptr<dataplane::ForwardingState> current_;
  std::unique_ptr<ViolationLog> violationLog_;
  std::unique_ptr<ApiServer> api_;
  bool workersRunning_ = false;
  bool ealCleanedUp_ = false;
};

}  // namespace bulkhead::controlplane
