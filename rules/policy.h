#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/cidr.h"
#include "rules/diagnostic.h"
#include "rules/selector.h"

namespace bulkhead::rules {

// The documents operators write (apiVersion bulkhead.io/v1, kind SegmentationPolicy), as loaded
// and validated. Nothing here is resolved against endpoints: that is the compiler's job.

enum class Mode { Enforce, Monitor };
// What an enforced denial does to the flow's sender: nothing it can see (drop), or a TCP reset or
// an ICMP destination-unreachable (administratively prohibited) right away, so that its client
// fails at once rather than after its timeout (reject).
enum class DenyAction { Drop, Reject };
enum class Direction { Ingress, Egress };
enum class L4Protocol : uint8_t { Any = 0, ICMP = 1, TCP = 6, UDP = 17, ICMPv6 = 58, SCTP = 132 };
enum class Entity { World, Host, All };
// AdminNetworkPolicy's tiers (docs/policy.md, "Admin tiers"): admin policies are asked first, in
// priority order; the application policies (bulkhead's own kind by default, NetworkPolicy,
// CiliumNetworkPolicy) next; baseline policies only where nothing above decided.
enum class Tier : uint8_t { Admin, Application, Baseline };
// What a rule of the admin or baseline tier does to what it matches. Pass (admin only) hands the
// flow down to the application tier.
enum class RuleAction : uint8_t { Allow, Deny, Pass };

const char* toString(Mode mode);

// DNS-subdomain style, as Kubernetes object names: they appear in logs and rule names.
bool validPolicyName(std::string_view name);
const char* toString(DenyAction action);
const char* toString(Direction direction);
const char* toString(L4Protocol protocol);
const char* toString(Entity entity);
const char* toString(Tier tier);
const char* toString(RuleAction action);

// AdminNetworkPolicy's range of priorities; lower is asked first.
inline constexpr uint32_t MaxAdminPriority = 1000;

// One entry of `ports`: a port or an inclusive range on one L4 protocol. 0-65535 is any port.
// A named port (`name` set; first/last unused) is the port the destination endpoint gives that
// name with its label port.bulkhead.io/<name> (docs/policy.md, "Named ports").
struct PortProtocol {
  uint16_t first = 0;
  uint16_t last = 65535;
  L4Protocol protocol = L4Protocol::Any;
  std::string name;
  SourceLocation where;
};

// Kubernetes' IANA_SVC_NAME: at most 15 lower-case letters, digits and '-', with a letter, not
// starting or ending with '-' nor holding "--".
bool validPortName(std::string_view name);

// `l7`: the flow's application protocol (nDPI names, matched against master or app protocol)
// and host name (HTTP Host, TLS SNI, DNS query name). Empty lists do not constrain.
struct L7Rule {
  std::vector<std::string> protocols;
  std::vector<std::string> hosts;
  SourceLocation where;
};

struct PortRule {
  std::vector<PortProtocol> ports;  // empty: any port
  std::optional<L7Rule> l7;
  SourceLocation where;
};

// One ingress or egress rule. A rule with no peer selects every peer; with no toPorts, every
// port. Several peer kinds in one rule are a union.
struct PeerRule {
  std::vector<EndpointSelector> endpoints;
  std::vector<Entity> entities;
  std::vector<CidrSet> cidrs;  // toCIDR (no exceptions) and toCIDRSet
  std::vector<PortRule> toPorts;
  // Admin and baseline tiers: what the rule does, and its name (AdminNetworkPolicy's, for logs).
  RuleAction action = RuleAction::Allow;
  std::string name;
  // AdminNetworkPolicy's `networks`: the CIDRs match every peer's address, containers' too, not
  // only the world's (as that API defines; anti-spoofing proves a container's address).
  bool cidrsMatchEndpoints = false;
  SourceLocation where;

  bool selectsAnyPeer() const { return endpoints.empty() && entities.empty() && cidrs.empty(); }
};

struct Policy {
  std::string name;
  Mode mode = Mode::Enforce;
  Tier tier = Tier::Application;
  uint32_t priority = 0;  // admin tier: 0 (asked first) to MaxAdminPriority
  DenyAction denyAction = DenyAction::Drop;
  EndpointSelector endpointSelector;
  // Present (even empty) means the selected endpoints are default-deny in that direction. In the
  // admin and baseline tiers, the rules in the order they are asked, each with its action; they
  // make nothing default-deny.
  std::optional<std::vector<PeerRule>> ingress;
  std::optional<std::vector<PeerRule>> egress;
  // Deny rules (Cilium's ingressDeny/egressDeny): a flow one matches is denied whatever any
  // rule allows. Present, they make the direction default-deny too, as allow rules do, unless
  // enableDefaultDeny says otherwise for it.
  std::optional<std::vector<PeerRule>> ingressDeny;
  std::optional<std::vector<PeerRule>> egressDeny;
  // enableDefaultDeny.{ingress,egress}; nullopt: true for a direction the policy has rules for.
  std::optional<bool> defaultDenyIngress;
  std::optional<bool> defaultDenyEgress;
  SourceLocation where;
  SourceLocation nameWhere;  // the metadata.name value, where a duplicate is reported
};

struct PolicySet {
  std::vector<Policy> policies;
  std::vector<std::string> sources;  // files the set was loaded from
};

}  // namespace bulkhead::rules
