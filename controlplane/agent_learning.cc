// The agent's part of learning (docs/operations.md, "Learning a policy"): every flow the workers
// judged after detection becomes an observed edge in an EdgeStore, kept in the state directory
// across restarts, and `bulkhead policy suggest` asks for the allow-list it amounts to.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "controlplane/agent.h"
#include "controlplane/atomic_file.h"
#include "learning/policy_suggestion.h"
#include "learning/suggestion_diff.h"
#include "rules/policy_loader.h"
#include "rules/protocol_names.h"
#include "text/json_text.h"
#include "text/time_text.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {
namespace {

// Often enough that a crash costs little evidence, rarely enough that a large store's writes
// stay out of the way.
constexpr uint64_t EdgeSaveIntervalMs = 30000;

uint64_t realtimeNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
}

// The edges last seen within `since` of now; "" is all of them.
bool sinceFrom(const nlohmann::json& request, uint64_t* sinceNs, std::string* error) {
  const std::string since = text::stringMember(request, "since");
  *sinceNs = 0;
  if (since.empty()) {
    return true;
  }
  const auto duration = text::parseDurationNs(since);
  if (!duration) {
    *error = "since must be a duration such as 90s, 15m, 24h or 7d";
    return false;
  }
  const uint64_t now = realtimeNs();
  *sinceNs = now > *duration ? now - *duration : 0;
  return true;
}

}  // namespace

void Agent::openLearning() {
  if (!config_.learning) {
    return;
  }
  edges_ = std::make_unique<learning::EdgeStore>(config_.learnedEdges);
  edgesPath_ = config_.stateDirectory + "/edges.json";
  std::ifstream file(edgesPath_);
  if (!file) {
    return;  // a first start
  }
  std::stringstream content;
  content << file.rdbuf();
  std::string error;
  const auto document = text::parseUntrusted(content.str(), text::StateFileLimits, &error);
  if (!document || !edges_->load(*document, &error)) {
    std::error_code ec;
    std::filesystem::rename(edgesPath_, edgesPath_ + ".corrupt", ec);
    spdlog::warn("learning: {} is unreadable or corrupt ({}); moved to {}.corrupt, learning anew",
                 edgesPath_, error, edgesPath_);
    return;
  }
  spdlog::info("learning: {} observed edges from {}", edges_->size(), edgesPath_);
}

void Agent::saveEdges(bool now) {
  if (!edges_ || !edgesDirty_) {
    return;
  }
  const uint64_t nowMs = monotonicMs();
  if (!now && nowMs < edgesSavedMs_ + EdgeSaveIntervalMs) {
    return;
  }
  edgesSavedMs_ = nowMs;
  edgesDirty_ = false;
  // Host names and labels are the containers' bytes: escaped where they are not UTF-8.
  if (std::string error;
      !writeFileAtomically(edgesPath_, text::dumpJson(edges_->toJson()), &error)) {
    spdlog::error("learning: {}", error);
  }
}

void Agent::observe(const dataplane::ViolationEvent& event) {
  if (!edges_) {
    return;
  }
  const auto peer = [&](rules::IdentityId identity, uint32_t slot,
                        const rules::IpAddress& ip) -> std::optional<learning::EdgePeer> {
    learning::EdgePeer out;
    if (identity == rules::reserved_identity::Host) {
      out.kind = learning::EdgePeer::Kind::Host;
      return out;
    }
    if (identity == rules::reserved_identity::World ||
        identity == rules::reserved_identity::Unknown) {
      out.address = ip.toString();
      return out;
    }
    out.kind = learning::EdgePeer::Kind::Endpoint;
    if (const auto info = slot != UINT32_MAX ? registry_->infoForSlot(slot) : std::nullopt) {
      out.labels = info->labels;
      return out;
    }
    // Gone before the record was read: its identity still names its labels.
    for (const auto& known : registry_->identities().identities()) {
      if (known.id == identity) {
        out.labels = known.labels;
        return out;
      }
    }
    return std::nullopt;
  };
  auto src = peer(event.srcIdentity, event.srcEndpoint, event.srcIp);
  auto dst = peer(event.dstIdentity, event.dstEndpoint, event.dstIp);
  if (!src || !dst) {
    ++observationsUnresolved_;
    return;
  }
  learning::FlowObservation flow;
  flow.key.src = std::move(*src);
  flow.key.dst = std::move(*dst);
  flow.key.ipProtocol = event.ipProtocol;
  flow.key.port = event.dstPort;
  if (event.classified) {
    flow.key.protocol = rules::protocolLabel(event.classification.inspected, *catalog_);
    // From shared memory: never trust the terminator to be there.
    const char* host = event.classification.host.data();
    flow.key.host.assign(host, strnlen(host, event.classification.host.size()));
  }
  flow.decision = event.decision;
  flow.enforced = event.enforced;
  flow.rule.assign(event.rule.data(), strnlen(event.rule.data(), event.rule.size()));
  flow.packets = event.packets;
  flow.bytes = event.bytes;
  flow.timeNs = event.timeNs;
  flow.srcAddress = event.srcIp.toString();
  flow.dstAddress = event.dstIp.toString();
  edges_->record(flow);
  edgesDirty_ = true;
}

