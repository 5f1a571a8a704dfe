#include "dataplane/tsc_clock.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <thread>

namespace bulkhead {
namespace {

using dataplane::TscClock;

uint64_t clockNs(clockid_t clock) {
  timespec now;
  clock_gettime(clock, &now);
  return uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
}

int64_t distance(uint64_t a, uint64_t b) {
  return a > b ? static_cast<int64_t>(a - b) : static_cast<int64_t>(b - a);
}

// The worker's clock tells the system's time: what it says after a sleep is what
// clock_gettime says, within the TSC's error over that sleep (generous bounds: this checks
// that the conversion is right, not how fast anything is).
TEST(TscClock, TellsTheSystemsMonotonicAndRealtimeClocks) {
  TscClock clock(rte_get_tsc_hz());
  for (int period = 0; period < 3; ++period) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    clock.tick();
    EXPECT_LT(distance(clock.monotonicNs(), clockNs(CLOCK_MONOTONIC)), 3000000) << period;
    EXPECT_LT(distance(clock.realtimeNs(), clockNs(CLOCK_REALTIME)), 3000000) << period;
    clock.anchor();
  }
}

// A rate far off (as if the EAL had measured it wrong) is corrected by the next anchor.
TEST(TscClock, AnAnchorMeasuresTheRate) {
  const uint64_t hz = rte_get_tsc_hz();
  ASSERT_GT(hz, 0u);
  TscClock clock(hz * 2);  // every tick counted as half a tick's time
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  clock.anchor();
  const double measured = static_cast<double>(clock.scale()) / 4294967296.0;  // ns per tick
  const double expected = 1e9 / static_cast<double>(hz);
  EXPECT_NEAR(measured, expected, expected * 0.05);
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  clock.tick();
  EXPECT_LT(distance(clock.monotonicNs(), clockNs(CLOCK_MONOTONIC)), 3000000);
}

// Never backwards: not from tick to tick, and not when an anchor lands behind what the old one
// extrapolated (a rate too fast runs ahead; the new anchor must not pull the clock back).
TEST(TscClock, NeverGoesBackwards) {
  TscClock clock(rte_get_tsc_hz() / 2);  // runs twice as fast as it should until anchored
  uint64_t last = clock.monotonicNs();
  for (int i = 0; i < 200000; ++i) {
    clock.tick();
    ASSERT_GE(clock.monotonicNs(), last) << i;
    last = clock.monotonicNs();
    if (i == 100000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      clock.tick();
      const uint64_t ahead = clock.monotonicNs();
      clock.anchor();
      EXPECT_GE(clock.monotonicNs(), ahead);
      last = clock.monotonicNs();
    }
  }
}

}  // namespace
}  // namespace bulkhead
