#include "tests/integration/podman_cni.h"

#include <arpa/inet.h>
#include <elf.h>
#include <net/if.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "tests/integration/lab.h"

namespace bulkhead::testing {
namespace {

namespace fs = std::filesystem;

// tmpfs like the lab's own state: what a SIGKILLed harness recorded survives the process, not a
// reboot (nor do its bridges and namespaces).
constexpr const char* kStateDir = "/run/bulkhead-podman";
// libcni's result cache: podman (4.3, CNI backend) does not let a configuration move it.
constexpr const char* kCniResults = "/var/lib/cni/results";
constexpr const char* kBlobInfoCache = "/var/lib/containers/cache/blob-info-cache-v1.boltdb";
constexpr int kPodmanTimeout = 60;  // seconds for one podman command
constexpr int kToolTimeout = 10;    // seconds for one ip/iptables/tar call

void warn(const std::string& message) {
  std::cerr << "podman harness: " << message << std::endl;
}

std::string toolOrThrow(const std::vector<std::string>& argv) {
  const CommandResult result = runTool(argv, kToolTimeout);
  if (result.exitCode != 0) {
    throw std::runtime_error("podman harness: `" + joined(argv) + "` failed" +
                             (result.timedOut ? " (timed out)" : "") + ": " + result.err +
                             result.out);
  }
  return result.out;
}

// A TOML basic string.
std::string tomlString(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
    }
    quoted += c;
  }
  return quoted + "\"";
}

// The directory holding the reference plugins (bridge, host-local): Debian's first.
std::string referencePluginDir() {
  for (const char* dir : {"/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin"}) {
    if (access((std::string(dir) + "/bridge").c_str(), X_OK) == 0 &&
        access((std::string(dir) + "/host-local").c_str(), X_OK) == 0) {
      return dir;
    }
  }
  return "";
}

std::string busyboxPath() {
  for (const char* path : {"/bin/busybox", "/usr/bin/busybox"}) {
    if (access(path, X_OK) == 0) {
      return path;
    }
  }
  return "";
}

// A statically linked ELF has no PT_INTERP program header: it runs in an image with no libc.
bool staticElf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Elf64_Ehdr header{};
  if (!in.read(reinterpret_cast<char*>(&header), sizeof(header)) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    return false;
  }
  for (int index = 0; index < header.e_phnum; ++index) {
    Elf64_Phdr program{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + index * header.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&program), sizeof(program))) {
      return false;
    }
    if (program.p_type == PT_INTERP) {
      return false;
    }
  }
  return true;
}

// System paths podman or the plugins create when they are absent; the harness removes the ones
// it made (files, then empty directories: rmdir refuses anything still in use, so a concurrent
// podman of the machine keeps what it needs). Deepest first.
std::vector<std::string> systemPathCandidates() {
  std::vector<std::string> paths = {kBlobInfoCache,        "/var/lib/containers/cache",
                                    "/var/lib/containers", kCniResults,
                                    "/var/lib/cni",        "/run/runc"};
  // cgroupfs manager: containers go under libpod_parent/, conmon under libpod_parent/conmon.
  std::error_code error;
  std::vector<std::string> hierarchies = {"/sys/fs/cgroup"};
  for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup", error)) {
    if (entry.is_directory(error) && !entry.is_symlink(error)) {
      hierarchies.push_back(entry.path().string());
    }
  }
  for (const auto& hierarchy : hierarchies) {
    paths.push_back(hierarchy + "/libpod_parent/conmon");
    paths.push_back(hierarchy + "/libpod_parent");
  }
  return paths;
}

// Everything one harness may leave on the machine, as recorded in its state file.
struct Leftovers {
  std::string dir;  // the harness's TempDir
  std::vector<std::string> bridges;
  std::vector<std::string> networks;
  std::vector<std::vector<std::string>> rules;  // iptables FORWARD rules
  std::set<std::string> netns;                  // /run/netns names of its containers
  std::string ipForwardBefore;                  // "0" when the bridge plugin may have set it
  std::vector<std::string> createdPaths;        // from systemPathCandidates()
};