nlohmann::json Agent::learningStatusJson() const {
  if (!edges_) {
    return {{"enabled", false}};
  }
  return {{"enabled", true},
          {"edges", edges_->size()},
          {"capacity", edges_->capacity()},
          {"evicted", edges_->evicted()},
          {"flowsRecorded", edges_->flowsRecorded()},
          {"unresolved", observationsUnresolved_},
          {"stateFile", edgesPath_}};
}

nlohmann::json Agent::edgesJson(const nlohmann::json& request) const {
  if (!edges_) {
    return {{"ok", false}, {"error", "learning is off (learning: false)"}};
  }
  uint64_t sinceNs = 0;
  if (std::string error; !sinceFrom(request, &sinceNs, &error)) {
    return {{"ok", false}, {"error", error}};
  }
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& edge : edges_->edges(sinceNs)) {
    edges.push_back(learning::toJson(edge));
  }
  return {{"ok", true}, {"edges", std::move(edges)}, {"learning", learningStatusJson()}};
}

nlohmann::json Agent::suggestJson(const nlohmann::json& request) const {
  if (!edges_) {
    return {{"ok", false}, {"error", "learning is off (learning: false): nothing was recorded"}};
  }
  uint64_t sinceNs = 0;
  if (std::string error; !sinceFrom(request, &sinceNs, &error)) {
    return {{"ok", false}, {"error", error}};
  }
  learning::SuggestOptions options;
  options.endpoint = text::stringMember(request, "endpoint");
  options.includeDenied = text::boolMember(request, "includeDenied").value_or(false);
  options.hostWildcards = text::boolMember(request, "hostWildcards").value_or(false);
  const std::string mode = text::stringMember(request, "mode");
  if (mode == "monitor") {
    options.mode = rules::Mode::Monitor;
  } else if (!mode.empty() && mode != "enforce") {
    return {{"ok", false}, {"error", "mode must be enforce or monitor"}};
  }
  const auto edges = edges_->edges(sinceNs);
  const learning::Suggestion suggestion = learning::suggestPolicies(edges, options);
  if (!suggestion.endpointFound) {
    return {{"ok", false},
            {"error",
             "no recorded flow of an endpoint named '" + options.endpoint.substr(0, 256) + "'"}};
  }
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& policy : suggestion.policies) {
    policies.push_back({{"name", policy.name},
                        {"workload", policy.workload.name},
                        {"selector", policy.workload.selector},
                        {"yaml", policy.yaml}});
  }
  nlohmann::json leftOut = nlohmann::json::array();
  for (const auto& edge : suggestion.leftOut) {
    leftOut.push_back(learning::toJson(edge));
  }
  nlohmann::json out = {{"ok", true},
                        {"policies", std::move(policies)},
                        {"edges", edges.size()},
                        {"allowedEdges", suggestion.allowed.size()},
                        {"leftOut", std::move(leftOut)}};
  if (text::boolMember(request, "diff").value_or(false)) {
    const auto suggested =
        rules::loadPolicyText(learning::suggestionYaml(suggestion), "suggested", *catalog_);
    if (!suggested.ok()) {
      // The suggestion is made to load; failing to is a bug worth its own words.
      return {{"ok", false},
              {"error", "the suggestion does not load: " + rules::format(suggested.errors[0])}};
    }
    out["diff"] = learning::diffText(
        learning::diffSuggestion(edges, policy_->policies(), suggested.set, *catalog_));
  }
  return out;
}

}  // namespace bulkhead::controlplane
