#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rules/cidr.h"
#include "rules/host_pattern.h"
#include "rules/identity.h"
#include "rules/policy.h"

namespace bulkhead::rules {

// The application protocol nDPI reported for a flow (ids of the linked nDPI; 0 is Unknown).
struct AppProtocol {
  uint16_t master = 0;
  uint16_t app = 0;
};

// What the fast path asks once per flow (and again when the policy generation changes).
struct FlowQuery {
  IdentityId src = reserved_identity::World;
  IdentityId dst = reserved_identity::World;
  IpAddress srcIp;
  IpAddress dstIp;
  uint8_t ipProtocol = 0;  // IANA number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...
  uint16_t dstPort = 0;
  std::optional<AppProtocol> app;  // nullopt: not classified yet
  std::string_view host;           // HTTP Host, TLS SNI or DNS query name, if any
};

// Names the rule that decided, for logs and `simulate` output: "<policy>/<direction>/<index>".
struct RuleRef {
  std::string policy;
  Direction direction = Direction::Ingress;
  size_t index = 0;
  SourceLocation where;
  std::string name;  // "<policy>/ingress/0", or for a deny rule "<policy>/ingressDeny/0"
  bool deny = false;
  Tier tier = Tier::Application;
  RuleAction action = RuleAction::Allow;  // admin and baseline tiers
  std::string ruleName;                   // an admin or baseline rule's own name, if it has one
};

enum class Decision : uint8_t {
  Allow,
  Deny,
  NeedL7,  // only rules with an l7 section could allow it: decide once the protocol is known
};

// A verdict outlives the snapshot it came from (a flow keeps it across reloads), so it names its
// rule by index and generation, never by pointer: PolicySnapshot::rule() resolves it, and only
// for the generation that made it.
struct Verdict {
  static constexpr uint32_t NoRule = UINT32_MAX;

  Decision decision = Decision::Allow;
  // For Deny: drop (enforce) or only report (monitor). For NeedL7: whether an enforce-mode
  // policy waits for the protocol (a denial could then drop). True for Allow.
  bool enforced = true;
  // For Deny: the side whose policy denied (ingress of the destination, egress of the source).
  Direction deniedBy = Direction::Ingress;
  // For an enforced Deny: answer the sender (TCP reset, ICMP unreachable) rather than drop
  // silently (the deciding side's denyAction).
  bool reject = false;
  // The rule that allowed, or NoRule: for Allow, no policy selects either side
  // ("default-allow"); for Deny, nothing allowed it ("default-deny").
  uint32_t rule = NoRule;
  uint64_t generation = 0;  // of the snapshot that decided
};

// An immutable, compiled policy: built off the fast path, then shared read-only by every worker
// until the next generation replaces it. Lookups allocate nothing.
class PolicySnapshot {
 public:
  struct CompiledRule {
    uint32_t ref = Verdict::NoRule;  // index into the snapshot's rules
    bool anyPeer = false;
    std::vector<IdentityId> peers;    // sorted
    std::vector<CidrSet> cidrs;       // match peers of identity World by address
    std::vector<PortProtocol> ports;  // empty: any
    bool hasL7 = false;
    std::vector<uint16_t> protocols;  // sorted nDPI ids; empty: any protocol
    std::vector<HostPattern> hosts;   // empty: any host
    bool enforce = true;  // from an enforce-mode policy; a monitor rule never opens what it denies
    bool reject = false;  // a deny rule of an enforce-mode policy with denyAction: reject
    RuleAction action = RuleAction::Allow;  // admin and baseline tiers
    bool cidrsMatchEndpoints = false;       // AdminNetworkPolicy's networks: any peer's address
    // The named entries of `ports`, resolved against every identity that names them: the port
    // a flow's destination gives that name. Sorted by destination.
    struct NamedPort {
      IdentityId destination = 0;
      uint16_t port = 0;
      uint8_t protocol = 0;
      auto operator<=>(const NamedPort&) const = default;
    };
    std::vector<NamedPort> namedPorts;
  };

  struct DirectionalPolicy {
    bool isolated = false;  // some policy selects the endpoint in this direction
    bool enforced = false;  // at least one of those policies is in enforce mode
    bool rejects = false;   // one of those in enforce mode says denyAction: reject
    // Indices into the snapshot's compiled rules, in policy order: a policy's rules are compiled
    // once and shared by every identity it selects.
    std::vector<uint32_t> rules;
    // Deny rules: asked first, whether or not the direction is isolated; one that matches denies.
    std::vector<uint32_t> denyRules;
    // The admin tier's rules in the order they are asked (priority, then load order, then rule
    // order) and the baseline tier's: the first that matches decides (Pass: the application
    // tier does). Both empty for most endpoints, whose lookup then never looks at tiers.
    std::vector<uint32_t> adminRules;
    std::vector<uint32_t> baselineRules;
    bool monitoredTierRules = false;  // one of those rules is of a monitor-mode policy
  };

  struct EndpointPolicy {
    DirectionalPolicy ingress;
    DirectionalPolicy egress;
  };

  PolicySnapshot(uint64_t generation, std::vector<RuleRef> refs, std::vector<CompiledRule> compiled,
                 std::unordered_map<IdentityId, EndpointPolicy> endpoints, size_t policyCount);

  Verdict verdict(const FlowQuery& query) const;
  // The rule `verdict` names, when this snapshot made it and it names one; else nullptr.
  const RuleRef* rule(const Verdict& verdict) const;
  // "<policy>/<direction>/<index>", "default-deny" or "default-allow"; for a rule of another
  // generation, SupersededRule.
  std::string_view ruleName(const Verdict& verdict) const;
  static constexpr std::string_view SupersededRule = "superseded";

  uint64_t generation() const { return generation_; }
  size_t policyCount() const { return policyCount_; }
  size_t ruleCount() const { return refs_.size(); }
  // nullptr if no policy selects the identity.
  const EndpointPolicy* endpointPolicy(IdentityId identity) const;
  // A DirectionalPolicy's rule by its index.
  const CompiledRule& compiledRule(uint32_t index) const { return compiled_[index]; }
  size_t compiledRuleCount() const { return compiled_.size(); }

 private:
  uint64_t generation_;
  std::vector<RuleRef> refs_;
  std::vector<CompiledRule> compiled_;
  std::unordered_map<IdentityId, EndpointPolicy> endpoints_;
  size_t policyCount_;
};

using PolicySnapshotPtr = std::shared_ptr<const PolicySnapshot>;

}  // namespace bulkhead::rules
