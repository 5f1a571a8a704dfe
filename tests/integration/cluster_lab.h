#pragma once

// Two hosts of one cluster on one machine (docs/multihost.md): a real etcd on loopback ports and
// two real agents, each the agent of its own "host" -- its containers behind its trunk and an
// uplink into a shared fabric namespace that routes between the two hosts' subnets:
//
//   web 10.213.1.11, db 10.213.1.13 ── agent A ── fabric 10.213.1.1 | 10.213.2.1 ── agent B ──
//   api 10.213.2.12
//
// api serves HTTP on 8080. For the cluster's tests and its benchmark; root only. Everything goes
// when it does: the agents first (a clean stop revokes each one's lease while etcd still runs),
// then the labs, then etcd.
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "tests/integration/lab.h"
#include "tests/integration/live_agent.h"
#include "tests/support/etcd_cluster.h"

namespace bulkhead::testing {

class ClusterLab {
 public:
  // Throws std::runtime_error, saying what did not come up.
  ClusterLab(int etcdMembers, const std::string& policy);
  ~ClusterLab();
  ClusterLab(const ClusterLab&) = delete;
  ClusterLab& operator=(const ClusterLab&) = delete;

  EtcdCluster& etcd() { return *etcd_; }
  Lab& labA() { return *labA_; }
  Lab& labB() { return *labB_; }
  Host& fabric() { return *fabric_; }
  Host& web() { return *web_; }
  Host& db() { return *db_; }
  Host& api() { return *api_; }
  LiveAgent& agentA() { return *agentA_; }
  LiveAgent& agentB() { return *agentB_; }
  bool hasAgentA() const { return agentA_ != nullptr; }

  // Both agents stopped (SIGTERM): their exit codes, A's then B's (nullopt: killed, or gone).
  std::pair<std::optional<int>, std::optional<int>> stopAgents();
  // Agent A SIGKILLed, as a crash.
  void killAgentA();

  // `bulkhead status --json`'s kvstore part; null when the agent did not answer.
  static nlohmann::json kvstore(const LiveAgent& agent);
  // Waits until the agent believes `remoteEndpoints` other hosts' endpoints.
  static bool believes(const LiveAgent& agent, size_t remoteEndpoints, int seconds = 15);
  // The identity the agent gave endpoint `name`; -1 when it has none by that name.
  static int identityOf(const LiveAgent& agent, const std::string& name);
  // curl from a container of host A to api on host B: the HTTP status, 0 when none came.
  int toApi(const Host& from, int timeoutSeconds = 3);

 private:
  std::string config(const std::string& host, const std::string& subnet,
                     const std::string& uplink) const;

  TempDir etcdDir_;  // outlives the labs: the members' data and logs
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<Lab> labA_;
  std::unique_ptr<Lab> labB_;
  Host* fabric_ = nullptr;
  Host* web_ = nullptr;
  Host* db_ = nullptr;
  Host* api_ = nullptr;
  std::string fabricB_;
  std::unique_ptr<LiveAgent> agentA_;
  std::unique_ptr<LiveAgent> agentB_;
};

}  // namespace bulkhead::testing
