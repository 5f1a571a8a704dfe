#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/flow_entry.h"

#include <type_traits>

struct rte_hash;

namespace bulkhead::dataplane {

static_assert(std::is_trivially_destructible_v<FlowEntry>,
              "flow entries live in raw memory and are never destroyed one by one");

// What a new flow meets when the table is full (docs/agent.md, `flowTableFull`).
enum class FullTable : uint8_t {
  Drop,       // refuse it (counted as flow-table-full): tracked flows are never disturbed
  EvictIdle,  // end the longest-idle of a sample of tracked flows, if idle long enough, for it
};

struct FlowTableConfig {
  uint32_t capacity = 65536;
  ConntrackTimeouts timeouts;
  FullTable whenFull = FullTable::Drop;
  // EvictIdle: only a flow idle at least this long gives way, the longest-idle of the next
  // `evictSample` tracked slots -- a bounded look, never a scan of the table per packet.
  uint64_t evictMinIdleNs = 1000000000ull;
  uint32_t evictSample = 64;
};

// A per-worker flow table over DPDK's cuckoo hash: fixed capacity, entries preallocated, no
// locks (one writer, the owning worker). Full means new flows are refused, never that old
// ones are silently evicted.
class FlowTable {
 public:
  // `name` must be unique in the process (DPDK names its hash memory zone after it).
  FlowTable(const FlowTableConfig& config, const std::string& name);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  FlowEntry* find(const FlowKey& key);
  // A fresh entry for `key` (the existing one if it is already tracked), or nullptr when full.
  FlowEntry* insert(const FlowKey& key);
  void erase(FlowEntry& entry);
  // For FullTable::EvictIdle: the longest-idle entry among the next `evictSample` used slots
  // (from where the last call stopped) idle for at least `evictMinIdleNs`, or nullptr. The
  // caller ends it (erase) before inserting.
  FlowEntry* evictionCandidate(uint64_t nowNs);
  bool full() const { return size_ >= config_.capacity; }

  // Visits up to `budget` slots from where the last call stopped and removes entries idle past
  // their state's timeout, calling `onExpire(entry)` first. Returns the number removed.
  template <typename OnExpire>
  size_t expire(uint64_t nowNs, size_t budget, OnExpire&& onExpire);

  template <typename Visit>
  void forEach(Visit&& visit) {
    for (size_t slot = 0; slot < slots_; ++slot) {
      if (used_[slot]) {
        visit(entries_[slot]);
      }
    }
  }

  size_t size() const { return size_; }
  size_t capacity() const { return config_.capacity; }
  const FlowTableConfig& config() const { return config_; }

 private:
  bool expired(const FlowEntry& entry, uint64_t nowNs) const;

  struct FreeEntries {
    void operator()(FlowEntry* entries) const { std::free(entries); }
  };

  FlowTableConfig config_;
  rte_hash* hash_ = nullptr;
  // Zeroed, untouched memory until a slot is used: a large table costs nothing until it fills.
  std::unique_ptr<FlowEntry[], FreeEntries> entries_;
  size_t slots_ = 0;
  std::vector<uint8_t> used_;
  size_t size_ = 0;
  size_t cursor_ = 0;
  size_t evictCursor_ = 0;
};

template <typename OnExpire>
size_t FlowTable::expire(uint64_t nowNs, size_t budget, OnExpire&& onExpire) {
  size_t removed = 0;
  for (size_t visited = 0; visited < budget && size_ > 0; ++visited) {
    cursor_ = cursor_ + 1 < slots_ ? cursor_ + 1 : 0;
    if (used_[cursor_] && expired(entries_[cursor_], nowNs)) {
      onExpire(entries_[cursor_]);
      erase(entries_[cursor_]);
      ++removed;
    }
  }
  return removed;
}

}  // namespace bulkhead::dataplane