std::vector<std::string> podmanArgvFor(const std::string& podman, const std::string& dir,
                                       const std::vector<std::string>& args) {
  // CONTAINERS_CONF replaces every other containers.conf (/usr/share, /etc, drop-ins), and
  // podman hands it on to conmon, whose exit command (`podman container cleanup`) tears the
  // network down with the same plugins. Storage goes in flags: those are in the exit command
  // too, CONTAINERS_STORAGE_CONF is not. vfs: no overlay mounts to leak, the image is 2 MB.
  std::vector<std::string> argv = {findOnPath("env"),
                                   "CONTAINERS_CONF=" + dir + "/containers.conf",
                                   podman,
                                   "--root",
                                   dir + "/storage/root",
                                   "--runroot",
                                   dir + "/storage/run",
                                   "--storage-driver",
                                   "vfs"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool linkExists(const std::string& name) {
  return fs::exists("/sys/class/net/" + name);
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

std::vector<std::string> portsOf(const std::string& bridge) {
  std::vector<std::string> ports;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/sys/class/net/" + bridge + "/brif", error)) {
    ports.push_back(entry.path().filename().string());
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

std::vector<std::string> cacheFilesOf(const std::string& network) {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(kCniResults, error)) {
    if (entry.path().filename().string().starts_with(network + "-")) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Containers runc (state in /run/runc, podman's default for root) still holds whose root
// filesystem is in `dir`: a podman killed between `runc create` and recording the container
// leaves one that `podman rm` does not know, with its conmon and `runc init` waiting for a start.
// Returns {id, network namespace path}.
std::vector<std::pair<std::string, std::string>> runcContainersUnder(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/run/runc", error)) {
    const auto state =
        nlohmann::json::parse(slurp((entry.path() / "state.json").string()), nullptr, false);
    if (!state.is_object() || !state.contains("config") || !state["config"].is_object()) {
      continue;
    }
    const auto& config = state["config"];
    const std::string rootfs = config.value("rootfs", "");
    if (!rootfs.starts_with(dir + "/")) {
      continue;
    }
    std::string netns;
    for (const auto& ns : config.value("namespaces", nlohmann::json::array())) {
      if (ns.is_object() && ns.value("type", "") == "network") {
        netns = ns.value("path", "");
      }
    }
    found.emplace_back(entry.path().filename().string(), netns);
  }
  return found;
}

// Processes whose command line names `dir`: podman commands, conmon, and the `podman container
// cleanup` conmon runs when a container exits. With `withConmon` false, conmon (which lives as
// long as its container) does not count. Zombies have an empty command line and do not count.
bool processesUse(const std::string& dir, bool withConmon) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos ||
        pid == std::to_string(getpid())) {
      continue;
    }
    const std::string cmdline = slurp("/proc/" + pid + "/cmdline");
    const std::string program = fs::path(cmdline.substr(0, cmdline.find('\0'))).filename();
    if (cmdline.find(dir + "/") != std::string::npos && (withConmon || program != "conmon")) {
      return true;
    }
  }
  return false;
}

// Best effort, in the order that lets each step succeed: containers (podman runs the plugins'
// DEL, which removes veths, leases and cache files), then whatever a failed DEL or a dead podman
// left: half-created containers, veths on the bridges, the bridges, namespaces, cache files, the
// FORWARD rule, mounts.
void removeLeftovers(const Leftovers& left, const std::string& podman, bool runPodman) {
  // A killed test does not take the podman it was running with it: that one finishes (within
  // its own bounds) before this podman removes what it made, or the two race.
  if (!left.dir.empty() && !waitFor([&] { return !processesUse(left.dir, false); }, 30)) {
    warn("podman commands still running on " + left.dir);
  }
  if (runPodman && !podman.empty() && fs::exists(left.dir + "/containers.conf") &&
      fs::exists(left.dir + "/storage/root")) {
    const CommandResult removed =
        runCommand(podmanArgvFor(podman, left.dir, {"rm", "--force", "--all", "--time", "0"}),
                   2 * kPodmanTimeout);
    if (removed.exitCode != 0) {
      warn("`podman rm --force --all` failed" +
           std::string(removed.timedOut ? " (timed out)" : "") + ": " + removed.err + removed.out);
    }
  }
  std::set<std::string> netns = left.netns;
  if (!left.dir.empty()) {
    for (const auto& [id, path] : runcContainersUnder(left.dir)) {
      warn("removing container " + id + " that podman did not record");
      const CommandResult deleted = runTool({"runc", "delete", "--force", id});
      if (deleted.exitCode != 0) {
        warn("`runc delete --force " + id + "` failed: " + deleted.err);
      }
      if (path.starts_with("/run/netns/netns-")) {
        netns.insert(path.substr(std::string("/run/netns/").size()));
      }
    }
    // conmon exits with its container and runs its exit command against this storage: let it
    // finish before the storage goes (it would recreate directories).
    if (!waitFor([&] { return !processesUse(left.dir, true); }, 10)) {
      warn("processes still use " + left.dir);
    }
  }
  for (const auto& bridge : left.bridges) {
    for (const auto& port : portsOf(bridge)) {
      warn("removing veth " + port + " left on " + bridge);
      deleteLink(port);
    }
    deleteLink(bridge);
  }
  for (const auto& name : netns) {
    if (fs::exists("/run/netns/" + name)) {
      warn("removing network namespace " + name);
      runTool({"ip", "netns", "del", name});
    }
  }
  for (const auto& network : left.networks) {
    for (const auto& file : cacheFilesOf(network)) {
      std::error_code ignored;
      fs::remove(file, ignored);
    }
  }
  for (const auto& rule : left.rules) {
    std::vector<std::string> argv = {"iptables", "-w", "5", "-D"};
    argv.insert(argv.end(), rule.begin(), rule.end());
    const CommandResult result = runTool(argv, kToolTimeout);
    if (result.exitCode != 0) {
      warn("cannot delete iptables rule " + joined(rule) + ": " + result.err);
    }
  }
  if (!left.dir.empty()) {
    for (const auto& point : mountsUnder(left.dir)) {
      if (umount2(point.c_str(), MNT_DETACH) != 0) {
        warn("cannot unmount " + point);
      }
    }
  }
  // The bridge plugin's isGateway turns forwarding on; put back a 0 it found.
  if (left.ipForwardBefore == "0" && trim(slurp("/proc/sys/net/ipv4/ip_forward")) == "1") {
    std::ofstream("/proc/sys/net/ipv4/ip_forward") << "0\n";
  }
  for (const auto& path : left.createdPaths) {
    std::error_code ignored;
    if (fs::is_directory(path, ignored)) {
      rmdir(path.c_str());  // only when empty (or an unused cgroup)
    } else {
      fs::remove(path, ignored);
    }
  }
}

bool privateIpv4(uint32_t value) {
  return (value >> 24) == 10 || (value >> 20) == ((172u << 4) | 1u) || (value >> 16) == 0xc0a8u;
}

std::string ipv4Text(uint32_t value) {
  in_addr address{};
  address.s_addr = htonl(value);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return text;
}

std::mutex& stateMutex() {
  static std::mutex mutex;
  return mutex;
}

int& harnessCount() {
  static int count = 0;
  return count;
}

}  // namespace

// --- Availability ---

std::string PodmanCni::unavailable(const std::string& cniPlugin) {
  if (!haveRoot()) {
    return "needs root: podman's CNI backend creates bridges, veths and network namespaces";
  }
  if (const std::string missing = missingTool({"podman", "runc", "ip", "tar", "env"});
      !missing.empty()) {
    return "needs " + missing +
           " (Debian: podman containernetworking-plugins runc catatonit; scripts/setup.sh)";
  }
  if (findOnPath("conmon").empty() && access("/usr/libexec/podman/conmon", X_OK) != 0) {
    return "needs conmon (Debian: conmon, a dependency of podman)";
  }
  if (referencePluginDir().empty()) {
    return "needs the reference CNI plugins bridge and host-local (Debian: "
           "containernetworking-plugins) in /usr/lib/cni";
  }
  const std::string busybox = busyboxPath();
  if (busybox.empty() || !staticElf(busybox)) {
    return "needs a static /bin/busybox for the test image (Debian: busybox-static)";
  }
  if (access(cniPlugin.c_str(), X_OK) != 0) {
    return "needs the built plugin " + cniPlugin + " (build the bulkhead-cni target)";
  }
  return "";
}

// --- State file: what a SIGKILLed harness leaves for the next one to sweep. ---

void PodmanCni::save() const {
  std::lock_guard lock(stateMutex());
  const std::string path =
      std::string(kStateDir) + "/" + std::to_string(getpid()) + "-" + prefix_ + ".state";
  std::error_code ignored;
  if (destroyed_) {
    fs::remove(path, ignored);
    return;
  }
  fs::create_directories(kStateDir, ignored);
  std::ostringstream text;
  text << "start " << processStartTime(getpid()) << "\n";
  text << "dir " << dir_.path().string() << "\n";
  for (const auto& bridge : bridges_) {
    text << "bridge " << bridge << "\n";
  }
  for (const auto& network : networks_) {
    text << "network " << network << "\n";
  }
  for (const auto& rule : rules_) {
    text << "iptables " << joined(rule) << "\n";
  }
  for (const auto& name : netns_) {
    text << "netns " << name << "\n";
  }
  if (ipForwardBefore_ == "0") {
    text << "ipforward 0\n";
  }
  for (const auto& created : createdPaths_) {
    text << "path " << created << "\n";
  }
  const std::string temporary = path + ".new";
  std::ofstream(temporary) << text.str();
  fs::rename(temporary, path, ignored);
}

void sweepStalePodmanHarnesses() {
  std::error_code error;
  if (!fs::is_directory(kStateDir, error)) {
    return;
  }
  const std::vector<std::string> candidates = systemPathCandidates();
  const std::string podman = findOnPath("podman");
  for (const auto& entry : fs::directory_iterator(kStateDir, error)) {
    const std::string file = entry.path().filename().string();
    const pid_t owner = static_cast<pid_t>(std::atoi(file.c_str()));
    if (owner == getpid()) {
      continue;  // our own harnesses are alive by definition
    }
    if (entry.path().extension() == ".new") {
      if (!fs::exists("/proc/" + std::to_string(owner))) {
        fs::remove(entry.path(), error);  // a save() cut short; the .state beside it is complete
      }
      continue;
    }
    if (entry.path().extension() != ".state") {
      continue;
    }
    Leftovers left;
    unsigned long long ownerStart = 0;
    std::istringstream lines(slurp(entry.path().string()));
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream words(line);
      std::string kind, word;
      words >> kind;
      const std::string rest = line.size() > kind.size() + 1 ? line.substr(kind.size() + 1) : "";
      if (kind == "start") {
        words >> ownerStart;
      } else if (kind == "dir") {
        left.dir = rest;  // the rest of the line: TMPDIR may hold spaces
      } else if (kind == "bridge" && words >> word) {
        left.bridges.push_back(word);
      } else if (kind == "network" && words >> word) {
        left.networks.push_back(word);
      } else if (kind == "netns" && words >> word && word.starts_with("netns-")) {
        left.netns.insert(word);
      } else if (kind == "iptables") {
        std::vector<std::string> rule;
        while (words >> word) {
          rule.push_back(word);
        }
        left.rules.push_back(rule);
      } else if (kind == "ipforward") {
        left.ipForwardBefore = "0";
      } else if (kind == "path" &&
                 std::find(candidates.begin(), candidates.end(), rest) != candidates.end()) {
        left.createdPaths.push_back(rest);  // only paths the harness itself would name
      }
    }
    if (processAlive(owner, ownerStart)) {
      continue;
    }
    warn("removing leftovers of an earlier run recorded in " + entry.path().string());
    // Only a TempDir's own directory is handed to podman and then deleted recursively.
    const bool ownDir =
        !left.dir.empty() && fs::path(left.dir).filename().string().starts_with("bulkhead-test-");
    if (!ownDir) {
      left.dir.clear();
    }
    removeLeftovers(left, podman, ownDir);
    if (ownDir) {
      fs::remove_all(left.dir, error);
    }
    fs::remove(entry.path(), error);
  }
}

