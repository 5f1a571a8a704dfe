#include "rules/policy_compiler.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <unordered_set>

#include "rules/identity_index.h"

namespace bulkhead::rules {
namespace {

using CompiledRule = PolicySnapshot::CompiledRule;

std::vector<IdentityId> resolvePeers(const PeerRule& rule, const IdentityIndex& index) {
  std::vector<IdentityId> peers;
  for (const auto& selector : rule.endpoints) {
    const auto selected = index.select(selector);
    peers.insert(peers.end(), selected.begin(), selected.end());
  }
  for (const Entity entity : rule.entities) {
    if (entity == Entity::World) {
      peers.push_back(reserved_identity::World);
    } else if (entity == Entity::Host) {
      peers.push_back(reserved_identity::Host);
    }
  }
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

// "8080", "8080/TCP", "53/UDP", "9003/SCTP": a port.bulkhead.io/<name> label's value.
std::optional<std::pair<uint16_t, L4Protocol>> namedPortValue(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view number = text.substr(0, slash);
  unsigned port = 0;
  const auto [end, failure] = std::from_chars(number.data(), number.data() + number.size(), port);
  if (failure != std::errc() || end != number.data() + number.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  const std::string_view protocol =
      slash == std::string_view::npos ? "TCP" : text.substr(slash + 1);
  for (const L4Protocol known : {L4Protocol::TCP, L4Protocol::UDP, L4Protocol::SCTP}) {
    if (protocol == toString(known)) {
      return std::pair{static_cast<uint16_t>(port), known};
    }
  }
  return std::nullopt;
}

// Every identity that gives `port`'s name a port of the rule's protocol: a flow to it on that
// port matches. A label that names no valid port names nothing (never every port).
void resolveNamedPort(const PortProtocol& port, const IdentityList& identities,
                      std::vector<CompiledRule::NamedPort>& out) {
  const std::string key = std::string(PortNameLabelPrefix) + port.name;
  for (const auto& identity : identities) {
    const auto label = identity.labels.find(key);
    if (label == identity.labels.end()) {
      continue;
    }
    const auto value = namedPortValue(label->second);
    if (value && (port.protocol == L4Protocol::Any || port.protocol == value->second)) {
      out.push_back({identity.id, value->first, static_cast<uint8_t>(value->second)});
    }
  }
}

CompiledRule compileRule(const PeerRule& rule, const PortRule* portRule, const IdentityIndex& index,
                         const IdentityList& identities, const ProtocolCatalog& catalog,
                         uint32_t ref, bool enforce, bool reject) {
  CompiledRule compiled;
  compiled.ref = ref;
  compiled.enforce = enforce;
  compiled.reject = reject;
  compiled.action = rule.action;
  compiled.cidrsMatchEndpoints = rule.cidrsMatchEndpoints;
  compiled.anyPeer = rule.selectsAnyPeer() || std::find(rule.entities.begin(), rule.entities.end(),
                                                        Entity::All) != rule.entities.end();
  if (!compiled.anyPeer) {  // any peer matches before its list is looked at
    compiled.peers = resolvePeers(rule, index);
  }
  compiled.cidrs = rule.cidrs;
  if (portRule != nullptr) {
    compiled.ports = portRule->ports;
    for (const auto& port : portRule->ports) {
      if (!port.name.empty()) {
        resolveNamedPort(port, identities, compiled.namedPorts);
      }
    }
    std::sort(compiled.namedPorts.begin(), compiled.namedPorts.end());
    if (portRule->l7) {
      compiled.hasL7 = true;
      for (const auto& name : portRule->l7->protocols) {
        if (const auto id = catalog.find(name)) {
          compiled.protocols.push_back(*id);
        }
      }
      std::sort(compiled.protocols.begin(), compiled.protocols.end());
      for (const auto& host : portRule->l7->hosts) {
        compiled.hosts.emplace_back(host);
      }
    }
  }
  return compiled;
}

// One direction of a policy: its rules compiled into `pool` (one per toPorts entry, or one for a
// rule without), returning their indices.
std::vector<uint32_t> compileRules(const Policy& policy, const std::vector<PeerRule>& rules,
                                   const std::vector<uint32_t>& refs, const IdentityIndex& index,
                                   const IdentityList& identities, const ProtocolCatalog& catalog,
                                   std::vector<CompiledRule>& pool) {
  const bool enforce = policy.mode == Mode::Enforce;
  const bool reject = enforce && policy.denyAction == DenyAction::Reject;
  std::vector<uint32_t> out;
  const auto add = [&](CompiledRule rule) {
    out.push_back(static_cast<uint32_t>(pool.size()));
    pool.push_back(std::move(rule));
  };
  for (size_t position = 0; position < rules.size(); ++position) {
    const PeerRule& rule = rules[position];
    if (rule.toPorts.empty()) {
      add(compileRule(rule, nullptr, index, identities, catalog, refs[position], enforce, reject));
    }
    for (const auto& portRule : rule.toPorts) {
      add(compileRule(rule, &portRule, index, identities, catalog, refs[position], enforce,
                      reject));
    }
  }
  return out;
}

// What one policy brings to one direction of an endpoint it selects: its allow rules, its deny
// rules, and -- when it has rules for the direction and enableDefaultDeny does not say
// otherwise -- default-deny.
void addRules(const Policy& policy, bool isolates, const std::vector<uint32_t>& rules,
              const std::vector<uint32_t>& denyRules, PolicySnapshot::DirectionalPolicy& target) {
  if (policy.tier != Tier::Application) {  // asked in order, the first match decides
    auto& tier = policy.tier == Tier::Admin ? target.adminRules : target.baselineRules;
    tier.insert(tier.end(), rules.begin(), rules.end());
    target.monitoredTierRules = target.monitoredTierRules || policy.mode == Mode::Monitor;
    return;
  }
  if (isolates) {
    target.isolated = true;
    target.enforced = target.enforced || policy.mode == Mode::Enforce;
    target.rejects =
        target.rejects || (policy.mode == Mode::Enforce && policy.denyAction == DenyAction::Reject);
  }
  target.rules.insert(target.rules.end(), rules.begin(), rules.end());
  target.denyRules.insert(target.denyRules.end(), denyRules.begin(), denyRules.end());
}

}  // namespace

PolicySnapshotPtr compilePolicy(const PolicySet& policies, const IdentityList& identities,
                                const ProtocolCatalog& catalog, uint64_t generation) {
  const IdentityIndex index(identities);
  std::unordered_set<IdentityId> remote;
  for (const auto& identity : identities) {
    if (identity.remote) {
      remote.insert(identity.id);
    }
  }
  std::vector<RuleRef> refs;
  std::vector<CompiledRule> pool;
  std::unordered_map<IdentityId, PolicySnapshot::EndpointPolicy> endpoints;

  // Admin policies by priority (lower first; equal priorities in load order), so that each
  // endpoint's admin rules are in the order they are asked.
  std::vector<const Policy*> ordered;
  for (const auto& policy : policies.policies) {
    ordered.push_back(&policy);
  }
  const auto rank = [](const Policy* policy) {
    return policy->tier == Tier::Admin ? policy->priority : MaxAdminPriority + 1;
  };
  std::stable_sort(ordered.begin(), ordered.end(),
                   [&](const Policy* a, const Policy* b) { return rank(a) < rank(b); });
  for (const Policy* each : ordered) {
    const Policy& policy = *each;
    // One RuleRef per written rule, shared by every identity the policy selects.
    const auto makeRefs = [&](Direction direction, bool deny, const std::vector<PeerRule>& rules) {
      std::vector<uint32_t> byRule;
      const std::string section = std::string(toString(direction)) + (deny ? "Deny" : "");
      for (size_t position = 0; position < rules.size(); ++position) {
        byRule.push_back(static_cast<uint32_t>(refs.size()));
        refs.push_back({policy.name, direction, position, rules[position].where,
                        policy.name + "/" + section + "/" + std::to_string(position), deny,
                        policy.tier, rules[position].action, rules[position].name});
      }
      return byRule;
    };
    const auto compile = [&](Direction direction, bool deny,
                             const std::optional<std::vector<PeerRule>>& rules) {
      return rules ? compileRules(policy, *rules, makeRefs(direction, deny, *rules), index,
                                  identities, catalog, pool)
                   : std::vector<uint32_t>{};
    };
    const auto selected = index.select(policy.endpointSelector);
    const std::vector<uint32_t> ingress = compile(Direction::Ingress, false, policy.ingress);
    const std::vector<uint32_t> egress = compile(Direction::Egress, false, policy.egress);
    const std::vector<uint32_t> ingressDeny = compile(Direction::Ingress, true, policy.ingressDeny);
    const std::vector<uint32_t> egressDeny = compile(Direction::Egress, true, policy.egressDeny);
    const bool hasIngress = policy.ingress || policy.ingressDeny;
    const bool hasEgress = policy.egress || policy.egressDeny;
    const bool isolatesIngress = hasIngress && policy.defaultDenyIngress.value_or(true);
    const bool isolatesEgress = hasEgress && policy.defaultDenyEgress.value_or(true);
    for (const IdentityId id : selected) {
      if (remote.count(id)) {
        continue;
      }
      auto& endpoint = endpoints[id];
      if (hasIngress) {
        addRules(policy, isolatesIngress, ingress, ingressDeny, endpoint.ingress);
      }
      if (hasEgress) {
        addRules(policy, isolatesEgress, egress, egressDeny, endpoint.egress);
      }
    }
  }
  return std::make_shared<const PolicySnapshot>(generation, std::move(refs), std::move(pool),
                                                std::move(endpoints), policies.policies.size());
}

}  // namespace bulkhead::rules
