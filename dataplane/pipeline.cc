#include "dataplane/pipeline.h"

#include <rte_mbuf.h>

#include <cstring>

#include "dataplane/packet_parser.h"

namespace bulkhead::dataplane {
namespace {

bool sourceIsA(const PacketMeta& meta, const FlowKey& key) {
  const size_t length = key.family == 4 ? 4 : 16;
  return std::memcmp(meta.srcIp.bytes.data(), key.addressA, length) == 0;
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

Pipeline::Pipeline(const PipelineConfig& config, const EndpointResolver& resolver,
                   const std::string& name)
    : resolver_(resolver),
      maxFlowsPerEndpoint_(config.maxFlowsPerEndpoint),
      flowsByEndpoint_(config.maxFlowsPerEndpoint != 0 ? CountedEndpoints : 0),
      flows_(config.flows, name + "_flows"),
      detector_(config.dpi),
      holds_(config.hold.packets, config.hold.perFlow, config.hold.timeoutNs) {
  released_.reserve(config.hold.packets);
}

Pipeline::~Pipeline() {
  for (const auto& packet : released_) {
    rte_pktmbuf_free(packet.mbuf);
  }
  flows_.forEach([&](FlowEntry& flow) {
    detector_.release(flow.dpi);
    holds_.drop(flow.hold);
  });
}

PacketVerdict Pipeline::process(rte_mbuf* mbuf, uint64_t nowNs, uint16_t ingressPort) {
  return process(rte_pktmbuf_mtod(mbuf, const uint8_t*), mbuf->data_len, nowNs, ingressPort);
}

PacketVerdict Pipeline::process(rte_mbuf* mbuf, const PacketMeta& meta, uint64_t nowNs,
                                uint16_t ingressPort, uint16_t egress) {
  return handle(meta, rte_pktmbuf_mtod(mbuf, const uint8_t*), mbuf->data_len, ingressPort,
                {mbuf, egress, meta.payloadLength > 0, nowNs});
}

PacketVerdict Pipeline::process(const uint8_t* frame, uint32_t length, uint64_t nowNs,
                                uint16_t ingressPort) {
  return process(parsePacket(frame, length), frame, length, nowNs, ingressPort);
}

PacketVerdict Pipeline::process(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                                uint64_t nowNs, uint16_t ingressPort) {
  return handle(meta, frame, length, ingressPort, {nullptr, 0, false, nowNs});
}

PacketVerdict Pipeline::handle(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                               uint16_t ingressPort, const Packet& packet) {
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
    return {Action::Drop, DropReason::Malformed, nullptr, false};
  }

  FlowEntry* flow = nullptr;
  bool fromA = true;
  bool created = false;
  if (meta.fragment && !meta.firstFragment) {
    const FlowKey* key = fragments_.find(meta, nowNs);
    flow = key != nullptr ? flows_.find(*key) : nullptr;
    if (flow == nullptr) {
      ++counters_.dropped[static_cast<size_t>(DropReason::FragmentNoFlow)];
      return {Action::Drop, DropReason::FragmentNoFlow, nullptr, false};
    }
    fromA = sourceIsA(meta, flow->key);
  } else {
    bool reversed = false;
    const FlowKey key = makeFlowKey(meta, reversed);
    fromA = !reversed;
    flow = flows_.find(key);
    if (flow == nullptr) {
      const ResolvedFlow peers = resolver_.resolve(meta, ingressPort);
      const bool counted = peers.src.endpoint < flowsByEndpoint_.size();
      if (counted && flowsByEndpoint_[peers.src.endpoint] >= maxFlowsPerEndpoint_) {
        ++counters_.dropped[static_cast<size_t>(DropReason::EndpointFlowLimit)];
        return {Action::Drop, DropReason::EndpointFlowLimit, nullptr, false};
      }
      if (flows_.full() && flows_.config().whenFull == FullTable::EvictIdle) {
        if (FlowEntry* idle = flows_.evictionCandidate(nowNs)) {
          endFlow(*idle);
          flows_.erase(*idle);
          ++counters_.flowsEvicted;
        }
      }
      flow = flows_.insert(key);
      if (flow == nullptr) {
        ++counters_.dropped[static_cast<size_t>(DropReason::FlowTableFull)];
        return {Action::Drop, DropReason::FlowTableFull, nullptr, false};
      }
      if (counted) {
        ++flowsByEndpoint_[peers.src.endpoint];
      }
      created = true;
      ++counters_.flowsCreated;
      flow->initiatorIsA = fromA;
      flow->firstSeenNs = nowNs;
      flow->srcIdentity = peers.src.identity;
      flow->srcEndpoint = peers.src.endpoint;
      flow->dstIdentity = peers.dst.identity;
      flow->dstEndpoint = peers.dst.endpoint;
    }
    if (meta.firstFragment) {
      fragments_.remember(meta, key, nowNs);
    }
  }

  const bool fromInitiator = fromA == flow->initiatorIsA;
  const int direction = fromInitiator ? 0 : 1;
  ++flow->packets[direction];
  flow->bytes[direction] += length;
  flow->lastSeenNs = nowNs;
  flow->state = advance(flow->state, meta.ipProtocol == ip_protocol::TCP, fromInitiator,
                        meta.tcpFlags, flow->fins);

  // nDPI starts a flow over, guesses included, when a SYN without ACK arrives on a flow it has
  // not classified: a retransmitted (or a client's extra) SYN would let the port's guess back in
  // (see dpi::Detector). The flow's first SYN is all nDPI needs to see of the handshake.
  const bool repeatedSyn = !created && meta.ipProtocol == ip_protocol::TCP &&
                           (meta.tcpFlags & (tcp_flags::Syn | tcp_flags::Ack)) == tcp_flags::Syn;
  if (!flow->classified && !(meta.fragment && !meta.firstFragment) && !repeatedSyn) {
    if (detector_.process(flow->dpi, frame + meta.l3Offset, meta.l3Length, nowNs / 1000000,
                          flow->classification)) {
      flow->classified = true;
      flow->verdictValid = false;  // the protocol is known now: L7 rules can decide
    }
  }
  if (!flow->classified && flow->state == ConnState::Closed) {
    // Nothing more will come to classify: the flow is judged on what it showed, now rather
    // than when it expires, so that a denial is reported while it is news.
    detector_.giveUp(flow->dpi, flow->classification);
    flow->classified = true;
    flow->verdictValid = false;
  }
  return decide(*flow, created, packet);
}

void Pipeline::evaluate(FlowEntry& flow) {
  rules::FlowQuery query;
  query.src = flow.srcIdentity;
  query.dst = flow.dstIdentity;
  query.srcIp = flow.initiatorIp();
  query.dstIp = flow.responderIp();
  query.ipProtocol = flow.key.ipProtocol;
  query.dstPort = flow.responderPort();
  if (flow.classified) {
    query.app = flow.classification.policyProtocol();
    query.host = flow.classification.hostName();
  }
  flow.verdict = policy_->verdict(query);
  flow.verdictValid = true;
}

PacketVerdict Pipeline::decide(FlowEntry& flow, bool created, const Packet& packet) {
  if (policy_ == nullptr) {
    releaseHeld(flow);
    ++counters_.forwarded;
    ++flow.forwardedPackets;
    return {Action::Forward, DropReason::None, &flow, created};
  }
  if (!flow.verdictValid || flow.verdict.generation != policy_->generation()) {
    evaluate(flow);
  }
  if (flow.verdict.decision == rules::Decision::Deny) {
    if (flow.verdict.enforced) {
      const bool cut =
          flow.droppedPackets == 0 && (flow.forwardedPackets > 0 || flow.hold.count > 0);
      dropHeld(flow);
      ++counters_.dropped[static_cast<size_t>(DropReason::PolicyDenied)];
      ++flow.droppedPackets;
      return {Action::Drop, DropReason::PolicyDenied, &flow, created, cut};
    }
    ++counters_.monitoredViolations;
  }
  if (flow.verdict.decision == rules::Decision::NeedL7 && flow.verdict.enforced &&
      packet.mbuf != nullptr && (packet.payload || flow.hold.count > 0)) {
    // Undecided bytes an enforced rule may yet refuse: kept back rather than passed on a guess.
    if (holds_.hold(flow.hold, &flow, packet.mbuf, packet.egress, packet.nowNs)) {
      ++counters_.held;
      return {Action::Hold, DropReason::None, &flow, created};
    }
    if (holds_.enabled()) {
      ++counters_.holdFull;
    }
  }
  // Allow, NeedL7 (packets pass while nDPI classifies, bounded by the DPI budget) or monitor.
  releaseHeld(flow);
  ++counters_.forwarded;
  ++flow.forwardedPackets;
  return {Action::Forward, DropReason::None, &flow, created};
}

void Pipeline::releaseHeld(FlowEntry& flow) {
  if (flow.hold.count == 0) {
    return;
  }
  const uint32_t count = flow.hold.count;
  holds_.release(flow.hold, released_);
  counters_.forwarded += count;
  flow.forwardedPackets += count;
}

void Pipeline::dropHeld(FlowEntry& flow) {
  const uint32_t count = holds_.drop(flow.hold);
  counters_.dropped[static_cast<size_t>(DropReason::PolicyDenied)] += count;
  flow.droppedPackets += count;
}

uint32_t Pipeline::releaseDue(uint64_t nowNs) {
  uint32_t count = 0;
  holds_.forEachDue(nowNs, [&](void* owner) {
    FlowEntry& flow = *static_cast<FlowEntry*>(owner);
    count += flow.hold.count;
    releaseHeld(flow);
  });
  counters_.heldReleasedLate += count;
  return count;
}

void Pipeline::endFlow(FlowEntry& flow) {
  settle(flow);
  if (flowEnd_) {
    flowEnd_(flow);
  }
  countFlowEnd(flow);
  detector_.release(flow.dpi);
  dropHeld(flow);
}

size_t Pipeline::expire(uint64_t nowNs, size_t budget) {
  const size_t removed = flows_.expire(nowNs, budget, [&](FlowEntry& flow) { endFlow(flow); });
  counters_.flowsExpired += removed;
  return removed;
}

size_t Pipeline::forget(const std::function<bool(const FlowEntry&)>& gone) {
  std::vector<FlowEntry*> doomed;
  flows_.forEach([&](FlowEntry& flow) {
    if (gone(flow)) {
      doomed.push_back(&flow);
    }
  });
  for (FlowEntry* flow : doomed) {
    if (flowEnd_) {
      flowEnd_(*flow);
    }
    countFlowEnd(*flow);
    detector_.release(flow->dpi);
    dropHeld(*flow);
    flows_.erase(*flow);
  }
  counters_.flowsExpired += doomed.size();
  return doomed.size();
}

void Pipeline::countFlowEnd(const FlowEntry& flow) {
  if (flow.srcEndpoint < flowsByEndpoint_.size() && flowsByEndpoint_[flow.srcEndpoint] > 0) {
    --flowsByEndpoint_[flow.srcEndpoint];
  }
}

void Pipeline::settle(FlowEntry& flow) {
  if (!flow.classified) {
    detector_.giveUp(flow.dpi, flow.classification);
    flow.classified = true;
    flow.verdictValid = false;
  }
  if (policy_ != nullptr &&
      (!flow.verdictValid || flow.verdict.generation != policy_->generation())) {
    evaluate(flow);
  }
  if (flow.hold.count > 0) {
    if (policy_ != nullptr && flow.verdict.decision == rules::Decision::Deny &&
        flow.verdict.enforced) {
      dropHeld(flow);
    } else {
      releaseHeld(flow);
    }
  }
}

void Pipeline::finishDetection() {
  flows_.forEach([&](FlowEntry& flow) { settle(flow); });
}

}  // namespace bulkhead::dataplane
