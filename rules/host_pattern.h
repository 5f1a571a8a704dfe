#pragma once

#include <string>
#include <string_view>

namespace bulkhead::rules {

// A host name pattern from an l7 rule: an exact name ("api.shop.local"), a wildcard for one or
// more leading labels ("*.shop.local"), or "*" for any non-empty host. Case-insensitive; a
// trailing dot on either side is ignored (DNS names are often written fully qualified).
class HostPattern {
 public:
  // False, with the reason in `error`, when `text` is not a valid pattern.
  static bool validate(std::string_view text, std::string* error);
  explicit HostPattern(std::string_view text);

  bool matches(std::string_view host) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string suffix_;  // for "*.x.y": ".x.y"; for exact: the name
  bool wildcard_ = false;
  bool any_ = false;
};

}  // namespace bulkhead::rules
