// The Agent's local API (docs/cli.md): one JSON request, one JSON answer, on the control thread.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "controlplane/agent.h"
#include "controlplane/flow_question.h"
#include "dataplane/ip_protocol_name.h"
#include "dataplane/port_manager.h"

namespace bulkhead::controlplane {
namespace {

nlohmann::json labelsJson(const rules::Labels& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : labels) {
    out[key] = value;
  }
  return out;
}

template <typename List>
nlohmann::json texts(const List& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& item : list) {
    out.push_back(item.toString());
  }
  return out;
}

nlohmann::json panelJson(const wire::PatchPanelCounters& c) {
  return {{"portToTrunk", c.portToTrunk},
          {"portUnknown", c.portUnknown},
          {"portTagged", c.portTagged},
          {"noTrunk", c.noTrunk},
          {"trunkToPort", c.trunkToPort},
          {"trunkUntagged", c.trunkUntagged},
          {"trunkUnknownTag", c.trunkUnknownTag},
          {"pushFailed", c.pushFailed},
          {"portToOtherTrunk", c.portToOtherTrunk},
          {"offloaded", c.offloaded},
          {"offloadStale", c.offloadStale}};
}

// Count, median, 99th percentile and maximum of the last latencies.
nlohmann::json latencyJson(const std::deque<double>& latencies) {
  if (latencies.empty()) {
    return {{"count", 0}};
  }
  std::vector<double> sorted(latencies.begin(), latencies.end());
  std::sort(sorted.begin(), sorted.end());
  const auto at = [&](double quantile) {
    return sorted[std::min(sorted.size() - 1, size_t(quantile * double(sorted.size())))];
  };
  return {{"count", sorted.size()}, {"p50", at(0.5)}, {"p99", at(0.99)}, {"max", sorted.back()}};
}

}  // namespace

nlohmann::json Agent::endpointsJson() const {
  nlohmann::json endpoints = nlohmann::json::array();
  for (const auto& endpoint : registry_->endpoints()) {
    nlohmann::json attachments = nlohmann::json::array();
    nlohmann::json ips = nlohmann::json::array();
    nlohmann::json macs = nlohmann::json::array();
    for (const auto& attachment : endpoint.attachments) {
      const auto* segment = registry_->segmentById(attachment.segment);
      attachments.push_back({{"interface", attachment.interface},
                             {"tag", attachment.tag},
                             {"segment", attachment.segment},
                             {"bridge", segment != nullptr ? segment->bridge : ""},
                             {"containerInterface", attachment.containerInterface},
                             {"ips", texts(attachment.ips)},
                             {"macs", texts(attachment.macs)}});
      for (const auto& ip : attachment.ips) {
        ips.push_back(ip.toString());
      }
      for (const auto& mac : attachment.macs) {
        macs.push_back(mac.toString());
      }
    }
    const auto& first = endpoint.attachments.front();
    const auto* segment = registry_->segmentById(first.segment);
    endpoints.push_back({{"name", endpoint.name},
                         {"identity", endpoint.identity},
                         {"labels", labelsJson(endpoint.labels)},
                         {"source", endpoint.source},
                         {"containerId", endpoint.containerId},
                         {"labelsPending", endpoint.labelsPending},
                         // The first attachment's, for one-interface endpoints and older clients.
                         {"interface", first.interface},
                         {"tag", first.tag},
                         {"bridge", segment != nullptr ? segment->bridge : ""},
                         {"ips", ips},
                         {"macs", macs},
                         {"attachments", attachments}});
  }
  return endpoints;
}

