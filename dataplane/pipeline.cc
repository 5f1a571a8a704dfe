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
    case DropReason::Count:
      break;
  }
  return "?";
}

Pipeline::Pipeline(const PipelineConfig& config, const EndpointResolver& resolver,
                   const std::string& name)
    : resolver_(resolver), flows_(config.flows, name + "_flows"), detector_(config.dpi) {}

Pipeline::~Pipeline() {
  flows_.forEach([&](FlowEntry& flow) { detector_.release(flow.dpi); });
}

PacketVerdict Pipeline::process(rte_mbuf* mbuf, uint64_t nowNs, uint16_t ingressPort) {
  return process(rte_pktmbuf_mtod(mbuf, const uint8_t*), mbuf->data_len, nowNs, ingressPort);
}

PacketVerdict Pipeline::process(const uint8_t* frame, uint32_t length, uint64_t nowNs,
                                uint16_t ingressPort) {
  return process(parsePacket(frame, length), frame, length, nowNs, ingressPort);
}

PacketVerdict Pipeline::process(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                                uint64_t nowNs, uint16_t ingressPort) {
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
      flow = flows_.insert(key);
      if (flow == nullptr) {
        ++counters_.dropped[static_cast<size_t>(DropReason::FlowTableFull)];
        return {Action::Drop, DropReason::FlowTableFull, nullptr, false};
      }
      created = true;
      ++counters_.flowsCreated;
      flow->initiatorIsA = fromA;
      flow->firstSeenNs = nowNs;
      const ResolvedFlow peers = resolver_.resolve(meta, ingressPort);
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
  return decide(*flow, created);
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
  flow.generation = policy_->generation();
  flow.verdictValid = true;
}

PacketVerdict Pipeline::decide(FlowEntry& flow, bool created) {
  if (policy_ == nullptr) {
    ++counters_.forwarded;
    ++flow.forwardedPackets;
    return {Action::Forward, DropReason::None, &flow, created};
  }
  if (!flow.verdictValid || flow.generation != policy_->generation()) {
    evaluate(flow);
  }
  if (flow.verdict.decision == rules::Decision::Deny) {
    if (flow.verdict.enforced) {
      ++counters_.dropped[static_cast<size_t>(DropReason::PolicyDenied)];
      ++flow.droppedPackets;
      return {Action::Drop, DropReason::PolicyDenied, &flow, created};
    }
    ++counters_.monitoredViolations;
  }
  // Allow, NeedL7 (packets pass while nDPI classifies, bounded by the DPI budget) or monitor.
  ++counters_.forwarded;
  ++flow.forwardedPackets;
  return {Action::Forward, DropReason::None, &flow, created};
}

size_t Pipeline::expire(uint64_t nowNs, size_t budget) {
  const size_t removed = flows_.expire(nowNs, budget, [&](FlowEntry& flow) {
    settle(flow);
    if (flowEnd_) {
      flowEnd_(flow);
    }
    detector_.release(flow.dpi);
  });
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
    detector_.release(flow->dpi);
    flows_.erase(*flow);
  }
  counters_.flowsExpired += doomed.size();
  return doomed.size();
}

void Pipeline::settle(FlowEntry& flow) {
  if (!flow.classified) {
    detector_.giveUp(flow.dpi, flow.classification);
    flow.classified = true;
    flow.verdictValid = false;
  }
  if (policy_ != nullptr && (!flow.verdictValid || flow.generation != policy_->generation())) {
    evaluate(flow);
  }
}

void Pipeline::finishDetection() {
  flows_.forEach([&](FlowEntry& flow) { settle(flow); });
}

}  // namespace bulkhead::dataplane
