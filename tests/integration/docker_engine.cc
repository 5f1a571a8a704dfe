#include "tests/integration/docker_engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

namespace bulkhead::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Engines live under here: <pid>-<n>/ holds the socket, data root, exec root, pidfile, config and
// a state file naming what the engine put elsewhere on the machine, so the next run can sweep
// after a SIGKILL. /run: gone with a reboot, like the processes, mounts and bridges it describes.
constexpr const char* kStateRoot = "/run/bulkhead-docker";
// dockerd finds containerd, runc and the containerd shim on PATH: pinned to Debian's directories
// so a newer /usr/local install cannot be mixed with the 20.10 engine.
constexpr const char* kDaemonPath = "/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kStartTimeout = 60;  // seconds until /version answers (measured: ~0.4 s)
// SIGTERM to dockerd, SIGKILL after this. dockerd itself gives up on containers after its
// --shutdown-timeout (5 s, and every container stops with timeout 0), then stops containerd.
constexpr int kStopGrace = 20;
constexpr int kCommandTimeout = 10;  // one `ip`/`iptables` call

// Made outside the engine's directory by dockerd (/run/docker/plugins, the legacy plugin socket
// directory, created whatever --exec-root says) and by containerd's shims (/run/containerd/s, one
// socket per running container). Removed when empty, and only when the engine saw them absent.
// Deepest first: the order rmdir needs.
const std::vector<std::string> kOutsideDirs = {"/run/docker/plugins", "/run/docker",
                                               "/run/containerd/s", "/run/containerd"};

void warn(const std::string& message) {
  std::cerr << "docker-engine: " << message << std::endl;
}

std::string tail(const std::string& text, size_t lines) {
  size_t position = text.size();
  for (size_t seen = 0; position > 0 && seen <= lines; --position) {
    if (text[position - 1] == '\n') {
      ++seen;
    }
  }
  return text.substr(position);
}

std::string procStat(pid_t pid) {
  return slurp("/proc/" + std::to_string(pid) + "/stat");
}

// 'R', 'S', 'Z', ...; 0 when the process does not exist.
char processState(pid_t pid) {
  const std::string stat = procStat(pid);
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : 0;
}

// Exists and is not a zombie (PID 1 of this VM does not reap orphans: a dead dockerd may stay a
// zombie, which holds nothing).
bool liveProcess(pid_t pid) {
  const char state = processState(pid);
  return state != 0 && state != 'Z' && state != 'X';
}

bool linkExists(const std::string& name) {
  return if_nametoindex(name.c_str()) != 0;
}

void deleteLink(const std::string& name) {
  if (!linkExists(name)) {
    return;
  }
  const CommandResult result = runTool({"ip", "link", "del", "dev", name});
  if (result.exitCode != 0 && linkExists(name)) {
    warn("cannot delete link " + name + ": " + result.err);
  }
}

void deleteForwardRule(const std::vector<std::string>& rule) {
  if (findOnPath("iptables").empty()) {
    return;
  }
  std::vector<std::string> check = {"iptables", "-w", "5", "-C"};
  check.insert(check.end(), rule.begin(), rule.end());
  if (runTool(check).exitCode != 0) {
    return;  // never inserted, or already gone
  }
  std::vector<std::string> remove = {"iptables", "-w", "5", "-D"};
  remove.insert(remove.end(), rule.begin(), rule.end());
  const CommandResult result = runTool(remove);
  if (result.exitCode != 0) {
    warn("cannot delete iptables rule " + joined(rule) + ": " + result.err);
  }
}

bool privateIpv4Cidr(const std::string& cidr) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos) {
    return false;
  }
  const int length = std::atoi(cidr.c_str() + slash + 1);
  in_addr address{};
  if (length < 8 || length > 30 ||
      inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &address) != 1) {
    return false;
  }
  const uint32_t value = ntohl(address.s_addr);
  return (value >> 24) == 10 || (value >> 20) == ((172u << 4) | 1u) || (value >> 16) == 0xc0a8u;
}

bool onlyChars(const std::string& text, const char* allowed, size_t maxLength) {
  return !text.empty() && text.size() <= maxLength &&
         text.find_first_not_of(allowed) == std::string::npos;
}

// --- What one engine consists of on the machine, derived from its tag and state file. ---

// The engine's cgroup, below each hierarchy's root; the tag also names its containerd namespace.
std::string cgroupParentOf(const std::string& tag) {
  return "bulkhead-docker-" + tag;
}

struct EngineFootprint {
  std::string dir;   // /run/bulkhead-docker/<tag>
  std::string tag;   // <pid>-<n>
  pid_t owner = -1;  // the test process
  unsigned long long ownerStart = 0;
  std::vector<std::string> bridges;
  std::vector<std::vector<std::string>> rules;
  std::vector<std::string> createdDirs;

  std::string cgroupParent() const { return cgroupParentOf(tag); }
  std::string containerdNamespace() const { return "bulkhead-" + tag; }
};

