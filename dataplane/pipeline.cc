#include "dataplane/pipeline.h"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "dataplane/packet_parser.h"

namespace bulkhead::dataplane {

void addCounters(PipelineCounters& total, const PipelineCounters& one) {
  total.packets += one.packets;
  total.bytes += one.bytes;
  total.droppedBytes += one.droppedBytes;
  total.forwarded += one.forwarded;
  total.nonIp += one.nonIp;
  total.flowsCreated += one.flowsCreated;
  total.flowsExpired += one.flowsExpired;
  total.flowsEvicted += one.flowsEvicted;
  total.monitoredViolations += one.monitoredViolations;
  total.held += one.held;
  total.heldReleasedLate += one.heldReleasedLate;
  total.holdFull += one.holdFull;
  total.flowsCut += one.flowsCut;
  for (size_t i = 0; i < static_cast<size_t>(DropReason::Count); ++i) {
    total.dropped[i] += one.dropped[i];
  }
  for (size_t i = 0; i < CountedProtocols; ++i) {
    total.classified[i] += one.classified[i];
  }
}
namespace {

bool sourceIsA(const PacketMeta& meta, const FlowKey& key) {
  const size_t length = key.family == 4 ? 4 : 16;
  return std::memcmp(meta.srcIp.bytes.data(), key.addressA, length) == 0;
}

void storeVerdict(Flow flow, const rules::Verdict& verdict) {
  FlowHot& hot = flow.hot();
  hot.verdict.decision = static_cast<uint8_t>(verdict.decision);
  hot.verdict.enforced = verdict.enforced;
  hot.verdict.deniedByEgress = verdict.deniedBy == rules::Direction::Egress;
  hot.verdict.reject = verdict.reject;
  hot.verdictGeneration = static_cast<uint32_t>(verdict.generation);
  hot.verdictValid = true;
  flow.cold().verdictRule = verdict.rule;
}

rules::Decision decision(const FlowHot& hot) {
  return static_cast<rules::Decision>(hot.verdict.decision);
}

}  // namespace

const char* toString(DropReason reason) {
  switch (reason) {
    case DropReason::None:
      return "none";
    case DropReason::Malformed:
      return "malformed";
    case DropReason::FragmentNoFlow:
      return "fragment-without-flow";
    case DropReason::FlowTableFull:
      return "flow-table-full";
    case DropReason::PolicyDenied:
      return "policy-denied";
    case DropReason::EndpointFlowLimit:
      return "endpoint-flow-limit";
    case DropReason::Count:
      break;
  }
  return "?";
}

Pipeline::Pipeline(const PipelineConfig& config, const EndpointResolver& resolver)
    : resolver_(resolver),
      maxFlowsPerEndpoint_(config.maxFlowsPerEndpoint),
      flowsByEndpoint_(config.maxFlowsPerEndpoint != 0 ? CountedEndpoints : 0),
      flows_(config.flows),
      detector_(config.dpi),
      holds_(config.hold.packets, config.hold.perFlow, config.hold.timeoutNs) {
  released_.reserve(config.hold.packets);
}

Pipeline::~Pipeline() {
  for (const auto& packet : released_) {
    rte_pktmbuf_free(packet.mbuf);
  }
  flows_.forEach([&](Flow flow) {
    if (FlowExtra* extra = flow.extra()) {
      detector_.release(extra->dpi);
      holds_.drop(extra->hold);
    }
  });
}

PacketVerdict Pipeline::process(rte_mbuf* mbuf, uint64_t nowNs, uint16_t ingressPort) {
  return process(rte_pktmbuf_mtod(mbuf, const uint8_t*), mbuf->data_len, nowNs, ingressPort);
}

PacketVerdict Pipeline::process(rte_mbuf* mbuf, const PacketMeta& meta, uint64_t nowNs,
                                uint16_t ingressPort, uint16_t egress) {
  FlowLookahead ahead;
  lookAhead(meta, ahead);
  return process(mbuf, meta, ahead, nowNs, ingressPort, egress);
}

void Pipeline::lookAhead(const PacketMeta& meta, FlowLookahead& ahead) const {
  ahead.ready = meta.status == ParseStatus::Ok && !(meta.fragment && !meta.firstFragment);
  if (!ahead.ready) {
    return;
  }
  if (meta.srcIp.family == 4) {
    uint64_t low;
    uint64_t high;
    compactIpv4Key(meta, low, high, ahead.reversed);
    flows_.fillLookup(low, high, ahead.lookup);
    ahead.keyMade = false;
  } else {
    fillFlowKey(meta, ahead.key, ahead.reversed);
    flows_.fillLookup(ahead.key, ahead.lookup);
    ahead.keyMade = true;
  }
  flows_.prefetch(ahead.lookup);
}

PacketVerdict Pipeline::process(rte_mbuf* mbuf, const PacketMeta& meta, const FlowLookahead& ahead,
                                uint64_t nowNs, uint16_t ingressPort, uint16_t egress) {
  return handle(meta, rte_pktmbuf_mtod(mbuf, const uint8_t*), mbuf->data_len, ingressPort,
                {mbuf, egress, meta.payloadLength > 0, nowNs, &ahead});
}

PacketVerdict Pipeline::process(const uint8_t* frame, uint32_t length, uint64_t nowNs,
                                uint16_t ingressPort) {
  return process(parsePacket(frame, length), frame, length, nowNs, ingressPort);
}

PacketVerdict Pipeline::process(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                                uint64_t nowNs, uint16_t ingressPort) {
  FlowLookahead ahead;
  lookAhead(meta, ahead);
  return handle(meta, frame, length, ingressPort, {nullptr, 0, false, nowNs, &ahead});
}

void Pipeline::track(FlowHot& hot, bool fromA, const PacketMeta& meta, uint32_t length,
                     uint64_t nowNs) {
  const bool fromInitiator = fromA == hot.initiatorIsA;
  const int direction = fromInitiator ? 0 : 1;
  ++hot.packets[direction];
  hot.bytes[direction] += length;
  hot.lastSeenNs = nowNs;
  TcpDirectionFlags fins{hot.finFromInitiator, hot.finFromResponder};
  hot.state =
      advance(hot.state, meta.ipProtocol == ip_protocol::TCP, fromInitiator, meta.tcpFlags, fins);
  hot.finFromInitiator = fins.finFromInitiator;
  hot.finFromResponder = fins.finFromResponder;
}

PacketVerdict Pipeline::handle(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                               uint16_t ingressPort, const Packet& packet) {
  Flow found;
  const FlowLookahead* ahead = packet.ahead;
  // Not a first fragment: its flow must remember the datagram for the fragments that follow.
  if (ahead != nullptr && ahead->ready && !meta.fragment && policy_ != nullptr) {
    found = flows_.find(ahead->key, ahead->lookup);
    if (found) {
      FlowHot& hot = found.hot();
      if (hot.classified && !hot.holding && found.verdictCurrent(*policy_) &&
          decision(hot) == rules::Decision::Allow) {
        ++counters_.packets;
        counters_.bytes += length;
        ++counters_.forwarded;
        track(hot, !ahead->reversed, meta, length, packet.nowNs);
        return {Action::Forward, DropReason::None, found, false};
      }
    }
  }
  return handleFlow(meta, frame, length, ingressPort, packet, found);
}

PacketVerdict Pipeline::handleFlow(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                                   uint16_t ingressPort, const Packet& packet, Flow known) {
  const uint64_t nowNs = packet.nowNs;
  ++counters_.packets;
  counters_.bytes += length;
  if (meta.status == ParseStatus::NotIp) {
    ++counters_.nonIp;
    ++counters_.forwarded;
    return {};
  }
  if (meta.status != ParseStatus::Ok) {
    ++counters_.dropped[static_cast<size_t>(DropReason::Malformed)];
    counters_.droppedBytes += length;
    return {Action::Drop, DropReason::Malformed, {}, false};
  }

  Flow flow;
  bool fromA = true;
  bool created = false;
  if (meta.fragment && !meta.firstFragment) {
    const FlowKey* key = fragments_.find(meta, nowNs);
    flow = key != nullptr ? flows_.find(*key) : Flow();
    if (!flow) {
      ++counters_.dropped[static_cast<size_t>(DropReason::FragmentNoFlow)];
      counters_.droppedBytes += length;
      return {Action::Drop, DropReason::FragmentNoFlow, {}, false};
    }
    fromA = sourceIsA(meta, *key);
  } else {
    // The full key: a new flow and a first fragment need it, and this is not the fast path.
    FlowLookahead made;
    const FlowLookahead* ahead = packet.ahead;
    if (ahead == nullptr || !ahead->ready || !ahead->keyMade) {
      fillFlowKey(meta, made.key, made.reversed);
      flows_.fillLookup(made.key, made.lookup);
      ahead = &made;
    }
    const FlowKey& key = ahead->key;
    fromA = !ahead->reversed;
    flow = known ? known : flows_.find(key, ahead->lookup);
    if (!flow) {
      const ResolvedFlow peers = resolver_.resolve(meta, ingressPort);
      const bool counted = peers.src.endpoint < flowsByEndpoint_.size();
      if (counted && flowsByEndpoint_[peers.src.endpoint] >= maxFlowsPerEndpoint_) {
        ++counters_.dropped[static_cast<size_t>(DropReason::EndpointFlowLimit)];
        counters_.droppedBytes += length;
        return {Action::Drop, DropReason::EndpointFlowLimit, {}, false};
      }
      if (flows_.full() && flows_.config().whenFull == FullTable::EvictIdle) {
        if (const Flow idle = flows_.evictionCandidate(nowNs)) {
          endFlow(idle);
          flows_.erase(idle);
          ++counters_.flowsEvicted;
        }
      }
      flow = flows_.insert(key, ahead->lookup);
      if (!flow) {
        ++counters_.dropped[static_cast<size_t>(DropReason::FlowTableFull)];
        counters_.droppedBytes += length;
        return {Action::Drop, DropReason::FlowTableFull, {}, false};
      }
      if (counted) {
        ++flowsByEndpoint_[peers.src.endpoint];
      }
      created = true;
      ++counters_.flowsCreated;
      flow.hot().initiatorIsA = fromA;
      FlowCold& cold = flow.cold();
      cold.firstSeenNs = nowNs;
      cold.srcIdentity = peers.src.identity;
      cold.srcEndpoint = peers.src.endpoint;
      cold.dstIdentity = peers.dst.identity;
      cold.dstEndpoint = peers.dst.endpoint;
    }
    if (meta.firstFragment) {
      fragments_.remember(meta, key, nowNs);
    }
  }

  FlowHot& hot = flow.hot();
  track(hot, fromA, meta, length, nowNs);

  // Only a flow that was classifying or holding can have an extra part to give back after this
  // packet: an established flow's packet never reads its cold line for it.
  const bool settling = !hot.classified || hot.holding;
  if (!hot.classified) {
    // nDPI starts a flow over, guesses included, when a SYN without ACK arrives on a flow it
    // has not classified: a retransmitted (or a client's extra) SYN would let the port's guess
    // back in (see dpi::Detector). The flow's first SYN is all nDPI needs of the handshake.
    const bool repeatedSyn = !created && meta.ipProtocol == ip_protocol::TCP &&
                             (meta.tcpFlags & (tcp_flags::Syn | tcp_flags::Ack)) == tcp_flags::Syn;
    FlowExtra& extra = flows_.attachExtra(flow);
    dpi::Classification found;
    if (!(meta.fragment && !meta.firstFragment) && !repeatedSyn &&
        detector_.process(extra.dpi, frame + meta.l3Offset, meta.l3Length, nowNs / 1000000,
                          found)) {
      classified(flow, found);
    } else if (hot.state == ConnState::Closed) {
      // Nothing more will come to classify: the flow is judged on what it showed, now rather
      // than when it expires, so that a denial is reported while it is news.
      detector_.giveUp(extra.dpi, found);
      classified(flow, found);
    }
  }
  if (!settling) {
    // Made in place: no copy of the verdict to wait for.
    return decide(flow, created, length, packet);
  }
  const PacketVerdict verdict = decide(flow, created, length, packet);
  trimExtra(flow);
  return verdict;
}

void Pipeline::classified(Flow flow, const dpi::Classification& found) {
  FlowHot& hot = flow.hot();
  FlowCold& cold = flow.cold();
  cold.protocol = found.protocol;
  cold.inspected = found.inspected;
  cold.confidence = found.confidence;
  cold.dpiPackets = found.packets;
  hot.malformed = found.malformed;
  if (FlowExtra* extra = flow.extra()) {
    extra->host = found.host;
  }
  hot.classified = true;
  hot.verdictValid = false;  // the protocol is known now: L7 rules can decide
  const uint16_t counted = found.protocol.master != 0 ? found.protocol.master : found.protocol.app;
  ++counters_.classified[std::min<size_t>(counted, CountedProtocols - 1)];
}

void Pipeline::trimExtra(Flow flow) {
  const FlowHot& hot = flow.hot();
  const FlowExtra* extra = flow.extra();
  if (extra != nullptr && hot.classified && !hot.holding && extra->host[0] == '\0') {
    flows_.detachExtra(flow);
  }
}

void Pipeline::evaluate(Flow flow) {
  storeVerdict(flow, judge(flow, *policy_));
  // Judged for good: detection is over, or an enforced denial that no protocol could lift
  // (nothing of the flow passes, so nDPI would only name it at its expiry, if ever).
  const FlowHot& hot = flow.hot();
  const bool final =
      hot.classified || (decision(hot) == rules::Decision::Deny && hot.verdict.enforced);
  if (final && !flow.cold().observed && judged_) {
    flow.cold().observed = true;
    judged_(flow);
  }
}

rules::Verdict Pipeline::judge(Flow flow, const rules::PolicySnapshot& policy) {
  const FlowCold& cold = flow.cold();
  rules::FlowQuery query;
  query.src = cold.srcIdentity;
  query.dst = cold.dstIdentity;
  query.srcIp = flow.initiatorIp();
  query.dstIp = flow.responderIp();
  query.ipProtocol = flow.ipProtocol();
  query.dstPort = flow.responderPort();
  if (flow.hot().classified) {
    query.app = cold.inspected;
    query.host = flow.hostName();
  }
  return policy.verdict(query);
}

PacketVerdict Pipeline::decide(Flow flow, bool created, uint32_t length, const Packet& packet) {
  FlowHot& hot = flow.hot();
  if (policy_ == nullptr) {
    releaseHeld(flow);
    ++counters_.forwarded;
    return {Action::Forward, DropReason::None, flow, created};
  }
  if (!flow.verdictCurrent(*policy_)) {
    evaluate(flow);
  }
  if (decision(hot) == rules::Decision::Deny) {
    if (hot.verdict.enforced) {
      // Nothing dropped yet, and an earlier packet (this one is counted already) went on or
      // waits in the hold: the ends know of the flow.
      const bool cut = flow.cold().droppedPackets == 0 && flow.totalPackets() > 1;
      dropHeld(flow);
      ++counters_.dropped[static_cast<size_t>(DropReason::PolicyDenied)];
      counters_.droppedBytes += length;
      counters_.flowsCut += cut ? 1 : 0;
      ++flow.cold().droppedPackets;
      const bool reject = !cut && hot.verdict.reject;  // a cut resets both ends anyway
      return {Action::Drop, DropReason::PolicyDenied, flow, created, cut, reject};
    }
    ++counters_.monitoredViolations;
  }
  if (decision(hot) == rules::Decision::NeedL7 && hot.verdict.enforced && packet.mbuf != nullptr &&
      (packet.payload || hot.holding)) {
    // Undecided bytes an enforced rule may yet refuse: kept back rather than passed on a guess.
    FlowExtra& extra = flows_.attachExtra(flow);
    if (holds_.hold(extra.hold, flow.slot(), packet.mbuf, packet.egress, packet.nowNs)) {
      hot.holding = true;
      ++counters_.held;
      return {Action::Hold, DropReason::None, flow, created};
    }
    if (holds_.enabled()) {
      ++counters_.holdFull;
    }
  }
  // Allow, NeedL7 (packets pass while nDPI classifies, bounded by the DPI budget) or monitor.
  if (hot.holding) {
    releaseHeld(flow);
  }
  ++counters_.forwarded;
  return {Action::Forward, DropReason::None, flow, created};
}

void Pipeline::releaseHeld(Flow flow) {
  FlowExtra* extra = flow.hot().holding ? flow.extra() : nullptr;
  if (extra == nullptr) {
    return;
  }
  counters_.forwarded += extra->hold.count;
  holds_.release(extra->hold, released_);
  flow.hot().holding = false;
}

void Pipeline::dropHeld(Flow flow) {
  FlowExtra* extra = flow.hot().holding ? flow.extra() : nullptr;
  if (extra == nullptr) {
    return;
  }
  const uint32_t count = holds_.drop(extra->hold, &counters_.droppedBytes);
  counters_.dropped[static_cast<size_t>(DropReason::PolicyDenied)] += count;
  flow.cold().droppedPackets += count;
  flow.hot().holding = false;
}

uint32_t Pipeline::releaseDue(uint64_t nowNs) {
  uint32_t count = 0;
  holds_.forEachDue(nowNs, [&](uint32_t slot) {
    const Flow flow(&flows_, slot);
    count += flow.heldPackets();
    releaseHeld(flow);
    trimExtra(flow);
  });
  counters_.heldReleasedLate += count;
  return count;
}

void Pipeline::letGo(Flow flow) {
  if (flowEnd_) {
    flowEnd_(flow);
  }
  countFlowEnd(flow);
  if (FlowExtra* extra = flow.extra()) {
    detector_.release(extra->dpi);
  }
  dropHeld(flow);
}

void Pipeline::endFlow(Flow flow) {
  settle(flow);
  letGo(flow);
}

size_t Pipeline::expire(uint64_t nowNs, size_t budget) {
  const size_t removed = flows_.expire(
      nowNs, budget, [&](Flow flow) { endFlow(flow); },
      [&](Flow flow) { return idle_ && idle_(flow); });
  counters_.flowsExpired += removed;
  return removed;
}

size_t Pipeline::forget(const std::function<bool(Flow)>& gone) {
  size_t removed = 0;
  // Erasing frees a slot, never moves a flow: the walk can erase as it goes.
  flows_.forEach([&](Flow flow) {
    if (gone(flow)) {
      letGo(flow);
      flows_.erase(flow);
      ++removed;
    }
  });
  counters_.flowsExpired += removed;
  return removed;
}

void Pipeline::countFlowEnd(Flow flow) {
  const uint32_t endpoint = flow.cold().srcEndpoint;
  if (endpoint < flowsByEndpoint_.size() && flowsByEndpoint_[endpoint] > 0) {
    --flowsByEndpoint_[endpoint];
  }
}

void Pipeline::settle(Flow flow) {
  FlowHot& hot = flow.hot();
  if (!hot.classified) {
    dpi::Classification found;
    detector_.giveUp(flows_.attachExtra(flow).dpi, found);
    classified(flow, found);
  }
  if (policy_ != nullptr && !flow.verdictCurrent(*policy_)) {
    evaluate(flow);
  }
  if (hot.holding) {
    if (policy_ != nullptr && decision(hot) == rules::Decision::Deny && hot.verdict.enforced) {
      dropHeld(flow);
    } else {
      releaseHeld(flow);
    }
  }
  trimExtra(flow);
}

void Pipeline::finishDetection() {
  flows_.forEach([&](Flow flow) { settle(flow); });
}

}  // namespace bulkhead::dataplane
