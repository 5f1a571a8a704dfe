#include "tests/integration/lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bulkhead::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kCommandTimeout = 10;  // seconds for one `ip`/`ethtool`/`iptables` call
// tmpfs: state of a SIGKILLed run survives the process but not a reboot (nor do namespaces).
constexpr const char* kStateDir = "/run/bulkhead-lab";

void warn(const std::string& message) {
  std::cerr << "lab: " << message << std::endl;
}

// For setup steps: a failure here means the lab is not what the test asked for.
std::string runOrThrow(const std::vector<std::string>& argv) {
  const CommandResult result = runTool(argv, kCommandTimeout);
  if (result.exitCode != 0) {
    throw std::runtime_error("lab: `" + joined(argv) + "` failed" +
                             (result.timedOut ? " (timed out)" : "") + ": " + result.err +
                             result.out);
  }
  return result.out;
}

bool linkExists(const std::string& name) {
  return runTool({"ip", "link", "show", "dev", name}).exitCode == 0;
}

bool netnsExists(const std::string& name) {
  return fs::exists(fs::path("/run/netns") / name);
}

// Best effort, for cleanup paths: absent objects are fine, leftovers are reported.
void deleteLink(const std::string& name) {
  const CommandResult result = runTool({"ip", "link", "del", "dev", name});
  if (result.exitCode != 0 && linkExists(name)) {
    warn("cannot delete link " + name + ": " + result.err);
  }
}

void deleteNetns(const std::string& name) {
  const CommandResult result = runTool({"ip", "netns", "del", name});
  if (result.exitCode != 0 && netnsExists(name)) {
    warn("cannot delete netns " + name + ": " + result.err);
  }
}

// What an agent of `instance` puts in the kernel (controlplane/wire_names.h): links named
// <instance>-*, its nftables table and its BPF pins. Tc filters go with the links they are on.
void deleteWire(const std::string& instance) {
  if (instance.empty() || instance.size() > 8 ||
      !std::all_of(instance.begin(), instance.end(),
                   [](char c) { return std::islower(c) || std::isdigit(c); })) {
    return;
  }
  const CommandResult links = runTool({"ip", "-o", "link", "show"});
  std::istringstream lines(links.out);
  for (std::string line; std::getline(lines, line);) {
    // "12: bh1a2b0-tk@bh1a2b0-td: <...": the name sits between ": " and '@' or ':'.
    const size_t start = line.find(": ");
    if (start == std::string::npos) {
      continue;
    }
    const size_t end = line.find_first_of("@:", start + 2);
    const std::string name = line.substr(start + 2, end - start - 2);
    if (name.starts_with(instance + "-")) {
      deleteLink(name);
    }
  }
  runTool({"nft", "delete", "table", "bridge", "bulkhead_" + instance});
  std::error_code ignored;
  fs::remove_all("/sys/fs/bpf/bulkhead/" + instance, ignored);
}

void deleteForwardRule(const std::vector<std::string>& rule) {
  std::vector<std::string> argv = {"iptables", "-w", "5", "-D"};
  argv.insert(argv.end(), rule.begin(), rule.end());
  const CommandResult result = runTool(argv);
  if (result.exitCode != 0) {
    warn("cannot delete iptables rule " + joined(rule) + ": " + result.err);
  }
}

// Best effort: the second /proc write fails harmlessly when IPv6 is compiled out.
void disableIpv6(const std::string& ifname) {
  std::ofstream("/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6") << "1\n";
}

bool privateIpv4(const std::string& ip) {
  in_addr address{};
  if (inet_pton(AF_INET, ip.c_str(), &address) != 1) {
    return false;
  }
  const uint32_t value = ntohl(address.s_addr);
  return (value >> 24) == 10 || (value >> 20) == ((172u << 4) | 1u) || (value >> 16) == 0xc0a8u;
}

