#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dataplane/endpoint.h"
#include "dataplane/flow_table.h"
#include "dataplane/fragment_tracker.h"
#include "dataplane/hold_queue.h"
#include "dataplane/packet_meta.h"
#include "dpi/detector.h"
#include "rules/policy_snapshot.h"

struct rte_mbuf;

namespace bulkhead::dataplane {

// What a flow that only an L7 rule could allow may keep back while nDPI classifies it.
struct HoldConfig {
  uint32_t packets = 256;  // held at once, per pipeline; 0 turns holding off
  uint32_t perFlow = 8;
  // Longest a flow's held packets wait: past it, classification needs the other side's answer,
  // which held packets would never let come, so they go on.
  uint64_t timeoutNs = 2000000;
};

struct PipelineConfig {
  FlowTableConfig flows;
  dpi::DetectorConfig dpi;
  HoldConfig hold;
  // The flows one endpoint may have open as their initiator; 0: no limit but the table's. A
  // container that opens flows as fast as it can fills its share, not the table: its new flows
  // are then dropped (DropReason::EndpointFlowLimit) while everyone else's still start.
  uint32_t maxFlowsPerEndpoint = 0;
};

// Hold: the pipeline kept the packet (only on the mbuf path); it hands it back through
// released() or frees it with its flow.
enum class Action : uint8_t { Forward, Drop, Hold };

enum class DropReason : uint8_t {
  None,
  Malformed,          // headers truncated or inconsistent
  FragmentNoFlow,     // a non-first fragment whose first fragment was never seen
  FlowTableFull,      // no room to track a new flow: fail closed
  PolicyDenied,       // enforce-mode verdict
  EndpointFlowLimit,  // the initiating endpoint has maxFlowsPerEndpoint flows open already
  Count,
};

const char* toString(DropReason reason);

// Flows classified are counted by protocol id (the master protocol, or the app when there is
// none); ids from here on (custom protocols) share the last slot.
inline constexpr size_t CountedProtocols = 512;

// Counters of one pipeline (one worker); read by the control side, summed across workers.
struct PipelineCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t droppedBytes = 0;  // of the packets counted in dropped[]
  uint64_t forwarded = 0;
  uint64_t nonIp = 0;
  uint64_t flowsCreated = 0;
  uint64_t flowsExpired = 0;
  uint64_t flowsEvicted = 0;         // ended to make room in a full table (FullTable::EvictIdle)
  uint64_t monitoredViolations = 0;  // packets a monitor-mode policy would have dropped
  uint64_t held = 0;                 // packets kept back until their flow's verdict
  uint64_t heldReleasedLate = 0;     // of those, let go at the hold timeout, before any verdict
  uint64_t holdFull = 0;             // packets that should have been held but the queue had no room
  // Flows denied after packets of theirs had passed (an L7 verdict, a reload): cut both ways.
  uint64_t flowsCut = 0;
  uint64_t dropped[static_cast<size_t>(DropReason::Count)] = {};
  uint64_t classified[CountedProtocols] = {};
};

// Sums one pipeline's counters into a total, field by field.
void addCounters(PipelineCounters& total, const PipelineCounters& one);

// A packet's flow key, compacted and hashed ahead of its turn (Pipeline::lookAhead).
struct FlowLookahead {
  FlowKey key;  // made only for IPv6 (`keyMade`): an IPv4 key is all in `lookup`
  FlowLookup lookup;
  bool reversed = false;
  bool keyMade = false;
  bool ready = false;  // false: not a packet the flow table is asked about by its own key
};

struct PacketVerdict {
  Action action = Action::Forward;
  DropReason reason = DropReason::None;
  Flow flow;  // null for non-IP and malformed frames
  bool newFlow = false;
  // The first drop of a flow that had already passed packets: both ends should hear of it
  // (a TCP reset), or they wait on a connection that carries nothing any more.
  bool cut = false;
  // A drop the deciding policy rejects (denyAction: reject), not a cut: the sender should hear
  // of it (a TCP reset, an ICMP destination unreachable) rather than wait for its timeout.
  bool reject = false;
};

// Parse -> flow table/conntrack -> nDPI on the first packets -> cached policy verdict. One per
// worker; nothing in it is shared or locked. The caller owns the mbuf, except when the mbuf
// path answers Hold.
class Pipeline {
 public:
  Pipeline(const PipelineConfig& config, const EndpointResolver& resolver);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The snapshot in force for the following packets; flows re-evaluate when its generation
  // differs from the one their cached verdict came from.
  void setPolicy(const rules::PolicySnapshot* snapshot) { policy_ = snapshot; }
  const rules::PolicySnapshot* policy() const { return policy_; }

  PacketVerdict process(rte_mbuf* mbuf, uint64_t nowNs, uint16_t ingressPort);
  // The path that may hold: a payload packet of a flow that only an (enforced) L7 rule could
  // allow, on which nDPI has not decided, is kept back (Action::Hold), and so is every later
  // packet of a flow that holds some, to keep their order. `egress` is given back with the
  // packet when it is released. After every call (and releaseDue, expire, forget,
  // finishDetection) the caller sends released() in order, before a packet this call forwarded.
  PacketVerdict process(rte_mbuf* mbuf, const PacketMeta& meta, uint64_t nowNs,
                        uint16_t ingressPort, uint16_t egress);
  // A burst, as a worker runs it (rte_hash_lookup_bulk's stages): lookAhead() on every packet
  // of the burst -- each key hashed, its index bucket fetched while the next is hashed --, then
  // prefetchFlow() on each (the flow's line fetched from the bucket that has arrived), then
  // process() each in order with its lookahead. `meta` must be the one the packet is then
  // processed with.
  void lookAhead(const PacketMeta& meta, FlowLookahead& ahead) const;
  void prefetchFlow(const FlowLookahead& ahead) const {
    if (ahead.ready) {
      flows_.prefetchFlow(ahead.lookup);
    }
  }
  PacketVerdict process(rte_mbuf* mbuf, const PacketMeta& meta, const FlowLookahead& ahead,
                        uint64_t nowNs, uint16_t ingressPort, uint16_t egress);
  PacketVerdict process(const uint8_t* frame, uint32_t length, uint64_t nowNs,
                        uint16_t ingressPort);
  // For callers that parsed the frame already (the worker needs the headers for switching).
  PacketVerdict process(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                        uint64_t nowNs, uint16_t ingressPort);

