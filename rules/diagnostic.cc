#include "rules/diagnostic.h"

#include <algorithm>
#include <tuple>

namespace bulkhead::rules {

std::string format(const Diagnostic& diagnostic) {
  return diagnostic.where.file + ":" + std::to_string(diagnostic.where.line) + ":" +
         std::to_string(diagnostic.where.column) + ": " + diagnostic.message;
}

std::string formatWarning(const Diagnostic& diagnostic) {
  return diagnostic.where.file + ":" + std::to_string(diagnostic.where.line) + ":" +
         std::to_string(diagnostic.where.column) + ": warning: " + diagnostic.message;
}

void sortByLocation(Diagnostics& diagnostics, size_t first) {
  std::stable_sort(diagnostics.begin() + static_cast<std::ptrdiff_t>(first), diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.where.line, a.where.column) <
                            std::tie(b.where.line, b.where.column);
                   });
}

std::ostream& operator<<(std::ostream& out, const Diagnostic& diagnostic) {
  return out << format(diagnostic);
}

}  // namespace bulkhead::rules
