#include "cli/flow_report.h"

#include "dataplane/ip_protocol_name.h"
#include "text/utf8_escape.h"

namespace bulkhead::cli {

std::string FlowDescriber::endpointName(uint32_t index, rules::IdentityId identity) const {
  if (index < endpoints_.size()) {
    return endpoints_[index].name;
  }
  return identity == rules::reserved_identity::Host ? "host" : "world";
}

FlowRecord FlowDescriber::describe(dataplane::Flow flow) const {
  const dataplane::FlowCold& cold = flow.cold();
  const dpi::Classification classification = flow.classification();
  FlowRecord record;
  record.l4 = dataplane::ipProtocolName(flow.ipProtocol());
  record.ipProtocol = flow.ipProtocol();
  record.srcIp = flow.initiatorIp().toString();
  record.dstIp = flow.responderIp().toString();
  record.srcPort = flow.initiatorPort();
  record.dstPort = flow.responderPort();
  record.srcEndpoint = endpointName(cold.srcEndpoint, cold.srcIdentity);
  record.dstEndpoint = endpointName(cold.dstEndpoint, cold.dstIdentity);
  record.srcIdentity = cold.srcIdentity;
  record.dstIdentity = cold.dstIdentity;
  auto protocol =
      protocols_.describe(&classification, flow.ipProtocol(), flow.initiatorIp(),
                          flow.initiatorPort(), flow.responderIp(), flow.responderPort());
  record.masterProtocol = std::move(protocol.master);
  record.appProtocol = std::move(protocol.app);
  record.protocol = std::move(protocol.judged);
  record.guessed = std::move(protocol.guessed);
  record.confidence = dpi::toString(classification.confidence);
  record.dpiPackets = classification.packets;
  record.host = std::string(classification.hostName());
  const rules::Verdict verdict = flow.verdict(policy_);
  const bool valid = flow.hot().verdictValid;
  const bool deny = valid && verdict.decision == rules::Decision::Deny;
  record.verdict = deny ? "deny" : "allow";
  record.enforced = !deny || verdict.enforced;
  if (deny) {
    record.deniedBy = rules::toString(verdict.deniedBy);
  }
  record.rule = valid && policy_ != nullptr ? std::string(policy_->ruleName(verdict)) : "no-policy";
  record.state = dataplane::toString(flow.hot().state);
  record.packets = flow.totalPackets();
  record.bytes = flow.totalBytes();
  record.packetsDropped = cold.droppedPackets;
  record.firstSeenNs = cold.firstSeenNs;
  return record;
}

nlohmann::json toJson(const FlowRecord& record) {
  return {
      {"l4", record.l4},
      {"src_ip", record.srcIp},
      {"src_port", record.srcPort},
      {"dst_ip", record.dstIp},
      {"dst_port", record.dstPort},
      {"src_endpoint", record.srcEndpoint},
      {"dst_endpoint", record.dstEndpoint},
      {"src_identity", record.srcIdentity},
      {"dst_identity", record.dstIdentity},
      {"master_protocol", record.masterProtocol},
      {"app_protocol", record.appProtocol},
      {"protocol", record.protocol},
      {"guessed_protocol",
       record.guessed.empty() ? nlohmann::json() : nlohmann::json(record.guessed)},
      {"confidence", record.confidence},
      {"dpi_packets", record.dpiPackets},
      {"host", record.host},
      {"verdict", record.verdict},
      {"enforced", record.enforced},
      {"denied_by", record.deniedBy.empty() ? nlohmann::json() : nlohmann::json(record.deniedBy)},
      {"rule", record.rule},
      {"state", record.state},
      {"packets", record.packets},
      {"bytes", record.bytes},
      {"packets_dropped", record.packetsDropped}};
}

std::string toText(const FlowRecord& record) {
  const auto endpoint = [](const std::string& ip, uint16_t port, const std::string& name) {
    const bool v6 = ip.find(':') != std::string::npos;
    return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port) + " (" + name + ")";
  };
  std::string verdict = record.verdict;
  if (record.verdict == "deny") {
    verdict = std::string(record.enforced ? "deny" : "deny(monitor)") + " by " + record.deniedBy;
  }
  std::string line = record.l4 + " " + endpoint(record.srcIp, record.srcPort, record.srcEndpoint) +
                     " -> " + endpoint(record.dstIp, record.dstPort, record.dstEndpoint) + " " +
                     record.masterProtocol + "." + record.appProtocol;
  // When the policy judged less than nDPI named (a name the port chose, a protocol nDPI decides
  // by port), say what it judged.
  const std::string named = record.masterProtocol == record.appProtocol
                                ? record.appProtocol
                                : record.masterProtocol + "." + record.appProtocol;
  if (record.protocol != named) {
    line += " (judged as " + record.protocol + ")";
  }
  if (!record.host.empty()) {
    line += " host=" + text::escapeBytes(record.host, text::Escape::InvalidUtf8AndControls);
  }
  line += " " + verdict + " " + record.rule + " packets=" + std::to_string(record.packets) +
          " bytes=" + std::to_string(record.bytes);
  return line;
}

}  // namespace bulkhead::cli
