#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/conversation_hash.h"
#include "dataplane/doorbell.h"
#include "dataplane/flow_offload.h"
#include "dataplane/forwarding_state.h"
#include "dataplane/pipeline.h"
#include "dataplane/tsc_clock.h"
#include "dataplane/violation_event.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace bulkhead::dataplane {

struct WorkerConfig {
  PipelineConfig pipeline;
  // Poll without pause (lowest latency, one core at 100%) or sleep briefly when idle, which a
  // container host sharing its cores with its workloads usually wants.
  bool busyPoll = false;
  uint32_t idleSleepMicros = 50;
  uint64_t violationIntervalNs = 10ull * 1000000000ull;
  // Every flow that ends is reported (ViolationKind::FlowEnd), for the flow log.
  bool flowRecords = false;
  // Every flow is reported once judged after detection (ViolationKind::Judged), for learning.
  bool judgedRecords = false;
};

// Counters one worker publishes for the control thread (copied, never shared while written).
struct WorkerCounters {
  PipelineCounters pipeline;
  uint64_t rxPackets = 0;
  uint64_t txPackets = 0;
  uint64_t txDropped = 0;  // the port's tx ring was full
  uint64_t flooded = 0;
  uint64_t floodCopiesLost = 0;  // no buffer for one more copy of a flooded frame
  uint64_t spoofDropped = 0;
  uint64_t hostFrames = 0;      // sent by the host on the trunk's interface itself: not forwarded
  uint64_t untagged = 0;        // on the trunk without a tag, or with a tag nothing is bound to
  uint64_t blockedDropped = 0;  // to or from an attachment that is cut off (labels pending)
  uint64_t noRoute = 0;         // unicast to an unknown destination with no uplink to send it to
  uint64_t resetsSent = 0;
  // Answers to senders of rejected packets (denyAction: reject): TCP resets and ICMP
  // unreachables sent, and those the rate limit held back (the packet was dropped silently).
  uint64_t rejectsSent = 0;
  uint64_t rejectsLimited = 0;
  uint64_t violationsQueued = 0;
  uint64_t violationsLost = 0;  // event ring or pool full: counted, never waited for
  // Not reported: the same flow (or attachment) was reported less than violationInterval ago.
  uint64_t violationsSuppressed = 0;
  uint64_t flowRecordsQueued = 0;
  uint64_t flowRecordsLost = 0;  // event ring or pool full
  uint64_t judgedRecordsQueued = 0;
  uint64_t judgedRecordsLost = 0;  // event ring or pool full: a flow learning never saw
  uint64_t doorbellWaits = 0;   // idle, blocked until the next frame (or a bound)
  uint64_t doorbellRings = 0;   // of those, woken by a frame entering the trunk
  uint64_t handedOff = 0;       // received here for a conversation another worker owns
  uint64_t handoffLost = 0;     // of those, dropped: the owner's inbox was full
  uint64_t fromPeers = 0;       // taken from this worker's inbox (handed off by the others)
  // Established-flow offload: directions put into the wire, refused by it (its map full), and
  // taken back (a FIN or RST, the flow's end, a state that voided them).
  uint64_t offloadInstalled = 0;
  uint64_t offloadFailed = 0;
  uint64_t offloadWithdrawn = 0;
  size_t flows = 0;
};

// Sums one worker's counters into a total, field by field (`flows` too).
void addCounters(WorkerCounters& total, const WorkerCounters& one);

// One flow as a worker reports it to the control thread (names are resolved there).
struct FlowSummary {
  uint8_t ipProtocol = 0;
  rules::IpAddress srcIp;  // initiator
  rules::IpAddress dstIp;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  rules::IdentityId srcIdentity = 0;
  rules::IdentityId dstIdentity = 0;
  uint32_t srcEndpoint = UINT32_MAX;
  uint32_t dstEndpoint = UINT32_MAX;
  ConnState state = ConnState::New;
  bool classified = false;
  dpi::Classification classification;
  rules::Decision decision = rules::Decision::Allow;
  bool enforced = true;
  // A fixed array, so that the worker builds the dump without allocating: room for the longest
  // rule name there is (a policy name is at most 253 characters, then "/ingress/" and an index).
  std::array<char, 272> rule{};
  std::string_view ruleName() const { return rule.data(); }
  uint64_t packets = 0;  // the wire's share of an offloaded flow included
  uint64_t bytes = 0;
  uint64_t dropped = 0;
  bool offloaded = false;  // some of its packets pass in the wire, past the fast path
  bool ended = false;      // no longer tracked: one of the worker's RecentEnded last to end
};

