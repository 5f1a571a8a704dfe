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
enum class L4Protocol : uint8_t { Any = 0, ICMP = 1, TCP = 6, UDP = 17, ICMPv6 = 58 };
enum class Entity { World, Host, All };

const char* toString(Mode mode);

// DNS-subdomain style, as Kubernetes object names: they appear in logs and rule names.
bool validPolicyName(std::string_view name);
const char* toString(DenyAction action);
const char* toString(Direction direction);
const char* toString(L4Protocol protocol);
const char* toString(Entity entity);

// One entry of `ports`: a port or an inclusive range on one L4 protocol. 0-65535 is any port.
struct PortProtocol {
  uint16_t first = 0;
  uint16_t last = 65535;
  L4Protocol protocol = L4Protocol::Any;
  SourceLocation where;
};

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
  SourceLocation where;

  bool selectsAnyPeer() const { return endpoints.empty() && entities.empty() && cidrs.empty(); }
};

struct Policy {
  std::string name;
  Mode mode = Mode::Enforce;
  DenyAction denyAction = DenyAction::Drop;
  EndpointSelector endpointSelector;
  // Present (even empty) means the selected endpoints are default-deny in that direction.
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
