#include "dataplane/mac_table.h"

#include "dataplane/forwarding_state.h"

namespace bulkhead::dataplane {

MacTable::MacTable(size_t slots, uint64_t ageNs) : slots_(slots), ageNs_(ageNs) {}

void MacTable::learn(const MacAddress& mac, uint16_t portId, uint64_t nowNs) {
  const uint64_t key = macKey(mac);
  if (key == 0 || mac.isMulticast()) {
    return;
  }
  const size_t start = (key * 0x9E3779B97F4A7C15ull) % slots_.size();
  Slot* victim = &slots_[start];
  for (size_t probe = 0; probe < Probes; ++probe) {
    Slot& slot = slots_[(start + probe) % slots_.size()];
    if (slot.key == key) {
      slot.portId = portId;  // a station that moved ports is followed at once
      slot.seenNs = nowNs;
      return;
    }
    if (slot.key == 0 || nowNs - slot.seenNs > ageNs_) {
      victim = &slot;
      break;
    }
    if (slot.seenNs < victim->seenNs) {
      victim = &slot;  // table under pressure: the stalest entry makes room
    }
  }
  *victim = {key, portId, nowNs};
}

int32_t MacTable::lookup(const MacAddress& mac, uint64_t nowNs) const {
  const uint64_t key = macKey(mac);
  const size_t start = (key * 0x9E3779B97F4A7C15ull) % slots_.size();
  for (size_t probe = 0; probe < Probes; ++probe) {
    const Slot& slot = slots_[(start + probe) % slots_.size()];
    if (slot.key == key) {
      return nowNs - slot.seenNs > ageNs_ ? -1 : slot.portId;
    }
  }
  return -1;
}

}  // namespace bulkhead::dataplane
