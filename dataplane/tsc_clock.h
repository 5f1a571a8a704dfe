#pragma once

#include <cstdint>

namespace bulkhead::dataplane {

// A worker's clock: the TSC, read once per loop turn (a few nanoseconds, no system call where a
// clock_gettime would cost a vDSO call or two), turned into CLOCK_MONOTONIC and CLOCK_REALTIME
// nanoseconds from an anchor that anchor() takes again (the worker does at every housekeeping,
// ~10 times a second). Each anchor also measures the TSC's rate over the time since the last, so
// a rate the EAL got slightly wrong is corrected within one period: the clock stays within the
// TSC's error over one period of the system's clocks. monotonicNs() never goes backwards, even
// when a new anchor is behind what the old one extrapolated. One thread; not shared.
class TscClock {
 public:
  // `tscHz`: the rate to start from (rte_get_tsc_hz()).
  explicit TscClock(uint64_t tscHz);

  // Reads the TSC: the times below are those of this moment.
  void tick();
  // Takes the system's clocks and the TSC together as the new anchor (and a tick).
  void anchor();

  uint64_t monotonicNs() const { return monotonicNs_; }
  uint64_t realtimeNs() const { return monotonicNs_ + realtimeOffsetNs_; }
  // Nanoseconds per TSC tick, times 2^32.
  uint64_t scale() const { return scale_; }

 private:
  uint64_t anchorTsc_ = 0;
  uint64_t anchorNs_ = 0;
  uint64_t scale_ = 0;
  uint64_t monotonicNs_ = 0;
  int64_t realtimeOffsetNs_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC at the anchor
};

}  // namespace bulkhead::dataplane