// Polls a child without reaping it, so its PID stays ours (a zombie) while we may signal it.
bool childExited(pid_t pid, std::optional<int>* exitCode) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return true;  // ECHILD: already reaped
  }
  if (info.si_pid != pid) {
    return false;
  }
  if (exitCode != nullptr) {
    *exitCode = info.si_code == CLD_EXITED ? info.si_status : -1;
  }
  return true;
}

bool waitChildExit(pid_t pid, std::optional<int>* exitCode, int timeoutSeconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(timeoutSeconds);
  for (;;) {
    if (childExited(pid, exitCode)) {
      return true;
    }
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Everything any lab of this process created and has not removed yet. It outlives main() (never
// destroyed) so the atexit and signal paths can still use it.
class Registry {
 public:
  static Registry& instance() {
    static Registry* registry = new Registry;
    return *registry;
  }

  // Every mutation of the machine holds this lock, so the signal-time cleanup never races a
  // half-created object. After a signal started the final cleanup, other threads park here until
  // the process dies rather than create something nobody will remove.
  std::unique_lock<std::timed_mutex> lock() {
    std::unique_lock<std::timed_mutex> guard(mutex_);
    if (shuttingDown_) {
      guard.unlock();
      for (;;) {
        pause();
      }
    }
    return guard;
  }

  // The methods below expect lock() to be held.
  void addProcess(pid_t pid, unsigned long long start) {
    processes_[pid] = start;
    save();
  }
  void removeProcess(pid_t pid) {
    processes_.erase(pid);
    save();
  }
  void addRule(const std::vector<std::string>& rule) {
    rules_.push_back(rule);
    save();
  }
  void removeRule(const std::vector<std::string>& rule) {
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
      if (*it == rule) {
        rules_.erase(it);
        break;
      }
    }
    save();
  }
  void addBridge(const std::string& name) { add(bridges_, name); }
  void removeBridge(const std::string& name) { remove(bridges_, name); }
  void addVeth(const std::string& name) { add(veths_, name); }
  void removeVeth(const std::string& name) { remove(veths_, name); }
  void addNetns(const std::string& name) { add(netns_, name); }
  void removeNetns(const std::string& name) { remove(netns_, name); }
  void addWire(const std::string& instance) { add(wires_, instance); }
  void removeWire(const std::string& instance) { remove(wires_, instance); }
  void addDir(const std::string& path) { add(dirs_, path); }
  void removeDir(const std::string& path) { remove(dirs_, path); }

  void sweep() { sweepStaleState(); }

  std::string nextPrefix() {
    static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char prefix[16];
    std::snprintf(prefix, sizeof(prefix), "bh%04x%c", static_cast<unsigned>(getpid()) & 0xffffu,
                  kDigits[labCount_++ % 36]);
    return prefix;
  }

 private:
  Registry() {
    ownerPid_ = getpid();
    sweepStaleState();
    installSignalHandlers();
    std::atexit([] { instance().cleanupAtExit(); });
  }

  void add(std::set<std::string>& names, const std::string& name) {
    names.insert(name);
    save();
  }
  void remove(std::set<std::string>& names, const std::string& name) {
    names.erase(name);
    save();
  }

  // Expects the lock (or a lock that could not be had after a crash).
  void cleanupAll() {
    // Our unreaped children: the PIDs cannot have been recycled. Not reaped here; the process is
    // about to exit, or a Process object will reap it.
    for (const auto& [pid, start] : processes_) {
      killpg(pid, SIGTERM);
    }
    for (const auto& [pid, start] : processes_) {
      waitChildExit(pid, nullptr, 2);
      killpg(pid, SIGKILL);
    }
    processes_.clear();
    cleanupNames(rules_, bridges_, veths_, netns_, wires_);
    removeDirs(dirs_);
    wires_.clear();
    rules_.clear();
    bridges_.clear();
    veths_.clear();
    netns_.clear();
    dirs_.clear();
    save();
  }

  static void cleanupNames(const std::vector<std::vector<std::string>>& rules,
                           const std::set<std::string>& bridges, const std::set<std::string>& veths,
                           const std::set<std::string>& netns, const std::set<std::string>& wires) {
    for (const auto& instance : wires) {
      deleteWire(instance);
    }
    for (const auto& rule : rules) {
      deleteForwardRule(rule);
    }
    for (const auto& name : bridges) {
      deleteLink(name);
    }
    for (const auto& name : veths) {
      deleteLink(name);
    }
    for (const auto& name : netns) {
      deleteNetns(name);
    }
  }

  // Only TempDir's own directories: a path read back from a state file is checked before
  // anything is deleted recursively.
  static void removeDirs(const std::set<std::string>& paths) {
    for (const auto& path : paths) {
      if (fs::path(path).filename().string().starts_with("bulkhead-test-")) {
        std::error_code ignored;
        fs::remove_all(path, ignored);
      }
    }
  }

  void cleanupAtExit() {
    if (getpid() != ownerPid_) {
      return;  // exit() in a fork()ed child: the lab belongs to the parent
    }
    std::unique_lock<std::timed_mutex> guard(mutex_, std::chrono::seconds(20));
    if (shuttingDown_) {
      return;  // the signal path owns the cleanup
    }
    cleanupAll();
  }

  // --- State file: what a SIGKILLed run (ctest's timeout) leaves for the next run to sweep. ---

  std::string statePath() const {
    return std::string(kStateDir) + "/" + std::to_string(getpid()) + ".state";
  }

  void save() {
    const std::string path = statePath();
    if (processes_.empty() && rules_.empty() && bridges_.empty() && veths_.empty() &&
        netns_.empty() && dirs_.empty() && wires_.empty()) {
      std::error_code ignored;
      fs::remove(path, ignored);
      return;
    }
    std::error_code ignored;
    fs::create_directories(kStateDir, ignored);
    std::ostringstream text;
    text << "start " << processStartTime(getpid()) << "\n";
    for (const auto& [pid, start] : processes_) {
      text << "process " << pid << " " << start << "\n";
    }
    for (const auto& rule : rules_) {
      text << "iptables " << joined(rule) << "\n";
    }
    for (const auto& name : bridges_) {
      text << "bridge " << name << "\n";
    }
    for (const auto& name : veths_) {
      text << "veth " << name << "\n";
    }
    for (const auto& name : netns_) {
      text << "netns " << name << "\n";
    }
    for (const auto& dir : dirs_) {
      text << "dir " << dir << "\n";
    }
    for (const auto& instance : wires_) {
      text << "wire " << instance << "\n";
    }
    const std::string temporary = path + ".new";
    std::ofstream(temporary) << text.str();
    fs::rename(temporary, path, ignored);
  }

  // Removes what earlier runs recorded and could not clean (killed with SIGKILL, power cut of a
  // CI container). A file whose owner is alive (same PID and start time) is left alone, and so
  // is any name such a live owner also claims.
  void sweepStaleState() {
    std::error_code error;
    if (!fs::is_directory(kStateDir, error)) {
      return;
    }
    struct Stale {
      fs::path file;
      std::vector<std::pair<pid_t, unsigned long long>> processes;
      std::vector<std::vector<std::string>> rules;
      std::set<std::string> bridges, veths, netns, dirs, wires;
    };
    std::vector<Stale> stale;
    std::set<std::string> claimedByLive;
    for (const auto& entry : fs::directory_iterator(kStateDir, error)) {
      const pid_t owner = static_cast<pid_t>(std::atoi(entry.path().filename().c_str()));
      if (entry.path().extension() == ".new" && owner != getpid() &&
          !fs::exists("/proc/" + std::to_string(owner))) {
        fs::remove(entry.path(), error);  // a save() cut short; the .state beside it is complete
      }
      if (entry.path().extension() != ".state") {
        continue;
      }
      std::istringstream lines(slurp(entry.path().string()));
      Stale state{entry.path(), {}, {}, {}, {}, {}, {}, {}};
      unsigned long long ownerStart = 0;
      std::string line;
      while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string kind, name;
        words >> kind;
        if (kind == "start") {
          words >> ownerStart;
        } else if (kind == "process") {
          pid_t pid = 0;
          unsigned long long start = 0;
          words >> pid >> start;
          state.processes.emplace_back(pid, start);
        } else if (kind == "iptables") {
          std::vector<std::string> rule;
          while (words >> name) {
            rule.push_back(name);
          }
          state.rules.push_back(rule);
        } else if (kind == "bridge" && words >> name) {
          state.bridges.insert(name);
        } else if (kind == "veth" && words >> name) {
          state.veths.insert(name);
        } else if (kind == "netns" && words >> name) {
          state.netns.insert(name);
        } else if (kind == "wire" && words >> name) {
          state.wires.insert(name);
        } else if (kind == "dir" && line.size() > 4) {
          state.dirs.insert(line.substr(4));  // the rest of the line: TMPDIR may hold spaces
        }
      }
      if (owner == getpid() || processAlive(owner, ownerStart)) {
        claimedByLive.insert(state.bridges.begin(), state.bridges.end());
        claimedByLive.insert(state.veths.begin(), state.veths.end());
        claimedByLive.insert(state.netns.begin(), state.netns.end());
        claimedByLive.insert(state.wires.begin(), state.wires.end());
      } else {
        stale.push_back(std::move(state));
      }
    }
    for (auto& state : stale) {
      warn("removing leftovers of an earlier run recorded in " + state.file.string());
      for (const auto& [pid, start] : state.processes) {
        // Still the very process a lab started (same start time): its group is ours to end.
        if (processAlive(pid, start)) {
          killpg(pid, SIGKILL);
        }
      }
      for (auto* names : {&state.bridges, &state.veths, &state.netns, &state.wires}) {
        for (const auto& name : claimedByLive) {
          names->erase(name);
        }
      }
      cleanupNames(state.rules, state.bridges, state.veths, state.netns, state.wires);
      removeDirs(state.dirs);
      fs::remove(state.file, error);
    }
  }

  // --- Signals. The handler only writes a byte to a pipe (async-signal-safe); a watcher thread
  // does the real cleanup with ordinary code (spawning `ip`, allocating), then lets the signal
  // take its original course. ---

  static constexpr int kTermSignals[] = {SIGTERM, SIGINT, SIGHUP};
  static constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

  // Plain globals for the handler: no locks, no allocation, no static-init guards there.
  static inline pid_t ownerPid_ = -1;
  static inline int notifyFd_ = -1;
  static inline int doneFd_ = -1;
  static inline struct sigaction previousActions_[NSIG];
  static inline std::atomic_flag cleanupStarted_ = ATOMIC_FLAG_INIT;

  static bool isCrashSignal(int signal) {
    return std::find(std::begin(kCrashSignals), std::end(kCrashSignals), signal) !=
           std::end(kCrashSignals);
  }

  static void onSignal(int signal, siginfo_t* info, void*) {
    const int savedErrno = errno;
    if (getpid() != ownerPid_) {
      // A fork()ed child (a gtest death test) shares the pipe: it must not tear down the parent's
      // lab. It gets the handling it would have had without the lab.
      sigaction(signal, &previousActions_[signal], nullptr);
      raise(signal);
      errno = savedErrno;
      return;
    }
    if (cleanupStarted_.test_and_set()) {
      // Cleanup is already under way: a crash (maybe in the cleanup itself) proceeds at once;
      // a repeated SIGTERM/SIGINT is dropped, the cleanup ends the process shortly.
      if (isCrashSignal(signal)) {
        sigaction(signal, &previousActions_[signal], nullptr);
        raise(signal);  // pending until we return, then handled the previous way
      }
      errno = savedErrno;
      return;
    }
    const unsigned char byte = static_cast<unsigned char>(signal);
    [[maybe_unused]] ssize_t written = write(notifyFd_, &byte, 1);
    if (isCrashSignal(signal)) {
      // Wait (bounded) for the cleanup, restore the previous handler, return. A real fault
      // repeats and the previous handler (ASan's, or the default core dump) sees it in context;
      // a sent signal (kill, abort()) is re-raised.
      pollfd done{doneFd_, POLLIN, 0};
      poll(&done, 1, 60'000);
      sigaction(signal, &previousActions_[signal], nullptr);
      if (info == nullptr || info->si_code <= 0) {
        raise(signal);
      }
    }
    errno = savedErrno;
  }

  void installSignalHandlers() {
    int notify[2];
    int done[2];
    if (pipe2(notify, O_CLOEXEC) != 0 || pipe2(done, O_CLOEXEC) != 0) {
      warn("no signal-time cleanup: pipe2 failed");
      return;
    }
    notifyFd_ = notify[1];
    doneFd_ = done[0];
    std::thread([this, readFd = notify[0], doneWrite = done[1]] {
      unsigned char byte = 0;
      for (;;) {
        const ssize_t got = read(readFd, &byte, 1);
        if (got == 1) {
          break;
        }
        if (got == 0 || errno != EINTR) {
          return;
        }
      }
      const int signal = byte;
      warn(std::string("caught ") + strsignal(signal) + ", removing the lab");
      {
        // Bounded: if the signal hit a thread inside a locked section (a crash there), clean
        // up anyway rather than hang.
        std::unique_lock<std::timed_mutex> guard(mutex_, std::chrono::seconds(20));
        shuttingDown_ = true;
        cleanupAll();
      }
      const unsigned char finished = 1;
      [[maybe_unused]] ssize_t written = write(doneWrite, &finished, 1);
      if (!isCrashSignal(signal)) {
        sigaction(signal, &previousActions_[signal], nullptr);
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, signal);
        pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
        raise(signal);
        _exit(128 + signal);  // the previous disposition did not end the process
      }
    }).detach();

    struct sigaction action {};
    action.sa_sigaction = &Registry::onSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    std::vector<int> signals(std::begin(kTermSignals), std::end(kTermSignals));
    signals.insert(signals.end(), std::begin(kCrashSignals), std::end(kCrashSignals));
    for (const int signal : signals) {
      struct sigaction previous {};
      sigaction(signal, nullptr, &previous);
      if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_IGN) {
        continue;  // e.g. SIGHUP under nohup: the caller wants it ignored
      }
      previousActions_[signal] = previous;
      sigaction(signal, &action, nullptr);
    }
  }

  std::timed_mutex mutex_;
  bool shuttingDown_ = false;
  int labCount_ = 0;
  std::map<pid_t, unsigned long long> processes_;  // group leader -> start time
  std::vector<std::vector<std::string>> rules_;
  std::set<std::string> bridges_;
  std::set<std::string> veths_;
  std::set<std::string> netns_;
  std::set<std::string> dirs_;   // the labs' scratch directories (logs), gone with the lab
  std::set<std::string> wires_;  // agent instances whose kernel objects go with the lab
};

}  // namespace

