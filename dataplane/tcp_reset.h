#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// Room for any reset frame: Ethernet with two VLAN tags or PPPoE, IPv6, TCP without options.
inline constexpr size_t MaxResetFrame = 22 + 40 + 20;

// A frame that cuts the TCP connection whose packet `frame` (parsed as `meta`) is being dropped:
// back to the packet's source as if from its destination (`toSender`), or on to its destination
// as if from its source, with the sequence number that end accepts. VLAN tags are kept. Writes
// into `out` and returns the frame's length; 0 if the packet is not TCP or `out` is too small.
size_t buildTcpReset(const uint8_t* frame, const PacketMeta& meta, bool toSender, uint8_t* out,
                     size_t capacity);

}  // namespace bulkhead::dataplane
