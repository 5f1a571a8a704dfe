#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dataplane/anti_spoofing.h"
#include "dataplane/conversation_owner.h"
#include "dataplane/icmp_unreachable.h"
#include "dataplane/packet_parser.h"
#include "dataplane/tcp_reset.h"
#include "dataplane/violation_event.h"

namespace bulkhead::dataplane {
namespace {

constexpr uint64_t HousekeepingNs = 100ull * 1000000ull;
constexpr size_t ExpireBudget = 4096;
constexpr uint32_t IdlePollsBeforeSleep = 64;
// Then about a millisecond of short sleeps before the doorbell: traffic with shorter gaps never
// pays a wakeup.
constexpr uint32_t SleepsBeforeDoorbell = 20;
// A frame that entered the trunk just as the worker fell asleep (the BPF program read the flag
// before it was set, the kernel had not put the frame in the rx ring by the worker's last look,
// which comes one short sleep after arming) rang no bell: it waits at most this long. Each wait
// that ends so costs a wakeup (about 90 us of CPU on the project's VM): 40 a second.
constexpr int MaxDoorbellWaitMs = 25;
constexpr uint16_t EtherTypeArp = 0x0806;

// IPv6's link-local control: multicast listener discovery (queries 130, reports 131 and 143,
// done 132) and neighbour discovery (router and neighbour solicitations and advertisements,
// redirects: 133-137). An IPv6 stack sends them as its link comes up, whatever the policy.
bool isLinkLocalControl(const PacketMeta& meta) {
  if (meta.ipProtocol != ip_protocol::ICMPv6) {
    return false;
  }
  return (meta.icmpType >= 130 && meta.icmpType <= 137) || meta.icmpType == 143;
}

template <typename T>
bool contains(const std::vector<T>& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Rewrites the frame's 802.1Q tag: the tag is the attachment the frame goes to.
void retag(rte_mbuf* mbuf, uint16_t tag) {
  uint8_t* frame = rte_pktmbuf_mtod(mbuf, uint8_t*);
  frame[14] = static_cast<uint8_t>((tag >> 8) & 0x0F);
  frame[15] = static_cast<uint8_t>(tag);
}

template <size_t Size>
void copyName(std::array<char, Size>& out, std::string_view name) {
  out.fill('\0');
  std::memcpy(out.data(), name.data(), std::min(name.size(), out.size() - 1));
}

}  // namespace

ResolvedFlow Worker::AttachmentResolver::resolve(const PacketMeta& meta, uint16_t) const {
  const auto peer = [&](const Attachment* attachment, const rules::IpAddress& ip) -> ResolvedPeer {
    if (attachment == nullptr || attachment->uplink) {
      // Beyond the uplink: another host's endpoint, the host itself if it is one of the host's
      // addresses, else the world.
      if (state != nullptr && !state->remoteIdentities.empty()) {
        if (const auto remote = state->remoteIdentities.find(ip);
            remote != state->remoteIdentities.end()) {
          return {remote->second, UINT32_MAX};
        }
      }
      const bool host = state != nullptr && contains(state->hostIps, ip);
      return {host ? rules::reserved_identity::Host : rules::reserved_identity::World, UINT32_MAX};
    }
    return {attachment->identity, attachment->endpointSlot};
  };
  return {peer(source, meta.srcIp), peer(destination, meta.dstIp)};
}

Worker::Worker(unsigned id, const WorkerConfig& config, WorkerShared& shared, Doorbell* doorbell)
    : id_(id),
      doorbell_(doorbell),
      config_(config),
      shared_(shared),
      pipeline_(config.pipeline, resolver_),
      clock_(rte_get_tsc_hz()) {
  if (shared.inboxes.size() > MaxWorkers ||
      (shared.inboxes.size() > 1 && id >= shared.inboxes.size())) {
    throw std::invalid_argument("worker " + std::to_string(id) + " of " +
                                std::to_string(shared.inboxes.size()) + ": at most " +
                                std::to_string(MaxWorkers) + " workers");
  }
  pipeline_.setFlowEndHandler([this](Flow flow) { reportEnded(flow); });
  if (config_.judgedRecords) {
    pipeline_.setJudgedHandler([this](Flow flow) { reportJudged(flow); });
  }
  pipeline_.setIdleHandler([this](Flow flow) { return refreshOffloaded(flow); });
  dump_.reserve(MaxFlowDump);
  ended_.resize(RecentEnded);
  publishedFlows_.reserve(MaxFlowDump);
  bound_.reserve(MaxTags);
  boundSlots_.reserve(MaxTags);
}

void addCounters(WorkerCounters& total, const WorkerCounters& one) {
  addCounters(total.pipeline, one.pipeline);
  total.rxPackets += one.rxPackets;
  total.txPackets += one.txPackets;
  total.txDropped += one.txDropped;
  total.flooded += one.flooded;
  total.floodCopiesLost += one.floodCopiesLost;
  total.spoofDropped += one.spoofDropped;
  total.hostFrames += one.hostFrames;
  total.untagged += one.untagged;
  total.blockedDropped += one.blockedDropped;
  total.noRoute += one.noRoute;
  total.resetsSent += one.resetsSent;
  total.rejectsSent += one.rejectsSent;
  total.rejectsLimited += one.rejectsLimited;
  total.violationsQueued += one.violationsQueued;
  total.violationsLost += one.violationsLost;
  total.violationsSuppressed += one.violationsSuppressed;
  total.flowRecordsQueued += one.flowRecordsQueued;
  total.flowRecordsLost += one.flowRecordsLost;
  total.judgedRecordsQueued += one.judgedRecordsQueued;
  total.judgedRecordsLost += one.judgedRecordsLost;
  total.doorbellWaits += one.doorbellWaits;
  total.doorbellRings += one.doorbellRings;
  total.handedOff += one.handedOff;
  total.handoffLost += one.handoffLost;
  total.fromPeers += one.fromPeers;
  total.offloadInstalled += one.offloadInstalled;
  total.offloadFailed += one.offloadFailed;
  total.offloadWithdrawn += one.offloadWithdrawn;
  total.flows += one.flows;
}

WorkerCounters Worker::counters() const {
  std::lock_guard<std::mutex> lock(publishedMutex_);
  return published_;
}

std::vector<FlowSummary> Worker::flows() const {
  std::lock_guard<std::mutex> lock(publishedMutex_);
  return publishedFlows_;
}

int Worker::run() {
  rte_rcu_qsbr_thread_register(shared_.rcu, id_);
  rte_rcu_qsbr_thread_online(shared_.rcu, id_);
  rte_mbuf* burst[RxBurst];
  rte_ring* const inbox = shared_.inboxes.size() > 1 ? shared_.inboxes.at(id_) : nullptr;
  while (!shared_.stop.load(std::memory_order_relaxed)) {
    state_ = shared_.state.load(std::memory_order_acquire);
    trunk_ = nullptr;
    clock_.tick();
    nowNs_ = clock_.monotonicNs();
    realtimeNs_ = clock_.realtimeNs();
    uint16_t received = 0;
    if (state_ != nullptr && state_->hasTrunk && id_ < state_->trunks.size()) {
      pipeline_.setPolicy(state_->policy.get());
      resolver_.state = state_;
      trunk_ = &state_->trunks[id_];
      received = rte_eth_rx_burst(trunk_->port, trunk_->queue, burst, RxBurst);
      handleBurst(burst, received, shared_.inboxes.size() < 2);
      counters_.rxPackets += received;
      if (inbox != nullptr) {
        const auto handed = static_cast<uint16_t>(
            rte_ring_sc_dequeue_burst(inbox, reinterpret_cast<void**>(burst), RxBurst, nullptr));
        handleBurst(burst, handed, true);
        counters_.fromPeers += handed;
        received += handed;
      }
      if (pipeline_.releaseDue(nowNs_) > 0) {
        sendReleased();
      }
      flush();
    }
    if (nowNs_ >= nextHousekeepingNs_) {
      housekeeping();
      sendReleased();
      flush();
    }
    // Nothing from the old state is held past this point: the control thread may free it.
    rte_rcu_qsbr_quiescent(shared_.rcu, id_);
    if (received != 0) {
      idlePolls_ = 0;
      if (armed_) {
        doorbell_->disarm();
        armed_ = false;
      }
    } else if (!config_.busyPoll && ++idlePolls_ >= IdlePollsBeforeSleep) {
      idle();
    }
  }
  if (armed_) {
    doorbell_->disarm();
    armed_ = false;
  }
  rte_rcu_qsbr_thread_offline(shared_.rcu, id_);
  rte_rcu_qsbr_thread_unregister(shared_.rcu, id_);
  // The state of the last turn may be gone: a worker that slept through a publish was offline,
  // so the control thread freed it. With `stop` set, the control thread waits for the workers and
  // publishes nothing: the current state stays until they are done.
  state_ = shared_.state.load(std::memory_order_acquire);
  trunk_ = state_ != nullptr && id_ < state_->trunks.size() ? &state_->trunks[id_] : nullptr;
  housekeeping();
  return 0;
}

void Worker::idle() {
  Doorbell* bell = doorbell_;
  if (bell == nullptr || idlePolls_ < IdlePollsBeforeSleep + SleepsBeforeDoorbell ||
      pipeline_.holding()) {
    rte_delay_us_sleep(config_.idleSleepMicros);
    return;
  }
  if (!armed_) {
    bell->arm();
    armed_ = true;
    // Frames that passed the BPF program before arm() are in flight through the kernel's
    // softirq: give them a moment, then the next turn looks at the rx ring once more.
    rte_delay_us_sleep(config_.idleSleepMicros);
    return;
  }
  const uint64_t untilHousekeeping =
      nextHousekeepingNs_ > nowNs_ ? nextHousekeepingNs_ - nowNs_ : 0;
  // Rounded up: a wait of 0 would spin through the last millisecond before housekeeping.
  const int timeoutMs = static_cast<int>(
      std::min<uint64_t>((untilHousekeeping + 999999) / 1000000, MaxDoorbellWaitMs));
  // Asleep, the worker reads no forwarding state: the control thread need not wait for it
  // before freeing a replaced one. The next turn reads the state afresh.
  rte_rcu_qsbr_thread_offline(shared_.rcu, id_);
  const bool rang = bell->wait(timeoutMs);
  rte_rcu_qsbr_thread_online(shared_.rcu, id_);
  bell->disarm();
  armed_ = false;
  ++counters_.doorbellWaits;
  if (rang) {
    ++counters_.doorbellRings;
    idlePolls_ = 0;  // the frame that rang is on its way into the rx ring: spin for it
  }
}

int16_t Worker::destinationIndex(const PacketMeta& meta, const Attachment& ingress) const {
  const Segment& segment = state_->segments[ingress.segment];
  if (meta.dstMac.isMulticast()) {
    // IP broadcast and multicast only leave through the uplink (the world), never sideways.
    return segment.uplink;
  }
  if (const auto found = state_->endpointByMac.find(segmentMacKey(ingress.segment, meta.dstMac));
      found != state_->endpointByMac.end()) {
    return found->second;
  }
  if (meta.status == ParseStatus::Ok) {
    if (const auto found = state_->endpointByIp.find({ingress.segment, meta.dstIp});
        found != state_->endpointByIp.end()) {
      return found->second;
    }
  }
  // Not an endpoint of the segment: the bridge, and whatever is behind it.
  return segment.uplink;
}

void Worker::handleBurst(rte_mbuf** burst, uint16_t count, bool owned) {
  const auto workers = static_cast<unsigned>(shared_.inboxes.size());
  uint16_t kept = 0;  // frames of this worker's conversations, compacted to the burst's front
  for (uint16_t i = 0; i < count; ++i) {
    if (i + 1 < count) {
      rte_prefetch0(rte_pktmbuf_mtod(burst[i + 1], void*));
    }
    // Made in place: a copy would wait on the parser's narrow stores.
    PacketMeta& meta = *new (&metas_[kept]) PacketMeta(
        parsePacket(rte_pktmbuf_mtod(burst[i], const uint8_t*), burst[i]->data_len));
    const int16_t ingress = state_->byTag[meta.vlan & (MaxTags - 1)];
    if (ingress != NoAttachment) {
      // The tags name attachments, not the conversation: the flow is keyed by its segment, so
      // that both directions (two different tags) meet in one entry.
      meta.vlan = state_->attachments[static_cast<size_t>(ingress)].segment;
      if (!owned && meta.status == ParseStatus::Ok) {
        if (const unsigned owner = conversationOwner(meta, workers); owner != id_) {
          handoff_[owner][handoffCount_[owner]++] = burst[i];
          continue;
        }
      }
      pipeline_.lookAhead(meta, ahead_[kept]);
    } else {
      ahead_[kept].ready = false;
    }
    ingress_[kept] = ingress;
    burst[kept++] = burst[i];
  }
  if (kept != count) {
    for (unsigned owner = 0; owner < workers; ++owner) {
      if (handoffCount_[owner] != 0) {
        handOff(owner, handoff_[owner].data(), handoffCount_[owner]);
        handoffCount_[owner] = 0;
      }
    }
    count = kept;
  }
  for (uint16_t i = 0; i < count; ++i) {
    pipeline_.prefetchFlow(ahead_[i]);
  }
  for (uint16_t i = 0; i < count; ++i) {
    handle(burst[i], metas_[i], ingress_[i], ahead_[i]);
  }
}

void Worker::handOff(unsigned owner, rte_mbuf* const* frames, uint16_t count) {
  // Never waited for: an owner that cannot keep up loses frames here, as its rx queue would.
  const unsigned queued = rte_ring_mp_enqueue_burst(
      shared_.inboxes[owner], reinterpret_cast<void* const*>(frames), count, nullptr);
  counters_.handedOff += count;
  counters_.handoffLost += count - queued;
  for (unsigned i = queued; i < count; ++i) {
    rte_pktmbuf_free(frames[i]);
  }
}

void Worker::handle(rte_mbuf* mbuf, PacketMeta& meta, int16_t ingressIndex,
                    const FlowLookahead& ahead) {
  const uint8_t* frame = rte_pktmbuf_mtod(mbuf, const uint8_t*);
  const uint32_t length = mbuf->data_len;
  if (meta.srcMac == trunk_->mac) {
    // af_packet also sees what the host itself sends on the interface: not traffic of the wire.
    ++counters_.hostFrames;
    rte_pktmbuf_free(mbuf);
    return;
  }
  if (length < 18 || frame[12] != 0x81 || frame[13] != 0x00 || ingressIndex == NoAttachment) {
    ++counters_.untagged;
    rte_pktmbuf_free(mbuf);
    return;
  }
  const Attachment& ingress = state_->attachments[static_cast<size_t>(ingressIndex)];
  if (ingress.blocked) {
    ++counters_.blockedDropped;
    rte_pktmbuf_free(mbuf);
    return;
  }
  const bool arp = meta.etherType == EtherTypeArp && meta.status == ParseStatus::NotIp &&
                   length >= meta.l3Offset + ArpBodyLength;
  if (!ingress.uplink && !sourceAllowed(ingress, meta, frame, length)) {
    ++counters_.spoofDropped;
    reportAttachment(ViolationKind::Spoof, ingress, meta);
    rte_pktmbuf_free(mbuf);
    return;
  }

  const bool l2Control = meta.status == ParseStatus::NotIp || isLinkLocalControl(meta);
  if (l2Control) {
    if (meta.etherType == EtherTypeArp && !arp) {
      rte_pktmbuf_free(mbuf);  // an ARP frame too short to have been checked
      return;
    }
    // ARP, neighbour and multicast listener discovery are what make the segment work at all:
    // switched like a learning bridge within the segment, without flows or policy.
    const auto known =
        meta.dstMac.isMulticast()
            ? state_->endpointByMac.end()
            : state_->endpointByMac.find(segmentMacKey(ingress.segment, meta.dstMac));
    if (known != state_->endpointByMac.end()) {
      if (state_->attachments[static_cast<size_t>(known->second)].blocked) {
        ++counters_.blockedDropped;
        rte_pktmbuf_free(mbuf);
      } else if (known->second != ingressIndex) {
        send(mbuf, state_->attachments[static_cast<size_t>(known->second)].tag);
      } else {
        rte_pktmbuf_free(mbuf);
      }
    } else if (!meta.dstMac.isMulticast() && !ingress.uplink &&
               state_->segments[ingress.segment].uplink != NoAttachment) {
      // Unicast to a MAC no endpoint has: it lives behind the bridge.
      send(mbuf,
           state_->attachments[static_cast<size_t>(state_->segments[ingress.segment].uplink)].tag);
    } else {
      flood(mbuf, ingress);
    }
    return;
  }

  // IP: exactly one egress attachment, the one the destination's identity says.
  const int16_t egress = destinationIndex(meta, ingress);
  if (egress == NoAttachment || egress == ingressIndex) {
    ++counters_.noRoute;
    rte_pktmbuf_free(mbuf);
    return;
  }
  const Attachment& out = state_->attachments[static_cast<size_t>(egress)];
  if (out.blocked) {
    ++counters_.blockedDropped;
    rte_pktmbuf_free(mbuf);
    return;
  }
  resolver_.source = &ingress;
  resolver_.destination = &out;
  const uint16_t ingressTag = ingress.tag;
  const PacketVerdict verdict = pipeline_.process(mbuf, meta, ahead, nowNs_, ingressTag, out.tag);
  if (verdict.flow) {
    reportFlow(verdict.flow);
  }
  // What the pipeline kept back and now lets go comes first: it was sent before this packet.
  sendReleased();
  if (verdict.action == Action::Hold) {
    return;  // the pipeline owns it until its flow's verdict (or the hold timeout)
  }
  if (verdict.action == Action::Drop) {
    // The first drop of a flow that was passing while nDPI classified it: tell both ends, so
    // neither hangs on a connection that can no longer carry anything.
    if (verdict.reason == DropReason::PolicyDenied && verdict.cut) {
      sendResets(frame, meta, ingressTag, out.tag);
    } else if (verdict.reason == DropReason::PolicyDenied && verdict.reject) {
      reject(frame, length, meta, ingressTag);
    }
    if (verdict.reason == DropReason::EndpointFlowLimit) {
      reportAttachment(ViolationKind::EndpointFlowLimit, ingress, meta);
    }
    rte_pktmbuf_free(mbuf);
    return;
  }
  if (verdict.flow && shared_.offload != nullptr) {
    offloadAfter(verdict.flow, meta, ingressTag, out.tag);
  }
  send(mbuf, out.tag);
}

void Worker::sendReleased() {
  auto& released = pipeline_.released();
  for (const auto& packet : released) {
    // The attachment may have left since the packet was held; then it goes nowhere.
    if (state_ != nullptr && state_->attachment(packet.egress) != nullptr) {
      send(packet.mbuf, packet.egress);
    } else {
      rte_pktmbuf_free(packet.mbuf);
    }
  }
  released.clear();
}

void Worker::flood(rte_mbuf* mbuf, const Attachment& ingress) {
  const Segment& segment = state_->segments[ingress.segment];
  uint16_t targets[MaxTags];
  size_t count = 0;
  for (const int16_t member : segment.members) {
    const Attachment& attachment = state_->attachments[static_cast<size_t>(member)];
    if (attachment.tag != ingress.tag && !attachment.blocked) {
      targets[count++] = attachment.tag;
    }
  }
  if (segment.uplink != NoAttachment && !ingress.uplink) {
    targets[count++] = state_->attachments[static_cast<size_t>(segment.uplink)].tag;
  }
  if (count == 0) {
    rte_pktmbuf_free(mbuf);
    return;
  }
  // Each copy carries a different tag, so each needs its own buffer; the original goes last.
  for (size_t i = 0; i + 1 < count; ++i) {
    rte_mbuf* copy = rte_pktmbuf_copy(mbuf, shared_.packetPool, 0, UINT32_MAX);
    if (copy == nullptr) {
      ++counters_.floodCopiesLost;
      continue;
    }
    send(copy, targets[i]);
  }
  send(mbuf, targets[count - 1]);
  ++counters_.flooded;
}

void Worker::send(rte_mbuf* mbuf, uint16_t tag) {
  retag(mbuf, tag);
  tx_[txCount_++] = mbuf;
  if (txCount_ == TxBurst) {
    flush();
  }
}

void Worker::flush() {
  if (txCount_ == 0) {
    return;
  }
  // No trunk in this state (none published yet): what was made for it has nowhere to go.
  const uint16_t sent =
      trunk_ != nullptr ? rte_eth_tx_burst(trunk_->port, trunk_->queue, tx_.data(), txCount_) : 0;
  counters_.txPackets += sent;
  for (uint16_t i = sent; i < txCount_; ++i) {
    rte_pktmbuf_free(tx_[i]);
    ++counters_.txDropped;
  }
  txCount_ = 0;
}

void Worker::sendResets(const uint8_t* frame, const PacketMeta& meta, uint16_t ingressTag,
                        uint16_t egressTag) {
  const auto emit = [&](bool toSender, uint16_t tag) {
    rte_mbuf* reset = rte_pktmbuf_alloc(shared_.packetPool);
    if (reset == nullptr) {
      return;
    }
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(reset, MaxResetFrame));
    const size_t length =
        data != nullptr ? buildTcpReset(frame, meta, toSender, data, MaxResetFrame) : 0;
    if (length == 0) {
      rte_pktmbuf_free(reset);
      return;
    }
    rte_pktmbuf_trim(reset, static_cast<uint16_t>(MaxResetFrame - length));
    send(reset, tag);  // the frame's own tag says where it goes
    ++counters_.resetsSent;
  };
  emit(true, ingressTag);
  emit(false, egressTag);
}

void Worker::reject(const uint8_t* frame, uint32_t length, const PacketMeta& meta,
                    uint16_t ingressTag) {
  const bool tcp = meta.ipProtocol == ip_protocol::TCP;
  if (tcp && (meta.tcpFlags & tcp_flags::Rst) != 0) {
    return;  // a reset is never answered
  }
  if (nowNs_ - rejectRefillNs_ >= 1000000000ull / RejectsPerSecond) {
    const uint64_t earned = (nowNs_ - rejectRefillNs_) * RejectsPerSecond / 1000000000ull;
    rejectTokens_ =
        static_cast<uint32_t>(std::min<uint64_t>(RejectsPerSecond, rejectTokens_ + earned));
    rejectRefillNs_ = nowNs_;
  }
  if (rejectTokens_ == 0) {
    ++counters_.rejectsLimited;
    return;
  }
  rte_mbuf* answer = rte_pktmbuf_alloc(shared_.packetPool);
  if (answer == nullptr) {
    return;
  }
  constexpr size_t Room = std::max(MaxResetFrame, MaxUnreachableFrame);
  auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(answer, Room));
  size_t made = 0;
  if (data != nullptr) {
    made = tcp ? buildTcpReset(frame, meta, true, data, Room)
               : buildIcmpUnreachable(frame, length, meta, data, Room);
  }
  if (made == 0) {
    rte_pktmbuf_free(answer);
    return;
  }
  rte_pktmbuf_trim(answer, static_cast<uint16_t>(Room - made));
  --rejectTokens_;
  ++counters_.rejectsSent;
  send(answer, ingressTag);  // back where the refused packet came from
}

