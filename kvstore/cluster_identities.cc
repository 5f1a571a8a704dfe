#include "kvstore/cluster_identities.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "kvstore/store_values.h"
#include "text/sha256.h"

namespace bulkhead::kvstore {
namespace {

using nlohmann::json;
using Compare = EtcdClient::Compare;
using Operation = EtcdClient::Operation;

// How often one allocation re-reads the store after another host changed it under us.
constexpr int MaxAttempts = 32;

// Ten digits: keys sort as their numbers do.
std::string padded(rules::IdentityId id) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%010u", id);
  return digits;
}

Operation put(std::string key, std::string value, int64_t lease = 0) {
  return {Operation::Kind::Put, std::move(key), std::move(value), lease, ""};
}

}  // namespace

std::string canonicalLabels(const rules::Labels& labels) {
  return labelsJson(labels).dump();
}

ClusterIdentities::ClusterIdentities(const EtcdClient& store, std::string prefix, std::string host,
                                     int64_t lease)
    : store_(store), prefix_(std::move(prefix)), host_(std::move(host)), lease_(lease) {}

std::string ClusterIdentities::labelsKey(const rules::Labels& labels) const {
  return prefix_ + "/identities/labels/" + text::sha256Hex(canonicalLabels(labels));
}

std::string ClusterIdentities::idKey(rules::IdentityId id) const {
  return prefix_ + "/identities/ids/" + padded(id);
}

std::string ClusterIdentities::refsOf(rules::IdentityId id) const {
  return prefix_ + "/identities/refs/" + padded(id) + "/";
}

std::string ClusterIdentities::refKey(rules::IdentityId id) const {
  return refsOf(id) + host_;
}

bool ClusterIdentities::addReference(rules::IdentityId id, const EtcdClient::KeyValue& labelsEntry,
                                     std::string* error, bool* raced) {
  // Only while the number is still the one we read: a sweep may have removed it meanwhile.
  const auto result =
      store_.txn({{labelsEntry.key, Compare::Target::ModRevision, labelsEntry.modRevision, "", ""}},
                 {put(refKey(id), "", lease_)}, {}, error);
  if (!result) {
    return false;
  }
  *raced = !result->succeeded;
  return true;
}

std::optional<rules::IdentityId> ClusterIdentities::allocate(const rules::Labels& labels,
                                                             std::string* error) {
  const auto cached = byLabels_.find(labels);
  if (cached != byLabels_.end() && referenced_.count(cached->second)) {
    return cached->second;
  }
  const std::string key = labelsKey(labels);
  const std::string value = json{{"labels", labelsJson(labels)}}.dump();
  rules::IdentityId skipTo = 0;
  for (int attempt = 0; attempt < MaxAttempts; ++attempt) {
    const auto existing = store_.get(key, error);
    if (!existing) {
      if (cached != byLabels_.end()) {
        return cached->second;  // the store is away: what we knew stays true
      }
      return std::nullopt;
    }
    if (!existing->kvs.empty()) {
      const EtcdClient::KeyValue& entry = existing->kvs.front();
      const auto parsed = parseObject(entry.value);
      const auto number = parsed ? readIdentityNumber(*parsed, "id") : std::nullopt;
      if (!number || readLabels(*parsed) != labels) {
        *error = "the store's " + key + " is not this label set's identity; left as it is";
        return std::nullopt;
      }
      bool raced = false;
      if (!addReference(*number, entry, error, &raced)) {
        return cached != byLabels_.end() ? std::optional(cached->second) : std::nullopt;
      }
      if (raced) {
        continue;
      }
      remember(*number, labels);
      return *number;
    }

    // A new label set: the number `next` names, unless someone holds it already.
    const auto next = store_.get(nextKey(), error);
    if (!next) {
      return std::nullopt;
    }
    rules::IdentityId candidate = rules::reserved_identity::FirstEndpoint;
    Compare nextUnchanged{nextKey(), Compare::Target::Version, 0, "", ""};
    if (!next->kvs.empty()) {
      const auto stored = readIdentityNumber(next->kvs.front().value);
      if (!stored) {
        *error = "the store's " + nextKey() + " is not an identity number";
        return std::nullopt;
      }
      candidate = *stored;
      nextUnchanged = {nextKey(), Compare::Target::ModRevision, next->kvs.front().modRevision, "",
                       ""};
    }
    candidate = std::max(candidate, skipTo);
    if (candidate + 1 >= std::numeric_limits<rules::IdentityId>::max()) {
      *error = "the cluster has used every identity number";
      return std::nullopt;
    }
    json entry{{"id", candidate}, {"labels", labelsJson(labels)}};
    const auto result = store_.txn(
        {{key, Compare::Target::Version, 0, "", ""},
         {idKey(candidate), Compare::Target::Version, 0, "", ""},
         nextUnchanged},
        {put(key, entry.dump()), put(idKey(candidate), value),
         put(nextKey(), std::to_string(candidate + 1)), put(refKey(candidate), "", lease_)},
        {{Operation::Kind::Get, idKey(candidate), "", 0, ""}}, error);
    if (!result) {
      return std::nullopt;
    }
    if (result->succeeded) {
      remember(candidate, labels);
      return candidate;
    }
    if (!result->ranges.empty() && !result->ranges.front().kvs.empty()) {
      skipTo = candidate + 1;  // the number is taken though `next` did not say so
    }
  }
  *error = "the store kept changing under " + std::to_string(MaxAttempts) + " attempts";
  return std::nullopt;
}

