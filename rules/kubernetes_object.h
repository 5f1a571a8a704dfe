#pragma once

#include <optional>
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

// One entry of a Kubernetes-style ports list, {protocol, port, endPort}: TCP, UDP or SCTP (and
// ANY with `allowAny`, where port 0 is every port too), `defaultProtocol` without one. A port
// given by name is a named port (PortProtocol::name).
std::optional<PortProtocol> readKubernetesPort(YamlReader& reader, const YAML::Node& entry,
                                               L4Protocol defaultProtocol, bool allowAny);

// A namespace selector as endpoint labels: kubernetes.io/metadata.name selects on
// bulkhead.io/namespace, any other key k on bulkhead.io/namespace.labels.k (the labels the
// agent's `namespaces` configuration gives a namespace). Merged into `into`, so that a pod
// selector and a namespace selector in one peer are both required.
void addNamespaceSelector(YamlReader& reader, const YAML::Node& node, std::string_view what,
                          EndpointSelector& into);

// A selector of a namespaced object's pods: in its namespace (bulkhead.io/namespace), unless
// the namespace is "" or the selector names a namespace itself.
EndpointSelector inNamespace(EndpointSelector selector, const std::string& ns);

}  // namespace bulkhead::rules
