#pragma once

#include <cstdint>

#include "dataplane/conntrack.h"
#include "dataplane/flow_key.h"
#include "dataplane/hold_queue.h"
#include "dpi/classification.h"
#include "dpi/detector.h"
#include "rules/identity.h"
#include "rules/policy_snapshot.h"

namespace bulkhead::dataplane {

inline constexpr uint32_t NoEndpoint = UINT32_MAX;

// One tracked conversation. Direction 0 is initiator -> responder (the first packet's way).
struct FlowEntry {
  FlowKey key;
  bool initiatorIsA = true;  // the first packet went from key.a to key.b
  ConnState state = ConnState::New;
  TcpDirectionFlags fins;
  uint64_t firstSeenNs = 0;
  uint64_t lastSeenNs = 0;
  uint64_t packets[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
  uint64_t forwardedPackets = 0;
  uint64_t droppedPackets = 0;
  FlowHold hold;  // packets kept back while the flow is classified (see HoldQueue)

  // Who is talking, resolved once when the flow is created (from ports, or addresses offline).
  rules::IdentityId srcIdentity = rules::reserved_identity::World;
  rules::IdentityId dstIdentity = rules::reserved_identity::World;
  uint32_t srcEndpoint = NoEndpoint;
  uint32_t dstEndpoint = NoEndpoint;

  // Detection: state while it runs, the result once it is over.
  dpi::DpiFlowState dpi;
  bool classified = false;
  dpi::Classification classification;

  // Verdict cache: valid while its generation is the policy snapshot's; it names its rule by
  // index, so a stale one can be reported (as superseded) but never dangles.
  bool verdictValid = false;
  rules::Verdict verdict;
  uint64_t lastViolationNs = 0;  // when a violation event last left for this flow (rate limit)

  // The conversation as its initiator started it: source = the first packet's sender.
  rules::IpAddress initiatorIp() const { return address(initiatorIsA ? key.addressA : key.addressB); }
  rules::IpAddress responderIp() const { return address(initiatorIsA ? key.addressB : key.addressA); }
  uint16_t initiatorPort() const { return initiatorIsA ? key.portA : key.portB; }
  uint16_t responderPort() const { return initiatorIsA ? key.portB : key.portA; }

  uint64_t totalPackets() const { return packets[0] + packets[1]; }
  uint64_t totalBytes() const { return bytes[0] + bytes[1]; }

 private:
  rules::IpAddress address(const uint8_t* raw) const {
    return rules::IpAddress::fromBytes(key.family, raw);
  }
};

}  // namespace bulkhead::dataplane
