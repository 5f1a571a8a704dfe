#include "rules/host_pattern.h"

#include <algorithm>
#include <cctype>

namespace bulkhead::rules {
namespace {

std::string normalise(std::string_view text) {
  std::string out(text);
  if (!out.empty() && out.back() == '.') {
    out.pop_back();
  }
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool validHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

bool HostPattern::validate(std::string_view text, std::string* error) {
  if (text == "*") {
    return true;
  }
  std::string_view rest = text;
  if (rest.starts_with("*.")) {
    rest.remove_prefix(2);
  }
  if (rest.empty() || rest.size() > 253) {
    *error = "host pattern '" + std::string(text) + "' is empty or longer than 253 characters";
    return false;
  }
  for (char c : rest) {
    if (c == '*') {
      *error = "host pattern '" + std::string(text) +
               "' may only use '*' as its whole first label, as in '*.example.com'";
      return false;
    }
    if (!validHostChar(c)) {
      *error = "host pattern '" + std::string(text) + "' has an invalid character '" +
               std::string(1, c) + "'";
      return false;
    }
  }
  if (rest.starts_with('.') || rest.find("..") != std::string_view::npos) {
    *error = "host pattern '" + std::string(text) + "' has an empty label";
    return false;
  }
  return true;
}

HostPattern::HostPattern(std::string_view text) : text_(text) {
  if (text == "*") {
    any_ = true;
    return;
  }
  if (text.starts_with("*.")) {
    wildcard_ = true;
    suffix_ = normalise(text.substr(1));
  } else {
    suffix_ = normalise(text);
  }
}

bool HostPattern::matches(std::string_view host) const {
  if (host.empty()) {
    return false;
  }
  if (any_) {
    return true;
  }
  const std::string name = normalise(host);
  if (!wildcard_) {
    return name == suffix_;
  }
  return name.size() > suffix_.size() && name.ends_with(suffix_);
}

}  // namespace bulkhead::rules