nlohmann::json Agent::status() {
  dataplane::WorkerCounters total;
  // Each worker's share: whether the patch panel spreads the conversations, and whether frames
  // still have to change worker (handedOff) or are lost doing so (handoffLost).
  nlohmann::json perWorker = nlohmann::json::array();
  for (const auto& counters : fastPath_->counters()) {
    perWorker.push_back({{"rxPackets", counters.rxPackets},
                         {"txPackets", counters.txPackets},
                         {"flows", counters.flows},
                         {"handedOff", counters.handedOff},
                         {"handoffLost", counters.handoffLost},
                         {"fromPeers", counters.fromPeers},
                         {"doorbellWaits", counters.doorbellWaits},
                         {"doorbellRings", counters.doorbellRings},
                         {"offloadInstalled", counters.offloadInstalled},
                         {"offloadFailed", counters.offloadFailed},
                         {"offloadWithdrawn", counters.offloadWithdrawn}});
    dataplane::addCounters(total, counters);
  }
  nlohmann::json droppedJson = nlohmann::json::object();
  for (size_t reason = 1; reason < static_cast<size_t>(dataplane::DropReason::Count); ++reason) {
    droppedJson[dataplane::toString(static_cast<dataplane::DropReason>(reason))] =
        total.pipeline.dropped[reason];
  }
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& policy : policy_->policies().policies) {
    policies.push_back(policy.name);
  }
  nlohmann::json segments = nlohmann::json::array();
  for (const auto& segment : registry_->segments()) {
    segments.push_back({{"id", segment.id},
                        {"bridge", segment.bridge},
                        {"uplink", segment.uplinkInterface},
                        {"uplinkPeer", segment.uplinkPeer},
                        {"uplinkTag", segment.uplinkTag},
                        {"hostIps", texts(segment.hostIps)}});
  }
  const auto* trunk = fastPath_->trunk();
  nlohmann::json wire = wire_->objects();
  wire["trunkDriver"] = trunk != nullptr ? dataplane::toString(trunk->driver) : "";
  wire["tagsInUse"] = registry_->tags().used();
  wire["protectedBridges"] = protected_;
  wire["counters"] = panelJson(wire_->counters());
  wire["offload"] = offload_ ? "established" : "none";
  nlohmann::json uplink = nullptr;
  if (!config_.uplink.empty()) {
    uplink = {{"interface", config_.uplink}};
  }
  nlohmann::json docker = nullptr;
  if (docker_) {
    docker = {
        {"socket", config_.dockerSocket},
        {"networks", dockerScope_.networks.empty() ? nlohmann::json("all")
                                                   : nlohmann::json(dockerScope_.networks)},
        {"connected", docker_->connected()},
        {"apiVersion", docker_->apiVersion()},
        {"attachLatencyMs", latencyJson(attachLatenciesMs_)},
        {"agentAttachLatencyMs", latencyJson(agentLatenciesMs_)},
        {"lastResyncMs", lastResyncMs_ < 0 ? nlohmann::json() : nlohmann::json(lastResyncMs_)}};
  }
  return {
      {"ok", true},
      {"version", BULKHEAD_VERSION},
      {"pid", getpid()},
      {"instance", config_.instance},
      {"workers", fastPath_->workerCount()},
      {"policyGeneration", policy_->generation()},
      {"policySha256", policy_->sha256()},
      {"policies", policies},
      {"publishes", publishes_},
      {"compilesSaved", policy_->compilesSaved()},
      {"uplink", uplink},
      {"failOpen", config_.failOpen},
      {"docker", docker},
      {"wire", wire},
      {"segments", segments},
      {"endpoints", endpointsJson()},
      {"metrics",
       {{"address", metrics_ ? nlohmann::json(metrics_->address()) : nlohmann::json()},
        {"error", metricsError_.empty() ? nlohmann::json() : nlohmann::json(metricsError_)},
        {"scrapes", metrics_ ? metrics_->scrapes() : 0}}},
      {"learning", learningStatusJson()},
      {"kvstore", cluster_ ? cluster_->status() : nlohmann::json()},
      {"auditLog", audit_->path().empty() ? nlohmann::json()
                                          : nlohmann::json{{"path", audit_->path()},
                                                           {"lines", audit_->linesWritten()},
                                                           {"writeErrors", audit_->writeErrors()}}},
      {"violationLog",
       {{"path", violationLog_->path()},
        {"lines", violationLog_->linesWritten()},
        {"writeErrors", violationLog_->writeErrors()}}},
      {"flowLog", flowLog_ ? nlohmann::json{{"path", flowLog_->path()},
                                            {"lines", flowLog_->linesWritten()},
                                            {"writeErrors", flowLog_->writeErrors()}}
                           : nlohmann::json()},
      {"counters",
       {{"rxPackets", total.rxPackets},
        {"txPackets", total.txPackets},
        {"txDropped", total.txDropped},
        {"flooded", total.flooded},
        {"floodCopiesLost", total.floodCopiesLost},
        {"spoofDropped", total.spoofDropped},
        {"hostFrames", total.hostFrames},
        {"untagged", total.untagged},
        {"blockedDropped", total.blockedDropped},
        {"noRoute", total.noRoute},
        {"resetsSent", total.resetsSent},
        {"rejectsSent", total.rejectsSent},
        {"rejectsLimited", total.rejectsLimited},
        {"flows", total.flows},
        {"flowsCreated", total.pipeline.flowsCreated},
        {"flowsEvicted", total.pipeline.flowsEvicted},
        {"monitoredViolations", total.pipeline.monitoredViolations},
        {"held", total.pipeline.held},
        {"heldReleasedLate", total.pipeline.heldReleasedLate},
        {"holdFull", total.pipeline.holdFull},
        {"violationsQueued", total.violationsQueued},
        {"violationsLost", total.violationsLost},
        {"violationsSuppressed", total.violationsSuppressed},
        {"flowRecordsQueued", total.flowRecordsQueued},
        {"flowRecordsLost", total.flowRecordsLost},
        {"judgedRecordsQueued", total.judgedRecordsQueued},
        {"judgedRecordsLost", total.judgedRecordsLost},
        {"doorbellWaits", total.doorbellWaits},
        {"doorbellRings", total.doorbellRings},
        {"handedOff", total.handedOff},
        {"handoffLost", total.handoffLost},
        {"fromPeers", total.fromPeers},
        {"offloadInstalled", total.offloadInstalled},
        {"offloadFailed", total.offloadFailed},
        {"offloadWithdrawn", total.offloadWithdrawn},
        {"dropped", droppedJson}}},
      {"perWorker", perWorker}};
}

