#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// Both directions of a conversation map to one key: the endpoint that sorts lower is "a". The
// struct is hashed as raw bytes, so it has no padding and is always zero-initialised.
struct FlowKey {
  uint8_t addressA[16];
  uint8_t addressB[16];
  uint16_t portA;
  uint16_t portB;
  uint16_t vlan;
  uint8_t family;
  uint8_t ipProtocol;

  bool operator==(const FlowKey& other) const { return std::memcmp(this, &other, sizeof(*this)) == 0; }
};
static_assert(sizeof(FlowKey) == 40, "FlowKey must have no padding: it is hashed as bytes");

// CompactKey's second word (flow_entry.h: ports, VLAN, family, protocol) as it lies in memory on
// a little-endian machine: the flow table hashes a key from its two words in registers.
inline uint64_t compactHighWord(uint16_t portA, uint16_t portB, uint16_t vlan, uint8_t family,
                                uint8_t ipProtocol) {
  return uint64_t{portA} | uint64_t{portB} << 16 | uint64_t{vlan} << 32 | uint64_t{family} << 48 |
         uint64_t{ipProtocol} << 56;
}

// An IPv4 packet's addresses as words, and whether it travels from b to a (the endpoint that
// sorts lower is "a": addresses compared as big-endian numbers, then ports). Words, not bytes
// of a length known only at run time: every packet orders its key.
inline bool ipv4Reversed(const PacketMeta& meta, uint32_t& src, uint32_t& dst) {
  std::memcpy(&src, meta.srcIp.bytes.data(), 4);
  std::memcpy(&dst, meta.dstIp.bytes.data(), 4);
  const uint32_t srcOrder = __builtin_bswap32(src);
  const uint32_t dstOrder = __builtin_bswap32(dst);
  return srcOrder > dstOrder || (srcOrder == dstOrder && meta.srcPort > meta.dstPort);
}

// `reversed` is set when the packet travels from b to a; IPv6 orders the same way, bytewise.
// Filled in place: a key built on the stack and copied out would be read back in 16-byte loads
// right after its narrower stores, which stalls store forwarding on every packet.
inline void fillFlowKey(const PacketMeta& meta, FlowKey& key, bool& reversed) {
  std::memset(&key, 0, sizeof(key));
  if (meta.srcIp.family == 4) {
    uint32_t src;
    uint32_t dst;
    reversed = ipv4Reversed(meta, src, dst);
    std::memcpy(key.addressA, reversed ? &dst : &src, 4);
    std::memcpy(key.addressB, reversed ? &src : &dst, 4);
  } else {
    int order = std::memcmp(meta.srcIp.bytes.data(), meta.dstIp.bytes.data(), 16);
    if (order == 0) {
      order = meta.srcPort < meta.dstPort ? -1 : (meta.srcPort > meta.dstPort ? 1 : 0);
    }
    reversed = order > 0;
    std::memcpy(key.addressA, (reversed ? meta.dstIp : meta.srcIp).bytes.data(), 16);
    std::memcpy(key.addressB, (reversed ? meta.srcIp : meta.dstIp).bytes.data(), 16);
  }
  key.portA = reversed ? meta.dstPort : meta.srcPort;
  key.portB = reversed ? meta.srcPort : meta.dstPort;
  key.vlan = meta.vlan;
  key.family = meta.srcIp.family;
  key.ipProtocol = meta.ipProtocol;
}

// An IPv4 packet's key as the flow table compacts it (CompactKey's two words), straight from the
// headers: for IPv4 that is the whole key, and the established flow's packet needs no other.
inline void compactIpv4Key(const PacketMeta& meta, uint64_t& low, uint64_t& high, bool& reversed) {
  uint32_t src;
  uint32_t dst;
  reversed = ipv4Reversed(meta, src, dst);
  low = reversed ? (uint64_t{dst} | uint64_t{src} << 32) : (uint64_t{src} | uint64_t{dst} << 32);
  high = compactHighWord(reversed ? meta.dstPort : meta.srcPort,
                         reversed ? meta.srcPort : meta.dstPort, meta.vlan, 4, meta.ipProtocol);
}

inline FlowKey makeFlowKey(const PacketMeta& meta, bool& reversed) {
  FlowKey key;
  fillFlowKey(meta, key, reversed);
  return key;
}

}  // namespace bulkhead::dataplane
