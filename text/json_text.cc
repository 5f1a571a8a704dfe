#include "text/json_text.h"

#include "text/utf8_escape.h"

namespace bulkhead::text {
namespace {

template <typename Json>
Json escaped(const Json& value) {
  if (value.is_string()) {
    return escapeBytes(value.template get_ref<const typename Json::string_t&>());
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) {
      out.push_back(escaped(item));
    }
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [key, item] : value.items()) {
      out[escapeBytes(key)] = escaped(item);
    }
    return out;
  }
  return value;
}

template <typename Json>
std::string dump(const Json& value, int indent) {
  try {
    return value.dump(indent);
  } catch (const typename Json::type_error&) {
    // Only invalid UTF-8 makes dump throw: rare, so the common case pays nothing for it.
    return escaped(value).dump(indent);
  }
}

}  // namespace

std::string dumpJson(const nlohmann::json& value, int indent) {
  return dump(value, indent);
}
std::string dumpJson(const nlohmann::ordered_json& value, int indent) {
  return dump(value, indent);
}
nlohmann::json escapedJson(const nlohmann::json& value) {
  return escaped(value);
}
nlohmann::ordered_json escapedJson(const nlohmann::ordered_json& value) {
  return escaped(value);
}

}  // namespace bulkhead::text