// --- PodmanCni ---

PodmanCni::PodmanCni(const std::string& cniPlugin) {
  {
    std::lock_guard lock(stateMutex());
    static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char prefix[16];
    std::snprintf(prefix, sizeof(prefix), "bp%04x%c", static_cast<unsigned>(getpid()) & 0xffffu,
                  kDigits[harnessCount()++ % 36]);
    prefix_ = prefix;
  }
  sweepStalePodmanHarnesses();
  podman_ = findOnPath("podman");
  if (podman_.empty()) {
    throw std::runtime_error("podman harness: podman not found on PATH");
  }
  const std::string plugins = referencePluginDir();
  if (plugins.empty()) {
    throw std::runtime_error("podman harness: no reference CNI plugins (bridge, host-local)");
  }
  std::error_code error;
  const fs::path plugin = fs::canonical(cniPlugin, error);
  if (error || access(plugin.c_str(), X_OK) != 0) {
    throw std::runtime_error("podman harness: no executable CNI plugin at " + cniPlugin);
  }

  // What podman may create on the machine and the harness should take away again.
  for (const auto& path : systemPathCandidates()) {
    if (!fs::exists(path, error)) {
      createdPaths_.push_back(path);
    }
  }
  ipForwardBefore_ = trim(slurp("/proc/sys/net/ipv4/ip_forward"));
  save();

  const fs::path root = dir_.path();
  for (const char* sub : {"plugins", "net.d", "ipam", "storage/root", "storage/run", "storage/tmp",
                          "storage/images"}) {
    fs::create_directories(root / sub);
  }
  // Symlinks: the plugin under test is the one just built, and podman finds only what is in
  // cni_plugin_dirs, never a bulkhead-cni installed on the machine.
  fs::create_symlink(plugin, root / "plugins" / "bulkhead-cni");
  for (const auto& entry : fs::directory_iterator(plugins)) {
    if (entry.path().filename() != "bulkhead-cni") {
      fs::create_symlink(entry.path(), root / "plugins" / entry.path().filename());
    }
  }

  const std::string base = root.string();
  std::ostringstream conf;
  conf << "# Private to one test harness (tests/integration/podman_cni.h). CONTAINERS_CONF names\n"
          "# this file, so podman reads no other containers.conf.\n"
          "[containers]\n"
          "# runc cannot raise the default rlimits in this machine's sandbox.\n"
          "default_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n"
          "# ping without CAP_NET_RAW (ICMP datagram sockets), as Debian's default file does.\n"
          "default_sysctls = [\"net.ipv4.ping_group_range=0 0\"]\n"
          "log_driver = \"k8s-file\"\n"
          "\n[network]\n"
          "network_backend = \"cni\"\n"
          "cni_plugin_dirs = ["
       << tomlString(base + "/plugins") << "]\n"
       << "network_config_dir = " << tomlString(base + "/net.d") << "\n"
       << "\n[engine]\n"
          "# crun fails on hybrid cgroups here.\n"
          "runtime = \"runc\"\n"
          "cgroup_manager = \"cgroupfs\"\n"
          "events_logger = \"none\"\n"
          "# File locks under tmp_dir instead of the machine's shared /dev/shm/libpod_lock.\n"
          "lock_type = \"file\"\n"
       << "tmp_dir = " << tomlString(base + "/storage/tmp") << "\n"
       << "static_dir = " << tomlString(base + "/storage/root/libpod") << "\n"
       << "volume_path = " << tomlString(base + "/storage/root/volumes") << "\n"
       << "image_copy_tmp_dir = " << tomlString(base + "/storage/images") << "\n"
       << "# busybox's PID 1 ignores SIGTERM: waiting for it only costs time.\n"
          "stop_timeout = 0\n";
  dir_.write("containers.conf", conf.str());
}

