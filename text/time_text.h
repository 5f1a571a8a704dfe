#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bulkhead::text {

// RFC 3339 in UTC with nanoseconds ("2023-11-14T22:13:20.123456789Z"), from nanoseconds since
// the epoch: how every log line and report of bulkhead's says when.
std::string formatTimeNs(uint64_t timeNs);

// The same to the second ("2023-11-14T22:13:20Z"), for what people read in policy comments.
std::string formatTimeSeconds(uint64_t timeNs);

// A duration as operators write one for --since: a number and a unit, s m h d ("90s", "15m",
// "24h", "7d"), or several in a row ("1h30m"). Nanoseconds, or nullopt when it is not one.
std::optional<uint64_t> parseDurationNs(std::string_view text);

}  // namespace bulkhead::text
