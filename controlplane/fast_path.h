#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/agent_config.h"
#include "dataplane/doorbell.h"
#include "dataplane/forwarding_state.h"
#include "dataplane/port_manager.h"
#include "dataplane/violation_event.h"
#include "dataplane/worker.h"

struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace bulkhead::controlplane {

// The agent's DPDK side: the EAL, the pools, the trunks' ports (one per worker), the workers and
// their inboxes, the RCU that lets the control thread replace the forwarding state under them,
// and the rings violations and flow records leave the workers by. The control thread owns it and is
// the only one to call it.
class FastPath {
 public:
  FastPath() = default;
  ~FastPath();  // stop()
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  // EAL (arguments from the configuration), pools and rings, a port on each of `trunkPorts`
  // (af_xdp, falling back to af_packet; one per worker: `config.workers` of them), then the
  // workers, running with no state yet; worker i owns trunk i. On failure everything made so far
  // is undone (stop()) and `error` says what failed. `doorbells` (by worker; one may be null:
  // that worker then only sleeps briefly when idle) let the workers sleep until their next frame;
  // they are released in stop(), after the workers. `offload` (may be null: nothing is offloaded)
  // is where the workers offload established flows; it must outlive the workers.
  bool start(const AgentConfig& config, const std::vector<std::string>& trunkPorts,
             std::vector<std::unique_ptr<dataplane::Doorbell>> doorbells, std::string* error,
             dataplane::FlowOffload* offload = nullptr);
  // Workers stopped, rings drained (violations into `drain`, frames in the inboxes freed), ports
  // closed, memory freed, EAL cleaned up.
  void stop(const std::function<void(const dataplane::ViolationEvent&)>& drain = {});

  // Publishes `state` (filled in with the trunk's port): every burst a worker starts from now on
  // reads it. The previous state is freed once the RCU grace period says no worker reads it any
  // more -- not waited for here: a worker the scheduler has not run for a while must not hold up
  // an attach.
  void publish(std::unique_ptr<dataplane::ForwardingState> state);
  // Frees the states no worker can still be reading; publish() and the control loop call it.
  void reclaim();
  const dataplane::ForwardingState* current() const { return current_.get(); }

  // Hands the violations, then the flow records, the workers queued to `write`: at most two
  // rings' worth, so that workers filling them as fast as they are read cannot hold the control
  // loop here. Never blocks the workers.
  void drainViolations(const std::function<void(const dataplane::ViolationEvent&)>& write);

  std::vector<dataplane::WorkerCounters> counters() const;
  // Every worker's flow table, dumped at its next housekeeping (about 100 ms); what arrived
  // within a second.
  std::vector<dataplane::FlowSummary> flows() const;
  // Worker 0's trunk: the others are alike.
  const dataplane::PortInfo* trunk() const { return trunks_.empty() ? nullptr : &trunks_[0]; }
  size_t workerCount() const { return workers_.size(); }

 private:
  rte_mempool* packetPool_ = nullptr;
  rte_mempool* eventPool_ = nullptr;
  rte_ring* violations_ = nullptr;
  rte_mempool* recordPool_ = nullptr;
  rte_ring* records_ = nullptr;
  rte_rcu_qsbr* rcu_ = nullptr;
  std::unique_ptr<dataplane::PortManager> ports_;
  std::vector<std::unique_ptr<dataplane::Doorbell>> doorbells_;  // by worker
  std::vector<dataplane::PortInfo> trunks_;                      // by worker
  dataplane::WorkerShared shared_;
  std::vector<std::unique_ptr<dataplane::Worker>> workers_;
  std::unique_ptr<dataplane::ForwardingState> current_;
  // Replaced states and the RCU token after which no worker reads them.
  std::deque<std::pair<uint64_t, std::unique_ptr<dataplane::ForwardingState>>> retired_;
  bool workersRunning_ = false;
  bool ealCleanedUp_ = false;
};

}  // namespace bulkhead::controlplane
