#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "kvstore/etcd_client.h"
#include "rules/identity.h"

namespace bulkhead::kvstore {

// Identity numbers given out cluster-wide, in etcd, so that a label set means one number on
// every host and a number one label set (docs/multihost.md, "The data model"):
//
//   <prefix>/identities/labels/<sha256 of the labels>  {"id": 300, "labels": {...}}
//   <prefix>/identities/ids/0000000300                 {"labels": {...}}
//   <prefix>/identities/refs/0000000300/<host>         "" under the host's lease
//   <prefix>/identities/next                           "301"
//
// A number is created by one transaction that holds only if neither the label set nor the number
// exists and nobody moved `next` meanwhile, so two hosts allocating at once end with one number.
// A host refers to each number it uses under its lease; the number goes when the last reference
// does (released, or its host's lease expired and someone swept). What the store said is cached:
// when it cannot be reached, known label sets keep their numbers and new ones get none.
class ClusterIdentities {
 public:
  // `host`: this agent's name in the cluster; `lease`: the lease its references live under
  // (0: none, they stay until released).
  ClusterIdentities(const EtcdClient& store, std::string prefix, std::string host, int64_t lease);

  // The cluster's number for `labels`. nullopt with `error` when the store could not be asked
  // and the labels are not cached, or it holds something unreadable for them.
  std::optional<rules::IdentityId> allocate(const rules::Labels& labels, std::string* error);
  // This host stops using `id`; the number leaves the store when no host refers to it any more.
  bool release(rules::IdentityId id, std::string* error);
  // Removes every number no host refers to (their hosts' leases expired). How many went.
  std::optional<size_t> sweep(std::string* error);
  // Reads every number in the store into the cache (the identities of other hosts' endpoints).
  bool refresh(std::string* error);

  // From the cache.
  std::optional<rules::Labels> labelsOf(rules::IdentityId id) const;
  std::optional<rules::IdentityId> cachedNumber(const rules::Labels& labels) const;
  rules::IdentityList cached() const;

  // When its lease lapsed a host takes a new one: its references are put again under it, at the
  // next allocation of each.
  void setLease(int64_t lease) {
    lease_ = lease;
    referenced_.clear();
  }

  // The keys, for the tests and `bulkhead status`.
  std::string labelsKey(const rules::Labels& labels) const;
  std::string idKey(rules::IdentityId id) const;
  std::string refKey(rules::IdentityId id) const;
  std::string nextKey() const { return prefix_ + "/identities/next"; }

 private:
  std::string refsOf(rules::IdentityId id) const;  // the prefix of every host's reference
  void remember(rules::IdentityId id, const rules::Labels& labels);
  bool addReference(rules::IdentityId id, const EtcdClient::KeyValue& labelsEntry,
                    std::string* error, bool* raced);

  const EtcdClient& store_;
  std::string prefix_;
  std::string host_;
  int64_t lease_;
  std::map<rules::Labels, rules::IdentityId> byLabels_;
  std::map<rules::IdentityId, rules::Labels> byId_;
  std::set<rules::IdentityId> referenced_;  // what this host's references in the store cover
};

// The label set as the store keeps it: a JSON object with its keys in order.
std::string canonicalLabels(const rules::Labels& labels);

}  // namespace bulkhead::kvstore
