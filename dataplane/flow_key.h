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

// `reversed` is set when the packet travels from b to a.
inline FlowKey makeFlowKey(const PacketMeta& meta, bool& reversed) {
  FlowKey key;
  std::memset(&key, 0, sizeof(key));
  const size_t length = meta.srcIp.family == 4 ? 4 : 16;
  int order = std::memcmp(meta.srcIp.bytes.data(), meta.dstIp.bytes.data(), length);
  if (order == 0) {
    order = meta.srcPort < meta.dstPort ? -1 : (meta.srcPort > meta.dstPort ? 1 : 0);
  }
  reversed = order > 0;
  const auto& a = reversed ? meta.dstIp : meta.srcIp;
  const auto& b = reversed ? meta.srcIp : meta.dstIp;
  std::memcpy(key.addressA, a.bytes.data(), length);
  std::memcpy(key.addressB, b.bytes.data(), length);
  key.portA = reversed ? meta.dstPort : meta.srcPort;
  key.portB = reversed ? meta.srcPort : meta.dstPort;
  key.vlan = meta.vlan;
  key.family = meta.srcIp.family;
  key.ipProtocol = meta.ipProtocol;
  return key;
}

}  // namespace bulkhead::dataplane
