// bulkhead-cni: the chained CNI plugin. The runtime sets CNI_* variables and writes the network
// configuration on stdin; the logic lives in cni/plugin.cc so that tests run it in-process.
#include <unistd.h>

#include <iostream>
#include <iterator>
#include <string>

#include "cni/plugin.h"

extern char** environ;

int main() {
  bulkhead::cni::Environment env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    if (const size_t equals = text.find('='); equals != std::string::npos) {
      env.emplace(text.substr(0, equals), text.substr(equals + 1));
    }
  }
  // Someone trying the binary by hand at a terminal must not hang waiting for stdin; the
  // runtime always pipes the configuration in.
  std::string input;
  if (::isatty(STDIN_FILENO) == 0) {
    input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  const bulkhead::cni::Outcome outcome = bulkhead::cni::run(env, input);
  std::cerr << outcome.err;
  std::cout << outcome.out << std::flush;
  return outcome.exitCode;
}
