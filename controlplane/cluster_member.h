#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/agent_config.h"
#include "kvstore/cluster_identities.h"
#include "kvstore/endpoint_directory.h"
#include "kvstore/etcd_client.h"
#include "metrics/histogram.h"

namespace bulkhead::controlplane {

// This host in the cluster (docs/multihost.md): its session with etcd (a lease it keeps alive,
// under which everything it publishes lives), the identity numbers it asks for, the endpoints
// it publishes, and the other hosts' endpoints it believes. etcd is reached from two threads of
// its own -- the session and the directory's watch -- never from the control thread, which a
// slow or absent store must not stall: it asks (request, publish) and takes the answers when
// fd() (an eventfd) is readable.
class ClusterMember {
 public:
  ClusterMember(const KvstoreConfig& config, std::string host);
  ~ClusterMember();
  ClusterMember(const ClusterMember&) = delete;
  ClusterMember& operator=(const ClusterMember&) = delete;

  // The cluster's number for `labels`, when the store gives it (take()).
  void request(const rules::Labels& labels);
  // No endpoint here has `labels` any more: this host's reference to its number goes (and the
  // number with it when no host refers to it).
  void release(const rules::Labels& labels);
  // Everything this host publishes of its endpoints, replacing what it published before.
  void publish(std::vector<kvstore::PublishedEndpoint> endpoints);

  struct Update {
    std::vector<std::pair<rules::Labels, rules::IdentityId>> identities;
    bool remoteChanged = false;
    bool policiesChanged = false;
  };
  int fd() const { return eventFd_; }
  Update take();
  // The other hosts' endpoints this host believes now.
  std::vector<kvstore::RemoteEndpoint> remoteEndpoints() const;
  // The cluster's policy documents as last read, and the store's revision then.
  std::vector<rules::PolicyText> policies() const;
  int64_t policyRevision() const;

  // The cluster's policy documents read now, on the calling thread: for the start, so that the
  // first policy in force has them. nullopt with `error` when the store does not answer.
  std::optional<std::vector<rules::PolicyText>> readPolicies(std::string* error) const;

  // `bulkhead policy apply` and `delete`, on the calling thread (bounded by the store's
  // timeout): every document put, or none, in one transaction; the store's revision after it.
  std::optional<int64_t> putPolicies(const std::vector<rules::PolicyText>& documents,
                                     std::string* error);
  // nullopt with `error` when there is no such document.
  std::optional<int64_t> deletePolicy(const std::string& name, std::string* error);

  // For `bulkhead status` and the metrics.
  nlohmann::json status() const;
  bool connected() const;
  uint64_t storeErrors() const;
  // How long each request to etcd took (seconds), answered or not.
  metrics::Histogram storeSeconds() const;
  const std::string& host() const { return host_; }

 private:
  void runSession();
  void runDirectory();
  void notify();
  // Under mutex_: what the store said last, for status().
  void noteStore(bool ok, const std::string& error);

  KvstoreConfig config_;
  std::string host_;
  kvstore::EtcdClient store_;
  int eventFd_ = -1;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  bool stop_ = false;
  std::set<rules::Labels> wanted_;  // label sets still to be numbered
  std::set<rules::Labels> unused_;  // label sets whose reference is to go
  std::vector<std::pair<rules::Labels, rules::IdentityId>> answers_;
  std::map<std::string, kvstore::PublishedEndpoint> desired_;
  bool publishDirty_ = false;
  std::vector<kvstore::RemoteEndpoint> remote_;
  std::vector<std::string> refused_;
  std::vector<std::string> hosts_;
  bool remoteChanged_ = false;
  std::vector<rules::PolicyText> policies_;
  int64_t policyRevision_ = 0;
  bool policiesChanged_ = false;
  bool connected_ = false;
  std::string lastError_;
  uint64_t errors_ = 0;
  metrics::Histogram storeSeconds_{
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  int64_t lease_ = 0;
  uint64_t sinceMs_ = 0;          // when connected_ last changed
  uint64_t directoryReadMs_ = 0;  // when the directory was last complete (read or watched)
  bool watching_ = false;

  std::thread session_;
  std::thread directory_;
};

}  // namespace bulkhead::controlplane
