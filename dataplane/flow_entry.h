#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/conntrack.h"
#include "dataplane/flow_key.h"
#include "dataplane/hold_queue.h"
#include "dpi/classification.h"
#include "dpi/detector.h"
#include "rules/identity.h"
#include "rules/policy_snapshot.h"

namespace bulkhead::dataplane {

inline constexpr uint32_t NoEndpoint = UINT32_MAX;

// How a tracked flow lies in memory (docs/architecture.md, "The flow table"). A million flows
// must fit in 128 bytes each, index included, so a flow is split by who touches what:
//   FlowHot    one cache line: everything an established flow's packet reads or writes
//   FlowCold   what is set once, or read when the flow is judged or reported
//   FlowExtra  only while nDPI classifies the flow (its state, its held packets), and after
//              that only for a flow whose host name nDPI found
// The three live in arrays of the flow table, indexed by the flow's slot: a Flow (flow_table.h)
// is the handle that puts them together.

// The flow key as the table compares it: 16 bytes. An IPv4 flow's addresses are in it; an IPv6
// flow's are a 64-bit digest here and whole in the table's side array, compared on a match.
struct CompactKey {
  uint32_t a = 0;  // IPv4: address A; IPv6: digest of both addresses, low half
  uint32_t b = 0;  // IPv4: address B; IPv6: the digest's high half
  uint16_t portA = 0;
  uint16_t portB = 0;
  uint16_t vlan = 0;
  uint8_t family = 0;
  uint8_t ipProtocol = 0;

  // Two words each: every lookup compares one, so no call into memcmp.
  bool operator==(const CompactKey& other) const {
    uint64_t mine[2];
    uint64_t theirs[2];
    std::memcpy(mine, this, sizeof(mine));
    std::memcpy(theirs, &other, sizeof(theirs));
    return ((mine[0] ^ theirs[0]) | (mine[1] ^ theirs[1])) == 0;
  }
};
static_assert(sizeof(CompactKey) == 16, "CompactKey is hashed and compared as bytes");

// The cached verdict, packed: decision, whether enforced, which side denied.
struct PackedVerdict {
  uint8_t decision : 2 = 0;  // rules::Decision
  uint8_t enforced : 1 = 1;
  uint8_t deniedByEgress : 1 = 0;
  uint8_t reject : 1 = 0;  // rules::Verdict::reject
};

struct alignas(64) FlowHot {
  CompactKey key;
  uint64_t lastSeenNs = 0;
  uint64_t packets[2] = {0, 0};  // [0]: initiator -> responder, [1]: back
  uint64_t bytes[2] = {0, 0};
  // The low 32 bits of the snapshot generation the cached verdict came from: a flow is judged
  // again when they differ from the snapshot's (2^32 reloads apart would collide).
  uint32_t verdictGeneration = 0;
  ConnState state = ConnState::New;
  PackedVerdict verdict;
  bool initiatorIsA : 1 = true;  // the first packet went from key.a to key.b
  bool finFromInitiator : 1 = false;
  bool finFromResponder : 1 = false;
  bool classified : 1 = false;    // detection is over; the result is in FlowCold
  bool verdictValid : 1 = false;  // `verdict*` hold a verdict (possibly of an older generation)
  bool holding : 1 = false;       // packets of the flow are held (FlowExtra::hold)
  bool malformed : 1 = false;     // dpi::Classification::malformed
  // Which directions were offloaded into the wire (bit 0: the initiator's, bit 1: the
  // responder's), and under which forwarding state (the low 6 bits of its offload version,
  // from bit 2): a direction is installed once per state (docs/architecture.md).
  uint8_t offload = 0;
};
static_assert(sizeof(FlowHot) == 64, "a packet of an established flow touches one cache line");

struct FlowCold {
  uint64_t firstSeenNs = 0;
  uint64_t droppedPackets = 0;
  // Who is talking, resolved once when the flow is created (from ports, or addresses offline).
  rules::IdentityId srcIdentity = rules::reserved_identity::World;
  rules::IdentityId dstIdentity = rules::reserved_identity::World;
  uint32_t srcEndpoint = NoEndpoint;
  uint32_t dstEndpoint = NoEndpoint;
  // The rule the cached verdict names, by index into its snapshot: a stale one is reported as
  // superseded, never dangles.
  uint32_t verdictRule = rules::Verdict::NoRule;
  // When a violation event last left for this flow, in ms of the table's clock plus one; 0:
  // never (a rate limit: a wrap after 49 days costs at most one extra event).
  uint32_t lastViolationMs = 0;
  // Detection's outcome (dpi::Classification without the host name).
  rules::AppProtocol protocol;
  rules::AppProtocol inspected;
  uint16_t dpiPackets = 0;
  dpi::Confidence confidence = dpi::Confidence::Unknown;
  bool observed = false;  // handed to the pipeline's judged handler (learning) once
  uint32_t extra = 0;  // the flow's FlowExtra, as its index plus one; 0: none
};
static_assert(sizeof(FlowCold) == 56, "with FlowHot and the index, a flow stays within 128 bytes");

struct FlowExtra {
  dpi::DpiFlowState dpi;  // while nDPI classifies the flow
  FlowHold hold;          // packets kept back while it does (see HoldQueue)
  std::array<char, dpi::MaxHostLength + 1> host{};  // NUL-terminated; empty: none found
};

}  // namespace bulkhead::dataplane
