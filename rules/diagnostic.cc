#include "rules/diagnostic.h"

namespace bulkhead::rules {

std::string format(const Diagnostic& diagnostic) {
  return diagnostic.where.file + ":" + std::to_string(diagnostic.where.line) + ":" +
         std::to_string(diagnostic.where.column) + ": " + diagnostic.message;
}

std::ostream& operator<<(std::ostream& out, const Diagnostic& diagnostic) {
  return out << format(diagnostic);
}

}  // namespace bulkhead::rules
