#pragma once

#include <string>

namespace bulkhead::controlplane {

// Replaces `path` with `content` so that a reader, or the next start after a crash, sees either
// the old file or the new one, never half of it: write a sibling, flush, rename over. Creates
// the parent directory. False with the reason in `error`.
bool writeFileAtomically(const std::string& path, const std::string& content, std::string* error);

}  // namespace bulkhead::controlplane
