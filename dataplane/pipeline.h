#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dataplane/endpoint.h"
#include "dataplane/flow_table.h"
#include "dataplane/fragment_tracker.h"
#include "dataplane/packet_meta.h"
#include "dpi/detector.h"
#include "rules/policy_snapshot.h"

struct rte_mbuf;

namespace bulkhead::dataplane {

struct PipelineConfig {
  FlowTableConfig flows;
  dpi::DetectorConfig dpi;
};

enum class Action : uint8_t { Forward, Drop };

enum class DropReason : uint8_t {
  None,
  Malformed,         // headers truncated or inconsistent
  FragmentNoFlow,    // a non-first fragment whose first fragment was never seen
  FlowTableFull,     // no room to track a new flow: fail closed
  PolicyDenied,      // enforce-mode verdict
  Count,
};

const char* toString(DropReason reason);

// Counters of one pipeline (one worker); read by the control side, summed across workers.
struct PipelineCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t forwarded = 0;
  uint64_t nonIp = 0;
  uint64_t flowsCreated = 0;
  uint64_t flowsExpired = 0;
  uint64_t monitoredViolations = 0;  // packets a monitor-mode policy would have dropped
  uint64_t dropped[static_cast<size_t>(DropReason::Count)] = {};
};

struct PacketVerdict {
  Action action = Action::Forward;
  DropReason reason = DropReason::None;
  FlowEntry* flow = nullptr;  // null for non-IP and malformed frames
  bool newFlow = false;
};

// Parse -> flow table/conntrack -> nDPI on the first packets -> cached policy verdict. One per
// worker; nothing in it is shared or locked. The caller owns the mbuf throughout.
class Pipeline {
 public:
  Pipeline(const PipelineConfig& config, const EndpointResolver& resolver, const std::string& name);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The snapshot in force for the following packets; flows re-evaluate when its generation
  // differs from the one their cached verdict came from.
  void setPolicy(const rules::PolicySnapshot* snapshot) { policy_ = snapshot; }

  PacketVerdict process(rte_mbuf* mbuf, uint64_t nowNs, uint16_t ingressPort);
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
  size_t forget(const std::function<bool(const FlowEntry&)>& gone);
  // Ends detection for every flow still classifying (nDPI's guess) and settles its verdict:
  // used when a capture ends.
  void finishDetection();

  using FlowEndHandler = std::function<void(const FlowEntry&)>;
  void setFlowEndHandler(FlowEndHandler handler) { flowEnd_ = std::move(handler); }

  FlowTable& flows() { return flows_; }
  const PipelineCounters& counters() const { return counters_; }
  const dpi::Detector& detector() const { return detector_; }

 private:
  void evaluate(FlowEntry& flow);
  void settle(FlowEntry& flow);
  PacketVerdict decide(FlowEntry& flow, bool created);

  const EndpointResolver& resolver_;
  FlowTable flows_;
  FragmentTracker fragments_;
  dpi::Detector detector_;
  const rules::PolicySnapshot* policy_ = nullptr;
  PipelineCounters counters_;
  FlowEndHandler flowEnd_;
};

}  // namespace bulkhead::dataplane
