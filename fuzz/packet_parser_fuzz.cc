// The packet parser on arbitrary frames: every byte of a frame is the container's.
#include <cstddef>
#include <cstdint>

#include "dataplane/packet_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto meta = bulkhead::dataplane::parsePacket(data, static_cast<uint32_t>(size));
  // What the parser reports must lie inside the frame it was given.
  if (meta.status == bulkhead::dataplane::ParseStatus::Ok &&
      (meta.l3Offset > size || meta.l4Offset > size || meta.payloadOffset > size)) {
    __builtin_trap();
  }
  return 0;
}
