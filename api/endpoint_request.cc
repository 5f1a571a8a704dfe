#include "api/endpoint_request.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace bulkhead::api {
namespace {

constexpr size_t MaxText = 253;
constexpr size_t MaxList = 64;

bool validIp(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

bool validMac(const std::string& text) {
  if (text.size() != 17) {
    return false;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const bool separator = i % 3 == 2;
    if (separator ? text[i] != ':' : !std::isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

std::string text(const nlohmann::json& json, const char* key, std::string& out, bool required) {
  if (!json.contains(key)) {
    return required ? std::string("endpoint needs a '") + key + "'" : "";
  }
  const auto& value = json[key];
  if (!value.is_string()) {
    return std::string("'") + key + "' must be a string";
  }
  out = value.get<std::string>();
  if (out.size() > (std::string(key) == "netns" ? 4096 : MaxText)) {
    return std::string("'") + key + "' is too long";
  }
  if (required && out.empty()) {
    return std::string("endpoint needs a '") + key + "'";
  }
  return "";
}

std::string strings(const nlohmann::json& json, const char* key, std::vector<std::string>& out,
                    bool (*valid)(const std::string&), const char* what) {
  if (!json.contains(key)) {
    return "";
  }
  const auto& list = json[key];
  if (!list.is_array() || list.size() > MaxList) {
    return std::string("'") + key + "' must be a list of at most " + std::to_string(MaxList) +
           " strings";
  }
  for (const auto& item : list) {
    if (!item.is_string() || item.get<std::string>().size() > MaxText ||
        (valid != nullptr && !valid(item.get<std::string>()))) {
      return "'" + item.dump().substr(0, 80) + "' is not " + what;
    }
    out.push_back(item.get<std::string>());
  }
  return "";
}

}  // namespace

std::string parseEndpointRequest(const nlohmann::json& json, EndpointRequest& out) {
  if (!json.is_object()) {
    return "'endpoint' must be an object";
  }
  static const std::vector<std::string> known = {
      "name",  "interface",          "labels",     "image", "networks", "ips", "macs", "bridge",
      "netns", "containerInterface", "containerId"};
  for (const auto& [key, value] : json.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return "unknown key '" + key.substr(0, 64) + "' in endpoint";
    }
  }
  for (const auto& error :
       {text(json, "name", out.name, true), text(json, "interface", out.interface, true),
        text(json, "image", out.image, false), text(json, "bridge", out.bridge, false),
        text(json, "netns", out.netns, false),
        text(json, "containerInterface", out.containerInterface, false),
        text(json, "containerId", out.containerId, false)}) {
    if (!error.empty()) {
      return error;
    }
  }
  if (!out.netns.empty() && out.netns.front() != '/') {
    return "'netns' must be an absolute path";
  }
  if (json.contains("labels")) {
    const auto& labels = json["labels"];
    if (!labels.is_object() || labels.size() > MaxList) {
      return "'labels' must be an object of at most " + std::to_string(MaxList) + " strings";
    }
    for (const auto& [key, value] : labels.items()) {
      if (!value.is_string() || key.size() > MaxText || value.get<std::string>().size() > MaxText) {
        return "label '" + key.substr(0, 64) + "' must be a string of at most 253 characters";
      }
      out.labels[key] = value.get<std::string>();
    }
  }
  for (const auto& error : {strings(json, "networks", out.networks, nullptr, "a network name"),
                            strings(json, "ips", out.ips, validIp, "an IP address"),
                            strings(json, "macs", out.macs, validMac, "a MAC address")}) {
    if (!error.empty()) {
      return error;
    }
  }
  return "";
}

nlohmann::json toJson(const EndpointRequest& request) {
  nlohmann::json out = {{"name", request.name},     {"interface", request.interface},
                        {"labels", request.labels}, {"networks", request.networks},
                        {"ips", request.ips},       {"macs", request.macs}};
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string*>{"image", &request.image},
        {"bridge", &request.bridge},
        {"netns", &request.netns},
        {"containerInterface", &request.containerInterface},
        {"containerId", &request.containerId}}) {
    if (!value->empty()) {
      out[key] = *value;
    }
  }
  return out;
}

}  // namespace bulkhead::api
