#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bulkhead::text {

// `bytes` as a YAML double-quoted scalar that reads back as exactly those bytes: quotes and
// backslashes escaped, control characters (C0, DEL, C1) and a byte order mark as \x or \u
// escapes, every other character as it is. nullopt when `bytes` is not valid UTF-8: YAML has no
// way to write such a string, and a policy written from it would select something else.
std::optional<std::string> yamlQuoted(std::string_view bytes);

}  // namespace bulkhead::text
