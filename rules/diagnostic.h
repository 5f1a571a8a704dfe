#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace bulkhead::rules {

// Where something was written: 1-based line and column, as editors show them.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

// One problem in a policy document, printed as "file:line:col: message".
struct Diagnostic {
  SourceLocation where;
  std::string message;
};

using Diagnostics = std::vector<Diagnostic>;

std::string format(const Diagnostic& diagnostic);
std::ostream& operator<<(std::ostream& out, const Diagnostic& diagnostic);

}  // namespace bulkhead::rules
