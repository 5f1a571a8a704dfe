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

// `reversed` is set when the packet travels from b to a. Every packet builds one, so IPv4 (the
// common case) compares and copies words, not bytes of a length known only at run time; the order
// is the same either way (addresses compared as big-endian numbers, then ports).
// Filled in place: a key built on the stack and copied out would be read back in 16-byte loads
// right after its narrower stores, which stalls store forwarding on every packet.
inline void fillFlowKey(const PacketMeta& meta, FlowKey& key, bool& reversed) {
  std::memset(&key, 0, sizeof(key));
  int order;
  if (meta.srcIp.family == 4) {
    uint32_t src;
    uint32_t dst;
    std::memcpy(&src, meta.srcIp.bytes.data(), 4);
    std::memcpy(&dst, meta.dstIp.bytes.data(), 4);
    const uint32_t srcOrder = __builtin_bswap32(src);
    const uint32_t dstOrder = __builtin_bswap32(dst);
    order = srcOrder < dstOrder ? -1 : (srcOrder > dstOrder ? 1 : 0);
    if (order == 0) {
      order = meta.srcPort < meta.dstPort ? -1 : (meta.srcPort > meta.dstPort ? 1 : 0);
    }
    reversed = order > 0;
    std::memcpy(key.addressA, reversed ? &dst : &src, 4);
    std::memcpy(key.addressB, reversed ? &src : &dst, 4);
  } else {
    order = std::memcmp(meta.srcIp.bytes.data(), meta.dstIp.bytes.data(), 16);
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

// An IPv4 packet's key as the flow table compacts it (CompactKey's two little-endian words),
// straight from the headers: for IPv4 that is the whole key, and the established flow's packet
// needs no other. Same order as fillFlowKey.
inline void compactIpv4Key(const PacketMeta& meta, uint64_t& low, uint64_t& high, bool& reversed) {
  uint32_t src;
  uint32_t dst;
  std::memcpy(&src, meta.srcIp.bytes.data(), 4);
  std::memcpy(&dst, meta.dstIp.bytes.data(), 4);
  const uint32_t srcOrder = __builtin_bswap32(src);
  const uint32_t dstOrder = __builtin_bswap32(dst);
  reversed = srcOrder > dstOrder || (srcOrder == dstOrder && meta.srcPort > meta.dstPort);
  const uint16_t portA = reversed ? meta.dstPort : meta.srcPort;
  const uint16_t portB = reversed ? meta.srcPort : meta.dstPort;
  low = reversed ? (uint64_t{dst} | uint64_t{src} << 32) : (uint64_t{src} | uint64_t{dst} << 32);
  high = uint64_t{portA} | uint64_t{portB} << 16 | uint64_t{meta.vlan} << 32 | uint64_t{4} << 48 |
         uint64_t{meta.ipProtocol} << 56;
}

inline FlowKey makeFlowKey(const PacketMeta& meta, bool& reversed) {
  FlowKey key;
  fillFlowKey(meta, key, reversed);
  return key;
}

}  // namespace bulkhead::dataplane
