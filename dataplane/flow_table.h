#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "dataplane/flow_entry.h"
#include "dataplane/flow_index.h"
#include "dataplane/mapped_array.h"

namespace bulkhead::dataplane {

// What a new flow meets when the table is full (docs/agent.md, `flowTableFull`).
enum class FullTable : uint8_t {
  Drop,       // refuse it (counted as flow-table-full): tracked flows are never disturbed
  EvictIdle,  // end the longest-idle of a sample of tracked flows, if idle long enough, for it
};

struct FlowTableConfig {
  uint32_t capacity = 1u << 20;
  ConntrackTimeouts timeouts;
  FullTable whenFull = FullTable::Drop;
  // EvictIdle: only a flow idle at least this long gives way, the longest-idle of the next
  // `evictSample` tracked slots -- a bounded look, never a scan of the table per packet.
  uint64_t evictMinIdleNs = 1000000000ull;
  uint32_t evictSample = 64;
};

class FlowTable;

// A key made ready for the table: compacted and hashed once, for a prefetch ahead of the burst
// and then the find (and the insert, when the flow is new).
struct FlowLookup {
  CompactKey compact;
  uint64_t hash = 0;
};

// A tracked flow: a handle on its parts in the table (flow_entry.h), cheap to copy, valid until
// the flow is erased. A default-made Flow is null: what a lookup that found nothing returns.
class Flow {
 public:
  Flow() = default;
  Flow(FlowTable* table, uint32_t slot) : table_(table), slot_(slot) {}

  explicit operator bool() const { return table_ != nullptr; }
  bool operator==(const Flow& other) const = default;
  uint32_t slot() const { return slot_; }

  FlowHot& hot() const;
  FlowCold& cold() const;
  FlowExtra* extra() const;  // null unless classifying, or a host name was found

  FlowKey key() const;
  // The conversation as its initiator started it: source = the first packet's sender.
  rules::IpAddress initiatorIp() const;
  rules::IpAddress responderIp() const;
  uint16_t initiatorPort() const;
  uint16_t responderPort() const;
  uint8_t ipProtocol() const { return hot().key.ipProtocol; }

  uint64_t totalPackets() const { return hot().packets[0] + hot().packets[1]; }
  uint64_t totalBytes() const { return hot().bytes[0] + hot().bytes[1]; }
  uint32_t heldPackets() const;
  // Every packet is counted once as forwarded, dropped, or held until its verdict.
  uint64_t forwardedPackets() const {
    return totalPackets() - cold().droppedPackets - heldPackets();
  }

  std::string_view hostName() const;
  // Detection's outcome; all Unknown until the flow is classified.
  dpi::Classification classification() const;
  // The cached verdict; its generation is `current`'s when it came from that snapshot (the
  // flow keeps only the low 32 bits), else one that no snapshot in force has.
  rules::Verdict verdict(const rules::PolicySnapshot* current) const;
  bool verdictCurrent(const rules::PolicySnapshot& current) const {
    return hot().verdictValid &&
           hot().verdictGeneration == static_cast<uint32_t>(current.generation());
  }

 private:
  FlowTable* table_ = nullptr;
  uint32_t slot_ = 0;
};

// A per-worker flow table: fixed capacity, nothing allocated after construction, no locks (one
// writer, the owning worker). Its arrays are mapped zero pages, so memory follows the flows
// tracked, not the capacity: about 126 bytes per flow (FlowHot, FlowCold, the index), plus 32
// for an IPv6 flow's addresses and sizeof(FlowExtra) for a flow still classifying or with a host
// name. Full means new flows are refused (or, with EvictIdle, an idle one ends for them).
class FlowTable {
 public:
  explicit FlowTable(const FlowTableConfig& config);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  FlowLookup lookup(const FlowKey& key) const {
    FlowLookup out;
    fillLookup(key, out);
    return out;
  }
  void fillLookup(const FlowKey& key, FlowLookup& out) const;
  // From CompactKey's two words (compactIpv4Key).
  void fillLookup(uint64_t low, uint64_t high, FlowLookup& out) const;
  // Brings the key's index bucket towards the cache: a burst's lookups then overlap their misses
  // instead of waiting for each in turn.
  void prefetch(const FlowLookup& lookup) const { index_.prefetch(lookup.hash); }
  // Then, once the bucket has had time to arrive, the flow's hot line.
  void prefetchFlow(const FlowLookup& lookup) const {
    const uint32_t slot = index_.likelySlot(lookup.hash);
    if (slot != FlowIndex::NotFound) {
      __builtin_prefetch(&hot_[slot]);
    }
  }