EngineFootprint readFootprint(const fs::path& dir) {
  EngineFootprint footprint;
  footprint.dir = dir.string();
  footprint.tag = dir.filename().string();
  footprint.owner = static_cast<pid_t>(std::atoi(footprint.tag.c_str()));
  std::istringstream lines(slurp((dir / "state").string()));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "owner") {
      words >> footprint.owner >> footprint.ownerStart;
    } else if (kind == "bridge") {
      std::string name;
      if (words >> name) {
        footprint.bridges.push_back(name);
      }
    } else if (kind == "iptables") {
      std::vector<std::string> rule;
      std::string word;
      while (words >> word) {
        rule.push_back(word);
      }
      footprint.rules.push_back(rule);
    } else if (kind == "created") {
      std::string path;
      if (words >> path &&
          std::find(kOutsideDirs.begin(), kOutsideDirs.end(), path) != kOutsideDirs.end()) {
        footprint.createdDirs.push_back(path);  // only the known ones: never rmdir a stray path
      }
    }
  }
  return footprint;
}

std::vector<std::string> cmdlineOf(pid_t pid) {
  const std::string raw = slurp("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  std::string current;
  for (const char c : raw) {
    if (c == '\0') {
      args.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) {
    args.push_back(current);
  }
  return args;
}

std::string exeNameOf(pid_t pid) {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", error);
  return error ? "" : exe.filename().string();  // may end in " (deleted)" after an upgrade
}

// The engine's processes still alive: dockerd, containerd and shims naming the engine's directory
// (or, on a shared containerd, its namespace) in their arguments, and every process in the
// engine's cgroup (the containers). The binary's name is checked too, so a shell or an `ls` that
// merely mentions the directory is never taken for the engine.
std::vector<std::pair<pid_t, std::string>> engineProcesses(const EngineFootprint& footprint) {
  std::vector<std::pair<pid_t, std::string>> found;
  const std::string dirPrefix = footprint.dir + "/";
  const std::string cgroup = "/" + footprint.cgroupParent();
  const std::string ns = footprint.containerdNamespace();
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid == getpid() || !liveProcess(pid)) {
      continue;
    }
    const std::string exe = exeNameOf(pid);
    const bool engineBinary = exe.starts_with("dockerd") || exe.starts_with("containerd") ||
                              exe.starts_with("runc") || exe.starts_with("docker-proxy");
    const std::vector<std::string> args = cmdlineOf(pid);
    bool ours = false;
    if (engineBinary) {
      for (size_t i = 0; i < args.size() && !ours; ++i) {
        ours = args[i].find(dirPrefix) != std::string::npos ||
               (args[i] == "-namespace" && i + 1 < args.size() && args[i + 1] == ns);
      }
    }
    if (!ours) {
      std::istringstream lines(slurp("/proc/" + name + "/cgroup"));
      std::string line;
      while (std::getline(lines, line) && !ours) {
        const auto colon = line.find(':', line.find(':') + 1);
        const std::string path = colon == std::string::npos ? "" : line.substr(colon + 1);
        ours = path == cgroup || path.starts_with(cgroup + "/");
      }
    }
    if (ours) {
      found.emplace_back(pid, joined(args).substr(0, 160));
    }
  }
  return found;
}

// SIGKILLs what engineProcesses() finds until nothing is left (bounded). Returns what it killed.
std::vector<std::string> killEngineProcesses(const EngineFootprint& footprint, int timeoutSeconds) {
  std::vector<std::string> killed;
  std::set<pid_t> signalled;
  waitFor(
      [&] {
        const auto found = engineProcesses(footprint);
        for (const auto& [pid, what] : found) {
          if (signalled.insert(pid).second) {
            killed.push_back(std::to_string(pid) + " " + what);
          }
          kill(pid, SIGKILL);
        }
        return found.empty();
      },
      timeoutSeconds);
  return killed;
}

// Shims killed with SIGKILL leave their sockets in /run/containerd/s; each task's bundle in the
// exec root says which one was its own.
void removeShimSockets(const EngineFootprint& footprint) {
  const fs::path tasks =
      fs::path(footprint.dir) / "exec/containerd/daemon/io.containerd.runtime.v2.task";
  std::error_code error;
  if (!fs::is_directory(tasks, error)) {
    return;
  }
  for (const auto& ns : fs::directory_iterator(tasks, error)) {
    for (const auto& task : fs::directory_iterator(ns.path(), error)) {
      std::string address = trim(slurp((task.path() / "address").string()));
      if (address.starts_with("unix://")) {
        address = address.substr(7);
      }
      const fs::path socket(address);
      if (socket.parent_path() == "/run/containerd/s" &&
          onlyChars(socket.filename().string(), "0123456789abcdef", 64) &&
          fs::is_socket(socket, error)) {
        fs::remove(socket, error);
      }
    }
  }
}

