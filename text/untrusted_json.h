#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace bulkhead::text {

// JSON from outside the agent (the engine, a CNI runtime, a local client, a state file) enters
// through parseUntrusted and is read with the accessors below, which never throw: a member of the
// wrong type reads as absent. nlohmann's parser itself is iterative, but copying, comparing and
// dumping a value recurse, so nesting is bounded before a value exists.
struct JsonLimits {
  size_t maxBytes;
  size_t maxDepth = 64;  // arrays and objects inside each other; every document we read needs < 10
};

// The documented limits of each boundary (docs/agent.md, "Limits").
inline constexpr JsonLimits ApiRequestLimits{1 << 20};    // one request line
inline constexpr JsonLimits CniInputLimits{4 << 20};      // plugin configuration + prevResult
inline constexpr JsonLimits EngineListLimits{32 << 20};   // a listing of the engine's
inline constexpr JsonLimits EngineAnswerLimits{4 << 20};  // one object: version, inspect
inline constexpr JsonLimits EngineEventLimits{1 << 20};   // one line of the event stream
inline constexpr JsonLimits StateFileLimits{64 << 20};    // the agent's own state files
inline constexpr JsonLimits KvstoreAnswerLimits{64 << 20};  // one answer of etcd's gateway
inline constexpr JsonLimits KvstoreEventLimits{16 << 20};   // one message of a watch

// How deep `text` nests arrays and objects, not counting brackets inside strings.
size_t nestingDepth(std::string_view text);
// "" when `text` is within `limits`, else what it exceeds.
std::string exceededLimit(std::string_view text, const JsonLimits& limits);

// nullopt with `error` ("nested deeper than 64", "larger than 1048576 bytes", "not JSON at byte
// 12") when `text` is not one JSON value within `limits`. Json is nlohmann::json, or
// nlohmann::ordered_json where the order of keys must survive (a CNI result).
template <typename Json = nlohmann::json>
std::optional<Json> parseUntrusted(std::string_view text, const JsonLimits& limits,
                                   std::string* error) {
  if (std::string exceeded = exceededLimit(text, limits); !exceeded.empty()) {
    *error = std::move(exceeded);
    return std::nullopt;
  }
  try {
    return Json::parse(text);
  } catch (const typename Json::parse_error& e) {
    *error = "not JSON at byte " + std::to_string(e.byte);
    return std::nullopt;
  } catch (const typename Json::exception& e) {
    // Not only syntax: a number too large for a double (1e999) is out_of_range.406.
    *error = std::string("not usable JSON: ") + e.what();
    return std::nullopt;
  }
}

// Members of `object`; nullptr / "" / nullopt when `object` is not an object, the member is
// missing or it has another type.
const nlohmann::json* member(const nlohmann::json& object, std::string_view key);
const nlohmann::json* objectMember(const nlohmann::json& object, std::string_view key);
const nlohmann::json* arrayMember(const nlohmann::json& object, std::string_view key);
std::string stringMember(const nlohmann::json& object, std::string_view key);
std::optional<bool> boolMember(const nlohmann::json& object, std::string_view key);
std::optional<uint64_t> unsignedMember(const nlohmann::json& object, std::string_view key);

}  // namespace bulkhead::text
