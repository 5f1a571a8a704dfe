#include "controlplane/flow_question.h"

#include <map>

#include "rules/policy_compiler.h"
#include "rules/policy_explain.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {
namespace {

struct Side {
  rules::IdentityId identity = rules::reserved_identity::World;
  rules::IpAddress ip;
  std::optional<rules::Labels> labels;  // an endpoint's (named or described)
};

// "app=web,tier=front" as labels; nullopt when it is no such list.
std::optional<rules::Labels> parseLabels(const std::string& text) {
  rules::Labels labels;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string pair = text.substr(at, comma - at);
    const size_t equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      return std::nullopt;
    }
    labels[pair.substr(0, equals)] = pair.substr(equals + 1);
    at = comma + 1;
  }
  return labels;
}

}  // namespace

nlohmann::json answerFlowQuestion(const nlohmann::json& request, const rules::PolicySet& policies,
                                  const std::vector<KnownEndpoint>& endpoints,
                                  const rules::ProtocolCatalog& catalog, uint64_t generation) {
  const auto text = [&](const char* key) {
    return text::stringMember(request, key).substr(0, 1024);
  };
  const auto side = [&](const std::string& name, Side& out) -> std::string {
    if (name == "world" || name == "host") {
      out.identity =
          name == "world" ? rules::reserved_identity::World : rules::reserved_identity::Host;
      return {};
    }
    for (const auto& endpoint : endpoints) {
      if (endpoint.name == name) {
        out.labels = endpoint.labels;
        if (endpoint.ip) {
          out.ip = *endpoint.ip;
        }
        return {};
      }
    }
    if (name.find('=') != std::string::npos) {
      if ((out.labels = parseLabels(name))) {
        return {};
      }
      return "not a list of labels: " + name + " (as in app=web,tier=front)";
    }
    return "no endpoint '" + name + "' (an endpoint's name, labels such as app=web, world or host)";
  };
  Side from;
  Side to;
  for (const auto& [key, into] : {std::pair<const char*, Side*>{"from", &from}, {"to", &to}}) {
    if (const std::string failure = side(text(key), *into); !failure.empty()) {
      return {{"ok", false}, {"error", std::string(key) + ": " + failure}};
    }
  }
  // One identity per label set, as the agent numbers them: the endpoints', and the sides'.
  rules::IdentityList identities;
  std::map<rules::Labels, rules::IdentityId> ids;
  const auto identityOf = [&](const rules::Labels& labels) {
    const auto [found, inserted] = ids.emplace(
        labels,
        static_cast<rules::IdentityId>(rules::reserved_identity::FirstEndpoint + ids.size()));
    if (inserted) {
      identities.push_back({found->second, labels});
    }
    return found->second;
  };
  for (const auto& endpoint : endpoints) {
    identityOf(endpoint.labels);
  }
  for (Side* known : {&from, &to}) {
    if (known->labels) {
      known->identity = identityOf(*known->labels);
    }
  }
  rules::FlowQuery query;
  query.src = from.identity;
  query.srcIp = from.ip;
  query.dst = to.identity;
  query.dstIp = to.ip;
  if (const std::string address = text("toIp"); !address.empty()) {
    const auto parsed = rules::IpAddress::parse(address);
    if (!parsed) {
      return {{"ok", false}, {"error", "toIp: not an IP address: " + address}};
    }
    query.dstIp = *parsed;
  }
  const std::string l4 = text("l4").empty() ? "TCP" : text("l4");
  const std::map<std::string, uint8_t> protocols = {
      {"TCP", 6}, {"UDP", 17}, {"SCTP", 132}, {"ICMP", 1}, {"ICMPv6", 58}};
  const auto l4Found = protocols.find(l4);
  if (l4Found == protocols.end()) {
    return {{"ok", false}, {"error", "l4 must be TCP, UDP, SCTP, ICMP or ICMPv6, got " + l4}};
  }
  query.ipProtocol = l4Found->second;
  if (const auto port = text::unsignedMember(request, "port"); port && *port <= 65535) {
    query.dstPort = static_cast<uint16_t>(*port);
  }
  const std::string protocol = text("protocol");
  const std::string host = text("host");
  if (!protocol.empty()) {
    const auto id = catalog.find(protocol);
    if (!id) {
      return {{"ok", false},
              {"error", "protocol: nDPI has no protocol '" + protocol + "' (bulkhead protocols)"}};
    }
    query.app = rules::AppProtocol{0, *id};
    query.host = host;
  }
  const auto snapshot = rules::compilePolicy(policies, identities, catalog, generation);
  const rules::Verdict verdict = snapshot->verdict(query);
  nlohmann::json out = {{"ok", true},
                        {"policyGeneration", generation},
                        {"verdict", verdict.decision == rules::Decision::Allow  ? "allow"
                                    : verdict.decision == rules::Decision::Deny ? "deny"
                                                                                : "needs-protocol"},
                        {"rule", std::string(snapshot->ruleName(verdict))},
                        {"mode", verdict.enforced ? "enforce" : "monitor"}};
  if (verdict.decision == rules::Decision::Deny) {
    out["deniedBy"] = rules::toString(verdict.deniedBy);
    const rules::Explanation why = rules::explainDenial(
        *snapshot, query, verdict.deniedBy, [&](uint16_t id) { return catalog.name(id); });
    const std::string peer = text(verdict.deniedBy == rules::Direction::Egress ? "to" : "from");
    out["closest_rule"] =
        why.closestRule.empty() ? nlohmann::json() : nlohmann::json(why.closestRule);
    out["mismatch"] = {{"what", why.what()}, {"expected", why.expected}, {"found", why.found}};
    out["reason"] = why.text(peer);
  } else if (verdict.decision == rules::Decision::NeedL7) {
    out["reason"] = "only a rule with l7 could allow it: give --protocol (and --host)";
  }
  return out;
}

}  // namespace bulkhead::controlplane
