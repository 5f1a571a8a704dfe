#include "tests/support/run_command.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

extern char** environ;

namespace bulkhead::testing {
namespace {

std::string readAll(int fd) {
  std::string text;
  lseek(fd, 0, SEEK_SET);
  char buffer[4096];
  ssize_t got = 0;
  while ((got = read(fd, buffer, sizeof(buffer))) > 0) {
    text.append(buffer, static_cast<size_t>(got));
  }
  return text;
}

}  // namespace

CommandResult runCommand(const std::vector<std::string>& argv, int timeoutSeconds) {
  CommandResult result;
  char outPath[] = "/tmp/bulkhead-test-out-XXXXXX";
  char errPath[] = "/tmp/bulkhead-test-err-XXXXXX";
  const int outFd = mkostemp(outPath, O_CLOEXEC);
  const int errFd = mkostemp(errPath, O_CLOEXEC);
  // Unlinked at once and read back through the descriptors: a test killed mid-command (a
  // timeout, SIGTERM) leaves no capture files behind.
  unlink(outPath);
  unlink(errPath);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, outFd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, errFd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned == 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
    int status = 0;
    for (;;) {
      const pid_t done = waitpid(pid, &status, WNOHANG);
      if (done == pid) {
        result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);  // our own child, by PID
        waitpid(pid, &status, 0);
        result.timedOut = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } else {
    result.err = "cannot start " + argv[0];
  }
  result.out = readAll(outFd);
  result.err += readAll(errFd);
  close(outFd);
  close(errFd);
  return result;
}

std::string bulkheadBinary() { return std::string(BULKHEAD_BINARY_DIR) + "/bulkhead"; }

}  // namespace bulkhead::testing