// dockerd's own mounts (the data root bound onto itself, overlay2 rootfs, the containers'
// network-namespace files): a dockerd that did not shut down cleanly leaves them. Deepest first,
// detached so a busy one cannot block the sweep.
bool unmountUnder(const std::string& dir) {
  for (int round = 0; round < 5; ++round) {
    const std::vector<std::string> mounts = mountsUnder(dir);
    if (mounts.empty()) {
      return true;
    }
    for (const auto& mount : mounts) {
      umount2(mount.c_str(), MNT_DETACH);
    }
  }
  return mountsUnder(dir).empty();
}

// The engine's cgroup in every hierarchy (one per controller on cgroup v1, the unified one on
// v2), container cgroups first. Empty cgroups only: rmdir refuses the others.
void removeCgroups(const std::string& parent) {
  std::vector<fs::path> roots = {"/sys/fs/cgroup"};
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup", error)) {
    if (entry.is_directory(error) && !entry.is_symlink(error)) {
      roots.push_back(entry.path());
    }
  }
  for (const auto& root : roots) {
    const fs::path cgroup = root / parent;
    if (!fs::is_directory(cgroup, error)) {
      continue;
    }
    std::vector<fs::path> dirs;
    for (auto it = fs::recursive_directory_iterator(cgroup, error);
         it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (it->is_directory(error) && !it->is_symlink(error)) {
        dirs.push_back(it->path());
      }
    }
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.string().size() > b.string().size();
    });
    dirs.push_back(cgroup);
    for (const auto& dir : dirs) {
      if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
        warn("cannot remove cgroup " + dir.string() + ": " + std::strerror(errno));
      }
    }
  }
}

// Everything of one engine whose dockerd is stopped or dead. `expectClean`: called after an
// orderly stop, so anything found here is worth a warning.
void removeFootprint(const EngineFootprint& footprint, bool expectClean) {
  if (!footprint.dir.starts_with(std::string(kStateRoot) + "/") || footprint.tag.empty() ||
      footprint.tag.find('/') != std::string::npos) {
    warn("refusing to remove " + footprint.dir + ": not an engine directory");
    return;
  }
  // The engine's own processes (started by an engine of this harness: identified by its unique
  // directory, namespace or cgroup), dockerd first so it restarts nothing.
  for (const auto& what : killEngineProcesses(footprint, 15)) {
    if (expectClean) {
      warn("killed a leftover engine process: " + what);
    }
  }
  removeShimSockets(footprint);
  if (!unmountUnder(footprint.dir)) {
    warn("mounts remain under " + footprint.dir + "; leaving the directory");
  }
  for (const auto& rule : footprint.rules) {
    deleteForwardRule(rule);
  }
  for (const auto& bridge : footprint.bridges) {
    deleteLink(bridge);  // docker's veths went with the containers' network namespaces
  }
  removeCgroups(footprint.cgroupParent());
  std::error_code error;
  if (mountsUnder(footprint.dir).empty()) {
    fs::remove_all(footprint.dir, error);
    if (error) {
      warn("cannot remove " + footprint.dir + ": " + error.message());
    }
  }
  for (const auto& dir : footprint.createdDirs) {
    rmdir(dir.c_str());  // fails, harmlessly, while anything (another engine) still uses it
  }
}

// The engine API's answer to `GET path` over a Unix socket, HTTP/1.0 so the body simply ends at
// EOF (no keep-alive, no chunking).
std::string httpGet(const std::string& socketPath, const std::string& path, int timeoutSeconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(timeoutSeconds);
  const auto remainingMs = [&] {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::max<long long>(0, left));
  };
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socketPath.size() >= sizeof(address.sun_path)) {
    throw std::runtime_error("socket path too long: " + socketPath);
  }
  std::memcpy(address.sun_path, socketPath.c_str(), socketPath.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  // A Unix-socket connect completes or fails at once (ENOENT, ECONNREFUSED while dockerd starts).
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    throw std::runtime_error("connect " + socketPath + ": " + std::strerror(errno));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: docker\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    pollfd ready{fd, POLLOUT, 0};
    if (poll(&ready, 1, remainingMs()) <= 0) {
      throw std::runtime_error("timed out sending to " + socketPath);
    }
    const ssize_t wrote = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (wrote < 0 && errno != EAGAIN && errno != EINTR) {
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    sent += wrote > 0 ? static_cast<size_t>(wrote) : 0;
  }
  std::string response;
  char buffer[8192];
  for (;;) {
    pollfd ready{fd, POLLIN, 0};
    if (poll(&ready, 1, remainingMs()) <= 0) {
      throw std::runtime_error("timed out reading " + path + " from " + socketPath);
    }
    const ssize_t got = read(fd, buffer, sizeof(buffer));
    if (got == 0) {
      break;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        continue;
      }
      throw std::runtime_error(std::string("read: ") + std::strerror(errno));
    }
    response.append(buffer, static_cast<size_t>(got));
  }
  const auto headerEnd = response.find("\r\n\r\n");
  const auto space = response.find(' ');
  if (!response.starts_with("HTTP/1.") || headerEnd == std::string::npos ||
      space == std::string::npos) {
    throw std::runtime_error("not an HTTP response from " + socketPath);
  }
  const int status = std::atoi(response.c_str() + space + 1);
  std::string body = response.substr(headerEnd + 4);
  if (status < 200 || status > 299) {
    throw std::runtime_error("GET " + path + ": HTTP " + std::to_string(status) + " " + body);
  }
  return body;
}

