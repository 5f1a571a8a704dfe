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
inline constexpr std::string_view Name = "bulkhead.io/name";
inline constexpr std::string_view Image = "bulkhead.io/image";
// One label per network the container is attached to: "bulkhead.io/network.<network>" = "true".
inline constexpr std::string_view NetworkPrefix = "bulkhead.io/network.";
}  // namespace reserved_labels

}  // namespace bulkhead::rules
