#pragma once

#include <string_view>

#include "rules/policy.h"
#include "rules/yaml_reader.h"

namespace bulkhead::rules {

// The admin tiers of the Kubernetes network-policy-api, loaded as they are beside bulkhead's own
// kind and judged as the admin- or baseline-tier SegmentationPolicy they translate to
// (docs/policy.md, "Admin tiers"):
//   AdminNetworkPolicy         -> tier: admin, spec.priority as it is
//   BaselineAdminNetworkPolicy -> tier: baseline
//   subject {namespaces | pods {namespaceSelector, podSelector}} -> endpointSelector
//   rules {name, action, from/to, ports} -> rules with that action, in their order
//   peers namespaces, pods     -> fromEndpoints/toEndpoints (namespace labels as for NetworkPolicy)
//   networks                   -> CIDRs that match every peer's address, as the API defines
//   ports {portNumber, portRange} -> toPorts
// What a container host cannot honour (nodes peers with labels, domainNames) is an error that
// says so, never dropped or widened.
inline constexpr std::string_view AdminNetworkPolicyApiVersion =
    "policy.networking.k8s.io/v1alpha1";
inline constexpr std::string_view AdminNetworkPolicyKind = "AdminNetworkPolicy";
inline constexpr std::string_view BaselineAdminNetworkPolicyKind = "BaselineAdminNetworkPolicy";

// Reads one AdminNetworkPolicy or BaselineAdminNetworkPolicy (`baseline`) into `policy`.
void readAdminNetworkPolicy(YamlReader& reader, const YAML::Node& document, bool baseline,
                            Policy& policy);

}  // namespace bulkhead::rules
