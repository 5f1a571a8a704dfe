#pragma once

#include <string>
#include <string_view>

namespace bulkhead::controlplane {

// Replaces `path` with `content` so that a reader, or the next start after a crash, sees either
// the old file or the new one, never half of it: write a sibling, flush, rename over. Creates
// the parent directory. False with the reason in `error`.
bool writeFileAtomically(const std::string& path, const std::string& content, std::string* error);

// Writes all of `data` to `fd`, retrying short writes and EINTR. False with errno set when the
// kernel refuses (EIO when a write makes no progress).
bool writeAll(int fd, std::string_view data);

}  // namespace bulkhead::controlplane
