#include "text/utf8_escape.h"

#include <cstdint>

namespace bulkhead::text {
namespace {

// The length of the valid UTF-8 sequence at the start of `bytes`, 0 when it is not one (RFC 3629
// table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t sequenceLength(std::string_view bytes) {
  const auto at = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  const uint8_t lead = at(0);
  if (lead < 0x80) {
    return 1;
  }
  size_t length = 0;
  uint8_t low = 0x80;
  uint8_t high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (bytes.size() < length || at(1) < low || at(1) > high) {
    return 0;
  }
  for (size_t i = 2; i < length; ++i) {
    if (at(i) < 0x80 || at(i) > 0xBF) {
      return 0;
    }
  }
  return length;
}

bool isControl(std::string_view sequence) {
  const auto lead = static_cast<uint8_t>(sequence[0]);
  if (sequence.size() == 1) {
    return lead < 0x20 || lead == 0x7F;
  }
  // U+0080..U+009F: C1 controls, which terminals act on (CSI is U+009B).
  return sequence.size() == 2 && lead == 0xC2 && static_cast<uint8_t>(sequence[1]) < 0xA0;
}

void appendEscaped(std::string& out, std::string_view bytes) {
  static constexpr char Hex[] = "0123456789abcdef";
  for (const char c : bytes) {
    const auto byte = static_cast<uint8_t>(c);
    out += "\\x";
    out += Hex[byte >> 4];
    out += Hex[byte & 15];
  }
}

}  // namespace

bool isValidUtf8(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t length = sequenceLength(bytes);
    if (length == 0) {
      return false;
    }
    bytes.remove_prefix(length);
  }
  return true;
}

std::string escapeBytes(std::string_view bytes, Escape what) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    size_t length = sequenceLength(bytes);
    if (length == 0) {
      appendEscaped(out, bytes.substr(0, 1));
      length = 1;
    } else if (what == Escape::InvalidUtf8AndControls && isControl(bytes.substr(0, length))) {
      appendEscaped(out, bytes.substr(0, length));
    } else {
      out.append(bytes.substr(0, length));
    }
    bytes.remove_prefix(length);
  }
  return out;
}

}  // namespace bulkhead::text
