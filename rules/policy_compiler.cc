#include "rules/policy_compiler.h"

#include <algorithm>

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

CompiledRule compileRule(const PeerRule& rule, const PortRule* portRule, const IdentityIndex& index,
                         const ProtocolCatalog& catalog, uint32_t ref, bool enforce) {
  CompiledRule compiled;
  compiled.ref = ref;
  compiled.enforce = enforce;
  compiled.anyPeer = rule.selectsAnyPeer() || std::find(rule.entities.begin(), rule.entities.end(),
                                                        Entity::All) != rule.entities.end();
  if (!compiled.anyPeer) {  // any peer matches before its list is looked at
    compiled.peers = resolvePeers(rule, index);
  }
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

// One direction of a policy: its rules compiled into `pool` (one per toPorts entry, or one for a
// rule without), returning their indices.
std::vector<uint32_t> compileRules(const Policy& policy, const std::vector<PeerRule>& rules,
                                   const std::vector<uint32_t>& refs, const IdentityIndex& index,
                                   const ProtocolCatalog& catalog,
                                   std::vector<CompiledRule>& pool) {
  const bool enforce = policy.mode == Mode::Enforce;
  std::vector<uint32_t> out;
  const auto add = [&](CompiledRule rule) {
    out.push_back(static_cast<uint32_t>(pool.size()));
    pool.push_back(std::move(rule));
  };
  for (size_t position = 0; position < rules.size(); ++position) {
    const PeerRule& rule = rules[position];
    if (rule.toPorts.empty()) {
      add(compileRule(rule, nullptr, index, catalog, refs[position], enforce));
    }
    for (const auto& portRule : rule.toPorts) {
      add(compileRule(rule, &portRule, index, catalog, refs[position], enforce));
    }
  }
  return out;
}

void addRules(const Policy& policy, const std::vector<uint32_t>& rules,
              PolicySnapshot::DirectionalPolicy& target) {
  target.isolated = true;
  target.enforced = target.enforced || policy.mode == Mode::Enforce;
  target.rejects =
      target.rejects || (policy.mode == Mode::Enforce && policy.denyAction == DenyAction::Reject);
  target.rules.insert(target.rules.end(), rules.begin(), rules.end());
}

}  // namespace

PolicySnapshotPtr compilePolicy(const PolicySet& policies, const IdentityList& identities,
                                const ProtocolCatalog& catalog, uint64_t generation) {
  const IdentityIndex index(identities);
  std::vector<RuleRef> refs;
  std::vector<CompiledRule> pool;
  std::unordered_map<IdentityId, PolicySnapshot::EndpointPolicy> endpoints;

  for (const auto& policy : policies.policies) {
    // One RuleRef per written rule, shared by every identity the policy selects.
    const auto makeRefs = [&](Direction direction, const std::vector<PeerRule>& rules) {
      std::vector<uint32_t> byRule;
      for (size_t position = 0; position < rules.size(); ++position) {
        byRule.push_back(static_cast<uint32_t>(refs.size()));
        refs.push_back({policy.name, direction, position, rules[position].where,
                        policy.name + "/" + toString(direction) + "/" + std::to_string(position)});
      }
      return byRule;
    };
    const auto selected = index.select(policy.endpointSelector);
    std::vector<uint32_t> ingress;
    std::vector<uint32_t> egress;
    if (policy.ingress) {
      ingress = compileRules(policy, *policy.ingress, makeRefs(Direction::Ingress, *policy.ingress),
                             index, catalog, pool);
    }
    if (policy.egress) {
      egress = compileRules(policy, *policy.egress, makeRefs(Direction::Egress, *policy.egress),
                            index, catalog, pool);
    }
    for (const IdentityId id : selected) {
      auto& endpoint = endpoints[id];
      if (policy.ingress) {
        addRules(policy, ingress, endpoint.ingress);
      }
      if (policy.egress) {
        addRules(policy, egress, endpoint.egress);
      }
    }
  }
  return std::make_shared<const PolicySnapshot>(generation, std::move(refs), std::move(pool),
                                                std::move(endpoints), policies.policies.size());
}

}  // namespace bulkhead::rules
