#include "text/untrusted_json.h"

namespace bulkhead::text {

size_t nestingDepth(std::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool inString = false;
  bool escaped = false;
  for (const char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string exceededLimit(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.maxBytes) {
    return "larger than " + std::to_string(limits.maxBytes) + " bytes";
  }
  if (nestingDepth(text) > limits.maxDepth) {
    return "nested deeper than " + std::to_string(limits.maxDepth);
  }
  return "";
}

const nlohmann::json* member(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) {
    return nullptr;
  }
  const auto found = object.find(key);
  return found != object.end() ? &*found : nullptr;
}

const nlohmann::json* objectMember(const nlohmann::json& object, std::string_view key) {
  const auto* found = member(object, key);
  return found != nullptr && found->is_object() ? found : nullptr;
}

const nlohmann::json* arrayMember(const nlohmann::json& object, std::string_view key) {
  const auto* found = member(object, key);
  return found != nullptr && found->is_array() ? found : nullptr;
}

std::string stringMember(const nlohmann::json& object, std::string_view key) {
  const auto* found = member(object, key);
  return found != nullptr && found->is_string() ? found->get<std::string>() : "";
}

std::optional<bool> boolMember(const nlohmann::json& object, std::string_view key) {
  const auto* found = member(object, key);
  return found != nullptr && found->is_boolean() ? std::optional(found->get<bool>()) : std::nullopt;
}

std::optional<uint64_t> unsignedMember(const nlohmann::json& object, std::string_view key) {
  const auto* found = member(object, key);
  return found != nullptr && found->is_number_unsigned() ? std::optional(found->get<uint64_t>())
                                                         : std::nullopt;
}

}  // namespace bulkhead::text
