#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "rules/identity.h"

namespace bulkhead::kvstore {

// Reading and writing what the agents keep in etcd. Whoever can write the prefix wrote what is
// read here: every reader refuses what is not exactly the expected shape.

// A value that is one JSON object, within the state files' limits.
std::optional<nlohmann::json> parseObject(const std::string& value);
// {"labels": {"k": "v", ...}}'s labels; nullopt when absent or a value is not a string.
std::optional<rules::Labels> readLabels(const nlohmann::json& object);
// An endpoint identity's number (FirstEndpoint and up, below UINT32_MAX), from its digits or a
// JSON member.
std::optional<rules::IdentityId> readIdentityNumber(std::string_view digits);
std::optional<rules::IdentityId> readIdentityNumber(const nlohmann::json& object,
                                                    std::string_view member);
nlohmann::json labelsJson(const rules::Labels& labels);

}  // namespace bulkhead::kvstore
