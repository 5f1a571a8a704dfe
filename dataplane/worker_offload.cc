// The worker's side of the established-flow offload (docs/architecture.md, "Offloaded flows"):
// when a flow goes into the wire, how its directions are named there, and how what the wire
// carried comes back into the flow.
#include <algorithm>
#include <utility>

#include "dataplane/worker.h"  // the Worker members defined here

namespace bulkhead::dataplane {
namespace {

// FlowHot::offload: the directions offloaded, and above them the state they were offloaded in.
constexpr uint8_t OffloadedDirections = 0x03;

uint8_t offloadEpoch(uint32_t version) {
  return static_cast<uint8_t>((version & 0x3f) << 2);
}

}  // namespace

void Worker::offloadAfter(Flow flow, const PacketMeta& meta, uint16_t ingressTag,
                          uint16_t egressTag) {
  FlowHot& hot = flow.hot();
  const bool tcp = meta.ipProtocol == ip_protocol::TCP;
  if (tcp && (meta.tcpFlags & (tcp_flags::Syn | tcp_flags::Fin | tcp_flags::Rst)) != 0) {
    // The flow is closing (or starting over): the rest of it passes here, where connection
    // tracking sees it end.
    if ((hot.offload & OffloadedDirections) != 0) {
      withdrawOffload(flow);
    }
    return;
  }
  const uint32_t version = state_->offloadVersion;
  if (version == 0 || meta.srcIp.family != 4 || meta.fragment ||
      (!tcp && meta.ipProtocol != ip_protocol::UDP)) {
    return;
  }
  // Final and allowing: classified (no L7 rule can still refuse it), nothing held, and for TCP
  // the handshake done and no FIN yet. A monitored denial is never offloaded: it is reported.
  if (!hot.classified || hot.holding || !hot.verdictValid ||
      static_cast<rules::Decision>(hot.verdict.decision) != rules::Decision::Allow ||
      hot.finFromInitiator || hot.finFromResponder ||
      (tcp && hot.state != ConnState::Established)) {
    return;
  }
  const uint8_t epoch = offloadEpoch(version);
  if ((hot.offload & ~OffloadedDirections) != epoch) {
    // Installed under an older state: void in the wire now. Its counts come home first.
    if ((hot.offload & OffloadedDirections) != 0) {
      withdrawOffload(flow);
    }
    hot.offload = epoch;
  }
  const bool fromInitiator =
      meta.srcPort == flow.initiatorPort() && meta.srcIp == flow.initiatorIp();
  const uint8_t bit = fromInitiator ? 1 : 2;
  if ((hot.offload & bit) != 0) {
    return;  // installed: this packet was on its way before the entry was
  }
  // Marked even when the wire refuses it: one try per direction and state, not one per packet.
  hot.offload |= bit;
  OffloadDirection direction;
  direction.ingressTag = ingressTag;
  direction.egressTag = egressTag;
  direction.ipProtocol = meta.ipProtocol;
  direction.srcIp = meta.srcIp;
  direction.dstIp = meta.dstIp;
  direction.srcPort = meta.srcPort;
  direction.dstPort = meta.dstPort;
  direction.srcMac = meta.srcMac;
  direction.dstMac = meta.dstMac;
  if (shared_.offload->install(direction, version)) {
    ++counters_.offloadInstalled;
  } else {
    ++counters_.offloadFailed;
  }
}

bool Worker::offloadDirections(Flow flow, OffloadDirection (&directions)[2]) const {
  if (state_ == nullptr) {
    return false;
  }
  const FlowCold& cold = flow.cold();
  const uint16_t segment = flow.hot().key.vlan;
  const Attachment* initiator = state_->sideOf(segment, cold.srcEndpoint);
  const Attachment* responder = state_->sideOf(segment, cold.dstEndpoint);
  if (initiator == nullptr || responder == nullptr) {
    return false;  // gone: unplugging its interface took its entries (PatchPanel::unplug)
  }
  OffloadDirection& forward = directions[0];
  forward.ingressTag = initiator->tag;
  forward.egressTag = responder->tag;
  forward.ipProtocol = flow.ipProtocol();
  forward.srcIp = flow.initiatorIp();
  forward.dstIp = flow.responderIp();
  forward.srcPort = flow.initiatorPort();
  forward.dstPort = flow.responderPort();
  OffloadDirection& back = directions[1];
  back = forward;
  std::swap(back.ingressTag, back.egressTag);
  std::swap(back.srcIp, back.dstIp);
  std::swap(back.srcPort, back.dstPort);
  return true;
}

bool Worker::offloadCounts(Flow flow, bool take, OffloadCounts (&counts)[2]) {
  FlowHot& hot = flow.hot();
  counts[0] = {};
  counts[1] = {};
  if (shared_.offload == nullptr || (hot.offload & OffloadedDirections) == 0) {
    return false;
  }
  OffloadDirection directions[2];
  const bool known = offloadDirections(flow, directions);
  bool any = false;
  for (int direction = 0; known && direction < 2; ++direction) {
    if ((hot.offload & (1 << direction)) == 0) {
      continue;
    }
    const bool found = take ? shared_.offload->take(directions[direction], &counts[direction])
                            : shared_.offload->read(directions[direction], &counts[direction]);
    any = any || found;
    if (found && take) {
      hot.packets[direction] += counts[direction].packets;
      hot.bytes[direction] += counts[direction].bytes;
      hot.lastSeenNs = std::max(hot.lastSeenNs, counts[direction].lastSeenNs);
      ++counters_.offloadWithdrawn;
    }
  }
  if (take) {
    hot.offload &= static_cast<uint8_t>(~OffloadedDirections);
  }
  return any;
}

void Worker::withdrawOffload(Flow flow) {
  OffloadCounts counts[2];
  offloadCounts(flow, true, counts);
}

bool Worker::refreshOffloaded(Flow flow) {
  OffloadCounts counts[2];
  if (!offloadCounts(flow, false, counts)) {
    return false;
  }
  FlowHot& hot = flow.hot();
  const uint64_t last = std::max(counts[0].lastSeenNs, counts[1].lastSeenNs);
  if (last <= hot.lastSeenNs) {
    return false;
  }
  hot.lastSeenNs = last;
  return true;
}

bool Worker::offloadedNow(Flow flow) const {
  const uint8_t offload = flow.hot().offload;
  return (offload & OffloadedDirections) != 0 && state_ != nullptr &&
         (offload & ~OffloadedDirections) == offloadEpoch(state_->offloadVersion);
}

}  // namespace bulkhead::dataplane