// A static binary has no PT_INTERP program header: it runs in an image that has no libc.
// ELF64 only; anything else counts as "not known to be static".
bool isStaticElf64(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[64] = {};
  if (!in.read(reinterpret_cast<char*>(header), sizeof(header)) ||
      std::memcmp(header,
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      header[4] != 2 /* ELFCLASS64 */) {
    return false;
  }
  uint64_t phoff = 0;
  uint16_t phentsize = 0;
  uint16_t phnum = 0;
  std::memcpy(&phoff, header + 32, sizeof(phoff));
  std::memcpy(&phentsize, header + 54, sizeof(phentsize));
  std::memcpy(&phnum, header + 56, sizeof(phnum));
  for (uint16_t i = 0; i < phnum; ++i) {
    uint32_t type = 0;
    in.seekg(static_cast<std::streamoff>(phoff + static_cast<uint64_t>(i) * phentsize));
    if (!in.read(reinterpret_cast<char*>(&type), sizeof(type))) {
      return false;
    }
    if (type == 3 /* PT_INTERP */) {
      return false;
    }
  }
  return true;
}

}  // namespace

// --- Sweep ---

void sweepStaleDockerEngines() {
  std::error_code error;
  if (!fs::is_directory(kStateRoot, error)) {
    return;
  }
  // One sweeper at a time (two test binaries starting together), bounded. The directory itself
  // is the lock: no lock file to leave behind.
  const int lock = open(kStateRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0 || !waitFor([&] { return flock(lock, LOCK_EX | LOCK_NB) == 0; }, 60)) {
    warn(std::string("cannot lock ") + kStateRoot + "; not sweeping");
    if (lock >= 0) {
      close(lock);
    }
    return;
  }
  for (const auto& entry : fs::directory_iterator(kStateRoot, error)) {
    const std::string tag = entry.path().filename().string();
    const auto dash = tag.find('-');
    if (!entry.is_directory(error) || dash == std::string::npos || dash == 0 ||
        !onlyChars(tag.substr(0, dash), "0123456789", 10) ||
        !onlyChars(tag.substr(dash + 1), "0123456789", 10)) {
      continue;  // not an engine directory
    }
    const EngineFootprint footprint = readFootprint(entry.path());
    if (footprint.ownerStart == 0 ? liveProcess(footprint.owner)  // state not written yet
                                  : processAlive(footprint.owner, footprint.ownerStart)) {
      continue;
    }
    warn("removing the leftovers of an engine of dead process " + std::to_string(footprint.owner) +
         ": " + footprint.dir);
    removeFootprint(footprint, false);
  }
  close(lock);  // releases the lock
}

// --- DockerEngine ---

std::string DockerEngine::unavailableReason() {
  if (!haveRoot()) {
    return "needs root: runs its own dockerd, bridges and containers";
  }
  if (access(kDockerd, X_OK) != 0) {
    return std::string("needs ") + kDockerd + " (Debian: docker.io)";
  }
  if (access(kDockerCli, X_OK) != 0) {
    return std::string("needs Debian's docker client ") + kDockerCli + " (Debian: docker.io)";
  }
  // Looked up the way dockerd will, on its pinned PATH.
  for (const std::string tool : {"containerd", "containerd-shim-runc-v2", "runc"}) {
    bool found = false;
    std::istringstream dirs(kDaemonPath);
    std::string dir;
    while (std::getline(dirs, dir, ':') && !found) {
      found = access((dir + "/" + tool).c_str(), X_OK) == 0;
    }
    if (!found) {
      return "needs " + tool + " in " + kDaemonPath + " (Debian: containerd, runc)";
    }
  }
  if (const std::string tool = missingTool({"ip", "tar"}); !tool.empty()) {
    return "needs " + tool + " on PATH";
  }
  return "";
}

std::string DockerEngine::imageUnavailableReason() {
  const std::string busybox = findOnPath("busybox");
  if (busybox.empty()) {
    return "needs busybox on PATH to build " + std::string(kImage) + " (Debian: busybox-static)";
  }
  if (!isStaticElf64(busybox)) {
    return busybox +
           " is not a static x86-64/ELF64 binary; the image has no libc (Debian: "
           "busybox-static)";
  }
  return "";
}

