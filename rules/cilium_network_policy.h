#pragma once

#include <string_view>

#include "rules/policy.h"
#include "rules/protocol_catalog.h"
#include "rules/yaml_reader.h"

namespace bulkhead::rules {

// Cilium's CiliumNetworkPolicy, loaded as it is beside bulkhead's own kind (whose fields are
// Cilium's) and judged as the SegmentationPolicy it translates to (docs/policy.md, "Cilium
// CiliumNetworkPolicy"): the same peers and ports, label keys without Cilium's source
// prefix (k8s:, any:), io.kubernetes.pod.namespace as bulkhead.io/namespace, DNS rules and
// toFQDNs as host names. What bulkhead cannot enforce (HTTP method and path rules, Kafka,
// node and service selectors, several rules in `specs`) is an error that says so.
inline constexpr std::string_view CiliumApiVersion = "cilium.io/v2";
inline constexpr std::string_view CiliumNetworkPolicyKind = "CiliumNetworkPolicy";

void readCiliumNetworkPolicy(YamlReader& reader, const YAML::Node& document,
                             const ProtocolCatalog& catalog, Policy& policy);

}  // namespace bulkhead::rules