// Shared between the control thread and the workers; owned by the control side.
struct WorkerShared {
  std::atomic<const ForwardingState*> state{nullptr};
  std::atomic<bool> stop{false};
  rte_rcu_qsbr* rcu = nullptr;
  rte_ring* violations = nullptr;  // ViolationEvent* from `eventPool`, to the control thread
  rte_mempool* eventPool = nullptr;
  // Flow records (FlowEnd, Judged) have a ring and a pool of their own: a container opening
  // flows as fast as it can fills these, never the room violations are reported in. Null: none.
  rte_ring* records = nullptr;
  rte_mempool* recordPool = nullptr;
  rte_mempool* packetPool = nullptr;  // for the frames the worker makes (TCP resets)
  // With more than one worker, one inbox per worker (indexed by worker id; multi-producer,
  // single-consumer): the frames the others received for conversations it owns
  // (conversation_owner.h). Empty with one worker. Set before the workers start; whoever owns
  // the rings frees what is left in them once the workers have stopped.
  std::vector<rte_ring*> inboxes;
  // Where established flows are offloaded (the wire's map); null: nothing is.
  FlowOffload* offload = nullptr;
};

// One fast-path thread: polls rx queue `id` of the trunk (and, with more workers, hands each
// frame whose conversation another worker owns to that worker's inbox, and takes its own from
// its inbox), takes each frame's identity from its
// tag (the attachment it entered on), checks the source addresses of endpoint attachments,
// switches it within its segment (endpoint MACs and IPs are bound to their attachments; the rest
// is behind the segment's uplink), runs IP traffic through its own pipeline, rewrites the tag to
// the egress attachment's and sends it back into the trunk in bursts. No locks, no allocation,
// no logging per packet; violations leave through a ring.
class Worker {
 public:
  // `doorbell` (its own; may be null: then it only sleeps briefly when idle) lets the worker
  // sleep until the next frame into its trunk.
  Worker(unsigned id, const WorkerConfig& config, WorkerShared& shared,
         Doorbell* doorbell = nullptr);

  // The lcore entry point: runs until `shared.stop`.
  int run();

  // The last published counters (at most ~100 ms old).
  WorkerCounters counters() const;

  // Asks for a dump of the flow table, built by the worker at its next housekeeping (the table
  // is the worker's alone); flows() returns it once `flowsSequence()` has moved past the value
  // read before asking.
  void requestFlows() { flowsRequested_.store(true, std::memory_order_release); }
  uint64_t flowsSequence() const { return flowsSequence_.load(std::memory_order_acquire); }
  std::vector<FlowSummary> flows() const;
  static constexpr size_t MaxFlowDump = 10000;
  // The flows that ended last (expired, closed, evicted, or gone with their endpoint), kept
  // for the dump after the tracked ones.
  static constexpr size_t RecentEnded = 1024;
  static constexpr unsigned MaxWorkers = BH_MAX_WORKERS;  // handing frames to each other

 private:
  // Tells the pipeline who is on each side of a new flow: the endpoint bound to the ingress
  // attachment, and the one bound to the attachment the frame is switched to.
  class AttachmentResolver final : public EndpointResolver {
   public:
    ResolvedFlow resolve(const PacketMeta& meta, uint16_t ingressTag) const override;
    const Attachment* source = nullptr;
    const Attachment* destination = nullptr;
    const ForwardingState* state = nullptr;
  };