namespace {

bool denied(Flow flow) {
  return flow.hot().verdictValid &&
         static_cast<rules::Decision>(flow.hot().verdict.decision) == rules::Decision::Deny;
}

}  // namespace

void Worker::reportFlow(Flow flow) {
  if (!denied(flow)) {
    return;
  }
  // Milliseconds plus one, in 32 bits (FlowCold::lastViolationMs): 0 stays "never".
  uint32_t nowMs = static_cast<uint32_t>(nowNs_ / 1000000) + 1;
  nowMs = nowMs == 0 ? 1 : nowMs;
  uint32_t& last = flow.cold().lastViolationMs;
  if (last != 0 && uint64_t{nowMs - last} * 1000000 < config_.violationIntervalNs) {
    ++counters_.violationsSuppressed;
    return;
  }
  last = nowMs;
  queueViolation(flow);
}

void Worker::reportEnded(Flow flow) {
  // What the wire carried of it belongs in its totals, and its entries must not outlive it.
  withdrawOffload(flow);
  // Kept for the dump a while: an operator sees what succeeded, not only what is open.
  ended_[endedNext_] = summarise(flow, true);
  endedNext_ = (endedNext_ + 1) % RecentEnded;
  endedCount_ = std::min(endedCount_ + 1, RecentEnded);
  // A flow judged only as it ended (nDPI never named it while it ran) was never reported.
  if (denied(flow) && flow.cold().lastViolationMs == 0) {
    queueViolation(flow);
  }
  if (config_.flowRecords) {
    ++(queueRecord(flow, ViolationKind::FlowEnd) ? counters_.flowRecordsQueued
                                                 : counters_.flowRecordsLost);
  }
}

