#include "tests/integration/host_tools.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bulkhead::testing {
namespace {

// Root's non-login shells (sudo, CI runners) sometimes lack the sbin directories ip lives in.
constexpr const char* kExtraPath = "/usr/local/sbin:/usr/sbin:/sbin";

}  // namespace

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return "";
  }
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string joined(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& arg : argv) {
    text += (text.empty() ? "" : " ") + arg;
  }
  return text;
}

std::string findOnPath(const std::string& tool) {
  if (tool.find('/') != std::string::npos) {
    return access(tool.c_str(), X_OK) == 0 ? tool : "";
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(std::string(path != nullptr ? path : "/usr/bin:/bin") + ":" + kExtraPath);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) {
      continue;
    }
    const std::string candidate = dir + "/" + tool;
    struct stat info {};
    if (stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

CommandResult runTool(std::vector<std::string> argv, int timeoutSeconds) {
  if (argv[0].find('/') == std::string::npos) {
    const std::string path = findOnPath(argv[0]);
    if (path.empty()) {
      CommandResult missing;
      missing.err = argv[0] + ": not found on PATH";
      return missing;
    }
    argv[0] = path;
  }
  return runCommand(argv, timeoutSeconds);
}

std::vector<std::string> mountsUnder(const std::string& dir) {
  std::vector<std::string> mounts;
  std::istringstream lines(slurp("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, escaped;
    fields >> id >> parent >> device >> root >> escaped;
    // mountinfo writes blanks, tabs, newlines and backslashes as \ooo.
    std::string point;
    for (size_t i = 0; i < escaped.size(); ++i) {
      if (escaped[i] == '\\' && i + 3 < escaped.size()) {
        point += static_cast<char>(std::strtol(escaped.substr(i + 1, 3).c_str(), nullptr, 8));
        i += 3;
      } else {
        point += escaped[i];
      }
    }
    if (point == dir || point.starts_with(dir + "/")) {
      mounts.push_back(point);
    }
  }
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return mounts;
}

unsigned long long processStartTime(pid_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 22) {
      return std::strtoull(field.c_str(), nullptr, 10);
    }
  }
  return 0;
}

bool processAlive(pid_t pid, unsigned long long start) {
  if (pid <= 0 || start == 0 || processStartTime(pid) != start) {
    return false;
  }
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' &&
         stat[close + 2] != 'X';
}

}  // namespace bulkhead::testing
