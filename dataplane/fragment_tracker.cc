#include "dataplane/fragment_tracker.h"


namespace bulkhead::dataplane {
namespace {

constexpr uint64_t ReassemblyTimeoutNs = 30ull * 1000000000ull;  // Linux ipfrag_time

}  // namespace

FragmentTracker::FragmentTracker(size_t slots) : slots_(slots) {}

size_t FragmentTracker::slotFor(const PacketMeta& meta) const {
  uint64_t hash = meta.fragmentId * 0x9E3779B97F4A7C15ull ^ meta.ipProtocol;
  for (size_t i = 0; i < 16; ++i) {
    hash = (hash ^ meta.srcIp.bytes[i]) * 0x100000001B3ull;
    hash = (hash ^ meta.dstIp.bytes[i]) * 0x100000001B3ull;
  }
  return hash % slots_.size();
}

void FragmentTracker::remember(const PacketMeta& meta, const FlowKey& flow, uint64_t nowNs) {
  Slot& slot = slots_[slotFor(meta)];
  slot.src = meta.srcIp;
  slot.dst = meta.dstIp;
  slot.id = meta.fragmentId;
  slot.ipProtocol = meta.ipProtocol;
  slot.used = true;
  slot.seenNs = nowNs;
  slot.flow = flow;
}

const FlowKey* FragmentTracker::find(const PacketMeta& meta, uint64_t nowNs) const {
  const Slot& slot = slots_[slotFor(meta)];
  if (!slot.used || slot.id != meta.fragmentId || slot.ipProtocol != meta.ipProtocol ||
      slot.src != meta.srcIp || slot.dst != meta.dstIp) {
    return nullptr;
  }
  if (nowNs > slot.seenNs && nowNs - slot.seenNs > ReassemblyTimeoutNs) {
    return nullptr;
  }
  return &slot.flow;
}

}  // namespace bulkhead::dataplane
