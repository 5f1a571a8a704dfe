#pragma once

#include <string>

#include "rules/policy.h"
#include "rules/yaml_reader.h"

namespace bulkhead::rules {

// What every Kubernetes object a policy can come as (NetworkPolicy, CiliumNetworkPolicy) writes
// alike: its metadata. Returns the namespace ("" for none) and sets the policy's name -- its
// metadata.name, `<namespace>.<name>` when namespaced, since names are unique per namespace in
// Kubernetes and across all files here. What `kubectl get -o yaml` adds (uid, resourceVersion,
// managedFields, ...) is accepted and ignored.
std::string readKubernetesMetadata(YamlReader& reader, const YAML::Node& node, Policy& policy);

// A selector of a namespaced object's pods: in its namespace (bulkhead.io/namespace), unless
// the namespace is "" or the selector names a namespace itself.
EndpointSelector inNamespace(EndpointSelector selector, const std::string& ns);

}  // namespace bulkhead::rules