PodmanCni::~PodmanCni() {
  cleanup();
  // The storage before the record of it, so that a kill in between leaves a record to sweep.
  std::error_code ignored;
  fs::remove_all(dir_.path(), ignored);
  destroyed_ = true;
  try {
    save();
  } catch (...) {
  }
}

std::string PodmanCni::name(const std::string& tag) const {
  const std::string full = prefix_ + tag;
  if (tag.empty() || full.size() >= IFNAMSIZ ||
      tag.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    throw std::invalid_argument("podman harness: tag must be 1-" +
                                std::to_string(IFNAMSIZ - 1 - prefix_.size()) + " of [a-z0-9-]: '" +
                                tag + "'");
  }
  return full;
}

std::vector<std::string> PodmanCni::podmanArgv(const std::vector<std::string>& args) const {
  return podmanArgvFor(podman_, dir_.path().string(), args);
}

CommandResult PodmanCni::podman(const std::vector<std::string>& args, int timeoutSeconds) {
  usedPodman_ = true;
  return runCommand(podmanArgv(args), timeoutSeconds);
}

void PodmanCni::writeNetwork(const std::string& name, const std::string& bridge,
                             const std::string& subnet,
                             const std::map<std::string, std::string>& labels,
                             const std::string& agentSocket, const std::string& failurePolicy) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_.-]*");
  if (!std::regex_match(name, kName) || name.size() > 64) {
    throw std::invalid_argument("podman harness: bad network name '" + name + "'");
  }
  if (bridge.empty() || bridge.size() >= IFNAMSIZ || !std::regex_match(bridge, kName)) {
    throw std::invalid_argument("podman harness: bad bridge name '" + bridge + "'");
  }
  const auto slash = subnet.find('/');
  in_addr address{};
  const int length = slash == std::string::npos ? -1 : std::atoi(subnet.c_str() + slash + 1);
  if (slash == std::string::npos ||
      inet_pton(AF_INET, subnet.substr(0, slash).c_str(), &address) != 1 || length < 16 ||
      length > 29) {
    throw std::invalid_argument("podman harness: need an IPv4 subnet /16../29, got '" + subnet +
                                "'");
  }
  const uint32_t mask = ~0u << (32 - length);
  const uint32_t network = ntohl(address.s_addr) & mask;
  // Only RFC 1918 space: nothing the bridge's gateway address routes can leave the machine.
  if (!privateIpv4(network) || !privateIpv4(network | ~mask)) {
    throw std::invalid_argument("podman harness: subnet must be private (RFC 1918): " + subnet);
  }
  const std::string cidr = ipv4Text(network) + "/" + std::to_string(length);
  const CommandResult routed = runTool({"ip", "-4", "route", "show", "exact", cidr});
  if (routed.exitCode == 0 && !trim(routed.out).empty()) {
    throw std::invalid_argument("podman harness: subnet " + cidr +
                                " is already routed on this machine: " + trim(routed.out));
  }

  // Listed before anything exists: a failure halfway still gets cleaned up.
  bridges_.push_back(bridge);
  networks_.push_back(name);
  save();
  // With Docker's FORWARD policy DROP (br_netfilter), bridged frames between two containers
  // are forwarded packets too.
  if (!findOnPath("iptables").empty()) {
    const CommandResult forward = runTool({"iptables", "-w", "5", "-S", "FORWARD"});
    if (forward.exitCode == 0 && forward.out.find("-P FORWARD DROP") != std::string::npos) {
      const std::vector<std::string> rule = {"FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"};
      rules_.push_back(rule);
      save();
      std::vector<std::string> insert = {"iptables", "-w", "5", "-I"};
      insert.insert(insert.end(), rule.begin(), rule.end());
      toolOrThrow(insert);
    }
  }

  nlohmann::ordered_json bulkhead = {{"type", "bulkhead-cni"}};
  if (!agentSocket.empty()) {
    bulkhead["agentSocket"] = agentSocket;
  }
  if (!failurePolicy.empty()) {
    bulkhead["failurePolicy"] = failurePolicy;
  }
  if (!labels.empty()) {
    bulkhead["labels"] = labels;
  }
  const nlohmann::ordered_json conflist = {
      {"cniVersion", "1.0.0"},
      {"name", name},
      {"plugins",
       {{{"type", "bridge"},
         {"bridge", bridge},
         {"isGateway", true},
         // No ipMasq and no default route in the container: traffic stays on the bridge.
         {"ipam",
          {{"type", "host-local"},
           {"dataDir", dir_.file("ipam")},
           {"ranges", {{{{"subnet", cidr}, {"gateway", ipv4Text(network + 1)}}}}}}}},
        bulkhead}}};
  dir_.write("net.d/" + name + ".conflist", conflist.dump(2) + "\n");
}