bool haveRoot() {
  return geteuid() == 0;
}

void sweepStaleLabs() {
  auto& registry = Registry::instance();
  auto guard = registry.lock();
  registry.sweep();
}

std::string missingTool(std::initializer_list<std::string> tools) {
  for (const auto& tool : tools) {
    if (findOnPath(tool).empty()) {
      return tool;
    }
  }
  return "";
}

bool waitFor(const std::function<bool()>& condition, int timeoutSeconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(timeoutSeconds);
  for (;;) {
    if (condition()) {
      return true;
    }
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// --- Process ---

Process::~Process() {
  stop();
}

bool Process::exitedNoReap() {
  return reaped_ || childExited(pid_, &exitCode_);
}

bool Process::running() {
  return !exitedNoReap();
}

std::optional<int> Process::exitCode() {
  exitedNoReap();
  return exitCode_;
}

void Process::stop(int graceSeconds) {
  if (reaped_) {
    return;
  }
  auto guard = Registry::instance().lock();
  stopLocked(graceSeconds);
}

void Process::stopLocked(int graceSeconds) {
  if (reaped_) {
    return;
  }
  if (!childExited(pid_, &exitCode_)) {
    killpg(pid_, SIGTERM);
    if (!waitChildExit(pid_, &exitCode_, graceSeconds)) {
      killpg(pid_, SIGKILL);
      waitChildExit(pid_, &exitCode_, 10);
    }
  }
  // The leader is a zombie now, which pins its PID as our group's ID: stragglers it left in the
  // group (children it forked) can be ended without any risk of hitting a recycled PID.
  killpg(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_ && !exitCode_) {
    exitCode_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  reaped_ = true;
  Registry::instance().removeProcess(pid_);
}

bool Process::waitForLog(const std::string& needle, int timeoutSeconds) {
  bool died = false;
  const bool found = waitFor(
      [&] {
        if (log().find(needle) != std::string::npos) {
          return true;
        }
        died = !running();
        return died;  // no point waiting for a dead program
      },
      timeoutSeconds);
  return found && (!died || log().find(needle) != std::string::npos);
}

std::string Process::log() const {
  return slurp(logPath_);
}

// --- Lab ---

Lab::Lab() {
  auto& registry = Registry::instance();
  auto guard = registry.lock();
  prefix_ = registry.nextPrefix();
  registry.addDir(dir_.path().string());
}

Lab::~Lab() {
  cleanup();
  processes_.clear();  // all reaped already; the destructors only check
  try {
    auto& registry = Registry::instance();
    auto guard = registry.lock();
    registry.removeDir(dir_.path().string());  // dir_'s destructor removes it next
  } catch (...) {
  }
}

Host& Lab::addHost(const std::string& role, const std::string& ipCidr) {
  if (role.empty() || role.size() > 32 ||
      role.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos) {
    throw std::invalid_argument("lab: role must be 1-32 of [a-z0-9]: '" + role + "'");
  }
  for (const auto& host : hosts_) {
    if (host->role == role) {
      throw std::invalid_argument("lab: duplicate role " + role);
    }
  }
  if (hosts_.size() >= 254) {
    throw std::invalid_argument("lab: too many hosts");
  }
  const auto slash = ipCidr.find('/');
  const std::string ip = ipCidr.substr(0, slash);
  const int length = slash == std::string::npos ? -1 : std::atoi(ipCidr.c_str() + slash + 1);
  if (!privateIpv4(ip) || length < 8 || length > 32) {
    // Only RFC 1918 addresses with a prefix: nothing the lab configures can route off the box.
    throw std::invalid_argument("lab: need a private IPv4 address/prefix, got '" + ipCidr + "'");
  }

  auto host = std::make_unique<Host>();
  host->role = role;
  host->index = static_cast<int>(hosts_.size());
  host->netns = prefix_ + "-" + role;
  host->hostIfname = prefix_ + role.substr(0, 1) + std::to_string(host->index);
  char mac[18];
  std::snprintf(mac, sizeof(mac), "02:62:68:00:00:%02x", host->index + 1);  // 02 = local, "bh"
  host->mac = mac;
  host->ip = ip;
  host->cidr = ipCidr;

  // Listed (lab and registry) before creation: a failure halfway still gets cleaned up.
  hosts_.push_back(std::move(host));
  Host* made = hosts_.back().get();
  auto& registry = Registry::instance();
  auto guard = registry.lock();
  registry.addNetns(made->netns);
  runOrThrow({"ip", "netns", "add", made->netns});
  registry.addVeth(made->hostIfname);
  // The peer is born inside the namespace, so "eth0" never clashes with the root's eth0.
  runOrThrow({"ip", "link", "add", made->hostIfname, "type", "veth", "peer", "name", "eth0",
              "netns", made->netns});
  runOrThrow({"ip", "-n", made->netns, "link", "set", "eth0", "address", made->mac});

  // No IPv6 on either end: no DAD, router solicitations or MLD reports in the agent's view.
  disableIpv6(made->hostIfname);
  if (!findOnPath("sysctl").empty()) {
    runTool({"ip", "netns", "exec", made->netns, "sysctl", "-q", "-w",
             "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"});
  }
  // Offloads off on both ends: with them on, TCP through a DPDK bridge carries partial checksums.
  // Unsupported features make ethtool exit non-zero; the rest still applies, so that is ignored.
  if (!findOnPath("ethtool").empty()) {
    const std::vector<std::string> features = {"tx",  "off", "rx",  "off", "tso",
                                               "off", "gso", "off", "gro", "off"};
    std::vector<std::string> outer = {"ethtool", "-K", made->hostIfname};
    outer.insert(outer.end(), features.begin(), features.end());
    runTool(outer);
    std::vector<std::string> inner = {"ip", "netns", "exec", made->netns, "ethtool", "-K", "eth0"};
    inner.insert(inner.end(), features.begin(), features.end());
    runTool(inner);
    made->offloadsOff = true;
  }

  runOrThrow({"ip", "-n", made->netns, "addr", "add", made->cidr, "dev", "eth0"});
  runOrThrow({"ip", "-n", made->netns, "link", "set", "eth0", "up"});
  runOrThrow({"ip", "-n", made->netns, "link", "set", "lo", "up"});
  runOrThrow({"ip", "link", "set", made->hostIfname, "up"});
  return *made;
}

const std::string& Lab::bridgeHosts(const std::vector<const Host*>& hosts) {
  std::vector<const Host*> members = hosts;
  if (members.empty()) {
    for (const auto& host : hosts_) {
      members.push_back(host.get());
    }
  }
  auto& registry = Registry::instance();
  auto guard = registry.lock();
  if (bridge_.empty()) {
    const std::string name = prefix_ + "br";
    registry.addBridge(name);
    bridge_ = name;
    runOrThrow({"ip", "link", "add", "name", name, "type", "bridge"});
    disableIpv6(name);
    runOrThrow({"ip", "link", "set", name, "up"});
    // With Docker running, FORWARD's policy is DROP and br_netfilter sends bridged frames
    // through it: without this rule the baseline would measure Docker's firewall.
    if (!findOnPath("iptables").empty()) {
      const CommandResult forward = runTool({"iptables", "-w", "5", "-S", "FORWARD"});
      if (forward.exitCode == 0 && forward.out.find("-P FORWARD DROP") != std::string::npos) {
        const std::vector<std::string> rule = {"FORWARD", "-i", name, "-o", name, "-j", "ACCEPT"};
        registry.addRule(rule);
        forwardRule_ = rule;
        std::vector<std::string> insert = {"iptables", "-w", "5", "-I"};
        insert.insert(insert.end(), rule.begin(), rule.end());
        runOrThrow(insert);
      }
    }
  }
  for (const Host* host : members) {
    runOrThrow({"ip", "link", "set", host->hostIfname, "master", bridge_});
  }
  return bridge_;
}

CommandResult Lab::exec(const Host& host, const std::vector<std::string>& argv,
                        int timeoutSeconds) {
  if (argv.empty()) {
    throw std::invalid_argument("lab: exec needs a command");
  }
  std::vector<std::string> full = {"ip", "netns", "exec", host.netns};
  full.insert(full.end(), argv.begin(), argv.end());
  return runTool(full, timeoutSeconds);
}

Process& Lab::spawn(const Host* host, const std::vector<std::string>& argv,
                    const std::string& logFile) {
  if (argv.empty()) {
    throw std::invalid_argument("lab: spawn needs a command");
  }
  const std::string program = findOnPath(argv[0]);
  if (program.empty()) {
    throw std::invalid_argument("lab: cannot spawn " + argv[0] + ": not found");
  }
  std::vector<std::string> full;
  if (host != nullptr) {
    full = {findOnPath("ip"), "netns", "exec", host->netns};
  }
  full.push_back(program);
  full.insert(full.end(), argv.begin() + 1, argv.end());
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& arg : full) {
    args.push_back(arg.data());
  }
  args.push_back(nullptr);
  const std::string logPath = logFile.starts_with("/") ? logFile : dir_.file(logFile);
  const int logFd = open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int nullFd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logFd < 0 || nullFd < 0) {
    if (logFd >= 0) {
      close(logFd);
    }
    if (nullFd >= 0) {
      close(nullFd);
    }
    throw std::runtime_error("lab: cannot open " + logPath + ": " + std::strerror(errno));
  }
  const pid_t parent = getpid();

  auto& registry = Registry::instance();
  auto guard = registry.lock();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // own group: stop() signals it without touching the test runner's group
    // Dies with the test even on SIGKILL (ctest's timeout). Tied to the forking thread: spawn
    // from the test's main thread.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);  // the test died before prctl took effect
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction defaults {};
    defaults.sa_handler = SIG_DFL;
    for (const int signal : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) {
      sigaction(signal, &defaults, nullptr);  // a shell's `&` may have left SIGINT ignored
    }
    dup2(nullFd, STDIN_FILENO);
    dup2(logFd, STDOUT_FILENO);
    dup2(logFd, STDERR_FILENO);
    execv(args[0], args.data());
    static const char kFailed[] = "lab: exec failed\n";
    [[maybe_unused]] ssize_t written = write(STDERR_FILENO, kFailed, sizeof(kFailed) - 1);
    _exit(127);
  }
  const int forkErrno = errno;
  close(logFd);
  close(nullFd);
  if (pid < 0) {
    throw std::runtime_error(std::string("lab: fork failed: ") + std::strerror(forkErrno));
  }
  setpgid(pid, pid);  // also from the parent, so killpg works before the child ran at all
  registry.addProcess(pid, processStartTime(pid));
  processes_.push_back(std::unique_ptr<Process>(new Process(pid, logPath)));
  return *processes_.back();
}

