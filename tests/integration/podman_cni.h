#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead::testing {

// A real CNI runtime for tests: podman (CNI backend, runc) with a configuration, storage and
// network directory of its own, so that it neither sees nor disturbs the machine's podman, and
// everything it makes goes with the harness:
//
//   PodmanCni podman(std::string(BULKHEAD_BINARY_DIR) + "/bulkhead-cni");
//   podman.loadImage();
//   podman.writeNetwork(podman.name("net"), podman.name("b"), "10.216.1.0/24", {}, socket, "open");
//   podman.run("web", podman.name("net"));
//   podman.exec("web", {"ping", "-c", "1", podman.ip("api")});
//
// Layout under dir(): containers.conf (read through CONTAINERS_CONF, which also reaches the
// `podman container cleanup` that conmon runs when a container exits), plugins/ (the built
// bulkhead-cni and the reference plugins from /usr/lib/cni, as symlinks), net.d/ (conflists),
// ipam/ (host-local's leases), storage/{root,run,tmp} (podman's --root, --runroot and tmp_dir:
// images, containers, its database and its locks, which are files, not the machine's
// /dev/shm/libpod_lock).
//
// What podman still puts outside dir() while containers exist: their network namespaces
// (/run/netns/netns-<uuid>), the bridges and host veths, CNI's result cache
// (/var/lib/cni/results/<network>-<id>-<ifname>), runc's state (/run/runc/<id>), cgroups
// (libpod_parent/libpod-<id>). `podman rm` takes all but the bridges; cleanup() removes those and
// whatever a failed DEL or a killed podman left (veths on the bridges, recorded namespaces,
// containers runc holds that podman never recorded, cache files). `podman import` writes an entry
// into /var/lib/containers/cache/blob-info-cache-v1.boltdb; the file (and any system directory
// above) is removed only when the harness created it.
//
// Names: prefix() = "bp" + 4 hex digits of the PID + one per-harness character; name(tag) puts it
// in front of a tag, for bridges (IFNAMSIZ: at most 15 characters) and networks that must not
// collide with concurrent test processes. Container names need no prefix: podman's storage is
// private.
//
// Cleanup: the destructor (or cleanup()) removes every container, the bridges with any veth
// still plugged into them, the iptables rule, the CNI cache files of its networks, and the
// storage, even when the test failed or threw. There is no signal handler: a harness whose
// process was killed (ctest's timeout, SIGTERM, Ctrl-C) is recorded in /run/bulkhead-podman and
// swept by the next harness, after the podman commands it was running have finished.
//
// Podman needs root here, and runc: crun fails on this machine's hybrid cgroups. Containers get
// nofile=1024:1024 and nproc=1000:1000 (runc cannot set the default rlimits here), and are
// stopped with `-t 0`: busybox's PID 1 ignores SIGTERM. Only private (RFC 1918) subnets are
// accepted, and containers get no default route: test traffic stays on the bridge.
class PodmanCni {
 public:
  // Why this machine cannot run the harness (for GTEST_SKIP), "" when it can: root, podman,
  // runc, conmon, ip, tar, a static busybox, the reference plugins, and `cniPlugin`.
  static std::string unavailable(const std::string& cniPlugin);

  // Writes the private configuration; no podman command runs yet. Throws std::runtime_error.
  explicit PodmanCni(const std::string& cniPlugin);
  ~PodmanCni();
  PodmanCni(const PodmanCni&) = delete;
  PodmanCni& operator=(const PodmanCni&) = delete;

  // The image loadImage() makes: Debian's static busybox with its applets as symlinks.
  static constexpr const char* kImage = "bulkhead-test/busybox:1";

  const std::string& prefix() const { return prefix_; }
  // prefix() + tag; throws std::invalid_argument when longer than an interface name can be.
  std::string name(const std::string& tag) const;

  // net.d/<name>.conflist: the reference `bridge` plugin (isGateway, host-local IPAM with
  // `subnet` and its first address as gateway, leases under ipam/), then bulkhead-cni with
  // `labels`, `agentSocket` and `failurePolicy` ("open" or "closed"; "" leaves the key out).
  // Same-bridge traffic needs no `firewall` plugin: when the FORWARD policy is DROP (Docker),
  // an `-i BRIDGE -o BRIDGE -j ACCEPT` rule is inserted instead and removed on cleanup, where
  // the firewall plugin would leave its CNI-FORWARD/CNI-ADMIN chains behind.
  // Throws std::invalid_argument for a non-private subnet or a subnet routed on this machine.
  void writeNetwork(const std::string& name, const std::string& bridge, const std::string& subnet,
                    const std::map<std::string, std::string>& labels,
                    const std::string& agentSocket, const std::string& failurePolicy);