void PodmanCni::loadImage() {
  if (imageLoaded_) {
    return;
  }
  const std::string busybox = busyboxPath();
  if (busybox.empty()) {
    throw std::runtime_error("podman harness: no /bin/busybox (Debian: busybox-static)");
  }
  const fs::path rootfs = dir_.path() / "image" / "rootfs";
  for (const char* sub : {"bin", "etc", "root", "proc", "sys", "dev", "var/www"}) {
    fs::create_directories(rootfs / sub);
  }
  fs::create_directories(rootfs / "tmp");
  fs::permissions(rootfs / "tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file(busybox, rootfs / "bin" / "busybox");
  // Every applet (sh, sleep, ping, nc, httpd, wget, ip, ...) as a symlink, like
  // `busybox --install -s` would make inside the image.
  const CommandResult list = runCommand({busybox, "--list"}, kToolTimeout);
  if (list.exitCode != 0) {
    throw std::runtime_error("podman harness: busybox --list failed: " + list.err);
  }
  std::istringstream applets(list.out);
  std::string applet;
  while (applets >> applet) {
    if (applet != "busybox" && applet.find('/') == std::string::npos) {
      fs::create_symlink("busybox", rootfs / "bin" / applet);
    }
  }
  std::ofstream(rootfs / "etc" / "passwd") << "root:x:0:0:root:/root:/bin/sh\n";
  std::ofstream(rootfs / "etc" / "group") << "root:x:0:\n";
  const std::string tarball = dir_.file("image/rootfs.tar");
  toolOrThrow({"tar", "--numeric-owner", "-C", rootfs.string(), "-cf", tarball, "."});
  const CommandResult imported = podman({"import", tarball, kImage}, kPodmanTimeout);
  if (imported.exitCode != 0) {
    throw std::runtime_error("podman harness: podman import failed" +
                             std::string(imported.timedOut ? " (timed out)" : "") + ": " +
                             imported.err + imported.out);
  }
  std::error_code ignored;
  fs::remove_all(dir_.path() / "image", ignored);  // the storage holds its own copy
  imageLoaded_ = true;
}

CommandResult PodmanCni::tryRun(const std::string& name, const std::string& network,
                                const std::vector<std::string>& extraArgs,
                                const std::vector<std::string>& command) {
  std::vector<std::string> args = {"run",    "--detach", "--pull",    "never",
                                   "--name", name,       "--network", network};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  args.push_back(kImage);
  if (command.empty()) {
    args.insert(args.end(), {"sleep", "3600"});
  } else {
    args.insert(args.end(), command.begin(), command.end());
  }
  CommandResult result = podman(args, kPodmanTimeout);
  if (result.exitCode == 0) {
    // Remembered for the sweep: a killed harness's namespace goes even if podman cannot.
    const std::string sandbox = inspect(name, "{{.NetworkSettings.SandboxKey}}");
    if (sandbox.starts_with("/run/netns/netns-")) {
      netns_.insert(sandbox.substr(std::string("/run/netns/").size()));
      save();
    }
  }
  return result;
}

std::string PodmanCni::run(const std::string& name, const std::string& network,
                           const std::vector<std::string>& extraArgs,
                           const std::vector<std::string>& command) {
  const CommandResult result = tryRun(name, network, extraArgs, command);
  if (result.exitCode != 0) {
    throw std::runtime_error("podman harness: podman run " + name + " failed" +
                             (result.timedOut ? " (timed out)" : "") + ": " + result.err +
                             result.out);
  }
  const std::string out = trim(result.out);
  return out.substr(out.find_last_of('\n') == std::string::npos ? 0 : out.find_last_of('\n') + 1);
}

CommandResult PodmanCni::exec(const std::string& name, const std::vector<std::string>& argv,
                              int timeoutSeconds) {
  std::vector<std::string> args = {"exec", name};
  args.insert(args.end(), argv.begin(), argv.end());
  return podman(args, timeoutSeconds);
}

std::string PodmanCni::inspect(const std::string& name, const std::string& format) {
  const CommandResult result =
      podman({"inspect", "--type", "container", "--format", format, name}, kPodmanTimeout);
  return result.exitCode == 0 ? trim(result.out) : "";
}

std::string PodmanCni::ip(const std::string& name) {
  std::istringstream words(
      inspect(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"));
  std::string first;
  words >> first;
  return first;
}

std::string PodmanCni::ip(const std::string& name, const std::string& network) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_.-]*");
  if (!std::regex_match(network, kName)) {
    return "";
  }
  return inspect(
      name, "{{with index .NetworkSettings.Networks \"" + network + "\"}}{{.IPAddress}}{{end}}");
}

std::string PodmanCni::mac(const std::string& name) {
  std::istringstream words(
      inspect(name, "{{range .NetworkSettings.Networks}}{{.MacAddress}} {{end}}"));
  std::string first;
  words >> first;
  return first;
}

std::string PodmanCni::state(const std::string& name) {
  return inspect(name, "{{.State.Status}}");
}

std::string PodmanCni::hostVethOf(const std::string& name) {
  // Podman (as root) keeps the container's namespace in /run/netns, where `ip -n` finds it; its
  // eth0 shows the peer's ifindex in the root namespace as "eth0@ifN".
  const std::string sandbox = inspect(name, "{{.NetworkSettings.SandboxKey}}");
  const std::string netnsDir = "/run/netns/";
  if (!sandbox.starts_with(netnsDir)) {
    return "";
  }
  const CommandResult link =
      runTool({"ip", "-n", sandbox.substr(netnsDir.size()), "-o", "link", "show", "dev", "eth0"});
  std::smatch match;
  static const std::regex kPeer("eth0@if([0-9]+):");
  if (link.exitCode != 0 || !std::regex_search(link.out, match, kPeer)) {
    return "";
  }
  char ifname[IF_NAMESIZE] = {};
  const unsigned index = static_cast<unsigned>(std::stoul(match[1].str()));
  return if_indextoname(index, ifname) != nullptr ? ifname : "";
}

void PodmanCni::stop(const std::string& name) {
  const CommandResult result = podman({"stop", "--time", "0", name}, kPodmanTimeout);
  if (result.exitCode != 0) {
    throw std::runtime_error("podman harness: podman stop " + name + " failed: " + result.err);
  }
}

void PodmanCni::remove(const std::string& name) {
  const CommandResult result = podman({"rm", "--force", "--time", "0", name}, kPodmanTimeout);
  if (result.exitCode != 0) {
    throw std::runtime_error("podman harness: podman rm " + name + " failed: " + result.err);
  }
}

std::vector<std::string> PodmanCni::bridgePorts(const std::string& bridge) {
  return portsOf(bridge);
}

std::vector<std::string> PodmanCni::leases(const std::string& network) const {
  std::vector<std::string> addresses;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir_.path() / "ipam" / network, error)) {
    const std::string file = entry.path().filename().string();
    in_addr address{};
    if (inet_pton(AF_INET, file.c_str(), &address) == 1) {  // not lock, last_reserved_ip.0
      addresses.push_back(file);
    }
  }
  std::sort(addresses.begin(), addresses.end());
  return addresses;
}

std::vector<std::string> PodmanCni::cniCacheFiles(const std::string& network) {
  return cacheFilesOf(network);
}

void PodmanCni::cleanup() noexcept {
  try {
    Leftovers left;
    left.dir = dir_.path().string();
    left.bridges = bridges_;
    left.networks = networks_;
    left.rules = rules_;
    left.netns = netns_;
    left.ipForwardBefore = ipForwardBefore_;
    left.createdPaths = createdPaths_;
    removeLeftovers(left, podman_, usedPodman_);
    bridges_.clear();
    networks_.clear();
    rules_.clear();
    netns_.clear();
    usedPodman_ = false;  // no container left; the image stays until the destructor
    save();
  } catch (const std::exception& error) {
    warn(std::string("cleanup: ") + error.what());
  } catch (...) {
    warn("cleanup failed");
  }
}

}  // namespace bulkhead::testing