DockerEngine::DockerEngine() {
  static std::once_flag swept;
  std::call_once(swept, sweepStaleDockerEngines);
  static std::atomic<int> engines{0};
  tag_ = std::to_string(getpid()) + "-" + std::to_string(engines++);
  dir_ = std::string(kStateRoot) + "/" + tag_;
  socket_ = dir_ + "/docker.sock";
  cgroupParent_ = cgroupParentOf(tag_);

  fs::create_directories(kStateRoot);
  fs::permissions(kStateRoot, fs::perms::owner_all, fs::perm_options::replace);
  if (!fs::create_directory(dir_)) {
    throw std::runtime_error("docker-engine: " + dir_ + " already exists");
  }
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
  for (const auto& dir : kOutsideDirs) {
    if (!fs::exists(dir)) {
      createdDirs_.push_back(dir);
    }
  }
  try {
    writeState();
    // Its own config file: /etc/docker/daemon.json (a system engine's) must not apply. The key
    // path, settable only here, keeps dockerd 20.10 from creating /etc/docker/key.json.
    nlohmann::json config = {{"deprecated-key-path", dir_ + "/key.json"}};
    std::ofstream(dir_ + "/daemon.json") << config.dump(2) << "\n";
    startEngine();
  } catch (...) {
    cleanup();
    throw;
  }
}

DockerEngine::~DockerEngine() {
  cleanup();
}

void DockerEngine::writeState() {
  std::ostringstream text;
  text << "owner " << getpid() << " " << processStartTime(getpid()) << "\n";
  for (const auto& network : networks_) {
    text << "bridge " << network->bridge << "\n";
  }
  for (const auto& rule : forwardRules_) {
    text << "iptables " << joined(rule) << "\n";
  }
  for (const auto& dir : createdDirs_) {
    text << "created " << dir << "\n";
  }
  const std::string path = dir_ + "/state";
  std::ofstream(path + ".new") << text.str();
  std::error_code ignored;
  fs::rename(path + ".new", path, ignored);
}

pid_t DockerEngine::dockerdPid() const {
  return dockerd_ != nullptr ? dockerd_->pid() : -1;
}

bool DockerEngine::running() const {
  return dockerd_ != nullptr && dockerd_->running();
}

void DockerEngine::startEngine() {
  if (running()) {
    return;
  }
  if (dockerd_ != nullptr) {
    stopEngine();  // died on its own: reap it first
  }
  std::vector<std::string> argv = {"/usr/bin/env", std::string("PATH=") + kDaemonPath};
  // The lab's spawn gives dockerd PR_SET_PDEATHSIG=SIGKILL; setpriv (util-linux) turns it into
  // SIGTERM before exec'ing dockerd, so when the test process dies dockerd shuts down the orderly
  // way: containers stopped, network namespaces, veths and mounts removed, its containerd (which
  // dies with dockerd) stopped first. A SIGKILLed dockerd would leave shims, containers and mounts
  // running until the next sweep.
  if (const std::string setpriv = findOnPath("setpriv"); !setpriv.empty()) {
    argv.insert(argv.end(), {setpriv, "--pdeathsig", "TERM", "--"});
  }
  const std::vector<std::string> daemon = {
      kDockerd,
      "--host=unix://" + socket_,
      "--data-root=" + dir_ + "/data",
      "--exec-root=" + dir_ + "/exec",  // also holds its containerd's socket, state and config
      "--pidfile=" + dir_ + "/docker.pid",
      "--config-file=" + dir_ + "/daemon.json",
      // A socket for root only: the default group "docker" would get a root-equivalent API.
      "--group=root",
      // No docker0: its name and 172.17.0.0/16 would clash with a system engine's.
      "--bridge=none",
      // No iptables: with them dockerd starts by deleting and re-creating the DOCKER* chains
      // (removeIPChains), which belong to any other engine on the machine, and sets FORWARD's
      // policy to DROP. Containers on one bridge still need FORWARD to let bridged frames pass
      // when br_netfilter is loaded and someone (another dockerd) set DROP: createNetwork
      // inserts its own `-i BR -o BR -j ACCEPT` for that. (The embedded DNS server's rules still
      // get made, inside each container's namespace.)
      "--iptables=false",
      "--ip6tables=false",
      // Leave net.ipv4.ip_forward alone: containers on one bridge talk at layer 2.
      "--ip-forward=false",
      // cgroupfs and a cgroup of its own: the sweep finds this engine's containers by it (the
      // systemd driver, 20.10's default on cgroup v2 with systemd, would want a slice).
      "--exec-opt=native.cgroupdriver=cgroupfs",
      "--cgroup-parent=/" + cgroupParent_,
      // dockerd supervises a containerd of its own (exec root above) unless
      // /run/containerd/containerd.sock exists; then it shares that one, where namespaces of its
      // own keep its containers apart from a system engine's ("moby").
      "--containerd-namespace=bulkhead-" + tag_,
      "--containerd-plugins-namespace=bulkhead-" + tag_ + "-plugins",
      // Bounds dockerd's own shutdown; containers stop with timeout 0 (see run()).
      "--shutdown-timeout=5",
  };
  argv.insert(argv.end(), daemon.begin(), daemon.end());
  const std::string logName = "dockerd-" + std::to_string(starts_++) + ".log";
  dockerd_ = &lab_.spawn(nullptr, argv, logName);
  logs_.push_back(lab_.dir().file(logName));

  std::string lastError;
  std::string body;
  const bool up = waitFor(
      [&] {
        if (!dockerd_->running()) {
          return true;
        }
        try {
          body = httpGet(socket_, "/version", 5);
          return true;
        } catch (const std::exception& error) {
          lastError = error.what();
          return false;
        }
      },
      kStartTimeout);
  if (!up || body.empty()) {
    const std::string why = !dockerd_->running() ? "dockerd exited" : "no answer on " + socket_;
    stopEngine();
    throw std::runtime_error("docker-engine: " + why + " (" + lastError + "); log:\n" +
                             tail(log(), 30));
  }
  try {
    apiVersion_ = nlohmann::json::parse(body).at("ApiVersion").get<std::string>();
  } catch (const std::exception&) {
    throw std::runtime_error("docker-engine: unexpected /version answer: " + body);
  }
}

