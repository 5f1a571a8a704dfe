#include "dataplane/tsc_clock.h"

#include <rte_cycles.h>
#include <time.h>

#include <algorithm>

namespace bulkhead::dataplane {
namespace {

__extension__ typedef unsigned __int128 Wide;  // GCC's and clang's, under -Wpedantic

uint64_t clockNs(clockid_t clock) {
  timespec now;
  clock_gettime(clock, &now);
  return uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
}

// A rate is only measured over at least this long: over less, the two reads' own jitter would
// weigh more than the TSC's error.
constexpr uint64_t MinCalibrationNs = 20ull * 1000000ull;

}  // namespace

TscClock::TscClock(uint64_t tscHz) {
  // A rate of 0 (no EAL, no TSC) counts as 1 GHz until the first measured one.
  scale_ = static_cast<uint64_t>((Wide{1000000000ull} << 32) / std::max<uint64_t>(tscHz, 1));
  scale_ = tscHz == 0 ? uint64_t{1} << 32 : scale_;
  anchorTsc_ = rte_rdtsc();
  anchorNs_ = clockNs(CLOCK_MONOTONIC);
  realtimeOffsetNs_ = static_cast<int64_t>(clockNs(CLOCK_REALTIME) - anchorNs_);
  monotonicNs_ = anchorNs_;
}

void TscClock::tick() {
  const uint64_t elapsed = rte_rdtsc() - anchorTsc_;
  const uint64_t now = anchorNs_ + static_cast<uint64_t>((Wide{elapsed} * scale_) >> 32);
  monotonicNs_ = std::max(monotonicNs_, now);
}

void TscClock::anchor() {
  const uint64_t tsc = rte_rdtsc();
  const uint64_t now = clockNs(CLOCK_MONOTONIC);
  const uint64_t realtime = clockNs(CLOCK_REALTIME);
  if (now > anchorNs_ + MinCalibrationNs && tsc > anchorTsc_) {
    scale_ = static_cast<uint64_t>((Wide{now - anchorNs_} << 32) / (tsc - anchorTsc_));
  }
  anchorTsc_ = tsc;
  anchorNs_ = now;
  realtimeOffsetNs_ = static_cast<int64_t>(realtime - now);
  monotonicNs_ = std::max(monotonicNs_, now);
}

}  // namespace bulkhead::dataplane
