#pragma once

#include <map>
#include <string>
#include <string_view>

namespace bulkhead::rules {

// Sorted so that equal label sets compare and hash the same way: identities are derived from it.
using Labels = std::map<std::string, std::string, std::less<>>;

// Reserved label keys that bulkhead sets from what a container *is*. Operators select on them like
// on any other label. Documented in docs/policy.md.
namespace reserved_labels {
// Every key under this prefix is bulkhead's to set: a container's own labels never may, or a
// container could claim another's name or a network it is not on.
inline constexpr std::string_view Prefix = "bulkhead.io/";
inline constexpr std::string_view Name = "bulkhead.io/name";
inline constexpr std::string_view Image = "bulkhead.io/image";
// One label per network the container is attached to: "bulkhead.io/network.<network>" = "true".
inline constexpr std::string_view NetworkPrefix = "bulkhead.io/network.";
// What a container host has for a Kubernetes namespace: the compose project (or the label
// namespaceLabel names) the container belongs to. Kubernetes' namespaceSelector selects on it.
inline constexpr std::string_view Namespace = "bulkhead.io/namespace";
inline constexpr std::string_view DefaultNamespaceLabel = "com.docker.compose.project";
// A namespace's own labels (the agent's `namespaces` configuration): one endpoint label per
// label of the endpoint's namespace, "bulkhead.io/namespace.labels.<key>" = value, as Cilium's
// io.cilium.k8s.namespace.labels.<key>. namespaceSelector on a label other than the name
// selects on these.
inline constexpr std::string_view NamespaceLabelPrefix = "bulkhead.io/namespace.labels.";
// The label Kubernetes sets on every namespace: its name, which is bulkhead.io/namespace here.
inline constexpr std::string_view KubernetesNamespaceName = "kubernetes.io/metadata.name";
}  // namespace reserved_labels

// The label convention for named ports, since Docker and podman have none: a container labelled
// port.bulkhead.io/http=8080/TCP names its port 8080/TCP "http" (the protocol defaults to TCP).
// Outside bulkhead.io/: the container's creator sets it, as a pod spec names its ports.
inline constexpr std::string_view PortNameLabelPrefix = "port.bulkhead.io/";

// The labels of each namespace, by name: what the agent's `namespaces` configuration (and
// simulate's endpoints file) says. Kubernetes' namespaces have labels; a compose project has none.
using NamespaceLabels = std::map<std::string, Labels, std::less<>>;

// Adds bulkhead.io/namespace.labels.<key> for each label of the endpoint's namespace.
inline void addNamespaceLabels(Labels& labels, const NamespaceLabels& namespaces) {
  const auto ns = labels.find(reserved_labels::Namespace);
  if (ns == labels.end()) {
    return;
  }
  const auto found = namespaces.find(ns->second);
  if (found == namespaces.end()) {
    return;
  }
  for (const auto& [key, value] : found->second) {
    labels[std::string(reserved_labels::NamespaceLabelPrefix) + key] = value;
  }
}

}  // namespace bulkhead::rules
