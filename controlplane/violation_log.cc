#include "controlplane/violation_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "dataplane/ip_protocol_name.h"
#include "dataplane/packet_meta.h"
#include "rules/protocol_names.h"
#include "rules/rule_match.h"
#include "text/json_text.h"
#include "text/time_text.h"

namespace bulkhead::controlplane {
namespace {

using dataplane::ViolationEvent;
using dataplane::ViolationKind;

// Who the endpoints are: this host's by slot, other hosts' by address.
struct Lookups {
  const EndpointLookup& endpoints;
  const RemoteLookup& remote;
};

// One side of the flow as the log names it: an endpoint, or the entity standing for everything
// that is not one.
struct Peer {
  bool endpoint = false;
  std::string name;
  rules::Labels labels;
};

Peer resolvePeer(uint32_t slot, rules::IdentityId identity, const rules::IpAddress& ip,
                 const Lookups& lookups) {
  if (slot != UINT32_MAX && lookups.endpoints) {
    if (auto info = lookups.endpoints(slot)) {
      return {true, std::move(info->name), std::move(info->labels)};
    }
  }
  // Beyond the uplink, another host's endpoint has an identity of its own.
  if (slot == UINT32_MAX && identity >= rules::reserved_identity::FirstEndpoint && lookups.remote) {
    if (auto info = lookups.remote(ip)) {
      return {true, std::move(info->name), std::move(info->labels)};
    }
  }
  return {false, identity == rules::reserved_identity::Host ? "host" : "world", {}};
}

// The events come from the workers through shared memory: never trust a terminator to be there.
std::string boundedString(const char* text, size_t capacity) {
  return std::string(text, strnlen(text, capacity));
}

nlohmann::ordered_json peerJson(const Peer& peer, rules::IdentityId identity,
                                const rules::IpAddress& ip, uint16_t port) {
  nlohmann::ordered_json labels = nlohmann::ordered_json::object();
  for (const auto& [key, value] : peer.labels) {
    labels[key] = value;
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["endpoint"] = peer.name;
  out["labels"] = std::move(labels);
  out["identity"] = identity;
  // A spoofed non-IP frame (ARP, say) has no address to report.
  out["ip"] = ip.family == 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(ip.toString());
  out["port"] = port;
  return out;
}

// "<protocol> to <destination> port <N> is not allowed by any rule", naming the protocol the
// policy judged: only what inspection of the flow's own bytes established counts there (see
// dpi::Classification), so a flow nDPI could not prove is reported by its L4 protocol.
std::string policyReason(const ViolationEvent& event, const Peer& dst, const std::string& judged) {
  std::string where = dst.endpoint || event.dstIp.family == 0 ? dst.name : event.dstIp.toString();
  if (rules::hasPorts(event.ipProtocol)) {
    where += " port " + std::to_string(event.dstPort);
  }
  if (judged == "Unknown") {
    return "no rule allows " + dataplane::ipProtocolName(event.ipProtocol) + " to " + where;
  }
  return judged + " to " + where + " is not allowed by any rule";
}

// Built in the documented key order so that a line reads naturally in `tail -f`.
nlohmann::ordered_json buildViolation(const ViolationEvent& event, const Lookups& lookup,
                                      const dpi::ProtocolReporter& protocols,
                                      const Explainer& explain) {
  const bool limit = event.kind == ViolationKind::EndpointFlowLimit;
  // Neither a spoofed frame nor a flow refused at its first packet was judged by the policy.
  const bool spoof = event.kind == ViolationKind::Spoof || limit;
  const Peer src = resolvePeer(event.srcEndpoint, event.srcIdentity, event.srcIp, lookup);
  const Peer dst = resolvePeer(event.dstEndpoint, event.dstIdentity, event.dstIp, lookup);
  const bool ip = event.srcIp.family != 0;

  const dpi::ProtocolReport protocol =
      protocols.describe(event.classified ? &event.classification : nullptr, event.ipProtocol,
                         event.srcIp, event.srcPort, event.dstIp, event.dstPort);

  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["time"] = text::formatTimeNs(event.timeNs);
  out["kind"] = limit ? "flow-limit" : spoof ? "spoof" : "policy";
  out["action"] = !event.enforced ? "log" : event.rejected ? "reject" : "drop";
  out["mode"] = event.enforced ? "enforce" : "monitor";
  out["src"] = peerJson(src, event.srcIdentity, event.srcIp, event.srcPort);
  out["dst"] = peerJson(dst, event.dstIdentity, event.dstIp, event.dstPort);
  out["l4"] = ip ? nlohmann::ordered_json(dataplane::ipProtocolName(event.ipProtocol))
                 : nlohmann::ordered_json();
  out["master_protocol"] = protocol.master;
  out["app_protocol"] = protocol.app;
  out["protocol"] = spoof ? nlohmann::ordered_json() : nlohmann::ordered_json(protocol.judged);
  out["guessed_protocol"] = spoof || protocol.guessed.empty()
                                ? nlohmann::ordered_json()
                                : nlohmann::ordered_json(protocol.guessed);
  out["host"] = boundedString(event.classification.host.data(), event.classification.host.size());
  out["rule"] = boundedString(event.rule.data(), event.rule.size());
  out["denied_by"] =
      spoof ? nlohmann::ordered_json() : nlohmann::ordered_json(rules::toString(event.deniedBy));
  out["reason"] = limit ? src.name +
                              " has as many flows open as maxFlowsPerEndpoint allows; "
                              "its new flows are dropped until some end"
                  : spoof ? "source address is not the endpoint's"
                          : policyReason(event, dst, protocol.judged);
  if (!spoof && explain) {
    if (const auto why = explain(event)) {
      const Peer& peer = event.deniedBy == rules::Direction::Egress ? dst : src;
      out["closest_rule"] = why->closestRule.empty() ? nlohmann::ordered_json()
                                                     : nlohmann::ordered_json(why->closestRule);
      nlohmann::ordered_json mismatch = nlohmann::ordered_json::object();
      mismatch["what"] = why->what();
      mismatch["expected"] = why->expected;
      mismatch["found"] = why->found;
      out["mismatch"] = std::move(mismatch);
      if (!why->closestRule.empty()) {
        out["reason"] = why->text(peer.name);
      }
    }
  }
  out["packets"] = event.packets;
  out["bytes"] = event.bytes;
  out["forwarded_packets"] = event.forwardedPackets;
  out["policy_generation"] = event.policyGeneration;
  return out;
}

// A flow that ended, as the flow log has it (docs/violations.md, "The flow log").
nlohmann::ordered_json buildFlowRecord(const ViolationEvent& event, const Lookups& lookup,
                                       const dpi::ProtocolReporter& protocols) {
  const Peer src = resolvePeer(event.srcEndpoint, event.srcIdentity, event.srcIp, lookup);
  const Peer dst = resolvePeer(event.dstEndpoint, event.dstIdentity, event.dstIp, lookup);
  const dpi::ProtocolReport protocol =
      protocols.describe(event.classified ? &event.classification : nullptr, event.ipProtocol,
                         event.srcIp, event.srcPort, event.dstIp, event.dstPort);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["time"] = text::formatTimeNs(event.timeNs);
  out["kind"] = "flow";
  out["src"] = peerJson(src, event.srcIdentity, event.srcIp, event.srcPort);
  out["dst"] = peerJson(dst, event.dstIdentity, event.dstIp, event.dstPort);
  out["l4"] = dataplane::ipProtocolName(event.ipProtocol);
  out["master_protocol"] = protocol.master;
  out["app_protocol"] = protocol.app;
  out["protocol"] = protocol.judged;
  out["host"] = boundedString(event.classification.host.data(), event.classification.host.size());
  out["verdict"] = event.decision == rules::Decision::Allow  ? "allow"
                   : event.decision == rules::Decision::Deny ? "deny"
                                                             : "pending";
  out["mode"] = event.enforced ? "enforce" : "monitor";
  out["rule"] = boundedString(event.rule.data(), event.rule.size());
  out["packets"] = event.packets;
  out["bytes"] = event.bytes;
  out["packets_dropped"] = event.packets - std::min(event.packets, event.forwardedPackets);
  out["duration_ms"] = static_cast<double>(event.durationNs / 1000) / 1000.0;
  out["policy_generation"] = event.policyGeneration;
  return out;
}

nlohmann::ordered_json buildLine(const ViolationEvent& event, const Lookups& lookup,
                                 const dpi::ProtocolReporter& protocols, const Explainer& explain) {
  return event.kind == ViolationKind::FlowEnd ? buildFlowRecord(event, lookup, protocols)
                                              : buildViolation(event, lookup, protocols, explain);
}

}  // namespace

nlohmann::json violationToJson(const ViolationEvent& event, const EndpointLookup& lookup,
                               const dpi::ProtocolReporter& protocols, const Explainer& explain) {
  const RemoteLookup none;
  return nlohmann::json(buildLine(event, {lookup, none}, protocols, explain));
}

std::unique_ptr<ViolationLog> ViolationLog::open(const LogTarget& target, EndpointLookup lookup,
                                                 const dpi::ProtocolReporter& protocols,
                                                 std::string* error) {
  std::string why;
  auto sink = openLogSink(target, &why);
  if (!sink) {
    if (error != nullptr) {
      *error = why;
    }
    return nullptr;
  }
  return std::unique_ptr<ViolationLog>(
      new ViolationLog(std::move(sink), std::move(lookup), protocols));
}

ViolationLog::ViolationLog(std::unique_ptr<LogSink> sink, EndpointLookup lookup,
                           const dpi::ProtocolReporter& protocols)
    : lookup_(std::move(lookup)),
      protocols_(protocols),
      sink_(std::move(sink)),
      path_(sink_->describe()) {}

ViolationLog::~ViolationLog() = default;

bool ViolationLog::write(const ViolationEvent& event) {
  std::string line;
  try {
    // Host names come straight from the network: escaped as every other output escapes them.
    line = text::dumpJson(buildLine(event, {lookup_, remote_}, protocols_, explain_));
  } catch (const std::exception& e) {
    ++writeErrors_;
    spdlog::warn("violation log {}: cannot format an event: {}", path_, e.what());
    return false;
  }
  return writeLine(line);
}

bool ViolationLog::writeLine(const std::string& line) {
  std::string why;
  if (!sink_->write(line, &why)) {
    ++writeErrors_;
    if (!failing_) {
      // One message per outage: a full disk would otherwise fill the other log too.
      spdlog::warn("violation log {}: write failed: {}; counting further failures", path_, why);
      failing_ = true;
    }
    return false;
  }
  if (failing_) {
    spdlog::info("violation log {}: writing again ({} write errors so far)", path_, writeErrors_);
    failing_ = false;
  }
  ++linesWritten_;
  return true;
}

bool ViolationLog::reopen(std::string* error) {
  return sink_->reopen(error);
}

}  // namespace bulkhead::controlplane
