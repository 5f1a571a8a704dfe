#include "rules/policy_snapshot.h"

#include <algorithm>

#include "rules/rule_match.h"

namespace bulkhead::rules {
namespace {

using CompiledRule = PolicySnapshot::CompiledRule;
using DirectionalPolicy = PolicySnapshot::DirectionalPolicy;

bool l7Matches(const CompiledRule& rule, const AppProtocol& app, std::string_view host) {
  return protocolMatches(rule, app) && hostMatches(rule, host);
}

struct DirectionResult {
  Decision decision = Decision::Allow;
  uint32_t rule = Verdict::NoRule;
  bool enforced = false;  // for Deny: an enforce-mode policy denies it
  bool rejects = false;   // for an enforced Deny: the side's policies say reject
};

// Both inlined into verdict(): returned as calls, their small results go through the stack,
// and reading them back right after their narrow stores stalls store forwarding (~40 cycles of
// every new flow's lookup, measured with perf on bench/pipeline_bench).
#define BULKHEAD_INLINE inline __attribute__((always_inline))

// With `enforceOnly`, only the rules of enforce-mode policies can allow.
BULKHEAD_INLINE DirectionResult evaluate(const DirectionalPolicy& policy, const std::vector<CompiledRule>& compiled,
                         IdentityId peer, const IpAddress& peerIp, const FlowQuery& query,
                         bool enforceOnly) {
  bool needL7 = false;
  for (const uint32_t index : policy.rules) {
    const CompiledRule& rule = compiled[index];
    if (enforceOnly && !rule.enforce) {
      continue;
    }
    if (!peerMatches(rule, peer, peerIp) ||
        !portMatches(rule, query.ipProtocol, query.dstPort, query.dst)) {
      continue;
    }
    if (!rule.hasL7) {
      return {Decision::Allow, rule.ref};
    }
    if (!query.app) {
      needL7 = true;
      continue;
    }
    if (l7Matches(rule, *query.app, query.host)) {
      return {Decision::Allow, rule.ref};
    }
  }
  return {needL7 ? Decision::NeedL7 : Decision::Deny, Verdict::NoRule};
}

// The deny rules of one direction. An enforce-mode rule that matches denies, enforced; a
// monitor-mode one only reports. NeedL7 while a rule with l7 could still match once the
// protocol is known. Precedence: an enforced match, an enforced rule pending, a monitor match,
// a monitor rule pending.
BULKHEAD_INLINE DirectionResult evaluateDeny(const DirectionalPolicy& policy,
                                             const std::vector<CompiledRule>& compiled,
                                             IdentityId peer, const IpAddress& peerIp,
                                             const FlowQuery& query) {
  DirectionResult monitored;
  bool pendingEnforced = false;
  bool pendingMonitored = false;
  for (const uint32_t index : policy.denyRules) {
    const CompiledRule& rule = compiled[index];
    if (!peerMatches(rule, peer, peerIp) ||
        !portMatches(rule, query.ipProtocol, query.dstPort, query.dst)) {
      continue;
    }
    if (rule.hasL7 && !query.app) {
      (rule.enforce ? pendingEnforced : pendingMonitored) = true;
      continue;
    }
    if (rule.hasL7 && !l7Matches(rule, *query.app, query.host)) {
      continue;
    }
    if (rule.enforce) {
      return {Decision::Deny, rule.ref, true, rule.reject};
    }
    if (monitored.decision == Decision::Allow) {
      monitored = {Decision::Deny, rule.ref, false, false};
    }
  }
  if (pendingEnforced) {
    return {Decision::NeedL7, Verdict::NoRule, true};
  }
  if (monitored.decision == Decision::Deny) {
    return monitored;
  }
  return pendingMonitored ? DirectionResult{Decision::NeedL7, Verdict::NoRule, false}
                          : DirectionResult{};
}

// The allow rules' decision. The rules of all policies are a union, but a monitor-mode policy
// only reports: what the enforce-mode policies deny stays denied (and enforced) even if a monitor
// rule would allow it, so adding a monitor policy never opens a hole.
BULKHEAD_INLINE DirectionResult decideAllow(const DirectionalPolicy* policy,
                                            const std::vector<CompiledRule>& compiled,
                                            IdentityId peer, const IpAddress& peerIp,
                                            const FlowQuery& query) {
  if (!policy->isolated) {
    return {};
  }
  DirectionResult all = evaluate(*policy, compiled, peer, peerIp, query, false);
  if (!policy->enforced) {
    return all;
  }
  if (all.decision == Decision::Deny) {
    all.enforced = true;
    all.rejects = policy->rejects;
    return all;
  }
  DirectionResult enforcedOnly = evaluate(*policy, compiled, peer, peerIp, query, true);
  if (enforcedOnly.decision == Decision::Allow) {
    return all;
  }
  enforcedOnly.enforced = true;
  enforcedOnly.rejects = enforcedOnly.decision == Decision::Deny && policy->rejects;
  return enforcedOnly;
}

// The application tier's decision: deny rules before every allow (docs/policy.md, "Deny
// rules").
BULKHEAD_INLINE DirectionResult decideApplication(const DirectionalPolicy* policy,
                                                  const std::vector<CompiledRule>& compiled,
                                                  IdentityId peer, const IpAddress& peerIp,
                                                  const FlowQuery& query) {
  if (policy->denyRules.empty()) {
    return decideAllow(policy, compiled, peer, peerIp, query);
  }
  const DirectionResult denied = evaluateDeny(*policy, compiled, peer, peerIp, query);
  if (denied.decision == Decision::Deny && denied.enforced) {
    return denied;
  }
  const DirectionResult allowed = decideAllow(policy, compiled, peer, peerIp, query);
  if (denied.decision == Decision::Allow ||
      (allowed.decision == Decision::Deny && allowed.enforced)) {
    return allowed;
  }
  if (denied.decision == Decision::NeedL7) {
    if (denied.enforced) {
      return denied;  // an enforced deny may yet match: wait for the protocol
    }
    return allowed.decision == Decision::Deny
               ? allowed
               : DirectionResult{Decision::NeedL7, Verdict::NoRule,
                                 allowed.decision == Decision::NeedL7 && allowed.enforced};
  }
  // A monitor-mode deny rule matched: reported, unless the allow rules are still waiting.
  return allowed.decision == Decision::NeedL7 ? allowed : denied;
}

// The first rule of a tier that matches, or NoRule. With `enforceOnly`, a monitor-mode
// policy's rules are not asked. Tier rules are L3/L4: they never wait for the protocol.
uint32_t firstTierMatch(const std::vector<uint32_t>& rules,
                        const std::vector<CompiledRule>& compiled, IdentityId peer,
                        const IpAddress& peerIp, const FlowQuery& query, bool enforceOnly) {
  for (const uint32_t index : rules) {
    const CompiledRule& rule = compiled[index];
    if ((!enforceOnly || rule.enforce) && peerMatches(rule, peer, peerIp) &&
        portMatches(rule, query.ipProtocol, query.dstPort, query.dst)) {
      return index;
    }
  }
  return Verdict::NoRule;
}

DirectionResult tierDecision(const CompiledRule& rule) {
  if (rule.action == RuleAction::Allow) {
    return {Decision::Allow, rule.ref};
  }
  return {Decision::Deny, rule.ref, rule.enforce, rule.reject};
}

// AdminNetworkPolicy's order: the admin tier's first match decides, unless it passes; then the
// application tier, where it selects the endpoint or one of its deny rules has a say; then the
// baseline tier's first match; else the flow is allowed.
DirectionResult walkTiers(const DirectionalPolicy& policy,
                          const std::vector<CompiledRule>& compiled, IdentityId peer,
                          const IpAddress& peerIp, const FlowQuery& query, bool enforceOnly) {
  const uint32_t admin =
      firstTierMatch(policy.adminRules, compiled, peer, peerIp, query, enforceOnly);
  if (admin != Verdict::NoRule && compiled[admin].action != RuleAction::Pass) {
    return tierDecision(compiled[admin]);
  }
  const DirectionResult application = decideApplication(&policy, compiled, peer, peerIp, query);
  if (application.decision != Decision::Allow || application.rule != Verdict::NoRule) {
    return application;
  }
  const uint32_t baseline =
      firstTierMatch(policy.baselineRules, compiled, peer, peerIp, query, enforceOnly);
  return baseline != Verdict::NoRule ? tierDecision(compiled[baseline]) : DirectionResult{};
}

// With tiers, what is enforced is the walk over the enforce-mode policies' rules. A monitor-mode
// tier policy only adds reports: where it would deny what the enforced walk lets pass, the flow
// passes and is reported; it never opens what the enforced walk denies.
DirectionResult decideTiers(const DirectionalPolicy& policy,
                            const std::vector<CompiledRule>& compiled, IdentityId peer,
                            const IpAddress& peerIp, const FlowQuery& query) {
  const DirectionResult enforced = walkTiers(policy, compiled, peer, peerIp, query, true);
  if (!policy.monitoredTierRules || (enforced.decision != Decision::Allow && enforced.enforced)) {
    return enforced;
  }
  DirectionResult reported = walkTiers(policy, compiled, peer, peerIp, query, false);
  if (reported.decision == Decision::Deny && enforced.decision != Decision::Deny) {
    reported.enforced = false;
    reported.rejects = false;
    return reported;
  }
  return enforced;
}

// One direction's decision.
BULKHEAD_INLINE DirectionResult decide(const DirectionalPolicy* policy,
                                       const std::vector<CompiledRule>& compiled, IdentityId peer,
                                       const IpAddress& peerIp, const FlowQuery& query) {
  if (policy == nullptr) {
    return {};
  }
  if (policy->adminRules.empty() && policy->baselineRules.empty()) [[likely]] {
    return decideApplication(policy, compiled, peer, peerIp, query);
  }
  return decideTiers(*policy, compiled, peer, peerIp, query);
}

#undef BULKHEAD_INLINE

}  // namespace

const RuleRef* PolicySnapshot::rule(const Verdict& verdict) const {
  if (verdict.generation != generation_ || verdict.rule >= refs_.size()) {
    return nullptr;
  }
  return &refs_[verdict.rule];
}

std::string_view PolicySnapshot::ruleName(const Verdict& verdict) const {
  if (verdict.rule == Verdict::NoRule) {
    return verdict.decision == Decision::Deny ? "default-deny" : "default-allow";
  }
  const RuleRef* ref = rule(verdict);
  return ref != nullptr ? std::string_view(ref->name) : SupersededRule;
}

PolicySnapshot::PolicySnapshot(uint64_t generation, std::vector<RuleRef> refs,
                               std::vector<CompiledRule> compiled,
                               std::unordered_map<IdentityId, EndpointPolicy> endpoints,
                               size_t policyCount)
    : generation_(generation),
      refs_(std::move(refs)),
      compiled_(std::move(compiled)),
      endpoints_(std::move(endpoints)),
      policyCount_(policyCount) {}

const PolicySnapshot::EndpointPolicy* PolicySnapshot::endpointPolicy(IdentityId identity) const {
  const auto found = endpoints_.find(identity);
  return found == endpoints_.end() ? nullptr : &found->second;
}

Verdict PolicySnapshot::verdict(const FlowQuery& query) const {
  const EndpointPolicy* source = endpointPolicy(query.src);
  const EndpointPolicy* destination = endpointPolicy(query.dst);
  const DirectionResult egress =
      decide(source ? &source->egress : nullptr, compiled_, query.dst, query.dstIp, query);
  const DirectionResult ingress = decide(destination ? &destination->ingress : nullptr, compiled_,
                                         query.src, query.srcIp, query);

  Verdict verdict;
  verdict.generation = generation_;
  if (egress.decision == Decision::Deny || ingress.decision == Decision::Deny) {
    verdict.decision = Decision::Deny;
    const bool egressDenies = egress.decision == Decision::Deny;
    const bool ingressDenies = ingress.decision == Decision::Deny;
    // Enforced if either denying side is in enforce mode: monitor on one side never opens a hole
    // that the other side's enforce policy closes.
    verdict.enforced = (egressDenies && egress.enforced) || (ingressDenies && ingress.enforced);
    // Name the side that drops it: an enforced denial before a monitor-only one, else ingress.
    const bool egressDecides =
        egressDenies && (!ingressDenies || (egress.enforced && !ingress.enforced));
    verdict.deniedBy = egressDecides ? Direction::Egress : Direction::Ingress;
    // The deciding side's action: a reject answers the sender, a drop leaves it to time out.
    verdict.reject = egressDecides ? egress.rejects : ingress.rejects;
    // A deny rule that decided is named; an allow-list that allowed nothing is default-deny.
    verdict.rule = egressDecides ? egress.rule : ingress.rule;
    return verdict;
  }
  if (egress.decision == Decision::NeedL7 || ingress.decision == Decision::NeedL7) {
    verdict.decision = Decision::NeedL7;
    // Whether a denial, once the protocol is known, could be enforced: what may be held back.
    verdict.enforced = (egress.decision == Decision::NeedL7 && egress.enforced) ||
                       (ingress.decision == Decision::NeedL7 && ingress.enforced);
    return verdict;
  }
  verdict.decision = Decision::Allow;
  verdict.rule = ingress.rule != Verdict::NoRule ? ingress.rule : egress.rule;
  return verdict;
}

}  // namespace bulkhead::rules
