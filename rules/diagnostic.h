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
// "file:line:col: warning: message".
std::string formatWarning(const Diagnostic& diagnostic);
// Orders diagnostics from `first` on by line and column, the order an operator reads a file in.
void sortByLocation(Diagnostics& diagnostics, size_t first = 0);
std::ostream& operator<<(std::ostream& out, const Diagnostic& diagnostic);

}  // namespace bulkhead::rules