  // `lookup` is lookup(key), made earlier; `key` is read only for an IPv6 flow (an IPv4 key is
  // all in `lookup`).
  Flow find(const FlowKey& key, const FlowLookup& lookup);
  Flow find(const FlowKey& key) { return find(key, lookup(key)); }
  // A fresh flow for `key` (the existing one if it is already tracked), or null when full.
  Flow insert(const FlowKey& key, const FlowLookup& lookup);
  Flow insert(const FlowKey& key) { return insert(key, lookup(key)); }
  // Ends the flow's extra part too (the caller has let go of its DPI state and held packets).
  void erase(Flow flow);
  // For FullTable::EvictIdle: the longest-idle flow among the next `evictSample` used slots
  // (from where the last call stopped) idle for at least `evictMinIdleNs`, or null. The caller
  // ends it (erase) before inserting.
  Flow evictionCandidate(uint64_t nowNs);
  bool full() const { return size_ >= config_.capacity; }

  // The flow's extra part, made zeroed if it has none. Never fails: there is one per slot.
  FlowExtra& attachExtra(Flow flow);
  void detachExtra(Flow flow);

  // Visits up to `budget` slots from where the last call stopped and removes flows idle past
  // their state's timeout, calling `onExpire(flow)` first. A flow may have been busy where the
  // table does not see it (offloaded into the wire): `refresh(flow)` may move its last-seen
  // time on, and returns whether it did; the flow stays if it is no longer idle. Returns the
  // number removed.
  struct NoRefresh {
    bool operator()(Flow) const { return false; }
  };
  template <typename OnExpire, typename Refresh = NoRefresh>
  size_t expire(uint64_t nowNs, size_t budget, OnExpire&& onExpire, Refresh&& refresh = {});

  template <typename Visit>
  void forEach(Visit&& visit) {
    for (uint32_t slot = 0; slot < slots_; ++slot) {
      if (used(slot)) {
        visit(Flow(this, slot));
      }
    }
  }

  size_t size() const { return size_; }
  size_t capacity() const { return config_.capacity; }
  const FlowTableConfig& config() const { return config_; }
  // Address space reserved for all of it; memory in use is what the tracked flows touched.
  size_t reservedBytes() const;
  // What a tracked flow costs at full capacity: its hot and cold parts and its index share.
  double bytesPerFlow() const;

 private:
  friend class Flow;
  static constexpr uint32_t NoFree = UINT32_MAX;

  uint64_t hash(const CompactKey& key) const;
  bool matches(uint32_t slot, const CompactKey& compact, const FlowKey& key) const;
  bool used(uint32_t slot) const { return hot_[slot].key.family != 0; }
  bool expired(const FlowHot& hot, uint64_t nowNs) const;

