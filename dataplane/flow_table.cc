#include "dataplane/flow_table.h"

#include <cstring>
#include <random>
#include <stdexcept>

namespace bulkhead::dataplane {

FlowTable::FlowTable(const FlowTableConfig& config)
    : config_(config),
      slots_(config.capacity),
      index_(config.capacity),
      hot_(config.capacity),
      cold_(config.capacity),
      v6_(config.capacity),
      extras_(config.capacity) {
  if (config.capacity == 0 || config.capacity >= FlowIndex::NotFound) {
    throw std::invalid_argument("flow table capacity must be between 1 and 2^32 - 2");
  }
  std::random_device random;
  for (uint64_t& seed : seed_) {
    seed = (uint64_t{random()} << 32 | random()) | 1;
  }
}

Flow FlowTable::insert(const FlowKey& key, const FlowLookup& lookup) {
  if (key.family != 4 && key.family != 6) {
    return {};
  }
  const CompactKey& wanted = lookup.compact;
  const uint64_t keyHash = lookup.hash;
  const uint32_t existing =
      index_.find(keyHash, [&](uint32_t candidate) { return matches(candidate, wanted, key); });
  if (existing != FlowIndex::NotFound) {
    return Flow(this, existing);  // already tracked: never reset a live flow
  }
  if (size_ >= config_.capacity) {
    return {};
  }
  uint32_t slot;
  if (freeSlot_ != NoFree) {
    slot = freeSlot_;
    freeSlot_ = hot_[slot].key.a;
  } else {
    slot = freshSlot_++;
  }
  hot_[slot] = FlowHot{};
  hot_[slot].key = wanted;
  cold_[slot] = FlowCold{};
  if (key.family == 6) {
    std::memcpy(v6_[slot].data(), key.addressA, 16);
    std::memcpy(v6_[slot].data() + 16, key.addressB, 16);
  }
  index_.insert(keyHash, slot);
  ++size_;
  return Flow(this, slot);
}

void FlowTable::erase(Flow flow) {
  const uint32_t slot = flow.slot();
  if (!used(slot)) {
    return;
  }
  detachExtra(flow);
  index_.erase(hash(hot_[slot].key), slot);
  hot_[slot] = FlowHot{};
  hot_[slot].key.family = 0;
  hot_[slot].key.a = freeSlot_;
  freeSlot_ = slot;
  --size_;
}

FlowExtra& FlowTable::attachExtra(Flow flow) {
  FlowCold& cold = cold_[flow.slot()];
  if (cold.extra != 0) {
    return extras_[cold.extra - 1];
  }
  uint32_t extra;
  if (freeExtra_ != NoFree) {
    extra = freeExtra_;
    freeExtra_ = extras_[extra].hold.head;
  } else {
    extra = freshExtra_++;  // one extra per slot at most: never past the array
  }
  extras_[extra] = FlowExtra{};
  cold.extra = extra + 1;
  return extras_[extra];
}

void FlowTable::detachExtra(Flow flow) {
  FlowCold& cold = cold_[flow.slot()];
  if (cold.extra == 0) {
    return;
  }
  const uint32_t extra = cold.extra - 1;
  // A stale deadline of the hold queue may still point at this hold: its ticket goes to 0 so
  // that it never matches (HoldQueue::forEachDue).
  extras_[extra] = FlowExtra{};
  extras_[extra].hold.head = freeExtra_;
  freeExtra_ = extra;
  cold.extra = 0;
  hot_[flow.slot()].holding = false;
}

Flow FlowTable::evictionCandidate(uint64_t nowNs) {
  const uint32_t span = freshSlot_;
  uint32_t oldest = NoFree;
  size_t seen = 0;
  // Bounded twice: `evictSample` tracked flows, and at most one pass over the slots (a sparse
  // table has free slots between them).
  for (size_t visited = 0; visited < span && seen < config_.evictSample && size_ > 0; ++visited) {
    evictCursor_ = evictCursor_ + 1 < span ? evictCursor_ + 1 : 0;
    if (!used(evictCursor_)) {
      continue;
    }
    ++seen;
    if (oldest == NoFree || hot_[evictCursor_].lastSeenNs < hot_[oldest].lastSeenNs) {
      oldest = evictCursor_;
    }
  }
  if (oldest == NoFree || nowNs < hot_[oldest].lastSeenNs ||
      nowNs - hot_[oldest].lastSeenNs < config_.evictMinIdleNs) {
    return {};
  }
  return Flow(this, oldest);
}

bool FlowTable::expired(const FlowHot& hot, uint64_t nowNs) const {
  const uint64_t timeoutNs =
      uint64_t{timeoutSeconds(hot.state, hot.key.ipProtocol, config_.timeouts)} * 1000000000ull;
  return nowNs > hot.lastSeenNs && nowNs - hot.lastSeenNs > timeoutNs;
}

size_t FlowTable::reservedBytes() const {
  return index_.bytes() + hot_.bytes() + cold_.bytes() + v6_.bytes() + extras_.bytes();
}

double FlowTable::bytesPerFlow() const {
  return static_cast<double>(index_.bytes() + hot_.bytes() + cold_.bytes()) / config_.capacity;
}

FlowKey Flow::key() const {
  const FlowHot& entry = hot();
  FlowKey key;
  std::memset(&key, 0, sizeof(key));
  if (entry.key.family == 4) {
    std::memcpy(key.addressA, &entry.key.a, 4);
    std::memcpy(key.addressB, &entry.key.b, 4);
  } else {
    std::memcpy(key.addressA, table_->v6_[slot_].data(), 16);
    std::memcpy(key.addressB, table_->v6_[slot_].data() + 16, 16);
  }
  key.portA = entry.key.portA;
  key.portB = entry.key.portB;
  key.vlan = entry.key.vlan;
  key.family = entry.key.family;
  key.ipProtocol = entry.key.ipProtocol;
  return key;
}

rules::IpAddress Flow::initiatorIp() const {
  const FlowKey flowKey = key();
  return rules::IpAddress::fromBytes(flowKey.family,
                                     hot().initiatorIsA ? flowKey.addressA : flowKey.addressB);
}

rules::IpAddress Flow::responderIp() const {
  const FlowKey flowKey = key();
  return rules::IpAddress::fromBytes(flowKey.family,
                                     hot().initiatorIsA ? flowKey.addressB : flowKey.addressA);
}

uint16_t Flow::initiatorPort() const {
  return hot().initiatorIsA ? hot().key.portA : hot().key.portB;
}

uint16_t Flow::responderPort() const {
  return hot().initiatorIsA ? hot().key.portB : hot().key.portA;
}

std::string_view Flow::hostName() const {
  const FlowExtra* part = extra();
  return part != nullptr ? std::string_view(part->host.data()) : std::string_view();
}

dpi::Classification Flow::classification() const {
  dpi::Classification out;
  if (!hot().classified) {
    return out;
  }
  const FlowCold& facts = cold();
  out.protocol = facts.protocol;
  out.inspected = facts.inspected;
  out.confidence = facts.confidence;
  out.packets = facts.dpiPackets;
  out.malformed = hot().malformed;
  const std::string_view host = hostName();
  std::memcpy(out.host.data(), host.data(), host.size());
  out.host[host.size()] = '\0';
  return out;
}

rules::Verdict Flow::verdict(const rules::PolicySnapshot* current) const {
  const FlowHot& entry = hot();
  rules::Verdict out;
  out.decision = static_cast<rules::Decision>(entry.verdict.decision);
  out.enforced = entry.verdict.enforced;
  out.deniedBy =
      entry.verdict.deniedByEgress ? rules::Direction::Egress : rules::Direction::Ingress;
  out.reject = entry.verdict.reject;
  out.rule = cold().verdictRule;
  if (current != nullptr && verdictCurrent(*current)) {
    out.generation = current->generation();
  } else {
    out.generation = entry.verdictGeneration;
    if (current != nullptr && out.generation == current->generation()) {
      out.generation |= uint64_t{1} << 32;  // never taken for the snapshot's own
    }
  }
  return out;
}

}  // namespace bulkhead::dataplane
