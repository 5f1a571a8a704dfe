#include "text/yaml_quote.h"

#include <cstdio>

#include "text/utf8_escape.h"

namespace bulkhead::text {

std::optional<std::string> yamlQuoted(std::string_view bytes) {
  if (!isValidUtf8(bytes)) {
    return std::nullopt;
  }
  std::string out = "\"";
  char escape[16];
  for (size_t at = 0; at < bytes.size(); ++at) {
    const auto byte = static_cast<unsigned char>(bytes[at]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte < 0x20 || byte == 0x7f) {
      std::snprintf(escape, sizeof(escape), "\\x%02x", byte);
      out += escape;
    } else if (byte == 0xc2 && at + 1 < bytes.size() &&
               static_cast<unsigned char>(bytes[at + 1]) < 0xa0) {
      // U+0080..U+009F, two bytes in UTF-8: not printable for YAML.
      std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned char>(bytes[at + 1]));
      out += escape;
      ++at;
    } else if (bytes.substr(at, 3) == "\xef\xbb\xbf") {
      out += "\\ufeff";
      at += 2;
    } else {
      out += static_cast<char>(byte);
    }
  }
  out += '"';
  return out;
}

}  // namespace bulkhead::text
