#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/flow_key.h"
#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// Maps an IP datagram (addresses, protocol, fragment id) to the flow its first fragment belonged
// to, so later fragments (which carry no ports) get the same verdict. No reassembly: a fixed,
// direct-mapped table where a newer datagram overwrites an older one in the same slot.
class FragmentTracker {
 public:
  explicit FragmentTracker(size_t slots = 4096);

  void remember(const PacketMeta& meta, const FlowKey& flow, uint64_t nowNs);
  // The flow of a later fragment, or nullptr when its first fragment was not seen (or too long
  // ago: fragments of one datagram arrive within the reassembly timeout).
  const FlowKey* find(const PacketMeta& meta, uint64_t nowNs) const;

 private:
  struct Slot {
    rules::IpAddress src;
    rules::IpAddress dst;
    uint32_t id = 0;
    uint8_t ipProtocol = 0;
    bool used = false;
    uint64_t seenNs = 0;
    FlowKey flow;
  };
  size_t slotFor(const PacketMeta& meta) const;

  std::vector<Slot> slots_;
};

}  // namespace bulkhead::dataplane
