#include "rules/policy_compiler.h"

#include <algorithm>

namespace bulkhead::rules {
namespace {

using CompiledRule = PolicySnapshot::CompiledRule;

std::vector<IdentityId> resolvePeers(const PeerRule& rule, const IdentityList& identities) {
  std::vector<IdentityId> peers;
  for (const auto& identity : identities) {
    for (const auto& selector : rule.endpoints) {
      if (selector.matches(identity.labels)) {
        peers.push_back(identity.id);
        break;
      }
    }
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

CompiledRule compileRule(const PeerRule& rule, const PortRule* portRule,
                         const IdentityList& identities, const ProtocolCatalog& catalog,
                         uint32_t ref) {
  CompiledRule compiled;
  compiled.ref = ref;
  compiled.anyPeer = rule.selectsAnyPeer() || std::find(rule.entities.begin(), rule.entities.end(),
                                                        Entity::All) != rule.entities.end();
  compiled.peers = resolvePeers(rule, identities);
  compiled.cidrs = rule.cidrs;
  if (portRule != nullptr) {
    compiled.ports = portRule->ports;
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

void addRules(const Policy& policy, const std::vector<PeerRule>& rules,
              const std::vector<uint32_t>& refs, PolicySnapshot::DirectionalPolicy& target,
              const IdentityList& identities, const ProtocolCatalog& catalog) {
  target.isolated = true;
  target.enforced = target.enforced || policy.mode == Mode::Enforce;
  for (size_t index = 0; index < rules.size(); ++index) {
    const uint32_t ref = refs[index];
    const PeerRule& rule = rules[index];
    if (rule.toPorts.empty()) {
      target.rules.push_back(compileRule(rule, nullptr, identities, catalog, ref));
      target.rules.back().enforce = policy.mode == Mode::Enforce;
    }
    for (const auto& portRule : rule.toPorts) {
      target.rules.push_back(compileRule(rule, &portRule, identities, catalog, ref));
      target.rules.back().enforce = policy.mode == Mode::Enforce;
    }
  }
}

}  // namespace

PolicySnapshotPtr compilePolicy(const PolicySet& policies, const IdentityList& identities,
                                const ProtocolCatalog& catalog, uint64_t generation) {
  std::vector<RuleRef> refs;
  std::unordered_map<IdentityId, PolicySnapshot::EndpointPolicy> endpoints;

  for (const auto& policy : policies.policies) {
    // One RuleRef per written rule, shared by every identity the policy selects.
    const auto makeRefs = [&](Direction direction, const std::vector<PeerRule>& rules) {
      std::vector<uint32_t> byRule;
      for (size_t index = 0; index < rules.size(); ++index) {
        byRule.push_back(static_cast<uint32_t>(refs.size()));
        refs.push_back({policy.name, direction, index, rules[index].where,
                        policy.name + "/" + toString(direction) + "/" + std::to_string(index)});
      }
      return byRule;
    };
    const auto ingressRefs =
        policy.ingress ? makeRefs(Direction::Ingress, *policy.ingress) : std::vector<uint32_t>{};
    const auto egressRefs =
        policy.egress ? makeRefs(Direction::Egress, *policy.egress) : std::vector<uint32_t>{};

    for (const auto& identity : identities) {
      if (!policy.endpointSelector.matches(identity.labels)) {
        continue;
      }
      auto& endpoint = endpoints[identity.id];
      if (policy.ingress) {
        addRules(policy, *policy.ingress, ingressRefs, endpoint.ingress, identities, catalog);
      }
      if (policy.egress) {
        addRules(policy, *policy.egress, egressRefs, endpoint.egress, identities, catalog);
      }
    }
  }
  return std::make_shared<const PolicySnapshot>(generation, std::move(refs), std::move(endpoints),
                                                policies.policies.size());
}

}  // namespace bulkhead::rules