void DockerEngine::stopEngine() {
  if (dockerd_ == nullptr) {
    return;
  }
  // SIGTERM to dockerd's group: it stops the containers, then its containerd, then exits.
  dockerd_->stop(kStopGrace);
  dockerd_ = nullptr;
  // containerd and the last shims exit just after dockerd (bounded); anything still there now is
  // a leftover, killed and reported.
  EngineFootprint footprint;
  footprint.dir = dir_;
  footprint.tag = tag_;
  if (!waitFor([&] { return engineProcesses(footprint).empty(); }, 10)) {
    for (const auto& what : killEngineProcesses(footprint, 10)) {
      warn("killed an engine process left after dockerd stopped: " + what);
    }
  }
}

void DockerEngine::killEngine() {
  if (dockerd_ == nullptr) {
    return;
  }
  ::kill(dockerd_->pid(), SIGKILL);
  waitFor([&] { return !dockerd_->running(); }, 10);
  dockerd_->stop(1);  // reaps it; the shims are not in its process group
  dockerd_ = nullptr;
}

std::string DockerEngine::log() const {
  std::string text;
  for (const auto& path : logs_) {
    text += "--- " + path + "\n" + slurp(path);
  }
  return text;
}

std::string DockerEngine::apiGet(const std::string& path, int timeoutSeconds) const {
  return httpGet(socket_, path, timeoutSeconds);
}

CommandResult DockerEngine::docker(const std::vector<std::string>& args, int timeoutSeconds) const {
  // --config: the client's own directory, not root's ~/.docker (contexts, credential helpers).
  std::vector<std::string> argv = {kDockerCli, "--config", dir_ + "/client", "--host", host()};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, timeoutSeconds);
}

std::string DockerEngine::dockerOrThrow(const std::vector<std::string>& args,
                                        int timeoutSeconds) const {
  const CommandResult result = docker(args, timeoutSeconds);
  if (result.exitCode != 0) {
    throw std::runtime_error("docker-engine: `docker " + joined(args) + "` failed" +
                             (result.timedOut ? " (timed out)" : "") + ": " + result.err +
                             result.out);
  }
  return trim(result.out);
}

