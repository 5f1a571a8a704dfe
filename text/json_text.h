#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bulkhead::text {

// A JSON value as text for any output. Never throws: strings and keys that hold bytes which are
// not UTF-8 (a host name from a packet, an interface name from the kernel, an argument from a CNI
// runtime) are escaped by escapeBytes first, the same way everywhere.
std::string dumpJson(const nlohmann::json& value, int indent = -1);
std::string dumpJson(const nlohmann::ordered_json& value, int indent = -1);

// `value` with every string and key escaped by escapeBytes (Escape::InvalidUtf8).
nlohmann::json escapedJson(const nlohmann::json& value);
nlohmann::ordered_json escapedJson(const nlohmann::ordered_json& value);

}  // namespace bulkhead::text
