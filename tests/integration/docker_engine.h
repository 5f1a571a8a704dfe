#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/lab.h"
#include "tests/support/run_command.h"

namespace bulkhead::testing {

// One Docker network made by DockerEngine::createNetwork.
struct DockerNetwork {
  std::string shortName;  // as the test named it: "shop"
  std::string name;       // the engine's network name: <prefix>-shop
  std::string id;
  std::string subnet;  // "10.214.1.0/24"; the bridge holds the first address as gateway
  std::string bridge;  // root-namespace bridge: <prefix><bridgeName>, e.g. "bh1a2b0shop"
};

// A private, real Docker engine for integration tests: Debian's dockerd (and the containerd it
// supervises) with its socket, data root, exec root, pidfile, config file, cgroup parent and
// containerd namespace all of its own, so it never touches nor conflicts with another dockerd on
// the machine (a system engine, or a second test binary's). Containers come from a busybox image
// imported locally (no registry is reachable); networks are Linux bridges with explicit subnets.
//
// Everything it creates (containers, networks, bridges, the FORWARD rule per bridge, mounts,
// cgroups, directories) is removed by the destructor or cleanup(), also after a failed test. A
// crashed test does not leave the engine running: dockerd gets SIGTERM when the test process
// dies (PR_SET_PDEATHSIG through setpriv) and shuts its containers down; a state file under
// /run/bulkhead-docker lets the next engine sweep the rest (sweepStaleDockerEngines()).
//
// Root only; every wait is time-bounded; every docker call goes through Debian's client
// (/usr/bin/docker -H unix://<socket>) and throws std::runtime_error with its output on failure.
// Construct and restart it from the test's main thread: the parent-death signal is tied to the
// thread that started dockerd.
class DockerEngine {
 public:
  static constexpr const char* kImage = "bulkhead-test/busybox:1";
  static constexpr const char* kDockerd = "/usr/sbin/dockerd";
  // Debian's client, matching the 20.10 engine; another `docker` on PATH may be a different one.
  static constexpr const char* kDockerCli = "/usr/bin/docker";

  // Why this machine cannot run an engine, "" when it can: root, dockerd, containerd, runc and
  // the docker client are needed. Tests GTEST_SKIP with this text.
  static std::string unavailableReason();
  // Why ensureImage() cannot build the image, "" when it can (a static busybox is needed).
  static std::string imageUnavailableReason();

  // Starts the engine and waits (bounded) until its API answers. Throws std::runtime_error with
  // the tail of dockerd's log when it does not come up.
  DockerEngine();
  ~DockerEngine();
  DockerEngine(const DockerEngine&) = delete;
  DockerEngine& operator=(const DockerEngine&) = delete;

  // The engine's Unix socket (well below the 108-byte sun_path limit) and its API version, e.g.
  // "/run/bulkhead-docker/4242-0/docker.sock" and "1.41".
  const std::string& socket() const { return socket_; }
  std::string host() const { return "unix://" + socket_; }
  const std::string& apiVersion() const { return apiVersion_; }
  // Prefix of the names this engine puts on the machine (bridges, networks): the lab's, "bh..."
  const std::string& prefix() const { return lab_.prefix(); }
  // The engine's own directory (data root, exec root, socket, pidfile, state file).
  const std::string& dir() const { return dir_; }
  // The cgroup (below each hierarchy's root) that holds every container of this engine.
  const std::string& cgroupParent() const { return cgroupParent_; }
  pid_t dockerdPid() const;  // -1 while stopped

  // dockerd stopped (SIGTERM, SIGKILL after a bound) and started again on the same data root:
  // networks survive, containers come back stopped, or running with a restart policy.
  void stopEngine();
  void startEngine();
  // dockerd alone SIGKILLed, as a crash would: its containerd dies with it (parent-death signal)
  // but the shims and containers keep running. startEngine() then restarts the engine, which
  // without live-restore stops those containers and restarts the ones with a restart policy.
  void killEngine();
  bool running() const;
  // dockerd's (and its containerd's) output over every start, for failure messages.
  std::string log() const;

  // GET `path` of the Engine API over the socket (HTTP/1.0); the body, or std::runtime_error
  // on a connection error, a status other than 2xx, or after `timeoutSeconds`.
  std::string apiGet(const std::string& path, int timeoutSeconds = 10) const;
  // The docker client against this engine: `docker -H unix://SOCKET args...`.
  CommandResult docker(const std::vector<std::string>& args, int timeoutSeconds = 60) const;

  // Imports kImage (busybox and a symlink per applet, /bin/sh as CMD) unless present.
  void ensureImage();

  // A bridge network `<prefix>-<name>` on `subnet` (private IPv4 CIDR) whose bridge is
  // `<prefix><bridgeName>` (bridgeName: 1-8 of [a-z0-9], so the name fits IFNAMSIZ).
  const DockerNetwork& createNetwork(const std::string& name, const std::string& subnet,
                                     const std::string& bridgeName);
  // By short or full name. References stay valid until that network is removed.
  const DockerNetwork& network(const std::string& name) const;
  void removeNetwork(const std::string& name);

  // Starts kImage detached as container `name` with `labels` on `network` (a createNetwork name,
  // or any name the engine knows, e.g. "none"), running `command` (default: sleep 3600, which
  // also bounds a container nobody removes). `extraArgs` go before the image, e.g.
  // {"--restart=always"}. Returns the container ID.
  std::string run(const std::string& name, const std::map<std::string, std::string>& labels,
                  const std::string& network, const std::vector<std::string>& extraArgs = {},
                  const std::vector<std::string>& command = {});
  // The container's IPv4 address on `network` ("" when not attached). Containers are named by
  // ID or name everywhere.
  std::string ip(const std::string& container, const std::string& network) const;
  // `docker exec container argv...`, the client killed after `timeoutSeconds`.
  CommandResult exec(const std::string& container, const std::vector<std::string>& argv,
                     int timeoutSeconds = 30) const;
  bool isRunning(const std::string& container) const;
  void stop(const std::string& container);
  void restart(const std::string& container);
  void remove(const std::string& container);

  // Name of the root-namespace end of the veth behind the container's eth0: eth0's iflink,
  // read inside the container, is that end's ifindex on the host.
  std::string hostVethOf(const std::string& container) const;

  // Containers, networks, dockerd, and whatever the engine left on the machine. Idempotent,
  // never throws; the destructor calls it.
  void cleanup() noexcept;

 private:
  void writeState();
  std::string dockerOrThrow(const std::vector<std::string>& args, int timeoutSeconds = 60) const;
  std::string resolveNetwork(const std::string& name) const;

  Lab lab_;  // prefix, scratch directory (logs, image rootfs), dockerd as a Process
  std::string dir_;
  std::string tag_;  // "<pid>-<n>": dir name; in the cgroup parent and containerd namespace
  std::string socket_;
  std::string cgroupParent_;
  std::string apiVersion_;
  Process* dockerd_ = nullptr;
  int starts_ = 0;
  std::vector<std::string> logs_;
  std::vector<std::unique_ptr<DockerNetwork>> networks_;  // stable addresses
  std::vector<std::vector<std::string>> forwardRules_;
  std::vector<std::string> createdDirs_;  // outside dir_, made by dockerd/containerd: rmdir'd
  bool cleaned_ = false;
};

// Removes what engines of dead test processes left (SIGKILL, a crash): processes, mounts,
// bridges, FORWARD rules, cgroups and directories recorded under /run/bulkhead-docker. An
// engine whose owner is alive is left alone. Runs by itself when a process creates its first
// DockerEngine.
void sweepStaleDockerEngines();

}  // namespace bulkhead::testing
