#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// A worker's learned MAC -> port table (what a switch learns from source addresses), fixed
// size, open addressing, entries age out. Endpoint MACs are not learned here: they are bound
// to their ports by the control plane (ForwardingState::endpointByMac).
class MacTable {
 public:
  explicit MacTable(size_t slots = 4096, uint64_t ageNs = 300ull * 1000000000ull);

  void learn(const MacAddress& mac, uint16_t portId, uint64_t nowNs);
  // The port `mac` was last seen on, or -1 when unknown or aged out.
  int32_t lookup(const MacAddress& mac, uint64_t nowNs) const;

 private:
  struct Slot {
    uint64_t key = 0;  // 0: empty (the all-zero MAC is never learned)
    uint16_t portId = 0;
    uint64_t seenNs = 0;
  };
  static constexpr size_t Probes = 8;

  std::vector<Slot> slots_;
  uint64_t ageNs_;
};

}  // namespace bulkhead::dataplane
