#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "metrics/histogram.h"

namespace bulkhead::metrics {

// Label names and values of one sample. Names are the agent's own; values may come from a
// container or the engine and are escaped (and made valid UTF-8) here.
using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Writes the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): a family's HELP and TYPE lines,
// then its samples. A family's samples must follow it at once and each label set appear once;
// the agent's metric names are constants, so a name that breaks the format's grammar is a bug
// and throws std::logic_error.
class Exposition {
 public:
  void counter(std::string_view name, std::string_view help) { family(name, "counter", help); }
  void gauge(std::string_view name, std::string_view help) { family(name, "gauge", help); }
  void histogram(std::string_view name, std::string_view help) { family(name, "histogram", help); }

  // One sample of the family begun last.
  void sample(uint64_t value, Labels labels = {});
  void sample(double value, Labels labels = {});
  // The _bucket, _sum and _count samples of the histogram family begun last.
  void sample(const Histogram& histogram, Labels labels = {});

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

  // `value` as the format's label value: backslash, double quote and line feed escaped, bytes
  // that are not UTF-8 as \\xNN.
  static std::string escapeLabelValue(std::string_view value);

 private:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void line(std::string_view suffix, Labels labels, std::string_view extraName,
            std::string_view extraValue, std::string_view value);

  std::string out_;
  std::string name_;  // of the family begun last
};

// "1234", "0.25", "+Inf", "NaN": how the format writes a sample's value.
std::string formatValue(double value);

}  // namespace bulkhead::metrics