  FlowTableConfig config_;
  uint32_t slots_;
  uint64_t seed_[2];  // per table, at random: a container cannot aim its flows at one bucket
  FlowIndex index_;
  MappedArray<FlowHot> hot_;  // key.family 0: the slot is free
  MappedArray<FlowCold> cold_;
  MappedArray<std::array<uint8_t, 32>> v6_;  // IPv6 flows' addresses A and B
  MappedArray<FlowExtra> extras_;
  // Free slots and free extras: each free list is threaded through its own array (the next
  // free index in the element), and a never-used tail is handed out from `fresh*`, so only
  // what was ever used has been touched.
  uint32_t freeSlot_ = NoFree;
  uint32_t freshSlot_ = 0;
  uint32_t freeExtra_ = NoFree;
  uint32_t freshExtra_ = 0;
  size_t size_ = 0;
  uint32_t cursor_ = 0;
  uint32_t evictCursor_ = 0;
};

namespace flow_hash {

inline uint64_t load64(const uint8_t* bytes) {
  uint64_t value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

// One 64x64->128 multiply of keyed words, folded (the "mum" step of wyhash): a universal-style
// hash whose collisions depend on keys the sender never sees.
inline uint64_t mix(uint64_t x, uint64_t y) {
  const Uint128 product = static_cast<Uint128>(x) * y;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}

}  // namespace flow_hash

// Inline: every packet compacts and hashes its key once. The two words are made in registers and
// stored whole: hashing the key from memory right after storing its fields one by one would stall
// store forwarding on every packet.
inline void FlowTable::fillLookup(const FlowKey& key, FlowLookup& out) const {
  static_assert(std::endian::native == std::endian::little, "CompactKey's words are little-endian");
  uint64_t low;
  if (key.family == 4) {
    uint32_t a;
    uint32_t b;
    std::memcpy(&a, key.addressA, 4);
    std::memcpy(&b, key.addressB, 4);
    low = uint64_t{a} | uint64_t{b} << 32;
  } else {
    using flow_hash::load64;
    using flow_hash::mix;
    low = mix(load64(key.addressA) ^ seed_[0], load64(key.addressA + 8) ^ seed_[1]);
    low = mix(low ^ load64(key.addressB), load64(key.addressB + 8) ^ seed_[0]);
  }
  fillLookup(low, compactHighWord(key.portA, key.portB, key.vlan, key.family, key.ipProtocol), out);
}

inline void FlowTable::fillLookup(uint64_t low, uint64_t high, FlowLookup& out) const {
  std::memcpy(static_cast<void*>(&out.compact), &low, sizeof(low));
  std::memcpy(reinterpret_cast<uint8_t*>(static_cast<void*>(&out.compact)) + sizeof(low), &high,
              sizeof(high));
  out.hash = flow_hash::mix(low ^ seed_[0], high ^ seed_[1]);
}

inline uint64_t FlowTable::hash(const CompactKey& key) const {
  uint64_t words[2];
  std::memcpy(words, &key, sizeof(words));
  return flow_hash::mix(words[0] ^ seed_[0], words[1] ^ seed_[1]);
}

inline bool FlowTable::matches(uint32_t slot, const CompactKey& compact, const FlowKey& key) const {
  if (!(hot_[slot].key == compact)) {
    return false;
  }
  return compact.family == 4 || (std::memcmp(v6_[slot].data(), key.addressA, 16) == 0 &&
                                 std::memcmp(v6_[slot].data() + 16, key.addressB, 16) == 0);
}

inline Flow FlowTable::find(const FlowKey& key, const FlowLookup& lookup) {
  const uint32_t slot = index_.find(
      lookup.hash, [&](uint32_t candidate) { return matches(candidate, lookup.compact, key); });
  return slot == FlowIndex::NotFound ? Flow() : Flow(this, slot);
}

inline FlowHot& Flow::hot() const {
  return table_->hot_[slot_];
}
inline FlowCold& Flow::cold() const {
  return table_->cold_[slot_];
}
inline FlowExtra* Flow::extra() const {
  const uint32_t extra = cold().extra;
  return extra == 0 ? nullptr : &table_->extras_[extra - 1];
}
inline uint32_t Flow::heldPackets() const {
  const FlowExtra* part = hot().holding ? extra() : nullptr;
  return part != nullptr ? part->hold.count : 0;
}

template <typename OnExpire, typename Refresh>
size_t FlowTable::expire(uint64_t nowNs, size_t budget, OnExpire&& onExpire, Refresh&& refresh) {
  size_t removed = 0;
  const uint32_t span = freshSlot_;  // slots past it were never used
  for (size_t visited = 0; visited < budget && size_ > 0 && span > 0; ++visited) {
    cursor_ = cursor_ + 1 < span ? cursor_ + 1 : 0;
    if (used(cursor_) && expired(hot_[cursor_], nowNs)) {
      const Flow flow(this, cursor_);
      if (refresh(flow) && !expired(hot_[cursor_], nowNs)) {
        continue;
      }
      onExpire(flow);
      erase(flow);
      ++removed;
    }
  }
  return removed;
}

}  // namespace bulkhead::dataplane