  // Imports kImage with `podman import` from a rootfs built around /bin/busybox (no registry is
  // reachable). Idempotent. Throws std::runtime_error.
  void loadImage();

  // Any podman command with the private configuration, killed after `timeoutSeconds`.
  CommandResult podman(const std::vector<std::string>& args, int timeoutSeconds = 60);

  // `podman run -d --pull never --name NAME --network NETWORK EXTRA... kImage COMMAND...`
  // (COMMAND defaults to a long sleep). tryRun returns what podman said; run throws
  // std::runtime_error with it unless the container started, and returns the container's ID.
  CommandResult tryRun(const std::string& name, const std::string& network,
                       const std::vector<std::string>& extraArgs = {},
                       const std::vector<std::string>& command = {});
  std::string run(const std::string& name, const std::string& network,
                  const std::vector<std::string>& extraArgs = {},
                  const std::vector<std::string>& command = {});

  // The argv of a podman command with the private configuration, for a long-running one the
  // caller starts itself (`system service`).
  std::vector<std::string> command(const std::vector<std::string>& args) const {
    return podmanArgv(args);
  }

  // `podman exec NAME ARGV...`, killed after `timeoutSeconds`.
  CommandResult exec(const std::string& name, const std::vector<std::string>& argv,
                     int timeoutSeconds = 30);

  // From `podman inspect` (the container's only network): IPv4 address, MAC, "" when unknown.
  std::string ip(const std::string& name);
  // The container's IPv4 address on `network`, "" when it is not on it.
  std::string ip(const std::string& name, const std::string& network);
  std::string mac(const std::string& name);
  // "running", "created", "exited", ...; "" when podman has no such container.
  std::string state(const std::string& name);
  // The root-namespace end of the veth whose other end is the container's eth0 (found from
  // eth0's iflink inside the container's network namespace), "" when it has none.
  std::string hostVethOf(const std::string& name);

  // `podman stop -t 0` / `podman rm -f -t 0`; throw std::runtime_error when podman fails.
  void stop(const std::string& name);
  void remove(const std::string& name);

  // What a network holds on the machine, to prove that nothing was left behind: the interfaces
  // plugged into `bridge`, the addresses host-local leases on `network`, and CNI's cache files
  // for `network` in /var/lib/cni/results.
  static std::vector<std::string> bridgePorts(const std::string& bridge);
  std::vector<std::string> leases(const std::string& network) const;
  static std::vector<std::string> cniCacheFiles(const std::string& network);

  // Containers, veths, bridges, iptables rule, CNI cache files, network namespaces, mounts left
  // under dir(), system paths the harness created. Idempotent, never throws; the harness stays
  // usable. The storage itself (images, the database) goes with dir() in the destructor.
  void cleanup() noexcept;

  // Scratch directory: configuration, storage, conflists, leases.
  const TempDir& dir() const { return dir_; }

 private:
  std::vector<std::string> podmanArgv(const std::vector<std::string>& args) const;
  std::string inspect(const std::string& name, const std::string& format);
  void save() const;

  std::string prefix_;
  TempDir dir_;
  std::string podman_;       // absolute path of podman
  bool usedPodman_ = false;  // storage initialized: containers may exist
  bool imageLoaded_ = false;
  std::vector<std::string> bridges_;
  std::vector<std::string> networks_;
  std::vector<std::vector<std::string>> rules_;  // iptables rule specs we inserted
  std::set<std::string> netns_;                  // /run/netns names of our containers
  std::string ipForwardBefore_;                  // "0" or "1" when the harness started
  std::vector<std::string> createdPaths_;        // system paths absent at the start
  bool destroyed_ = false;                       // save() then removes the state file
};

// Removes what harnesses of dead processes recorded under /run/bulkhead-podman and did not clean
// (a SIGKILL, e.g. ctest's timeout). Runs by itself when a process creates a PodmanCni.
void sweepStalePodmanHarnesses();

}  // namespace bulkhead::testing
