#pragma once

#include <cstddef>
#include <cstdint>

namespace bulkhead::dataplane {

// The Internet checksum (RFC 1071) of the frames the fast path makes itself: the one's
// complement sum of big-endian 16-bit words, carried along from one part (a pseudo-header) to
// the next, then folded and complemented.
inline uint32_t inetSum(const uint8_t* data, size_t length, uint32_t total = 0) {
  for (size_t i = 0; i + 1 < length; i += 2) {
    total += (uint32_t{data[i]} << 8) | data[i + 1];
  }
  if (length % 2) {
    total += uint32_t{data[length - 1]} << 8;
  }
  return total;
}

inline uint16_t inetFold(uint32_t total) {
  while (total >> 16) {
    total = (total & 0xFFFF) + (total >> 16);
  }
  return static_cast<uint16_t>(~total);
}

inline void writeBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

}  // namespace bulkhead::dataplane