void Worker::reportJudged(Flow flow) {
  ++(queueRecord(flow, ViolationKind::Judged) ? counters_.judgedRecordsQueued
                                              : counters_.judgedRecordsLost);
}

bool Worker::queueRecord(Flow flow, ViolationKind kind) {
  if (shared_.records == nullptr) {
    return false;
  }
  ViolationEvent* event = flowEvent(flow, kind, shared_.recordPool);
  if (event == nullptr) {
    return false;
  }
  event->durationNs = nowNs_ - std::min(nowNs_, flow.cold().firstSeenNs);
  if (rte_ring_enqueue(shared_.records, event) != 0) {
    rte_mempool_put(shared_.recordPool, event);
    return false;
  }
  return true;
}

ViolationEvent* Worker::flowEvent(Flow flow, ViolationKind kind, rte_mempool* pool) {
  void* slot = nullptr;
  if (rte_mempool_get(pool, &slot) != 0) {
    return nullptr;
  }
  auto* event = new (slot) ViolationEvent{};
  event->kind = kind;
  event->timeNs = realtimeNs_;
  const rules::PolicySnapshot* policy = state_ != nullptr ? state_->policy.get() : nullptr;
  const rules::Verdict verdict = flow.verdict(policy);
  const FlowCold& cold = flow.cold();
  event->policyGeneration = verdict.generation;
  event->enforced = verdict.enforced;
  event->rejected = verdict.enforced && verdict.reject;
  event->deniedBy = verdict.deniedBy;
  event->decision = verdict.decision;
  event->classified = flow.hot().classified;
  event->classification = flow.classification();
  copyName(event->rule,
           policy != nullptr ? policy->ruleName(verdict) : rules::PolicySnapshot::SupersededRule);
  event->srcIdentity = cold.srcIdentity;
  event->dstIdentity = cold.dstIdentity;
  event->srcEndpoint = cold.srcEndpoint;
  event->dstEndpoint = cold.dstEndpoint;
  event->srcIp = flow.initiatorIp();
  event->dstIp = flow.responderIp();
  event->srcPort = flow.initiatorPort();
  event->dstPort = flow.responderPort();
  event->ipProtocol = flow.ipProtocol();
  event->packets = flow.totalPackets();
  event->bytes = flow.totalBytes();
  event->forwardedPackets = flow.forwardedPackets();
  return event;
}

