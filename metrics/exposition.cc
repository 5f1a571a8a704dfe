#include "metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include "text/utf8_escape.h"

namespace bulkhead::metrics {
namespace {

bool validName(std::string_view name, bool colons) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colons && c == ':');
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string formatValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  char buffer[32];
  // Shortest round trip, in %g's choice of notation: 0.0001 as client libraries write it.
  const auto result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::general);
  return std::string(buffer, result.ptr);
}

std::string Exposition::escapeLabelValue(std::string_view value) {
  const std::string valid = text::escapeBytes(value);
  std::string out;
  out.reserve(valid.size());
  for (const char c : valid) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  if (!validName(name, true)) {
    throw std::logic_error("not a metric name: " + std::string(name));
  }
  name_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (const char c : help) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::line(std::string_view suffix, Labels labels, std::string_view extraName,
                      std::string_view extraValue, std::string_view value) {
  if (name_.empty()) {
    throw std::logic_error("a sample before its family");
  }
  out_ += name_;
  out_ += suffix;
  const bool any = labels.size() > 0 || !extraName.empty();
  if (any) {
    out_ += '{';
    bool first = true;
    const auto add = [&](std::string_view label, std::string_view text) {
      if (!validName(label, false) || label.starts_with("__")) {
        throw std::logic_error("not a label name: " + std::string(label));
      }
      if (!first) {
        out_ += ',';
      }
      first = false;
      out_ += label;
      out_ += "=\"";
      out_ += escapeLabelValue(text);
      out_ += '"';
    };
    for (const auto& [label, text] : labels) {
      add(label, text);
    }
    if (!extraName.empty()) {
      add(extraName, extraValue);
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void Exposition::sample(uint64_t value, Labels labels) {
  line("", labels, "", "", std::to_string(value));
}

void Exposition::sample(double value, Labels labels) {
  line("", labels, "", "", formatValue(value));
}

void Exposition::sample(const Histogram& histogram, Labels labels) {
  const auto& bounds = histogram.bounds();
  const auto& counts = histogram.cumulativeCounts();
  for (size_t i = 0; i < bounds.size(); ++i) {
    line("_bucket", labels, "le", formatValue(bounds[i]), std::to_string(counts[i]));
  }
  line("_bucket", labels, "le", "+Inf", std::to_string(histogram.count()));
  line("_sum", labels, "", "", formatValue(histogram.sum()));
  line("_count", labels, "", "", std::to_string(histogram.count()));
}

}  // namespace bulkhead::metrics