void ClusterIdentities::remember(rules::IdentityId id, const rules::Labels& labels) {
  byLabels_[labels] = id;
  byId_[id] = labels;
  referenced_.insert(id);
}

bool ClusterIdentities::release(rules::IdentityId id, std::string* error) {
  if (!store_.remove(refKey(id), error)) {
    return false;
  }
  referenced_.erase(id);
  std::optional<rules::Labels> labels = labelsOf(id);
  if (!labels) {
    const auto stored = store_.get(idKey(id), error);
    if (!stored) {
      return false;
    }
    const auto parsed = stored->kvs.empty() ? std::nullopt : parseObject(stored->kvs.front().value);
    labels = parsed ? readLabels(*parsed) : std::nullopt;
    if (!labels) {
      return true;  // nothing readable to remove: the number is gone or not ours to judge
    }
  }
  const std::string refs = refsOf(id);
  const auto result =
      store_.txn({{refs, Compare::Target::Version, 0, "", EtcdClient::prefixEnd(refs)}},
                 {{Operation::Kind::Delete, labelsKey(*labels), "", 0, ""},
                  {Operation::Kind::Delete, idKey(id), "", 0, ""}},
                 {}, error);
  if (!result) {
    return false;
  }
  if (result->succeeded) {
    byLabels_.erase(*labels);
    byId_.erase(id);
  }
  return true;
}

std::optional<size_t> ClusterIdentities::sweep(std::string* error) {
  const std::string ids = prefix_ + "/identities/ids/";
  const std::string refs = prefix_ + "/identities/refs/";
  const auto numbers = store_.get(ids, error, true);
  const auto references = numbers ? store_.get(refs, error, true) : std::nullopt;
  if (!references) {
    return std::nullopt;
  }
  std::set<std::string> referenced;
  for (const auto& kv : references->kvs) {
    referenced.insert(kv.key.substr(refs.size(), kv.key.find('/', refs.size()) - refs.size()));
  }
  size_t removed = 0;
  for (const auto& kv : numbers->kvs) {
    const std::string digits = kv.key.substr(ids.size());
    const auto id = readIdentityNumber(digits);
    if (!id || referenced.count(digits)) {
      continue;
    }
    const auto parsed = parseObject(kv.value);
    const auto labels = parsed ? readLabels(*parsed) : std::nullopt;
    std::vector<Operation> remove{{Operation::Kind::Delete, kv.key, "", 0, ""}};
    if (labels) {
      remove.push_back({Operation::Kind::Delete, labelsKey(*labels), "", 0, ""});
    }
    const std::string mine = refsOf(*id);
    const auto result =
        store_.txn({{mine, Compare::Target::Version, 0, "", EtcdClient::prefixEnd(mine)},
                    {kv.key, Compare::Target::ModRevision, kv.modRevision, "", ""}},
                   remove, {}, error);
    if (!result) {
      return std::nullopt;
    }
    if (result->succeeded) {
      ++removed;
      if (labels) {
        byLabels_.erase(*labels);
      }
      byId_.erase(*id);
    }
  }
  return removed;
}

bool ClusterIdentities::refresh(std::string* error) {
  const std::string ids = prefix_ + "/identities/ids/";
  const auto numbers = store_.get(ids, error, true);
  if (!numbers) {
    return false;
  }
  std::map<rules::Labels, rules::IdentityId> byLabels;
  std::map<rules::IdentityId, rules::Labels> byId;
  for (const auto& kv : numbers->kvs) {
    const auto id = readIdentityNumber(std::string_view(kv.key).substr(ids.size()));
    const auto parsed = parseObject(kv.value);
    auto labels = parsed ? readLabels(*parsed) : std::nullopt;
    if (!id || !labels || byLabels.count(*labels)) {
      continue;  // not a number we could trust to mean one label set
    }
    byLabels.emplace(*labels, *id);
    byId.emplace(*id, std::move(*labels));
  }
  byLabels_ = std::move(byLabels);
  byId_ = std::move(byId);
  return true;
}

std::optional<rules::Labels> ClusterIdentities::labelsOf(rules::IdentityId id) const {
  const auto found = byId_.find(id);
  return found == byId_.end() ? std::nullopt : std::optional(found->second);
}

std::optional<rules::IdentityId> ClusterIdentities::cachedNumber(
    const rules::Labels& labels) const {
  const auto found = byLabels_.find(labels);
  return found == byLabels_.end() ? std::nullopt : std::optional(found->second);
}

rules::IdentityList ClusterIdentities::cached() const {
  rules::IdentityList out;
  for (const auto& [id, labels] : byId_) {
    out.push_back({id, labels});
  }
  return out;
}

}  // namespace bulkhead::kvstore