void Worker::queueViolation(Flow flow) {
  ViolationEvent* event = flowEvent(flow, ViolationKind::Policy, shared_.eventPool);
  if (event == nullptr) {
    ++counters_.violationsLost;
    return;
  }
  if (rte_ring_enqueue(shared_.violations, event) != 0) {
    rte_mempool_put(shared_.eventPool, event);
    ++counters_.violationsLost;
    return;
  }
  ++counters_.violationsQueued;
}

void Worker::reportAttachment(ViolationKind kind, const Attachment& attachment,
                              const PacketMeta& meta) {
  auto& reported = kind == ViolationKind::Spoof ? lastSpoofReportNs_ : lastFlowLimitReportNs_;
  uint64_t& last = reported[attachment.tag & (MaxTags - 1)];
  if (last != 0 && nowNs_ - last < config_.violationIntervalNs) {
    ++counters_.violationsSuppressed;
    return;
  }
  last = nowNs_;
  void* slot = nullptr;
  if (rte_mempool_get(shared_.eventPool, &slot) != 0) {
    ++counters_.violationsLost;
    return;
  }
  auto* event = new (slot) ViolationEvent{};
  event->kind = kind;
  event->timeNs = realtimeNs_;
  event->policyGeneration = state_->policy ? state_->policy->generation() : 0;
  event->enforced = true;
  copyName(event->rule, kind == ViolationKind::Spoof ? "anti-spoofing" : "max-flows-per-endpoint");
  event->srcIdentity = attachment.identity;
  event->srcEndpoint = attachment.endpointSlot;
  event->dstIdentity = rules::reserved_identity::World;
  event->srcIp = meta.srcIp;
  event->dstIp = meta.dstIp;
  event->srcPort = meta.srcPort;
  event->dstPort = meta.dstPort;
  event->ipProtocol = meta.ipProtocol;
  event->packets = 1;
  event->bytes = meta.l3Length;
  if (rte_ring_enqueue(shared_.violations, event) != 0) {
    rte_mempool_put(shared_.eventPool, event);
    ++counters_.violationsLost;
    return;
  }
  ++counters_.violationsQueued;
}