nlohmann::json Agent::flowsJson() const {
  const auto peer = [&](uint32_t slot, rules::IdentityId identity, const rules::IpAddress& ip,
                        uint16_t port) {
    std::string name = identity == rules::reserved_identity::Host ? "host" : "world";
    if (slot != UINT32_MAX) {
      if (const auto info = registry_->infoForSlot(slot)) {
        name = info->name;
      }
    }
    return nlohmann::json{
        {"endpoint", name}, {"identity", identity}, {"ip", ip.toString()}, {"port", port}};
  };
  nlohmann::json list = nlohmann::json::array();
  const rules::PolicySnapshotPtr& snapshot = policy_->current();
  for (const auto& flow : fastPath_->flows()) {
    const dpi::ProtocolReport protocol =
        protocols_->describe(flow.classified ? &flow.classification : nullptr, flow.ipProtocol,
                             flow.srcIp, flow.srcPort, flow.dstIp, flow.dstPort);
    const char* verdict = flow.decision == rules::Decision::Allow  ? "allow"
                          : flow.decision == rules::Decision::Deny ? "deny"
                                                                   : "pending";
    list.push_back(
        {{"l4", dataplane::ipProtocolName(flow.ipProtocol)},
         {"src", peer(flow.srcEndpoint, flow.srcIdentity, flow.srcIp, flow.srcPort)},
         {"dst", peer(flow.dstEndpoint, flow.dstIdentity, flow.dstIp, flow.dstPort)},
         {"state", dataplane::toString(flow.state)},
         {"master_protocol", protocol.master},
         {"app_protocol", protocol.app},
         {"protocol", protocol.judged},
         {"guessed_protocol",
          protocol.guessed.empty() ? nlohmann::json() : nlohmann::json(protocol.guessed)},
         {"host", std::string(flow.classification.hostName())},
         {"verdict", verdict},
         {"enforced", flow.enforced},
         {"rule", std::string(flow.ruleName())},
         {"dpi_packets", flow.classification.packets},
         {"packets", flow.packets},
         {"bytes", flow.bytes},
         {"packets_dropped", flow.dropped},
         {"offloaded", flow.offloaded},
         {"ended", flow.ended}});
    if (flow.decision == rules::Decision::Deny && snapshot) {
      // Why, as the violation log says it: the closest rule of the policy in force and what
      // the flow did not match.
      rules::FlowQuery query;
      query.src = flow.srcIdentity;
      query.dst = flow.dstIdentity;
      query.srcIp = flow.srcIp;
      query.dstIp = flow.dstIp;
      query.ipProtocol = flow.ipProtocol;
      query.dstPort = flow.dstPort;
      if (flow.classified) {
        query.app = flow.classification.inspected;
        query.host = flow.classification.hostName();
      }
      const rules::Verdict now = snapshot->verdict(query);
      if (now.decision == rules::Decision::Deny) {
        const rules::Explanation why = rules::explainDenial(
            *snapshot, query, now.deniedBy, [this](uint16_t id) { return catalog_->name(id); });
        nlohmann::json& item = list.back();
        const std::string other =
            item[now.deniedBy == rules::Direction::Egress ? "dst" : "src"].value("endpoint", "");
        item["closest_rule"] =
            why.closestRule.empty() ? nlohmann::json() : nlohmann::json(why.closestRule);
        item["mismatch"] = {{"what", why.what()}, {"expected", why.expected}, {"found", why.found}};
        item["reason"] = why.text(other);
      }
    }
  }
  return {{"ok", true}, {"flows", list}};
}