void DockerEngine::ensureImage() {
  if (docker({"image", "inspect", "--format", "{{.Id}}", kImage}, 30).exitCode == 0) {
    return;
  }
  if (const std::string why = imageUnavailableReason(); !why.empty()) {
    throw std::runtime_error("docker-engine: " + why);
  }
  const std::string busybox = findOnPath("busybox");
  const fs::path root = lab_.dir().path() / "rootfs";
  for (const char* dir : {"bin", "etc", "tmp", "proc", "sys", "dev", "root", "var/www", "usr"}) {
    fs::create_directories(root / dir);
  }
  fs::permissions(root / "tmp", fs::perms::all | fs::perms::sticky_bit, fs::perm_options::replace);
  fs::copy_file(busybox, root / "bin/busybox");
  fs::permissions(root / "bin/busybox", fs::perms::owner_all | fs::perms::group_read |
                                            fs::perms::group_exec | fs::perms::others_read |
                                            fs::perms::others_exec);
  // One relative symlink per applet (sh, sleep, ip, ping, nc, httpd, wget, ...); `busybox
  // --install -s` would point them at the host's path of busybox instead.
  const CommandResult applets = runCommand({busybox, "--list"}, kCommandTimeout);
  std::istringstream names(applets.out);
  std::string name;
  int linked = 0;
  while (std::getline(names, name)) {
    name = trim(name);
    if (!name.empty() && name != "busybox" && name.find('/') == std::string::npos) {
      fs::create_symlink("busybox", root / "bin" / name);
      ++linked;
    }
  }
  if (linked < 10) {
    throw std::runtime_error("docker-engine: `busybox --list` gave " + std::to_string(linked) +
                             " applets: " + applets.err);
  }
  fs::create_directory_symlink("bin", root / "sbin");
  fs::create_directory_symlink("../bin", root / "usr/bin");
  fs::create_directory_symlink("../bin", root / "usr/sbin");
  std::ofstream(root / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
  std::ofstream(root / "etc/group") << "root:x:0:\n";

  const std::string tarball = lab_.dir().file("rootfs.tar");
  const CommandResult tar = runTool({"tar", "--numeric-owner", "--owner=0", "--group=0", "-C",
                                     root.string(), "-cf", tarball, "."},
                                    60);
  if (tar.exitCode != 0) {
    throw std::runtime_error("docker-engine: tar failed: " + tar.err);
  }
  // The client streams a local file given as the source, like `tar | docker import -`.
  dockerOrThrow({"import", "--change", "CMD [\"/bin/sh\"]", tarball, kImage}, 120);
  std::error_code ignored;
  fs::remove_all(root, ignored);
  fs::remove(tarball, ignored);
}

const DockerNetwork& DockerEngine::createNetwork(const std::string& name, const std::string& subnet,
                                                 const std::string& bridgeName) {
  if (!onlyChars(name, "abcdefghijklmnopqrstuvwxyz0123456789-", 32)) {
    throw std::invalid_argument("docker-engine: network name must be 1-32 of [a-z0-9-]: '" + name +
                                "'");
  }
  if (!onlyChars(bridgeName, "abcdefghijklmnopqrstuvwxyz0123456789", 15 - prefix().size())) {
    throw std::invalid_argument("docker-engine: bridge name must be 1-" +
                                std::to_string(15 - prefix().size()) + " of [a-z0-9]: '" +
                                bridgeName + "'");
  }
  if (!privateIpv4Cidr(subnet)) {
    // Only RFC 1918: the bridge gets the gateway address and a route on the host.
    throw std::invalid_argument("docker-engine: need a private IPv4 subnet, got '" + subnet + "'");
  }
  DockerNetwork made;
  made.shortName = name;
  made.name = prefix() + "-" + name;
  made.subnet = subnet;
  made.bridge = prefix() + bridgeName;
  for (const auto& network : networks_) {
    if (network->name == made.name || network->bridge == made.bridge) {
      throw std::invalid_argument("docker-engine: duplicate network " + name + "/" + bridgeName);
    }
  }
  // Recorded before creation: a failure half-way still gets the bridge removed.
  networks_.push_back(std::make_unique<DockerNetwork>(made));
  writeState();
  networks_.back()->id =
      dockerOrThrow({"network", "create", "--driver", "bridge", "--subnet", subnet, "--opt",
                     "com.docker.network.bridge.name=" + made.bridge, made.name});
  if (!findOnPath("iptables").empty()) {
    // Always, not only while FORWARD's policy is DROP: another engine may set DROP mid-test, and
    // with br_netfilter every bridged frame goes through FORWARD (checked: ping between two
    // ports of one bridge stops under DROP and works again with this rule).
    const std::vector<std::string> rule = {"FORWARD",   "-i", made.bridge, "-o",
                                           made.bridge, "-j", "ACCEPT"};
    forwardRules_.push_back(rule);
    writeState();
    std::vector<std::string> insert = {"iptables", "-w", "5", "-I"};
    insert.insert(insert.end(), rule.begin(), rule.end());
    const CommandResult inserted = runTool(insert);
    if (inserted.exitCode != 0) {
      throw std::runtime_error("docker-engine: `" + joined(insert) + "` failed: " + inserted.err);
    }
  }
  return *networks_.back();
}

const DockerNetwork& DockerEngine::network(const std::string& name) const {
  for (const auto& network : networks_) {
    if (network->shortName == name || network->name == name) {
      return *network;
    }
  }
  throw std::invalid_argument("docker-engine: no network " + name);
}

std::string DockerEngine::resolveNetwork(const std::string& name) const {
  for (const auto& network : networks_) {
    if (network->shortName == name) {
      return network->name;
    }
  }
  return name;
}

void DockerEngine::removeNetwork(const std::string& name) {
  const DockerNetwork found = network(name);  // a copy: `name` may be the entry's own
  dockerOrThrow({"network", "rm", found.name}, 30);
  // dockerd deletes the bridge itself; make sure, bounded.
  if (!waitFor([&] { return !linkExists(found.bridge); }, 5)) {
    deleteLink(found.bridge);
  }
  const std::vector<std::string> rule = {"FORWARD",    "-i", found.bridge, "-o",
                                         found.bridge, "-j", "ACCEPT"};
  deleteForwardRule(rule);
  forwardRules_.erase(std::remove(forwardRules_.begin(), forwardRules_.end(), rule),
                      forwardRules_.end());
  networks_.erase(std::remove_if(networks_.begin(), networks_.end(),
                                 [&](const auto& n) { return n->name == found.name; }),
                  networks_.end());
  writeState();
}

std::string DockerEngine::run(const std::string& name,
                              const std::map<std::string, std::string>& labels,
                              const std::string& network, const std::vector<std::string>& extraArgs,
                              const std::vector<std::string>& command) {
  // --stop-timeout 0: busybox as PID 1 ignores SIGTERM, so every stop (docker stop, restart, and
  // dockerd's own shutdown) would wait out the default 10 s before SIGKILL.
  // No --ulimit: unlike podman, dockerd puts no rlimits in the spec, so runc does not need
  // CAP_SYS_RESOURCE (missing here) and containers inherit the daemon's limits.
  std::vector<std::string> args = {"run", "--detach", "--name", name, "--stop-timeout", "0"};
  for (const auto& [key, value] : labels) {
    args.insert(args.end(), {"--label", key + "=" + value});
  }
  if (!network.empty()) {
    args.insert(args.end(), {"--network", resolveNetwork(network)});
  }
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  args.push_back(kImage);
  if (command.empty()) {
    args.insert(args.end(), {"sleep", "3600"});
  } else {
    args.insert(args.end(), command.begin(), command.end());
  }
  return dockerOrThrow(args, 60);
}

std::string DockerEngine::ip(const std::string& container, const std::string& network) const {
  return dockerOrThrow({"inspect", "--format",
                        "{{with index .NetworkSettings.Networks \"" + resolveNetwork(network) +
                            "\"}}{{.IPAddress}}{{end}}",
                        container},
                       30);
}

CommandResult DockerEngine::exec(const std::string& container, const std::vector<std::string>& argv,
                                 int timeoutSeconds) const {
  std::vector<std::string> args = {"exec", container};
  args.insert(args.end(), argv.begin(), argv.end());
  return docker(args, timeoutSeconds);
}

bool DockerEngine::isRunning(const std::string& container) const {
  return dockerOrThrow({"inspect", "--format", "{{.State.Running}}", container}, 30) == "true";
}

void DockerEngine::stop(const std::string& container) {
  dockerOrThrow({"stop", "--time", "0", container}, 30);
}

void DockerEngine::restart(const std::string& container) {
  dockerOrThrow({"restart", "--time", "0", container}, 30);
}

void DockerEngine::remove(const std::string& container) {
  dockerOrThrow({"rm", "--force", "--volumes", container}, 30);
}

std::string DockerEngine::hostVethOf(const std::string& container) const {
  const CommandResult iflink = exec(container, {"cat", "/sys/class/net/eth0/iflink"}, 10);
  const unsigned index = static_cast<unsigned>(std::strtoul(iflink.out.c_str(), nullptr, 10));
  char name[IF_NAMESIZE] = {};
  if (iflink.exitCode != 0 || index == 0 || if_indextoname(index, name) == nullptr) {
    throw std::runtime_error("docker-engine: no host veth for " + container + " (iflink '" +
                             trim(iflink.out) + "'): " + iflink.err);
  }
  return name;
}

void DockerEngine::cleanup() noexcept {
  if (cleaned_) {
    return;
  }
  cleaned_ = true;
  try {
    if (running()) {
      // The engine removes its own objects first (veths, network namespaces, mounts, bridges):
      // what is left for the sweep below is then a bug worth a warning.
      const CommandResult listed = docker({"ps", "--all", "--quiet", "--no-trunc"}, 30);
      std::vector<std::string> remove = {"rm", "--force", "--volumes"};
      std::istringstream ids(listed.out);
      std::string id;
      while (ids >> id) {
        remove.push_back(id);
      }
      if (remove.size() > 3) {
        const CommandResult removed = docker(remove, 60);
        if (removed.exitCode != 0) {
          warn("cannot remove containers: " + removed.err);
        }
      }
      for (const auto& network : networks_) {
        const CommandResult removed = docker({"network", "rm", network->name}, 30);
        if (removed.exitCode != 0) {
          warn("cannot remove network " + network->name + ": " + removed.err);
        }
      }
    }
    stopEngine();
    EngineFootprint footprint;
    footprint.dir = dir_;
    footprint.tag = tag_;
    for (const auto& network : networks_) {
      footprint.bridges.push_back(network->bridge);
    }
    footprint.rules = forwardRules_;
    footprint.createdDirs = createdDirs_;
    removeFootprint(footprint, true);
    networks_.clear();
    forwardRules_.clear();
  } catch (const std::exception& error) {
    warn(std::string("cleanup: ") + error.what());
  } catch (...) {
    warn("cleanup failed");
  }
}

}  // namespace bulkhead::testing
