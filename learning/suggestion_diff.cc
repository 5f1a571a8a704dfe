#include "learning/suggestion_diff.h"

#include <set>

#include "dataplane/ip_protocol_name.h"
#include "rules/policy_compiler.h"
#include "text/utf8_escape.h"

namespace bulkhead::learning {
namespace {

rules::AppProtocol appProtocol(const std::string& label, const rules::ProtocolCatalog& catalog) {
  if (label.empty() || label == "Unknown") {
    return {};
  }
  const size_t dot = label.find('.');
  if (dot == std::string::npos) {
    return {0, catalog.find(label).value_or(0)};
  }
  return {catalog.find(label.substr(0, dot)).value_or(0),
          catalog.find(label.substr(dot + 1)).value_or(0)};
}

std::string peerText(const EdgePeer& peer) {
  switch (peer.kind) {
    case EdgePeer::Kind::Host:
      return "host";
    case EdgePeer::Kind::World:
      return peer.address.empty() ? "world" : "world " + peer.address;
    case EdgePeer::Kind::Endpoint:
      break;
  }
  const auto name = peer.labels.find(rules::reserved_labels::Name);
  return name != peer.labels.end() ? name->second : "endpoint";
}

std::string verdictText(const rules::Verdict& verdict, const std::string& rule) {
  if (verdict.decision == rules::Decision::Allow) {
    return "allow by " + rule;
  }
  return std::string(verdict.enforced ? "deny" : "deny (monitor: passes)") + " by " + rule;
}

bool passes(const rules::Verdict& verdict) {
  return verdict.decision == rules::Decision::Allow || !verdict.enforced;
}

}  // namespace

EdgeIdentities::EdgeIdentities(const std::vector<ObservedEdge>& edges) {
  for (const auto& edge : edges) {
    for (const EdgePeer* peer : {&edge.key.src, &edge.key.dst}) {
      if (peer->kind == EdgePeer::Kind::Endpoint && !ids_.contains(peer->labels)) {
        const auto id =
            static_cast<rules::IdentityId>(rules::reserved_identity::FirstEndpoint + list_.size());
        ids_.emplace(peer->labels, id);
        list_.push_back({id, peer->labels});
      }
    }
  }
}

rules::IdentityId EdgeIdentities::of(const EdgePeer& peer) const {
  switch (peer.kind) {
    case EdgePeer::Kind::Host:
      return rules::reserved_identity::Host;
    case EdgePeer::Kind::World:
      return rules::reserved_identity::World;
    case EdgePeer::Kind::Endpoint:
      break;
  }
  const auto found = ids_.find(peer.labels);
  return found != ids_.end() ? found->second : rules::reserved_identity::World;
}

rules::FlowQuery EdgeIdentities::query(const EdgeKey& key, const EdgeStats& stats,
                                       const rules::ProtocolCatalog& catalog) const {
  rules::FlowQuery query;
  query.src = of(key.src);
  query.dst = of(key.dst);
  query.srcIp = rules::IpAddress::parse(stats.srcAddress).value_or(rules::IpAddress{});
  const std::string& dst = key.dst.address.empty() ? stats.dstAddress : key.dst.address;
  query.dstIp = rules::IpAddress::parse(dst).value_or(rules::IpAddress{});
  query.ipProtocol = key.ipProtocol;
  query.dstPort = key.port;
  query.app = appProtocol(key.protocol, catalog);
  query.host = key.host;
  return query;
}

std::string edgeText(const EdgeKey& key) {
  std::string out = peerText(key.src) + " -> " + peerText(key.dst) + " " +
                    dataplane::ipProtocolName(key.ipProtocol);
  if (key.port != 0) {
    out += "/" + std::to_string(key.port);
  }
  out += " " + key.protocol;
  if (!key.host.empty()) {
    out += " host " + key.host;
  }
  return text::escapeBytes(out, text::Escape::InvalidUtf8AndControls);
}

SuggestionDiff diffSuggestion(const std::vector<ObservedEdge>& edges,
                              const rules::PolicySet& inForce, const rules::PolicySet& suggested,
                              const rules::ProtocolCatalog& catalog) {
  const EdgeIdentities identities(edges);
  const auto before = rules::compilePolicy(inForce, identities.list(), catalog, 1);
  const auto after = rules::compilePolicy(suggested, identities.list(), catalog, 2);
  SuggestionDiff diff;
  std::set<uint32_t> usedRules;
  for (const auto& edge : edges) {
    const rules::FlowQuery query = identities.query(edge.key, edge.stats, catalog);
    EdgeChange change{edge, before->verdict(query), {}, after->verdict(query), {}};
    change.beforeRule = std::string(before->ruleName(change.before));
    change.afterRule = std::string(after->ruleName(change.after));
    if (change.before.decision == rules::Decision::Allow) {
      usedRules.insert(change.before.rule);
    }
    const bool allowedAfter = change.after.decision == rules::Decision::Allow;
    if (change.before.decision != rules::Decision::Allow && allowedAfter) {
      diff.opened.push_back(std::move(change));
    } else if (passes(change.before) && !passes(change.after)) {
      diff.closed.push_back(std::move(change));
    } else {
      ++diff.unchanged;
    }
  }
  // The directions the suggestion closes that were open: only what was seen passes there now.
  for (const auto& identity : identities.list()) {
    const auto* now = before->endpointPolicy(identity.id);
    const auto* then = after->endpointPolicy(identity.id);
    if (then == nullptr) {
      continue;
    }
    const auto name = identity.labels.find(rules::reserved_labels::Name);
    const std::string shown = name != identity.labels.end() ? name->second : "an endpoint";
    for (const auto& [direction, open, closes] :
         {std::tuple{"ingress", now == nullptr || !now->ingress.enforced, then->ingress.enforced},
          std::tuple{"egress", now == nullptr || !now->egress.enforced, then->egress.enforced}}) {
      if (open && closes) {
        diff.isolated.push_back(text::escapeBytes(shown, text::Escape::InvalidUtf8AndControls) +
                                " " + direction);
      }
    }
  }
  for (uint32_t index = 0; index < before->ruleCount(); ++index) {
    rules::Verdict named;
    named.rule = index;
    named.generation = before->generation();
    const rules::RuleRef* rule = before->rule(named);
    if (rule != nullptr && !rule->deny && !usedRules.contains(index)) {
      diff.unusedRules.push_back(std::string(before->ruleName(named)) + " (" + rule->where.file +
                                 ":" + std::to_string(rule->where.line) + ")");
    }
  }
  return diff;
}

std::string diffText(const SuggestionDiff& diff) {
  std::string out;
  for (const auto& change : diff.opened) {
    out += "+ " + edgeText(change.edge.key) + ": " + std::to_string(change.edge.stats.flows) +
           " flows; in force: " + verdictText(change.before, change.beforeRule) +
           "; suggested: " + verdictText(change.after, change.afterRule) + "\n";
  }
  for (const auto& change : diff.closed) {
    out += "- " + edgeText(change.edge.key) + ": " + std::to_string(change.edge.stats.flows) +
           " flows; in force: " + verdictText(change.before, change.beforeRule) +
           "; suggested: " + verdictText(change.after, change.afterRule) + "\n";
  }
  for (const auto& direction : diff.isolated) {
    out += "- " + direction +
           ": open in force (no enforce-mode policy selects it); suggested: "
           "default-deny, only what was seen passes\n";
  }
  for (const auto& rule : diff.unusedRules) {
    out += "- " + rule + ": no recorded flow was allowed by it; the suggestion has no such rule\n";
  }
  out += "= " + std::to_string(diff.unchanged) + " recorded edges judged alike by both\n";
  return out;
}

}  // namespace bulkhead::learning
