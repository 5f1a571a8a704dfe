#pragma once

#include <string_view>

#include "rules/policy.h"
#include "rules/yaml_reader.h"

namespace bulkhead::rules {

// Kubernetes' NetworkPolicy, loaded as it is beside bulkhead's own kind, in the same files and
// with the same file:line:col diagnostics, and judged as the SegmentationPolicy it translates to
// (docs/policy.md, "Kubernetes NetworkPolicy"):
//   podSelector            -> endpointSelector (and bulkhead.io/namespace = metadata.namespace)
//   policyTypes            -> which of ingress/egress are default-deny (Kubernetes' defaults)
//   from/to podSelector    -> fromEndpoints/toEndpoints, in the policy's namespace
//   namespaceSelector      -> bulkhead.io/namespace for kubernetes.io/metadata.name, else
//                             bulkhead.io/namespace.labels.<key> (the agent's `namespaces`)
//   ipBlock {cidr, except} -> fromCIDRSet/toCIDRSet
//   ports {protocol, port, endPort} -> toPorts (TCP, UDP, SCTP)
// Named ports are the destination's port.bulkhead.io/<name> labels. What bulkhead cannot
// enforce as written is an error that says so, never dropped or widened.
inline constexpr std::string_view NetworkPolicyApiVersion = "networking.k8s.io/v1";
inline constexpr std::string_view NetworkPolicyKind = "NetworkPolicy";

// Reads one NetworkPolicy document into `policy`, reporting through `reader`.
void readNetworkPolicy(YamlReader& reader, const YAML::Node& document, Policy& policy);

}  // namespace bulkhead::rules
