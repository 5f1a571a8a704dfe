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
}  // namespace reserved_labels

}  // namespace bulkhead::rules
