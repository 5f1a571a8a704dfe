#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/forwarding_state.h"
#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// Whether a frame that entered on `attachment` may carry the source addresses it carries: its
// source MAC must be one of the attachment's, its source IP one of the attachment's (IPv6
// link-local and unspecified sources are the interface's own), and an ARP body's sender
// addresses must be the attachment's too -- ARP spoofing is the classic way to steal another
// endpoint's traffic. `frame` holds `length` bytes; an ARP frame too short to hold its sender
// addresses is refused, never read past its end.
bool sourceAllowed(const Attachment& attachment, const PacketMeta& meta, const uint8_t* frame,
                   size_t length);

// The bytes an IPv4-over-Ethernet ARP body needs after meta.l3Offset.
inline constexpr size_t ArpBodyLength = 28;

}  // namespace bulkhead::dataplane