const std::string& Lab::agentInstance() {
  if (!wireRegistered_) {
    auto& registry = Registry::instance();
    auto guard = registry.lock();
    registry.addWire(prefix_);
    wireRegistered_ = true;
  }
  return prefix_;
}

void Lab::cleanup() noexcept {
  try {
    auto& registry = Registry::instance();
    auto guard = registry.lock();
    for (auto& process : processes_) {
      process->stopLocked(5);
    }
    if (wireRegistered_) {
      // A clean agent stop removed it all already; this is for the agent that crashed or hung.
      deleteWire(prefix_);
      registry.removeWire(prefix_);
      wireRegistered_ = false;
    }
    if (!forwardRule_.empty()) {
      deleteForwardRule(forwardRule_);
      registry.removeRule(forwardRule_);
      forwardRule_.clear();
    }
    if (!bridge_.empty()) {
      deleteLink(bridge_);
      registry.removeBridge(bridge_);
      bridge_.clear();
    }
    for (size_t i = hostsRemoved_; i < hosts_.size(); ++i) {
      deleteLink(hosts_[i]->hostIfname);
      registry.removeVeth(hosts_[i]->hostIfname);
    }
    for (size_t i = hostsRemoved_; i < hosts_.size(); ++i) {
      deleteNetns(hosts_[i]->netns);
      registry.removeNetns(hosts_[i]->netns);
    }
    hostsRemoved_ = hosts_.size();
  } catch (const std::exception& error) {
    warn(std::string("cleanup: ") + error.what());
  } catch (...) {
    warn("cleanup failed");
  }
}

}  // namespace bulkhead::testing
