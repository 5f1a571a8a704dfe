#pragma once

#include <rte_byteorder.h>

#include <cstdint>
#include <cstring>

#include "dataplane/conversation_hash.h"
#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

// With more than one worker: which worker owns a frame's conversation, and so holds its flows.
// The two directions of a flow enter on different tags, so no kernel hash keeps them together;
// the owner is a symmetric hash of the address pair (conversation_hash.h), which the patch panel
// computes too and uses to pick the owner's trunk.
//
// Not the ports: a datagram's later fragments carry none, and an ICMP error about a flow travels
// between the same two addresses. Each must reach the worker that holds the flow, or it would
// meet an empty table there. Not the segment either: the patch panel does not know it. The price
// is that all the conversations between two addresses share one worker.
//
// Only for frames that parsed as IP (`ParseStatus::Ok`); anything else holds no flow state and
// stays with the worker that received it.
inline uint32_t foldAddress(const rules::IpAddress& address) {
  uint32_t words[4];
  std::memcpy(words, address.bytes.data(), sizeof(words));
  return bh_fold_words(rte_be_to_cpu_32(words[0]), rte_be_to_cpu_32(words[1]),
                       rte_be_to_cpu_32(words[2]), rte_be_to_cpu_32(words[3]));
}

inline unsigned conversationOwner(const PacketMeta& meta, unsigned workers) {
  return bh_conversation_owner(
      bh_conversation_hash(foldAddress(meta.srcIp), foldAddress(meta.dstIp)), workers);
}

}  // namespace bulkhead::dataplane