void Worker::forgetDetachedEndpoints() {
  const ForwardingState* state = state_;
  std::vector<uint32_t>& bound = bound_;
  bound.clear();
  if (state != nullptr) {
    for (const auto& attachment : state->attachments) {
      if (!attachment.uplink) {
        bound.push_back(attachment.endpointSlot);
      }
    }
  }
  // Slots are never reused, so a slot missing now is an endpoint gone for good: its flows go
  // with it rather than lingering until they idle out.
  const bool someGone = std::any_of(boundSlots_.begin(), boundSlots_.end(), [&](uint32_t slot) {
    return std::find(bound.begin(), bound.end(), slot) == bound.end();
  });
  if (someGone) {
    const auto detached = [&](uint32_t slot) {
      return slot != NoEndpoint && std::find(bound.begin(), bound.end(), slot) == bound.end();
    };
    pipeline_.forget([&](Flow flow) {
      return detached(flow.cold().srcEndpoint) || detached(flow.cold().dstEndpoint);
    });
  }
  boundSlots_.swap(bound);  // both keep their reserved room
}

FlowSummary Worker::summarise(Flow flow, bool ended) {
  const rules::PolicySnapshot* policy = state_ != nullptr ? state_->policy.get() : nullptr;
  const FlowCold& cold = flow.cold();
  FlowSummary summary;
  summary.srcIp = flow.initiatorIp();
  summary.dstIp = flow.responderIp();
  summary.ipProtocol = flow.ipProtocol();
  summary.srcPort = flow.initiatorPort();
  summary.dstPort = flow.responderPort();
  summary.srcIdentity = cold.srcIdentity;
  summary.dstIdentity = cold.dstIdentity;
  summary.srcEndpoint = cold.srcEndpoint;
  summary.dstEndpoint = cold.dstEndpoint;
  summary.state = flow.hot().state;
  summary.classified = flow.hot().classified;
  summary.classification = flow.classification();
  const rules::Verdict verdict = flow.verdict(policy);
  summary.enforced = verdict.enforced;
  if (ended) {
    // Its last verdict, whatever generation it came from (named "superseded" if not current).
    summary.decision = verdict.decision;
    copyName(summary.rule,
             policy != nullptr ? policy->ruleName(verdict) : rules::PolicySnapshot::SupersededRule);
  } else if (policy == nullptr) {
    summary.decision = rules::Decision::NeedL7;
    copyName(summary.rule, "pending");
  } else {
    // A verdict of an earlier generation is judged again at the flow's next packet, which a
    // closed flow may never have: shown as the policy in force judges it now.
    const rules::Verdict now =
        flow.verdictCurrent(*policy) ? verdict : Pipeline::judge(flow, *policy);
    summary.decision = now.decision;
    summary.enforced = now.enforced;
    copyName(summary.rule,
             now.decision == rules::Decision::NeedL7 ? "pending" : policy->ruleName(now));
  }
  summary.packets = flow.totalPackets();
  summary.bytes = flow.totalBytes();
  summary.dropped = cold.droppedPackets;
  summary.ended = ended;
  if (OffloadCounts wire[2]; !ended && offloadCounts(flow, false, wire)) {
    summary.packets += wire[0].packets + wire[1].packets;
    summary.bytes += wire[0].bytes + wire[1].bytes;
  }
  summary.offloaded = !ended && offloadedNow(flow);
  return summary;
}

