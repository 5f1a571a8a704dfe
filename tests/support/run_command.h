#pragma once

#include <string>
#include <vector>

namespace bulkhead::testing {

struct CommandResult {
  int exitCode = -1;  // -1 when killed by a signal or the timeout
  bool timedOut = false;
  std::string out;
  std::string err;
};

// Runs a program (no shell) with a hard time bound, capturing stdout and stderr.
CommandResult runCommand(const std::vector<std::string>& argv, int timeoutSeconds = 60);

// The built `bulkhead` CLI.
std::string bulkheadBinary();

}  // namespace bulkhead::testing
