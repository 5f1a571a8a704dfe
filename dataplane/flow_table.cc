#include "dataplane/flow_table.h"

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>

#include <new>
#include <stdexcept>

namespace bulkhead::dataplane {

FlowTable::FlowTable(const FlowTableConfig& config, const std::string& name) : config_(config) {
  rte_hash_parameters parameters = {};
  parameters.name = name.c_str();
  parameters.entries = config.capacity;
  parameters.key_len = sizeof(FlowKey);
  parameters.hash_func = rte_hash_crc;
  parameters.hash_func_init_val = 0;
  parameters.socket_id = static_cast<int>(rte_socket_id());
  // Without extendable buckets a cuckoo hash can refuse keys before it holds `entries` of them
  // (two full candidate buckets), which would drop new flows as FlowTableFull below capacity.
  parameters.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  hash_ = rte_hash_create(&parameters);
  if (hash_ == nullptr) {
    throw std::runtime_error("cannot create flow table '" + name + "' of " +
                             std::to_string(config.capacity) +
                             " entries: " + rte_strerror(rte_errno));
  }
  // Positions returned by the hash index our entry array directly.
  slots_ = static_cast<size_t>(rte_hash_max_key_id(hash_)) + 1;
  entries_.reset(static_cast<FlowEntry*>(std::calloc(slots_, sizeof(FlowEntry))));
  if (!entries_) {
    rte_hash_free(hash_);
    throw std::runtime_error("cannot allocate flow table '" + name + "'");
  }
  used_.assign(slots_, 0);
}

FlowTable::~FlowTable() {
  rte_hash_free(hash_);
}

FlowEntry* FlowTable::find(const FlowKey& key) {
  const int32_t position = rte_hash_lookup(hash_, &key);
  return position < 0 ? nullptr : &entries_[static_cast<size_t>(position)];
}

FlowEntry* FlowTable::insert(const FlowKey& key) {
  if (size_ >= config_.capacity) {
    return nullptr;
  }
  const int32_t position = rte_hash_add_key(hash_, &key);
  if (position < 0) {
    return nullptr;
  }
  if (used_[static_cast<size_t>(position)]) {
    return &entries_[static_cast<size_t>(position)];  // already tracked: never reset a live flow
  }
  FlowEntry& entry = *new (&entries_[static_cast<size_t>(position)]) FlowEntry{};
  entry.key = key;
  used_[static_cast<size_t>(position)] = 1;
  ++size_;
  return &entry;
}

void FlowTable::erase(FlowEntry& entry) {
  const int32_t position = rte_hash_del_key(hash_, &entry.key);
  if (position >= 0) {
    used_[static_cast<size_t>(position)] = 0;
    --size_;
  }
}

FlowEntry* FlowTable::evictionCandidate(uint64_t nowNs) {
  FlowEntry* oldest = nullptr;
  size_t seen = 0;
  // Bounded twice: `evictSample` tracked entries, and at most one pass over the slots (a sparse
  // table has empty slots between them).
  for (size_t visited = 0; visited < slots_ && seen < config_.evictSample && size_ > 0; ++visited) {
    evictCursor_ = evictCursor_ + 1 < slots_ ? evictCursor_ + 1 : 0;
    if (!used_[evictCursor_]) {
      continue;
    }
    ++seen;
    FlowEntry& entry = entries_[evictCursor_];
    if (oldest == nullptr || entry.lastSeenNs < oldest->lastSeenNs) {
      oldest = &entry;
    }
  }
  if (oldest == nullptr || nowNs < oldest->lastSeenNs ||
      nowNs - oldest->lastSeenNs < config_.evictMinIdleNs) {
    return nullptr;
  }
  return oldest;
}

bool FlowTable::expired(const FlowEntry& entry, uint64_t nowNs) const {
  const uint64_t timeoutNs =
      uint64_t{timeoutSeconds(entry.state, entry.key.ipProtocol, config_.timeouts)} * 1000000000ull;
  return nowNs > entry.lastSeenNs && nowNs - entry.lastSeenNs > timeoutNs;
}

}  // namespace bulkhead::dataplane
