#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::rules {

// The candidate closest to `word` (case-insensitive edit distance), if it is close enough to be
// a plausible typo; used for "did you mean" hints in diagnostics.
std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace bulkhead::rules
