#pragma once

#include <string>
#include <string_view>

namespace bulkhead::text {

// Bytes that a container, an engine, a runtime or a kernel interface name carries are shown to
// people and programs only through here, so that every output (violation and flow logs, the API,
// `bulkhead flows`, `simulate`) is valid UTF-8 and escapes the same way.
//
// The convention is Python's "backslashreplace": valid UTF-8 is kept as it is, and every byte that
// is not part of a valid sequence (stray continuation bytes, overlong forms, surrogates, code
// points past U+10FFFF, a truncated sequence) becomes the four characters `\xNN`, lower-case hex.
enum class Escape {
  InvalidUtf8,             // for JSON, which escapes control characters itself
  InvalidUtf8AndControls,  // for terminals and line-based logs: C0, DEL and C1 become \xNN too
};

bool isValidUtf8(std::string_view bytes);
std::string escapeBytes(std::string_view bytes, Escape what = Escape::InvalidUtf8);

}  // namespace bulkhead::text
