#pragma once

#include <cstdint>

#include "dataplane/packet_meta.h"
#include "rules/identity.h"

namespace bulkhead::dataplane {

// One direction of an established flow as the wire sees it: the attachment it enters on, its
// addresses, and the attachment the fast path switches it to.
struct OffloadDirection {
  uint16_t ingressTag = 0;
  uint16_t egressTag = 0;
  uint8_t ipProtocol = 0;
  rules::IpAddress srcIp;  // IPv4 only
  rules::IpAddress dstIp;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  MacAddress srcMac;
  MacAddress dstMac;
};

// What the wire carried of an offloaded direction since it was installed.
struct OffloadCounts {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t lastSeenNs = 0;  // CLOCK_MONOTONIC, as the workers' clock
};

// Where a worker offloads established flows (docs/architecture.md, "Offloaded flows"): the
// wire then carries a direction's frames itself, past the trunk, until the direction is removed
// or the control thread moves the version on (every forwarding state publishes a new one: what
// was installed under an older one is void at once, and the worker installs it again if the
// new state still allows it). Called from the workers, concurrently: each call is one system
// call on a kernel map, never a lock. False when the kernel refused (the map is full, say).
class FlowOffload {
 public:
  virtual ~FlowOffload() = default;
  // Made anew under `version`, its counts at zero.
  virtual bool install(const OffloadDirection& direction, uint32_t version) = 0;
  // The counts of the direction's entry (void or not); false when there is none.
  virtual bool read(const OffloadDirection& direction, OffloadCounts* counts) = 0;
  // Removes the entry and gives its last counts, in one step: nothing the wire counted is lost
  // between the two. False when there was none.
  virtual bool take(const OffloadDirection& direction, OffloadCounts* counts) = 0;
};

}  // namespace bulkhead::dataplane
