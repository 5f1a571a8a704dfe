#include "kvstore/store_values.h"

#include <charconv>
#include <limits>

#include "text/untrusted_json.h"

namespace bulkhead::kvstore {

using nlohmann::json;

std::optional<json> parseObject(const std::string& value) {
  std::string ignored;
  auto parsed = text::parseUntrusted(value, text::StateFileLimits, &ignored);
  if (!parsed || !parsed->is_object()) {
    return std::nullopt;
  }
  return parsed;
}

std::optional<rules::Labels> readLabels(const json& object) {
  const json* labels = text::objectMember(object, "labels");
  if (!labels) {
    return std::nullopt;
  }
  rules::Labels out;
  for (const auto& [key, value] : labels->items()) {
    if (!value.is_string()) {
      return std::nullopt;
    }
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

std::optional<rules::IdentityId> readIdentityNumber(std::string_view digits) {
  uint64_t id = 0;
  const auto [end, code] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (code != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
      id < rules::reserved_identity::FirstEndpoint ||
      id >= std::numeric_limits<rules::IdentityId>::max()) {
    return std::nullopt;
  }
  return static_cast<rules::IdentityId>(id);
}

std::optional<rules::IdentityId> readIdentityNumber(const json& object, std::string_view member) {
  const auto value = text::unsignedMember(object, member);
  return value ? readIdentityNumber(std::to_string(*value)) : std::nullopt;
}

json labelsJson(const rules::Labels& labels) {
  json object = json::object();
  for (const auto& [key, value] : labels) {
    object[key] = value;
  }
  return object;
}

}  // namespace bulkhead::kvstore
