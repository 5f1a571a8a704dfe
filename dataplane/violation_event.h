#pragma once

#include <array>
#include <cstdint>

#include "dpi/classification.h"
#include "rules/cidr.h"
#include "rules/identity.h"
#include "rules/policy.h"

namespace bulkhead::dataplane {

enum class ViolationKind : uint8_t {
  Policy,  // a flow the policy denies (dropped in enforce mode, reported in monitor mode)
  Spoof,   // a packet from an endpoint port with a source MAC or IP that is not the endpoint's
  EndpointFlowLimit,  // a new flow from an endpoint that has maxFlowsPerEndpoint open already
  FlowEnd,  // not a violation: a flow that ended, allowed or not, for the flow log (flowLog)
  Judged,   // not a violation: a flow's verdict once detection was over, for learning
};

// What a worker reports about a denied (or would-be-denied) flow, or (FlowEnd, Judged) about
// any flow that ended or was judged. Plain data of fixed size: it
// leaves the fast path through a lock-free ring and is formatted by the control thread, after
// the policy snapshot it came from may be gone (so the rule name is copied, not pointed to).
struct ViolationEvent {
  ViolationKind kind = ViolationKind::Policy;
  uint64_t timeNs = 0;  // CLOCK_REALTIME, nanoseconds since the epoch
  uint64_t policyGeneration = 0;
  bool enforced = true;   // dropped (enforce) or only reported (monitor)
  bool rejected = false;  // enforced, and the sender is told (denyAction: reject)
  rules::Direction deniedBy = rules::Direction::Ingress;
  bool classified = false;  // the verdict came after nDPI named the protocol
  dpi::Classification classification;
  std::array<char, 96> rule{};  // NUL-terminated rule name, "default-deny" for none

  rules::IdentityId srcIdentity = 0;
  rules::IdentityId dstIdentity = 0;
  uint32_t srcEndpoint = UINT32_MAX;  // endpoint slot (see EndpointDirectory), or none
  uint32_t dstEndpoint = UINT32_MAX;
  rules::IpAddress srcIp;  // the flow's initiator
  rules::IpAddress dstIp;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  uint8_t ipProtocol = 0;
  uint64_t packets = 0;  // of the flow so far, both directions
  uint64_t bytes = 0;
  uint64_t forwardedPackets = 0;  // of those, passed on (before the verdict, or while allowed)
  // FlowEnd: the flow's last verdict and how long it lived.
  rules::Decision decision = rules::Decision::Deny;
  uint64_t durationNs = 0;
};

}  // namespace bulkhead::dataplane
