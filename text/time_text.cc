#include "text/time_text.h"

#include <cstdio>
#include <ctime>

namespace bulkhead::text {
namespace {

std::tm utcOf(uint64_t timeNs) {
  const auto seconds = static_cast<time_t>(timeNs / 1000000000ull);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return utc;
}

}  // namespace

std::string formatTimeNs(uint64_t timeNs) {
  const std::tm utc = utcOf(timeNs);
  const auto fraction = static_cast<unsigned long>(timeNs % 1000000000ull);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%09luZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, fraction);
  return buffer;
}

std::string formatTimeSeconds(uint64_t timeNs) {
  const std::tm utc = utcOf(timeNs);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  return buffer;
}

std::optional<uint64_t> parseDurationNs(std::string_view text) {
  // Ten years is more than any state directory keeps; beyond it the arithmetic could overflow.
  constexpr uint64_t Limit = 10ull * 366 * 86400 * 1000000000ull;
  if (text.empty()) {
    return std::nullopt;
  }
  uint64_t total = 0;
  size_t at = 0;
  while (at < text.size()) {
    uint64_t number = 0;
    size_t digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 12) {
      number = number * 10 + uint64_t(text[at] - '0');
      ++at;
      ++digits;
    }
    if (digits == 0 || at == text.size()) {
      return std::nullopt;  // a unit is required: "10" could be seconds or minutes
    }
    uint64_t unitNs = 0;
    switch (text[at]) {
      case 's':
        unitNs = 1000000000ull;
        break;
      case 'm':
        unitNs = 60ull * 1000000000ull;
        break;
      case 'h':
        unitNs = 3600ull * 1000000000ull;
        break;
      case 'd':
        unitNs = 86400ull * 1000000000ull;
        break;
      default:
        return std::nullopt;
    }
    ++at;
    if (number > Limit / unitNs) {
      return std::nullopt;
    }
    total += number * unitNs;
    if (total > Limit) {
      return std::nullopt;
    }
  }
  return total;
}

}  // namespace bulkhead::text
