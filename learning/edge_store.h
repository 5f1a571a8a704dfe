#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "learning/observed_edge.h"

namespace bulkhead::learning {

// The edges the agent has observed, for `bulkhead policy suggest` and the service map. Bounded:
// at capacity, recording a new edge forgets the one seen longest ago (counted in evicted()), so
// a flood of new peers costs old evidence, never memory. Not thread-safe: the control thread
// owns it.
class EdgeStore {
 public:
  static constexpr size_t DefaultCapacity = 20000;

  explicit EdgeStore(size_t capacity = DefaultCapacity);
  EdgeStore(const EdgeStore&) = delete;
  EdgeStore& operator=(const EdgeStore&) = delete;

  // Adds `flow` to its edge (edgeKeyOf its key), making the edge when it is new.
  void record(const FlowObservation& flow);

  // The edges last seen at or after `sinceNs`, oldest first.
  std::vector<ObservedEdge> edges(uint64_t sinceNs = 0) const;
  size_t size() const { return edges_.size(); }
  size_t capacity() const { return capacity_; }
  uint64_t evicted() const { return evicted_; }
  uint64_t flowsRecorded() const { return flows_; }
  void clear();

  // The persisted form (docs/agent.md, "State"): {"version":1,"edges":[...]}.
  nlohmann::json toJson() const;
  // Replaces the store's edges with those of `document`, oldest first, as many as fit. False
  // with the reason when it is not such a document; the store is then left empty.
  bool load(const nlohmann::json& document, std::string* error);

 private:
  struct Entry {
    EdgeStats stats;
    std::list<const EdgeKey*>::iterator age;  // its place in byAge_
  };
  void touch(Entry& entry, const EdgeKey* key);
  void insert(const EdgeKey& key, const EdgeStats& stats);

  size_t capacity_;
  std::map<EdgeKey, Entry> edges_;
  std::list<const EdgeKey*> byAge_;  // least recently seen first
  uint64_t evicted_ = 0;
  uint64_t flows_ = 0;
};

// The key a flow is recorded under: the host name in lower case without a trailing dot, no port
// for ICMP, no address for a world source (any client) nor for a world destination that named a
// host, no labels but an endpoint's.
EdgeKey edgeKeyOf(const EdgeKey& seen);

// One edge as JSON (the API's, the state file's, and `policy suggest --json`'s shape), and back.
nlohmann::json toJson(const ObservedEdge& edge);
std::optional<ObservedEdge> edgeFromJson(const nlohmann::json& value, std::string* error);

}  // namespace bulkhead::learning
