#include "text/time_text.h"

#include <gtest/gtest.h>

namespace bulkhead::text {
namespace {

TEST(TimeText, Rfc3339WithNanoseconds) {
  EXPECT_EQ(formatTimeNs(1700000000123456789ull), "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(formatTimeNs(1700000000000000042ull), "2023-11-14T22:13:20.000000042Z");
  EXPECT_EQ(formatTimeNs(1700000000001000000ull), "2023-11-14T22:13:20.001000000Z");
  EXPECT_EQ(formatTimeNs(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(formatTimeNs(1709208000999999999ull), "2024-02-29T12:00:00.999999999Z");
  EXPECT_EQ(formatTimeSeconds(1709208000999999999ull), "2024-02-29T12:00:00Z");
}

TEST(TimeText, DurationsAsOperatorsWriteThem) {
  constexpr uint64_t S = 1000000000ull;
  EXPECT_EQ(parseDurationNs("90s"), 90 * S);
  EXPECT_EQ(parseDurationNs("15m"), 15 * 60 * S);
  EXPECT_EQ(parseDurationNs("24h"), 24 * 3600 * S);
  EXPECT_EQ(parseDurationNs("7d"), 7 * 86400 * S);
  EXPECT_EQ(parseDurationNs("1h30m"), 5400 * S);
  EXPECT_EQ(parseDurationNs("0s"), 0u);
}

TEST(TimeText, RefusesWhatIsNotADuration) {
  for (const char* bad : {"", "10", "h", "1x", "1h30", "-1h", "1.5h", " 1h", "1h ",
                          "99999999999999d", "3660d3660d"}) {
    EXPECT_FALSE(parseDurationNs(bad)) << bad;
  }
}

}  // namespace
}  // namespace bulkhead::text
