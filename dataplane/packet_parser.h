#pragma once

#include <cstdint>

#include "dataplane/packet_meta.h"

struct rte_mbuf;

namespace bulkhead::dataplane {

// Parses Ethernet (with up to two VLAN tags or PPPoE), ARP, IPv4 (options, fragments), IPv6 (extension
// headers, fragments), TCP, UDP, SCTP ports, ICMP and ICMPv6. Reads only within [data,
// data+length): every header is bounds-checked before it is read. No allocation, no exceptions.
PacketMeta parsePacket(const uint8_t* data, uint32_t length);

// Parses the first segment of an mbuf (headers must sit in it, as they do for every PMD we use).
PacketMeta parsePacket(const rte_mbuf* mbuf);

}  // namespace bulkhead::dataplane
