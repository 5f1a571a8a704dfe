#pragma once

#include <sys/types.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/host_tools.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead::testing {

// Integration tests need root and a few tools; they skip loudly instead of failing when the
// machine cannot run them:  if (!haveRoot()) { GTEST_SKIP() << "needs root: ..."; }
bool haveRoot();
// The first of `tools` not found on PATH, "" when all are there.
std::string missingTool(std::initializer_list<std::string> tools);

// Removes what labs of dead processes recorded under /run/bulkhead-lab and did not clean (a
// SIGKILL, e.g. ctest's timeout). Runs by itself when a process creates its first Lab.
void sweepStaleLabs();

// Polls `condition` every 50 ms until it holds or `timeoutSeconds` pass; every wait in an
// integration test is time-bounded so a broken agent fails the test instead of hanging CI.
bool waitFor(const std::function<bool()>& condition, int timeoutSeconds);

// One endpoint: a network namespace with `eth0`, whose veth peer `hostIfname` stays in the root
// namespace (unaddressed) for a bridge or the agent to attach to.
struct Host {
  std::string role;          // "web"
  int index = 0;             // order of creation within the lab
  std::string netns;         // "bh1a2b0-web"
  std::string hostIfname;    // "bh1a2b0w0", root-namespace end of the veth
  std::string mac;           // of eth0 inside the namespace, locally administered
  std::string ip;            // "10.213.0.11"
  std::string cidr;          // "10.213.0.11/24"
  bool offloadsOff = false;  // false when ethtool is missing
};

// A background program started by Lab::spawn, in its own process group, with stdout and stderr
// in a log file. Only this process (group) is ever signalled, and only while it is known to be
// ours: the leader is reaped last, so its PID cannot be recycled while we still signal it.
class Process {
 public:
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // False once the program has exited (it stays a zombie until stop() reaps it).
  bool running();
  // The exit code once it has exited; -1 when a signal ended it.
  std::optional<int> exitCode();
  // SIGTERM to the group, SIGKILL after `graceSeconds`, then reaps. Idempotent.
  void stop(int graceSeconds = 5);
  // Polls the log for `needle`; false after the timeout or when the program died without it.
  bool waitForLog(const std::string& needle, int timeoutSeconds);
  std::string log() const;
  const std::string& logPath() const { return logPath_; }

 private:
  friend class Lab;
  Process(pid_t pid, std::string logPath) : pid_(pid), logPath_(std::move(logPath)) {}
  bool exitedNoReap();
  void stopLocked(int graceSeconds);  // with the lab registry's lock held

  pid_t pid_ = -1;
  std::string logPath_;
  bool reaped_ = false;
  std::optional<int> exitCode_;
};

// A throwaway network: namespaces, veth pairs, optionally a Linux bridge, and the processes the
// test started, all removed by the destructor (or cleanup()) even when the test failed. Names are
// also kept in a process-wide registry that an atexit handler and a SIGTERM/SIGINT/SIGHUP (and
// crash-signal) handler clean up, and in a state file under /run/bulkhead-lab so that the next
// lab run sweeps what a SIGKILLed test (ctest's timeout) left behind.
//
// Every name starts with prefix() = "bh" + 4 hex digits of the PID + one per-lab character, so
// concurrent test binaries and successive labs in one binary never collide; interface names stay
// within IFNAMSIZ (15). Addresses are configured only inside the lab's namespaces and must be
// private (RFC 1918): test traffic never leaves the machine.
class Lab {
 public:
  Lab();
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  const std::string& prefix() const { return prefix_; }

  // netns <prefix>-<role> with eth0 (MAC 02:62:68:00:00:<index+1>) holding `ipCidr`, lo up,
  // offloads off on both veth ends, IPv6 off (no DAD/RS/MLD noise for the agent to see).
  // Throws std::runtime_error (with the failing command's output) or std::invalid_argument.
  Host& addHost(const std::string& role, const std::string& ipCidr);
  const std::vector<std::unique_ptr<Host>>& hosts() const { return hosts_; }

  // The Linux-bridge baseline: <prefix>br with the hosts' root-namespace ends enslaved (all hosts
  // when `hosts` is empty). With Docker's FORWARD policy DROP (br_netfilter), an ACCEPT rule for
  // the bridge is inserted and removed again on cleanup. Returns the bridge's name.
  const std::string& bridgeHosts(const std::vector<const Host*>& hosts = {});

  // Runs argv inside the host's namespace (`ip netns exec`), killed after `timeoutSeconds`.
  CommandResult exec(const Host& host, const std::vector<std::string>& argv,
                     int timeoutSeconds = 30);

  // Starts argv in the background inside `host`'s namespace (root namespace for nullptr), in its
  // own process group, stdout+stderr to `logFile` (relative names land in dir()). The lab stops
  // it on cleanup; it also dies with the test process (PR_SET_PDEATHSIG).
  Process& spawn(const Host* host, const std::vector<std::string>& argv,
                 const std::string& logFile);

  // The instance name for a bulkhead agent the test starts (its `instance` setting): the lab's
  // prefix, so that whatever that agent leaves in the kernel -- links <prefix>-*, the nftables
  // table, the BPF pins -- goes with the lab, even after a crash.
  const std::string& agentInstance();
  // Processes (by PID), the agent's kernel objects, iptables rule, bridge, veths, namespaces.
  // Idempotent, never throws.
  void cleanup() noexcept;

  // Scratch directory for logs and configs, removed with the lab.
  const TempDir& dir() const { return dir_; }

 private:
  std::string prefix_;
  TempDir dir_;
  std::vector<std::unique_ptr<Host>> hosts_;
  size_t hostsRemoved_ = 0;  // hosts_[0, hostsRemoved_) were removed by cleanup()
  std::vector<std::unique_ptr<Process>> processes_;
  std::string bridge_;
  std::vector<std::string> forwardRule_;  // iptables rule spec, empty when none was inserted
  bool wireRegistered_ = false;
};

}  // namespace bulkhead::testing