  // One rx burst in the stages of Pipeline::lookAhead: every frame parsed, its ingress attachment
  // found and its flow key hashed (index bucket fetched), then each flow's line fetched, then
  // each frame handled in order. Unless `owned` (frames from the inbox), frames of conversations
  // another worker owns are handed to it first, in one enqueue per owner.
  void handleBurst(rte_mbuf** burst, uint16_t count, bool owned);
  void handOff(unsigned owner, rte_mbuf* const* frames, uint16_t count);
  // `meta.vlan` is already the ingress segment when `ingressIndex` names an attachment.
  void handle(rte_mbuf* mbuf, PacketMeta& meta, int16_t ingressIndex, const FlowLookahead& ahead);
  // Within the ingress segment: the attachment the frame goes to, NoAttachment when none does.
  int16_t destinationIndex(const PacketMeta& meta, const Attachment& ingress) const;
  void flood(rte_mbuf* mbuf, const Attachment& ingress);
  void sendReleased();
  void send(rte_mbuf* mbuf, uint16_t tag);
  void flush();
  void sendResets(const uint8_t* frame, const PacketMeta& meta, uint16_t ingressTag,
                  uint16_t egressTag);
  // Tells the sender of a rejected packet: a TCP reset, or an ICMP destination unreachable
  // (administratively prohibited). At most RejectsPerSecond per worker, as a host's ICMP rate
  // limit would: a container cannot make the worker answer faster than that.
  void reject(const uint8_t* frame, uint32_t length, const PacketMeta& meta, uint16_t ingressTag);
  void reportFlow(Flow flow);
  void reportEnded(Flow flow);
  void reportJudged(Flow flow);
  // A FlowEnd or Judged record of `flow` onto the event ring; false (and nothing queued) when
  // the pool or the ring is full.
  bool queueRecord(Flow flow, ViolationKind kind);
  FlowSummary summarise(Flow flow, bool ended);
  // Established-flow offload (docs/architecture.md, "Offloaded flows"; worker_offload.cc). After a
  // packet the pipeline let through: its direction goes into the wire when the flow's verdict is
  // final and allows it; a FIN or RST takes the flow back.
  void offloadAfter(Flow flow, const PacketMeta& meta, uint16_t ingressTag, uint16_t egressTag);
  // The flow's two directions as the wire keys them; false when a side is no longer attached.
  bool offloadDirections(Flow flow, OffloadDirection (&directions)[2]) const;
  // The wire's counts of what it carried for the flow, not yet in the flow's own; false when
  // none. `take`: the entries go, and their counts into the flow.
  bool offloadCounts(Flow flow, bool take, OffloadCounts (&counts)[2]);
  void withdrawOffload(Flow flow);
  // The pipeline's idle handler: last seen from the wire.
  bool refreshOffloaded(Flow flow);
  // In the wire under the state in force.
  bool offloadedNow(Flow flow) const;
  void queueViolation(Flow flow);
  // The flow's part of an event, for a violation or a flow record; false when the pool is empty.
  ViolationEvent* flowEvent(Flow flow, ViolationKind kind, rte_mempool* pool);
  // A violation about the frame itself (no flow to name): a spoofed source, or a new flow past
  // the endpoint's limit. At most one per attachment and kind per violation interval.
  void reportAttachment(ViolationKind kind, const Attachment& attachment, const PacketMeta& meta);
  void housekeeping();
  void forgetDetachedEndpoints();
  // An empty poll past the first few: sleep briefly, or on the doorbell once quiet for long.
  void idle();

  unsigned id_;
  Doorbell* doorbell_;
  WorkerConfig config_;
  WorkerShared& shared_;
  AttachmentResolver resolver_;
  Pipeline pipeline_;
  const ForwardingState* state_ = nullptr;
  const TrunkQueue* trunk_ = nullptr;  // this worker's, in `state_`; null without one
  std::vector<uint32_t> boundSlots_;   // endpoints bound at the last housekeeping
  TscClock clock_;
  uint64_t nowNs_ = 0;       // monotonic, per loop turn
  uint64_t realtimeNs_ = 0;  // for event timestamps, per loop turn
  uint64_t nextHousekeepingNs_ = 0;
  uint32_t idlePolls_ = 0;  // empty polls in a row
  bool armed_ = false;      // the doorbell is armed
  static constexpr uint32_t RejectsPerSecond = 1000;
  uint32_t rejectTokens_ = RejectsPerSecond;  // a token bucket, refilled by nowNs_
  uint64_t rejectRefillNs_ = 0;
  std::array<uint64_t, MaxTags> lastSpoofReportNs_{};      // by attachment tag
  std::array<uint64_t, MaxTags> lastFlowLimitReportNs_{};  // by attachment tag

  static constexpr uint16_t RxBurst = 32;
  std::array<PacketMeta, RxBurst> metas_;
  std::array<FlowLookahead, RxBurst> ahead_;
  std::array<int16_t, RxBurst> ingress_{};

  std::array<std::array<rte_mbuf*, RxBurst>, MaxWorkers> handoff_{};  // by owner, per burst
  std::array<uint16_t, MaxWorkers> handoffCount_{};

  static constexpr uint16_t TxBurst = 32;
  std::array<rte_mbuf*, TxBurst> tx_{};  // into the trunk
  uint16_t txCount_ = 0;

  WorkerCounters counters_;
  mutable std::mutex publishedMutex_;
  WorkerCounters published_;
  std::atomic<bool> flowsRequested_{false};
  std::atomic<uint64_t> flowsSequence_{0};
  // Both reserved for MaxFlowDump at the start and swapped when published: a dump allocates
  // nothing on the worker (their pages are touched on the first dump, not before).
  std::vector<FlowSummary> dump_;
  std::vector<FlowSummary> publishedFlows_;  // guarded by publishedMutex_
  std::vector<uint32_t> bound_;              // forgetDetachedEndpoints' scratch, reserved
  std::vector<FlowSummary> ended_;           // a ring of RecentEnded, made at the start
  size_t endedNext_ = 0;
  size_t endedCount_ = 0;
};

}  // namespace bulkhead::dataplane
