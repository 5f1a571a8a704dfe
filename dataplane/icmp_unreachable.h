#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// What of the refused datagram an unreachable quotes: its IP header and the start of what
// follows (RFC 792 asks for 8 bytes, enough for the ports; RFC 4443 for as much as fits, which
// this bounds).
inline constexpr size_t UnreachableQuote = 64;
// Room for any unreachable frame: Ethernet with two VLAN tags or PPPoE, IPv6, ICMPv6, the quote.
inline constexpr size_t MaxUnreachableFrame = 22 + 40 + 8 + UnreachableQuote;

// The ICMP "destination unreachable, administratively prohibited" (ICMPv4 type 3 code 13,
// ICMPv6 type 1 code 1) that tells the sender of `frame` (parsed as `meta`, `length` bytes) that
// a filter refused it, as if from the datagram's destination. VLAN tags are kept. Written into
// `out`; returns the frame's length, or 0 where no error may be sent (RFC 1122 3.2.2, RFC 4443
// 2.4): about an ICMP error, to or from a multicast or broadcast address, about a fragment
// other than the first, or when `out` is too small.
size_t buildIcmpUnreachable(const uint8_t* frame, uint32_t length, const PacketMeta& meta,
                            uint8_t* out, size_t capacity);

}  // namespace bulkhead::dataplane