nlohmann::json Agent::identitiesJson() const {
  nlohmann::json identities = nlohmann::json::array();
  for (const auto& identity : registry_->identities().identities()) {
    nlohmann::json endpoints = nlohmann::json::array();
    for (const auto& endpoint : registry_->endpoints()) {
      if (endpoint.identity == identity.id) {
        endpoints.push_back(endpoint.name);
      }
    }
    identities.push_back(
        {{"id", identity.id}, {"labels", labelsJson(identity.labels)}, {"endpoints", endpoints}});
  }
  return {{"ok", true}, {"identities", identities}};
}

nlohmann::json Agent::explainJson(const nlohmann::json& request) {
  if (!policy_->current()) {
    return {{"ok", false}, {"error", "no policy compiled yet"}};
  }
  std::vector<KnownEndpoint> endpoints;
  for (const auto& endpoint : registry_->endpoints()) {
    KnownEndpoint known{endpoint.name, endpoint.labels, std::nullopt};
    if (!endpoint.attachments.empty() && !endpoint.attachments.front().ips.empty()) {
      known.ip = endpoint.attachments.front().ips.front();
    }
    endpoints.push_back(std::move(known));
  }
  return answerFlowQuestion(request, policy_->policies(), endpoints, *catalog_,
                            policy_->generation());
}

nlohmann::json Agent::handle(const nlohmann::json& request) {
  if (!request.is_object()) {
    return {{"ok", false}, {"error", "a request is a JSON object"}};
  }
  const auto commandField = request.find("command");
  if (commandField == request.end() || !commandField->is_string()) {
    return {{"ok", false}, {"error", "a request needs a 'command' string"}};
  }
  const std::string command = commandField->get<std::string>();
  if (command == "ping") {
    return {{"ok", true}};
  }
  if (command == "status") {
    return status();
  }
  if (command == "reload") {
    return reloadPolicy("api");
  }
  if (command == "flows") {
    return flowsJson();
  }
  if (command == "identities") {
    return identitiesJson();
  }
  if (command == "explain") {
    return explainJson(request);
  }
  if (command == "edges") {
    return edgesJson(request);
  }
  if (command == "suggest") {
    return suggestJson(request);
  }
  if (command == "policy") {
    return {{"ok", true},
            {"policyGeneration", policy_->generation()},
            {"policySha256", policy_->sha256()},
            {"paths", policy_->paths()},
            {"files", policy_->policies().sources}};
  }
  if (command == "policy-apply") {
    return applyClusterPolicy(request);
  }
  if (command == "policy-delete") {
    return deleteClusterPolicy(request);
  }
  if (command == "attach") {
    const nlohmann::json raw = request.value("endpoint", nlohmann::json());
    api::EndpointRequest endpoint;
    std::string failure = api::parseEndpointRequest(raw, endpoint);
    if (failure.empty()) {
      failure = attachRequest(endpoint, api::toJson(endpoint));
    }
    if (!failure.empty()) {
      return {{"ok", false}, {"error", failure}};
    }
    // Enforced before the answer: a CNI ADD that returns has its container behind the wire.
    flush();
    return {{"ok", true}, {"policyGeneration", policy_->generation()}};
  }
  if (command == "detach") {
    const auto text = [&](const char* key) {
      const auto found = request.find(key);
      return found != request.end() && found->is_string() ? found->get<std::string>() : "";
    };
    const std::string name = text("name");
    const std::string interface = text("interface");
    const std::string failure = interface.empty()
                                    ? detach(name, "asked through the API")
                                    : detachInterface(name, interface, "asked through the API");
    if (!failure.empty()) {
      return {{"ok", false}, {"error", failure}};
    }
    flush();
    return {{"ok", true}, {"policyGeneration", policy_->generation()}};
  }
  return {{"ok", false}, {"error", "unknown command '" + command.substr(0, 64) + "'"}};
}

}  // namespace bulkhead::controlplane