void Worker::housekeeping() {
  clock_.anchor();
  nowNs_ = clock_.monotonicNs();
  realtimeNs_ = clock_.realtimeNs();
  nextHousekeepingNs_ = nowNs_ + HousekeepingNs;
  pipeline_.expire(nowNs_, ExpireBudget);
  forgetDetachedEndpoints();
  counters_.pipeline = pipeline_.counters();
  counters_.flows = pipeline_.flows().size();
  // Built here, off the per-packet path, only when the control thread asked for it.
  std::vector<FlowSummary>& dump = dump_;
  dump.clear();
  const bool dumping = flowsRequested_.load(std::memory_order_acquire);
  if (dumping) {
    pipeline_.flows().forEach([&](Flow flow) {
      if (dump.size() < MaxFlowDump) {
        dump.push_back(summarise(flow, false));
      }
    });
    // Then the flows that ended lately, newest first: what succeeded stays visible a while.
    for (size_t i = 0; i < endedCount_ && dump.size() < MaxFlowDump; ++i) {
      dump.push_back(ended_[(endedNext_ + RecentEnded - 1 - i) % RecentEnded]);
    }
  }
  // try_lock: publishing is best effort and must never make the fast path wait.
  if (publishedMutex_.try_lock()) {
    published_ = counters_;
    if (dumping) {
      publishedFlows_.swap(dump);
      flowsRequested_.store(false, std::memory_order_relaxed);
      flowsSequence_.fetch_add(1, std::memory_order_release);
    }
    publishedMutex_.unlock();
  }
}

}  // namespace bulkhead::dataplane
