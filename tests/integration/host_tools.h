#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/support/run_command.h"

namespace bulkhead::testing {

// Small host helpers shared by the lab (lab.h) and the container harnesses (docker_engine.h,
// podman_cni.h).

std::string slurp(const std::string& path);                // "" when unreadable
std::string trim(const std::string& text);                 // without surrounding whitespace
std::string joined(const std::vector<std::string>& argv);  // for messages: "ip link del x"

// Absolute path of `tool` on PATH (then /usr/local/sbin, /usr/sbin, /sbin, which sudo and CI
// shells often leave out although `ip` lives there), "" when absent.
std::string findOnPath(const std::string& tool);
// runCommand after resolving a bare tool name with findOnPath (runCommand does no PATH search);
// a missing tool is a failed result saying so.
CommandResult runTool(std::vector<std::string> argv, int timeoutSeconds = 10);

// Mount points at or below `dir` (from /proc/self/mountinfo, octal escapes undone), deepest
// first: the order in which they can be unmounted.
std::vector<std::string> mountsUnder(const std::string& dir);

// Field 22 of /proc/PID/stat (start time in clock ticks since boot), 0 when there is no such
// process. A PID plus its start time names one process for good, which is what makes signalling
// or judging a PID read back from a state file safe.
unsigned long long processStartTime(pid_t pid);
// The process that had `start` as its start time still exists and is not a zombie (a killed
// test can stay one for a while when the init that adopted it reaps late: that is dead too).
bool processAlive(pid_t pid, unsigned long long start);

}  // namespace bulkhead::testing
