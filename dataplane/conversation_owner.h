#pragma once

#include <rte_hash_crc.h>

#include <cstdint>
#include <cstring>

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// With more than one worker on a trunk: which worker owns a frame's conversation, and so holds
// its flows. The two directions of a flow enter on different tags, often on different rx queues,
// so no kernel hash keeps them together; the owner is a symmetric hash of the segment
// (`meta.vlan` once the ingress attachment is known) and the address pair.
//
// Not the ports: a datagram's later fragments carry none, and an ICMP error about a flow travels
// between the same two addresses. Each must reach the worker that holds the flow, or it would
// meet an empty table there. The price is that all the conversations between two addresses share
// one worker.
//
// Only for frames that parsed as IP (`ParseStatus::Ok`); anything else holds no flow state and
// stays with the worker that received it.
inline unsigned conversationOwner(const PacketMeta& meta, unsigned workers) {
  const bool srcFirst = std::memcmp(meta.srcIp.bytes.data(), meta.dstIp.bytes.data(), 16) <= 0;
  const rules::IpAddress& low = srcFirst ? meta.srcIp : meta.dstIp;
  const rules::IpAddress& high = srcFirst ? meta.dstIp : meta.srcIp;
  uint32_t hash = rte_hash_crc(low.bytes.data(), 16, meta.vlan);
  hash = rte_hash_crc(high.bytes.data(), 16, hash);
  // The high bits, scaled: no modulo, and independent of the low bits the flow table's own
  // index uses.
  return static_cast<unsigned>((uint64_t{hash} * workers) >> 32);
}

}  // namespace bulkhead::dataplane
