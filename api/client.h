#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bulkhead::api {

// Sends one request to the agent's API socket and returns its reply, or sets `error` (the agent
// is not running, access denied, timeout) and returns null. For the CLI, the CNI plugin and
// tests: it links nothing of the agent.
nlohmann::json callApi(const std::string& path, const nlohmann::json& request, std::string* error,
                       int timeoutSeconds = 10);

}  // namespace bulkhead::api
