#pragma once

#include <cstdint>
#include <vector>

namespace bulkhead::metrics {

// A Prometheus histogram's state: cumulative counts per upper bound, their sum and count. Owned
// by one thread; exposed as a copy.
class Histogram {
 public:
  // `bounds` ascending; the +Inf bucket is implicit.
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

  void observe(double value) {
    for (size_t i = 0; i < bounds_.size(); ++i) {
      if (value <= bounds_[i]) {
        ++counts_[i];
      }
    }
    sum_ += value;
    ++count_;
  }

  const std::vector<double>& bounds() const { return bounds_; }
  // Observations at or below bounds()[i]: already cumulative, as the exposition wants them.
  const std::vector<uint64_t>& cumulativeCounts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace bulkhead::metrics