  // Removes idle flows; `budget` bounds the slots visited so a call never stalls a burst. Each
  // expiring flow is settled (see finishDetection) and handed to the flow-end handler first.
  size_t expire(uint64_t nowNs, size_t budget);
  // Removes every flow `gone(flow)` names, at once and whatever its state (an endpoint that went
  // away takes its flows with it). Each is handed to the flow-end handler first.
  size_t forget(const std::function<bool(Flow)>& gone);
  // Ends detection for every flow still classifying (nDPI's guess) and settles its verdict:
  // used when a capture ends.
  void finishDetection();

  // Lets go of the packets of flows that have held some for longer than the hold timeout.
  uint32_t releaseDue(uint64_t nowNs);
  // Whether packets are held, to be released by a deadline.
  bool holding() const { return holds_.size() != 0; }
  // Held packets to send now, oldest first; the caller empties it.
  std::vector<HoldQueue::Released>& released() { return released_; }

  using FlowEndHandler = std::function<void(Flow)>;
  void setFlowEndHandler(FlowEndHandler handler) { flowEnd_ = std::move(handler); }
  // Told of each flow once, when it is first judged for good: after detection is over
  // (classified, or given up on), or denied by an enforce-mode policy whatever its protocol.
  // The verdict learning records; not again when a reload judges the flow again.
  using JudgedHandler = std::function<void(Flow)>;
  void setJudgedHandler(JudgedHandler handler) { judged_ = std::move(handler); }
  // Asked about a flow that looks idle before it expires: it may move the flow's last-seen time
  // on (a flow the wire carried past the pipeline) and returns whether it did.
  using IdleHandler = std::function<bool(Flow)>;
  void setIdleHandler(IdleHandler handler) { idle_ = std::move(handler); }

  // What `policy` says of `flow` now, with what is known of it so far; the flow keeps its own
  // verdict (reports show an established flow as the policy in force sees it).
  static rules::Verdict judge(Flow flow, const rules::PolicySnapshot& policy);

  FlowTable& flows() { return flows_; }
  const PipelineCounters& counters() const { return counters_; }
  const dpi::Detector& detector() const { return detector_; }

 private:
  struct Packet {
    rte_mbuf* mbuf = nullptr;  // null: the caller keeps the frame, nothing may be held
    uint16_t egress = 0;
    bool payload = false;
    uint64_t nowNs = 0;
    const FlowLookahead* ahead = nullptr;  // null: made when needed
  };
  // An established flow's packet (found by its lookahead, classified, nothing held, allowed by
  // the policy in force) is counted and sent on here; every other packet goes on to handleFlow.
  PacketVerdict handle(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                       uint16_t ingressPort, const Packet& packet);
  // `known`: the flow handle() found by the packet's key, or null (look it up, or create it).
  PacketVerdict handleFlow(const PacketMeta& meta, const uint8_t* frame, uint32_t length,
                           uint16_t ingressPort, const Packet& packet, Flow known);
  // The packet's share of its flow: counters, last seen, TCP state.
  static void track(FlowHot& hot, bool fromA, const PacketMeta& meta, uint32_t length,
                    uint64_t nowNs);
  void evaluate(Flow flow);
  void settle(Flow flow);
  PacketVerdict decide(Flow flow, bool created, uint32_t length, const Packet& packet);
  // Detection is over: its outcome goes into the flow (the host name into its extra part).
  void classified(Flow flow, const dpi::Classification& found);
  // A classified flow that holds nothing and has no host name needs no extra part any more.
  void trimExtra(Flow flow);
  // The flow's held packets go with its verdict: on to their destinations, or into the bin.
  void releaseHeld(Flow flow);
  void dropHeld(Flow flow);

  // Flows open per initiating endpoint (by the resolver's endpoint index), for
  // maxFlowsPerEndpoint; endpoints past the array's end are not limited.
  static constexpr size_t CountedEndpoints = 65536;
  void countFlowEnd(Flow flow);
  // A flow that goes while tracked (expired or evicted): settled, then let go. The caller
  // erases it.
  void endFlow(Flow flow);
  // Reported to the flow-end handler, uncounted, its DPI state and held packets let go.
  void letGo(Flow flow);

  const EndpointResolver& resolver_;
  uint32_t maxFlowsPerEndpoint_;
  std::vector<uint32_t> flowsByEndpoint_;
  FlowTable flows_;
  FragmentTracker fragments_;
  dpi::Detector detector_;
  HoldQueue holds_;
  std::vector<HoldQueue::Released> released_;
  const rules::PolicySnapshot* policy_ = nullptr;
  PipelineCounters counters_;
  FlowEndHandler flowEnd_;
  JudgedHandler judged_;
  IdleHandler idle_;
};

}  // namespace bulkhead::dataplane
