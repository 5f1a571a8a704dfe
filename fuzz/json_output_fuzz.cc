// The writers every output goes through, on arbitrary bytes: what comes out is valid UTF-8, is
// JSON that reads back, keeps valid text as it was, and (for terminals) holds no control byte.
#include <cstddef>
#include <cstdint>
#include <string>

#include "text/json_text.h"
#include "text/utf8_escape.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string escaped = text::escapeBytes(bytes);
  if (!text::isValidUtf8(escaped) || (text::isValidUtf8(bytes) && escaped != bytes)) {
    __builtin_trap();
  }
  const std::string shown = text::escapeBytes(bytes, text::Escape::InvalidUtf8AndControls);
  for (const unsigned char c : shown) {
    if (c < 0x20 || c == 0x7f) {
      __builtin_trap();
    }
  }
  nlohmann::json value = {{"host", bytes}, {"list", {bytes, 1}}};
  value[bytes] = bytes;
  nlohmann::ordered_json ordered = {{"host", bytes}};
  const std::string line = text::dumpJson(value);
  const auto back = nlohmann::json::parse(line, nullptr, false);
  if (!text::isValidUtf8(line) || back.is_discarded() || back["host"] != escaped ||
      !text::isValidUtf8(text::dumpJson(ordered))) {
    __builtin_trap();
  }
  return 0;
}
