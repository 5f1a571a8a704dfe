#include "controlplane/agent.h"

#include <poll.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "dataplane/eal.h"
#include "dataplane/ip_protocol_name.h"
#include "dataplane/violation_event.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"
#include "rules/protocol_names.h"

namespace bulkhead::controlplane {
namespace {

std::atomic<bool> stopRequested{false};
std::atomic<bool> reloadRequested{false};

void onSignal(int signal) {
  if (signal == SIGHUP) {
    reloadRequested = true;
  } else {
    stopRequested = true;
  }
}

void installSignalHandlers() {
  struct sigaction action = {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  for (const int signal : {SIGTERM, SIGINT, SIGHUP}) {
    sigaction(signal, &action, nullptr);
  }
}

bool hasArgument(const std::vector<std::string>& arguments,
                 std::initializer_list<std::string_view> names) {
  return std::any_of(arguments.begin(), arguments.end(), [&](const std::string& argument) {
    return std::any_of(names.begin(), names.end(), [&](std::string_view name) {
      return argument == name || argument.starts_with(std::string(name) + "=");
    });
  });
}

// Free hugepages and a hugetlbfs mount: what EAL needs to use them.
bool hugepagesAvailable() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  long freePages = 0;
  while (std::getline(meminfo, line)) {
    if (line.starts_with("HugePages_Free:")) {
      freePages = std::stol(line.substr(15));
    }
  }
  std::ifstream mounts("/proc/mounts");
  bool mounted = false;
  while (std::getline(mounts, line)) {
    mounted = mounted || line.find(" hugetlbfs ") != std::string::npos;
  }
  return freePages > 0 && mounted;
}

// One lcore for the control thread and one per worker, spread over the CPUs we may run on.
std::string lcoreMap(unsigned workers) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) {
        cpus.push_back(cpu);
      }
    }
  }
  if (cpus.empty()) {
    cpus.push_back(0);
  }
  std::string map;
  for (unsigned lcore = 0; lcore <= workers; ++lcore) {
    map += (lcore ? "," : "") + std::to_string(lcore) + "@" +
           std::to_string(cpus[lcore % cpus.size()]);
  }
  return map;
}

std::vector<std::string> ealArguments(const AgentConfig& config) {
  std::vector<std::string> arguments = {"bulkheadd"};
  const auto& user = config.ealArguments;
  if (!hasArgument(user, {"-l", "--lcores", "-c"})) {
    arguments.push_back("--lcores=" + lcoreMap(config.workers));
  }
  const bool huge = config.hugepages == Hugepages::On ||
                    (config.hugepages == Hugepages::Auto && hugepagesAvailable());
  if (huge) {
    arguments.push_back("--in-memory");  // no hugepage files left behind by a crash
  } else {
    arguments.insert(arguments.end(),
                     {"--no-huge", "--no-shconf", "-m", std::to_string(config.memoryMegabytes)});
  }
  if (!hasArgument(user, {"-a", "--allow", "--no-pci", "-b", "--block"})) {
    arguments.push_back("--no-pci");  // ports are kernel interfaces attached as vdevs
  }
  if (!hasArgument(user, {"--file-prefix"})) {
    arguments.push_back("--file-prefix=bulkheadd-" + std::to_string(getpid()));
  }
  if (!hasArgument(user, {"--log-level"})) {
    arguments.push_back("--log-level=lib.*:warning");
  }
  arguments.insert(arguments.end(), user.begin(), user.end());
  return arguments;
}

// Names for the uplink pair into `bridge`: the same bridge always gets the same names, so a
// pair that a crashed agent left behind is found and replaced.
std::pair<std::string, std::string> uplinkNames(const std::string& bridge) {
  uint32_t hash = 2166136261u;
  for (const unsigned char c : bridge) {
    hash = (hash ^ c) * 16777619u;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", hash);
  return {std::string("bhu-") + hex, std::string("bhb-") + hex};
}

int launchWorker(void* worker) { return static_cast<dataplane::Worker*>(worker)->run(); }

nlohmann::json labelsJson(const rules::Labels& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : labels) {
    out[key] = value;
  }
  return out;
}

// An endpoint as the API describes it, validated like the configuration's.
std::string endpointFromJson(const nlohmann::json& json, dataplane::Endpoint& endpoint,
                             std::string& interface, std::string& bridge, std::string& netns,
                             std::string& containerInterface) {
  if (!json.is_object()) {
    return "'endpoint' must be an object";
  }
  for (const auto& [key, value] : json.items()) {
    static const std::vector<std::string> known = {
        "name", "interface", "labels", "image", "networks", "ips", "macs", "bridge", "netns",
        "containerInterface"};
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return "unknown key '" + key + "' in endpoint";
    }
  }
  if (!json.contains("name") || !json["name"].is_string() || json["name"].get<std::string>().empty()) {
    return "endpoint needs a 'name'";
  }
  if (!json.contains("interface") || !json["interface"].is_string()) {
    return "endpoint needs an 'interface'";
  }
  endpoint.name = json["name"];
  interface = json["interface"];
  for (const auto& [key, out] : {std::pair<const char*, std::string*>{"bridge", &bridge},
                                 {"netns", &netns},
                                 {"containerInterface", &containerInterface}}) {
    if (json.contains(key)) {
      if (!json[key].is_string()) {
        return std::string("'") + key + "' must be a string";
      }
      *out = json[key].get<std::string>();
    }
  }
  if (!netns.empty() && !netns.starts_with('/')) {
    return "'netns' must be an absolute path";
  }
  if (json.contains("labels")) {
    if (!json["labels"].is_object()) {
      return "'labels' must be an object of strings";
    }
    for (const auto& [key, value] : json["labels"].items()) {
      if (!value.is_string()) {
        return "label '" + key + "' must be a string";
      }

      endpoint.labels[key] = value.get<std::string>();
    }
  }
  endpoint.labels[std::string(rules::reserved_labels::Name)] = endpoint.name;
  if (json.contains("image") && json["image"].is_string()) {
    endpoint.labels[std::string(rules::reserved_labels::Image)] = json["image"];
  }
  if (json.contains("networks") && json["networks"].is_array()) {
    for (const auto& network : json["networks"]) {
      if (network.is_string()) {
        endpoint.labels[std::string(rules::reserved_labels::NetworkPrefix) +
                        network.get<std::string>()] = "true";
      }
    }
  }
  for (const auto& ip : json.value("ips", nlohmann::json::array())) {
    const auto parsed = ip.is_string() ? rules::IpAddress::parse(ip.get<std::string>())
                                       : std::nullopt;
    if (!parsed) {
      return "'" + ip.dump() + "' is not an IP address";
    }
    endpoint.ips.push_back(*parsed);
  }
  for (const auto& mac : json.value("macs", nlohmann::json::array())) {
    dataplane::MacAddress parsed;
    if (!mac.is_string() || !dataplane::MacAddress::parse(mac.get<std::string>(), parsed)) {
      return "'" + mac.dump() + "' is not a MAC address";
    }
    endpoint.macs.push_back(parsed);
  }
  return "";
}

}  // namespace

Agent::Agent(AgentConfig config) : config_(std::move(config)) {}

Agent::~Agent() { stop(); }

bool Agent::loadPolicy(std::vector<std::string>* errors) {
  if (config_.policyPaths.empty()) {
    errors->push_back("no policy configured (set 'policy' in the configuration or --policy)");
    return false;
  }
  auto loaded = rules::loadPolicies(config_.policyPaths, *catalog_);
  for (const auto& error : loaded.errors) {
    errors->push_back(rules::format(error));
  }
  if (!loaded.ok()) {
    return false;
  }
  for (const auto& warning : loaded.warnings) {
    spdlog::warn("policy: {}", rules::format(warning));
  }
  policies_ = std::move(loaded.set);
  policySha256_ = policyDigest(policies_.sources);
  return true;
}

nlohmann::json Agent::reloadPolicy(const std::string& trigger) {
  std::vector<std::string> errors;
  if (!loadPolicy(&errors)) {
    for (const auto& error : errors) {
      spdlog::error("policy reload rejected: {}", error);
    }
    spdlog::warn("audit: policy change rejected trigger={} generation={} sha256={} (kept)",
                 trigger, generation_, policySha256_);
    return {{"ok", false}, {"error", "policy rejected; the policy in force stays"},
            {"errors", errors}};
  }
  publish();
  spdlog::info("policy reloaded: {} policies, generation {}", policies_.policies.size(),
               generation_);
  spdlog::info("audit: policy applied trigger={} generation={} sha256={} policies={}", trigger,
               generation_, policySha256_, policies_.policies.size());
  return {{"ok", true}, {"policyGeneration", generation_}, {"policySha256", policySha256_}};
}

void Agent::publish() {
  auto next = std::make_unique<dataplane::ForwardingState>();
  ++generation_;
  next->version = generation_;
  next->policy = rules::compilePolicy(policies_, identities_.identities(), *catalog_, generation_);
  for (const auto& attached : endpoints_) {
    dataplane::PortBinding binding;
    binding.portId = attached.port.portId;
    binding.ownMac = attached.port.mac;
    binding.endpointSlot = attached.slot;
    binding.identity = attached.endpoint.identity;
    binding.macs = attached.endpoint.macs;
    binding.ips = attached.endpoint.ips;
    next->ports.push_back(std::move(binding));
  }
  if (uplink_) {
    dataplane::PortBinding binding;
    binding.portId = uplink_->portId;
    binding.ownMac = uplink_->mac;
    binding.uplink = true;
    next->ports.push_back(std::move(binding));
  }
  next->hostIps = config_.staticEndpoints.hostIps;
  next->hostIps.insert(next->hostIps.end(), bridgeHostIps_.begin(), bridgeHostIps_.end());
  next->index();
  shared_.state.store(next.get(), std::memory_order_release);
  // After this no worker can still be reading the previous state: it may be freed, and a port
  // it had and the new one has not may be detached.
  if (rcu_ != nullptr) {
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
  }
  current_ = std::move(next);
}

std::string Agent::attach(dataplane::Endpoint endpoint, const std::string& interface,
                          AttachOptions options) {
  for (const auto& attached : endpoints_) {
    if (attached.endpoint.name == endpoint.name) {
      return "endpoint '" + endpoint.name + "' is already attached";
    }
    if (attached.interface == interface) {
      return "interface '" + interface + "' already carries endpoint '" +
             attached.endpoint.name + "'";
    }
  }
  if (interface.empty() || interface == config_.uplink ||
      (!managedUplink_.interface.empty() &&
       (interface == managedUplink_.interface || interface == managedUplink_.peer))) {
    return "interface '" + interface + "' cannot carry an endpoint";
  }
  if (endpoints_.size() + (uplink_ ? 1 : 0) >= RTE_MAX_ETHPORTS) {
    return "no port left: this DPDK build supports " + std::to_string(RTE_MAX_ETHPORTS) +
           " ports";
  }
  if (!links_->exists(interface)) {
    return "no interface named '" + interface + "'";
  }
  if (links_->isBridge(interface)) {
    return "'" + interface + "' is a bridge; an endpoint is the host end of a container's veth";
  }
  // A veth still on the runtime's bridge would reach its neighbours around the dataplane: it
  // comes off the bridge, and the dataplane joins the bridge through the uplink instead.
  const std::string master = links_->masterOf(interface);
  std::string bridge = master;
  if (bridge.empty() && !options.bridgeHint.empty() && links_->isBridge(options.bridgeHint)) {
    bridge = options.bridgeHint;
  }
  if (!bridge.empty()) {
    if (const std::string failure = ensureUplink(bridge); !failure.empty()) {
      return failure;
    }
  }
  std::string offloadError;
  if (!disableOffloads(interface, "", &offloadError)) {
    spdlog::warn("{}", offloadError);
  }
  if (!options.netns.empty() && !options.containerInterface.empty() &&
      !disableOffloads(options.containerInterface, options.netns, &offloadError)) {
    spdlog::warn("{} (in {})", offloadError, options.netns);
  }
  if (!master.empty()) {
    if (std::string failure; !links_->setMaster(interface, "", &failure)) {
      return failure;
    }
  }
  endpoint.labels[std::string(rules::reserved_labels::Name)] = endpoint.name;
  endpoint.identity = identities_.allocate(endpoint.labels);
  if (std::string saveError; !identities_.save(&saveError)) {
    spdlog::error("identities: {} (numbering may change at the next start)", saveError);
  }
  AttachedEndpoint attached;
  try {
    attached.port = ports_->attach(interface, config_.portDriver);
  } catch (const std::exception& e) {
    if (!master.empty() && config_.failOpen) {
      std::string ignored;
      links_->setMaster(interface, master, &ignored);
    }
    return e.what();
  }
  attached.slot = nextSlot_++;
  attached.interface = interface;
  attached.bridge = bridge;
  attached.endpoint = std::move(endpoint);
  attached.options = std::move(options);
  spdlog::info("attached endpoint '{}' (identity {}) on {} as port {} via {}{}",
               attached.endpoint.name, attached.endpoint.identity, interface,
               attached.port.portId, dataplane::toString(attached.port.driver),
               master.empty() ? "" : ", taken off bridge " + master);
  if (!attached.port.fallbackReason.empty()) {
    spdlog::warn("{}: fell back to af_packet: {}", interface, attached.port.fallbackReason);
  }
  slotInfo_[attached.slot] = {attached.endpoint.name, attached.endpoint.labels};
  endpoints_.push_back(std::move(attached));
  publish();
  saveJournal();
  return "";
}

std::string Agent::detach(const std::string& name, const std::string& why) {
  const auto found = std::find_if(endpoints_.begin(), endpoints_.end(),
                                  [&](const AttachedEndpoint& e) { return e.endpoint.name == name; });
  if (found == endpoints_.end()) {
    return "no endpoint named '" + name + "' is attached";
  }
  const dataplane::PortInfo port = found->port;
  const std::string bridge = found->bridge;
  endpoints_.erase(found);
  publish();  // workers stop polling the port before it goes
  ports_->detach(port);
  // Failing open, a detached veth goes back where the runtime put it; failing closed it stays
  // cut off, as it would with the agent gone.
  std::string restored;
  if (config_.failOpen && !bridge.empty() && links_->exists(port.interface)) {
    std::string failure;
    restored = links_->setMaster(port.interface, bridge, &failure) ? ", back on " + bridge
                                                                   : " (" + failure + ")";
  }
  spdlog::info("detached endpoint '{}' from {} (port {}): {}{}", name, port.interface,
               port.portId, why, restored);
  saveJournal();
  return "";
}

std::string Agent::ensureUplink(const std::string& bridge) {
  if (!config_.uplink.empty()) {
    return "";  // the operator's uplink: it is theirs to connect to the bridge
  }
  if (uplink_) {
    if (managedUplink_.bridge == bridge) {
      return "";
    }
    const bool inUse = std::any_of(endpoints_.begin(), endpoints_.end(), [&](const auto& e) {
      return e.bridge == managedUplink_.bridge;
    });
    if (inUse) {
      return "this agent's uplink joins bridge " + managedUplink_.bridge +
             "; an endpoint on bridge " + bridge + " needs its own agent (one segment per agent)";
    }
    // No endpoint left on the old bridge (a network removed and made again): move over.
    spdlog::info("uplink {} leaves bridge {}: no endpoint is on it any more",
                 managedUplink_.interface, managedUplink_.bridge);
    removeManagedUplink();
  }
  const auto [name, peer] = uplinkNames(bridge);
  std::string failure;
  if (!links_->remove(name, &failure) || !links_->createVethIntoBridge(name, peer, bridge, &failure)) {
    return "uplink into " + bridge + ": " + failure;
  }
  for (const std::string& end : {name, peer}) {
    if (!disableOffloads(end, "", &failure)) {
      spdlog::warn("{}", failure);
    }
  }
  try {
    uplink_ = ports_->attach(name, config_.portDriver);
  } catch (const std::exception& e) {
    links_->remove(name, &failure);
    return "uplink into " + bridge + ": " + e.what();
  }
  managedUplink_ = {name, peer, bridge};
  bridgeHostIps_ = links_->addressesOf(bridge);
  spdlog::info("uplink {} is port {} via {}, joined to bridge {} through {}", name,
               uplink_->portId, dataplane::toString(uplink_->driver), bridge, peer);
  saveJournal();
  return "";
}

void Agent::removeManagedUplink() {
  if (!uplink_) {
    return;
  }
  const dataplane::PortInfo port = *uplink_;
  uplink_.reset();
  bridgeHostIps_.clear();
  publish();  // workers stop using the port before it goes
  ports_->detach(port);
  if (!managedUplink_.interface.empty()) {
    std::string failure;
    if (!links_->remove(managedUplink_.interface, &failure)) {
      spdlog::warn("{}", failure);
    }
    managedUplink_ = {};
  }
}

void Agent::saveJournal(bool running) {
  if (journalPath_.empty()) {
    return;
  }
  AttachmentJournal journal;
  journal.running = running;
  if (!managedUplink_.interface.empty()) {
    journal.uplinks.push_back(managedUplink_);
  }
  for (const auto& attached : endpoints_) {
    journal.endpoints.push_back({attached.endpoint.name, attached.interface, attached.bridge,
                                 attached.options.source, attached.options.request});
  }
  if (std::string error; !journal.save(journalPath_, &error)) {
    spdlog::error("state: {}", error);
  }
}

void Agent::recoverFromJournal() {
  journalPath_ = config_.stateDirectory + "/attachments.json";
  std::string warning;
  const AttachmentJournal previous = AttachmentJournal::load(journalPath_, &warning);
  if (!warning.empty()) {
    spdlog::warn("state: {}", warning);
  }
  for (const auto& uplink : previous.uplinks) {
    std::string failure;
    if (links_->exists(uplink.interface) && !links_->remove(uplink.interface, &failure)) {
      spdlog::warn("stale uplink: {}", failure);
    }
  }
  if (previous.running) {
    spdlog::warn("the previous agent did not stop cleanly (crash or SIGKILL)");
    if (config_.failOpen) {
      size_t restored = 0;
      for (const auto& endpoint : previous.endpoints) {
        std::string failure;
        if (!endpoint.bridge.empty() && links_->exists(endpoint.interface) &&
            links_->masterOf(endpoint.interface).empty()) {
          if (links_->setMaster(endpoint.interface, endpoint.bridge, &failure)) {
            ++restored;
          } else {
            spdlog::warn("failOpen: {}", failure);
          }
        }
      }
      spdlog::warn("failOpen: {} veths put back on their bridges", restored);
    }
  }
  for (const auto& endpoint : previous.endpoints) {
    if (endpoint.source != "api" || !links_->exists(endpoint.interface)) {
      continue;
    }
    dataplane::Endpoint recovered;
    std::string interface;
    AttachOptions options;
    std::string failure = endpointFromJson(endpoint.request, recovered, interface,
                                           options.bridgeHint, options.netns,
                                           options.containerInterface);
    if (options.bridgeHint.empty()) {
      options.bridgeHint = endpoint.bridge;
    }
    options.request = endpoint.request;
    if (failure.empty()) {
      failure = attach(std::move(recovered), interface, std::move(options));
    }
    if (failure.empty()) {
      spdlog::info("recovered endpoint '{}' on {}", endpoint.name, interface);
    } else {
      spdlog::warn("could not recover endpoint '{}': {}", endpoint.name, failure);
    }
  }
  saveJournal();
}

void Agent::onLinksRemoved() {
  bool overflowed = false;
  const std::vector<std::string> removed = linkWatcher_->removedLinks(&overflowed);
  std::vector<std::string> vanished;
  for (const auto& attached : endpoints_) {
    // Asked of the kernel as well: a notification may be about a link of that name that is
    // long gone (a runtime's temporary names), and only a missing link is a vanished one.
    const bool named = overflowed || std::find(removed.begin(), removed.end(),
                                               attached.interface) != removed.end();
    const bool gone = named && !links_->exists(attached.interface);
    if (gone) {
      vanished.push_back(attached.endpoint.name);
    }
  }
  for (const auto& name : vanished) {
    detach(name, "its interface vanished");
  }
}

void Agent::applyDocker(const DockerUpdate& update) {
  switch (update.kind) {
    case DockerUpdate::Kind::Resync: {
      std::vector<std::string> gone;
      for (const auto& attached : endpoints_) {
        const bool running = std::any_of(
            update.containers.begin(), update.containers.end(),
            [&](const DockerContainer& c) { return c.id == attached.options.containerId; });
        if (attached.options.source == "docker" && !running) {
          gone.push_back(attached.endpoint.name);
        }
      }
      for (const auto& name : gone) {
        detach(name, "the container no longer runs (resync)");
      }
      for (const auto& container : update.containers) {
        upsertContainer(container);
      }
      spdlog::info("docker: resynced, {} running containers", update.containers.size());
      return;
    }
    case DockerUpdate::Kind::Running:
      upsertContainer(update.containers.front());
      return;
    case DockerUpdate::Kind::Gone:
      for (const auto& attached : endpoints_) {
        if (attached.options.source == "docker" && attached.options.containerId == update.id) {
          const std::string name = attached.endpoint.name;
          detach(name, "the container stopped");
          return;
        }
      }
      return;
  }
}

void Agent::upsertContainer(const DockerContainer& container) {
  const auto existing = std::find_if(endpoints_.begin(), endpoints_.end(), [&](const auto& e) {
    return e.options.source == "docker" && e.options.containerId == container.id;
  });
  const auto network =
      std::find_if(container.networks.begin(), container.networks.end(),
                   [&](const DockerContainer::Network& n) { return n.name == config_.dockerNetwork; });
  if (network == container.networks.end() || network->mac.empty()) {
    if (existing != endpoints_.end()) {
      const std::string name = existing->endpoint.name;
      detach(name, "the container left network " + config_.dockerNetwork);
    }
    return;
  }
  dataplane::Endpoint endpoint;
  endpoint.name = container.name;
  for (const auto& [key, value] : container.labels) {
    if (!key.starts_with(rules::reserved_labels::Prefix)) {
      endpoint.labels[key] = value;
    }
  }
  endpoint.labels[std::string(rules::reserved_labels::Name)] = container.name;
  endpoint.labels[std::string(rules::reserved_labels::Image)] = container.image;
  for (const auto& joined : container.networks) {
    endpoint.labels[std::string(rules::reserved_labels::NetworkPrefix) + joined.name] = "true";
  }
  for (const std::string& text : {network->ip, network->ipv6}) {
    if (const auto ip = rules::IpAddress::parse(text)) {
      endpoint.ips.push_back(*ip);
    }
  }
  dataplane::MacAddress mac;
  if (dataplane::MacAddress::parse(network->mac, mac)) {
    endpoint.macs.push_back(mac);
  }
  std::string error;
  const auto veth = containerVethOf(container.netnsPath, network->mac, *links_, &error);
  if (!veth) {
    spdlog::warn("docker: container '{}': {}", container.name, error);
    return;
  }
  if (existing != endpoints_.end()) {
    if (existing->interface == veth->hostInterface &&
        existing->endpoint.labels == endpoint.labels && existing->endpoint.ips == endpoint.ips &&
        existing->endpoint.macs == endpoint.macs) {
      return;  // already so: a replayed or duplicate event
    }
    const std::string name = existing->endpoint.name;
    detach(name, "the container changed");
  }
  AttachOptions options;
  options.source = "docker";
  options.bridgeHint = network->bridge;
  options.netns = container.netnsPath;
  options.containerInterface = veth->containerInterface;
  options.containerId = container.id;
  const std::string failure = attach(std::move(endpoint), veth->hostInterface, options);
  if (failure.empty()) {
    return;
  }
  // The container runs whatever we say: failing closed, a container the agent cannot protect
  // is cut off from its bridge rather than left on it unfiltered.
  std::string cutError;
  if (!config_.failOpen && !links_->masterOf(veth->hostInterface).empty() &&
      links_->setMaster(veth->hostInterface, "", &cutError)) {
    spdlog::error("docker: container '{}' cannot be protected ({}); cut off from its bridge "
                  "(fail closed)",
                  container.name, failure);
  } else {
    spdlog::error("docker: container '{}' is not protected: {}{}", container.name, failure,
                  cutError.empty() ? "" : "; " + cutError);
  }
}

bool Agent::start(std::string* error) {
  try {
    dataplane::initEal(ealArguments(config_));
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  if (rte_lcore_count() < config_.workers + 1) {
    *error = "EAL gave " + std::to_string(rte_lcore_count()) + " lcores; " +
             std::to_string(config_.workers) + " workers need " +
             std::to_string(config_.workers + 1) + " (one more for the control thread)";
    return false;
  }
  try {
    // The workers' own frames (TCP resets); received packets live in each port's pool.
    packetPool_ = dataplane::createPacketPool("bh_packets", 1023, RTE_MBUF_DEFAULT_DATAROOM);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  const int socket = static_cast<int>(rte_socket_id());
  eventPool_ = rte_mempool_create("bh_events", 4095, sizeof(dataplane::ViolationEvent), 64, 0,
                                  nullptr, nullptr, nullptr, nullptr, socket, 0);
  violations_ = rte_ring_create("bh_violations", 4096, socket, RING_F_SC_DEQ);
  const size_t rcuSize = rte_rcu_qsbr_get_memsize(config_.workers);
  rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("bh_rcu", rcuSize, RTE_CACHE_LINE_SIZE));
  if (eventPool_ == nullptr || violations_ == nullptr || rcu_ == nullptr ||
      rte_rcu_qsbr_init(rcu_, config_.workers) != 0) {
    *error = std::string("cannot allocate control structures: ") + rte_strerror(rte_errno);
    return false;
  }
  shared_.rcu = rcu_;
  shared_.violations = violations_;
  shared_.eventPool = eventPool_;
  shared_.packetPool = packetPool_;
  ports_ = std::make_unique<dataplane::PortManager>(config_.mbufsPerPort, config_.workers, 1024);
  links_ = HostLinks::open(error);
  if (!links_) {
    return false;
  }
  linkWatcher_ = LinkWatcher::open(error);
  if (!linkWatcher_) {
    return false;
  }

  std::string logError;
  violationLog_ = ViolationLog::open(
      config_.violationLog, [this](uint32_t slot) { return endpointForSlot(slot); }, *protocols_,
      &logError);
  if (!violationLog_) {
    *error = "violation log: " + logError;
    return false;
  }
  if (!config_.uplink.empty()) {
    try {
      uplink_ = ports_->attach(config_.uplink, config_.portDriver);
      spdlog::info("uplink {} is port {} via {}", config_.uplink, uplink_->portId,
                   dataplane::toString(uplink_->driver));
    } catch (const std::exception& e) {
      *error = std::string("uplink: ") + e.what();
      return false;
    }
  }
  publish();

  dataplane::WorkerConfig workerConfig;
  workerConfig.pipeline.flows.capacity = config_.maxFlows;
  workerConfig.pipeline.dpi.packetBudget = static_cast<uint16_t>(config_.dpiBudget);
  workerConfig.pipeline.hold.timeoutNs = uint64_t{config_.dpiHoldMicros} * 1000;
  workerConfig.pipeline.hold.packets = config_.dpiHoldPackets;
  workerConfig.busyPoll = config_.busyPoll;
  workerConfig.violationIntervalNs = uint64_t{config_.violationIntervalSeconds} * 1000000000ull;
  unsigned lcore = 0;
  unsigned id = 0;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    if (id == config_.workers) {
      break;
    }
    workers_.push_back(std::make_unique<dataplane::Worker>(id, workerConfig, shared_));
    if (rte_eal_remote_launch(launchWorker, workers_.back().get(), lcore) != 0) {
      *error = "cannot launch worker " + std::to_string(id) + " on lcore " + std::to_string(lcore);
      return false;
    }
    workersRunning_ = true;
    ++id;
  }

  const auto& statics = config_.staticEndpoints;
  for (size_t i = 0; i < statics.endpoints.size(); ++i) {
    AttachOptions options;
    options.source = "config";
    const std::string failure = attach(statics.endpoints[i], statics.interfaces[i], options);
    if (!failure.empty()) {
      *error = "static endpoint '" + statics.endpoints[i].name + "': " + failure;
      return false;
    }
  }

  recoverFromJournal();

  std::string apiError;
  api_ = ApiServer::open(config_.apiSocket, config_.apiSocketGroup, &apiError);
  if (!api_) {
    *error = "API socket: " + apiError;
    return false;
  }
  return true;
}

void Agent::stop() {
  if (workersRunning_) {
    shared_.stop = true;
    rte_eal_mp_wait_lcore();
    workersRunning_ = false;
  }
  if (violationLog_ != nullptr && violations_ != nullptr) {
    drainViolations();
  }
  api_.reset();
  docker_.reset();
  if (ports_) {
    size_t restored = 0;
    for (const auto& attached : endpoints_) {
      ports_->detach(attached.port);
      std::string failure;
      if (config_.failOpen && !attached.bridge.empty() && links_->exists(attached.interface)) {
        if (links_->setMaster(attached.interface, attached.bridge, &failure)) {
          ++restored;
        } else {
          spdlog::warn("failOpen: {}", failure);
        }
      }
    }
    if (restored > 0) {
      spdlog::info("failOpen: {} veths put back on their bridges", restored);
    }
    if (uplink_) {
      removeManagedUplink();
    }
    // What the next start needs: the endpoints to recover, not the uplink (gone) nor a crash.
    saveJournal(false);
    endpoints_.clear();
    ports_.reset();
  }
  linkWatcher_.reset();
  shared_.state = nullptr;
  current_.reset();
  workers_.clear();
  violationLog_.reset();
  rte_ring_free(violations_);
  violations_ = nullptr;
  rte_mempool_free(eventPool_);
  eventPool_ = nullptr;
  rte_mempool_free(packetPool_);
  packetPool_ = nullptr;
  rte_free(rcu_);
  rcu_ = nullptr;
  if (dataplane::ealInitialized() && !ealCleanedUp_) {
    rte_eal_cleanup();
    ealCleanedUp_ = true;
  }
}

void Agent::drainViolations() {
  void* events[64];
  for (;;) {
    const unsigned count = rte_ring_dequeue_burst(violations_, events, 64, nullptr);
    for (unsigned i = 0; i < count; ++i) {
      violationLog_->write(*static_cast<dataplane::ViolationEvent*>(events[i]));
    }
    if (count > 0) {
      rte_mempool_put_bulk(eventPool_, events, count);
    }
    if (count < 64) {
      return;
    }
  }
}

std::optional<EndpointInfo> Agent::endpointForSlot(uint32_t slot) const {
  const auto found = slotInfo_.find(slot);
  if (found == slotInfo_.end()) {
    return std::nullopt;
  }
  return found->second;
}

nlohmann::json Agent::status() const {
  nlohmann::json endpoints = nlohmann::json::array();
  for (const auto& attached : endpoints_) {
    nlohmann::json ips = nlohmann::json::array();
    for (const auto& ip : attached.endpoint.ips) {
      ips.push_back(ip.toString());
    }
    nlohmann::json macs = nlohmann::json::array();
    for (const auto& mac : attached.endpoint.macs) {
      macs.push_back(mac.toString());
    }
    endpoints.push_back({{"name", attached.endpoint.name},
                         {"interface", attached.interface},
                         {"port", attached.port.portId},
                         {"driver", dataplane::toString(attached.port.driver)},
                         {"identity", attached.endpoint.identity},
                         {"labels", labelsJson(attached.endpoint.labels)},
                         {"ips", ips},
                         {"macs", macs},
                         {"source", attached.options.source},
                         {"bridge", attached.bridge},
                         {"containerId", attached.options.containerId}});
  }
  dataplane::WorkerCounters total;
  uint64_t dropped[static_cast<size_t>(dataplane::DropReason::Count)] = {};
  for (const auto& worker : workers_) {
    const auto counters = worker->counters();
    total.rxPackets += counters.rxPackets;
    total.txPackets += counters.txPackets;
    total.txDropped += counters.txDropped;
    total.flooded += counters.flooded;
    total.spoofDropped += counters.spoofDropped;
    total.hostFrames += counters.hostFrames;
    total.noRoute += counters.noRoute;
    total.resetsSent += counters.resetsSent;
    total.violationsQueued += counters.violationsQueued;
    total.violationsLost += counters.violationsLost;
    total.flows += counters.flows;
    total.pipeline.monitoredViolations += counters.pipeline.monitoredViolations;
    total.pipeline.flowsCreated += counters.pipeline.flowsCreated;
    total.pipeline.held += counters.pipeline.held;
    total.pipeline.heldReleasedLate += counters.pipeline.heldReleasedLate;
    total.pipeline.holdFull += counters.pipeline.holdFull;
    for (size_t reason = 0; reason < static_cast<size_t>(dataplane::DropReason::Count); ++reason) {
      dropped[reason] += counters.pipeline.dropped[reason];
    }
  }
  nlohmann::json droppedJson = nlohmann::json::object();
  for (size_t reason = 1; reason < static_cast<size_t>(dataplane::DropReason::Count); ++reason) {
    droppedJson[dataplane::toString(static_cast<dataplane::DropReason>(reason))] = dropped[reason];
  }
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& policy : policies_.policies) {
    policies.push_back(policy.name);
  }
  nlohmann::json uplink = nullptr;
  if (uplink_) {
    uplink = {{"interface", uplink_->interface},
              {"port", uplink_->portId},
              {"driver", dataplane::toString(uplink_->driver)},
              {"bridge", managedUplink_.bridge}};
  }
  nlohmann::json docker = nullptr;
  if (docker_) {
    docker = {{"socket", config_.dockerSocket},
              {"network", config_.dockerNetwork},
              {"connected", docker_->connected()},
              {"apiVersion", docker_->apiVersion()}};
  }
  return {{"ok", true},
          {"version", BULKHEAD_VERSION},
          {"pid", getpid()},
          {"workers", workers_.size()},
          {"policyGeneration", generation_},
          {"policySha256", policySha256_},
          {"policies", policies},
          {"uplink", uplink},
          {"failOpen", config_.failOpen},
          {"docker", docker},
          {"endpoints", endpoints},
          {"violationLog",
           {{"path", violationLog_ ? violationLog_->path() : ""},
            {"lines", violationLog_ ? violationLog_->linesWritten() : 0},
            {"writeErrors", violationLog_ ? violationLog_->writeErrors() : 0}}},
          {"counters",
           {{"rxPackets", total.rxPackets},
            {"txPackets", total.txPackets},
            {"txDropped", total.txDropped},
            {"flooded", total.flooded},
            {"spoofDropped", total.spoofDropped},
            {"hostFrames", total.hostFrames},
            {"noRoute", total.noRoute},
            {"resetsSent", total.resetsSent},
            {"flows", total.flows},
            {"flowsCreated", total.pipeline.flowsCreated},
            {"monitoredViolations", total.pipeline.monitoredViolations},
            {"held", total.pipeline.held},
            {"heldReleasedLate", total.pipeline.heldReleasedLate},
            {"holdFull", total.pipeline.holdFull},
            {"violationsQueued", total.violationsQueued},
            {"violationsLost", total.violationsLost},
            {"dropped", droppedJson}}}};
}

nlohmann::json Agent::flows() const {
  std::vector<uint64_t> before;
  for (const auto& worker : workers_) {
    before.push_back(worker->flowsSequence());
    worker->requestFlows();
  }
  // Workers answer at their next housekeeping, every ~100 ms.
  for (int tries = 0; tries < 100; ++tries) {
    bool all = true;
    for (size_t i = 0; i < workers_.size(); ++i) {
      all = all && workers_[i]->flowsSequence() != before[i];
    }
    if (all) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto peer = [&](uint32_t slot, rules::IdentityId identity, const rules::IpAddress& ip,
                        uint16_t port) {
    std::string name = identity == rules::reserved_identity::Host ? "host" : "world";
    if (const auto info = endpointForSlot(slot)) {
      name = info->name;
    }
    return nlohmann::json{{"endpoint", name}, {"identity", identity}, {"ip", ip.toString()},
                          {"port", port}};
  };
  nlohmann::json list = nlohmann::json::array();
  for (const auto& worker : workers_) {
    for (const auto& flow : worker->flows()) {
      const dpi::ProtocolReport protocol =
          protocols_->describe(flow.classified ? &flow.classification : nullptr, flow.ipProtocol,
                               flow.srcIp, flow.srcPort, flow.dstIp, flow.dstPort);
      const char* verdict = flow.decision == rules::Decision::Allow    ? "allow"
                            : flow.decision == rules::Decision::Deny ? "deny"
                                                                     : "pending";
      list.push_back({{"l4", dataplane::ipProtocolName(flow.ipProtocol)},
                      {"src", peer(flow.srcEndpoint, flow.srcIdentity, flow.srcIp, flow.srcPort)},
                      {"dst", peer(flow.dstEndpoint, flow.dstIdentity, flow.dstIp, flow.dstPort)},
                      {"state", dataplane::toString(flow.state)},
                      {"master_protocol", protocol.master},
                      {"app_protocol", protocol.app},
                      {"protocol", protocol.judged},
                      {"guessed_protocol", protocol.guessed.empty()
                                               ? nlohmann::json()
                                               : nlohmann::json(protocol.guessed)},
                      {"host", std::string(flow.classification.hostName())},
                      {"verdict", verdict},
                      {"enforced", flow.enforced},
                      {"rule", flow.rule},
                      {"dpi_packets", flow.classification.packets},
                      {"packets", flow.packets},
                      {"bytes", flow.bytes},
                      {"packets_dropped", flow.dropped}});
    }
  }
  return {{"ok", true}, {"flows", list}};
}

nlohmann::json Agent::handle(const nlohmann::json& request) {
  const std::string command = request.value("command", "");
  if (command == "ping") {
    return {{"ok", true}};
  }
  if (command == "status") {
    return status();
  }
  if (command == "reload") {
    return reloadPolicy("api");
  }
  if (command == "flows") {
    return flows();
  }
  if (command == "identities") {
    nlohmann::json identities = nlohmann::json::array();
    for (const auto& identity : identities_.identities()) {
      nlohmann::json endpoints = nlohmann::json::array();
      for (const auto& attached : endpoints_) {
        if (attached.endpoint.identity == identity.id) {
          endpoints.push_back(attached.endpoint.name);
        }
      }
      identities.push_back(
          {{"id", identity.id}, {"labels", labelsJson(identity.labels)}, {"endpoints", endpoints}});
    }
    return {{"ok", true}, {"identities", identities}};
  }
  if (command == "policy") {
    return {{"ok", true},
            {"policyGeneration", generation_},
            {"policySha256", policySha256_},
            {"paths", config_.policyPaths},
            {"files", policies_.sources}};
  }
  if (command == "attach") {
    dataplane::Endpoint endpoint;
    std::string interface;
    AttachOptions options;
    options.request = request.value("endpoint", nlohmann::json());
    std::string failure =
        endpointFromJson(options.request, endpoint, interface, options.bridgeHint, options.netns,
                         options.containerInterface);
    if (failure.empty()) {
      failure = attach(std::move(endpoint), interface, std::move(options));
    }
    if (!failure.empty()) {
      return {{"ok", false}, {"error", failure}};
    }
    return {{"ok", true}, {"policyGeneration", generation_}};
  }
  if (command == "detach") {
    const std::string failure = detach(request.value("name", ""), "asked through the API");
    if (!failure.empty()) {
      return {{"ok", false}, {"error", failure}};
    }
    return {{"ok", true}, {"policyGeneration", generation_}};
  }
  return {{"ok", false}, {"error", "unknown command '" + command + "'"}};
}

int Agent::run() {
  spdlog::set_level(spdlog::level::from_str(config_.logLevel));
  try {
    catalog_ = std::make_unique<dpi::NdpiProtocolCatalog>();
    protocols_ = std::make_unique<dpi::ProtocolReporter>(*catalog_);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  std::vector<std::string> errors;
  if (!loadPolicy(&errors)) {
    for (const auto& error : errors) {
      spdlog::critical("{}", error);
    }
    spdlog::critical("not starting: the policy is invalid");
    return 1;
  }
  std::string identityWarning;
  identities_ = IdentityAllocator(config_.stateDirectory + "/identities.json", &identityWarning);
  if (!identityWarning.empty()) {
    spdlog::warn("{}", identityWarning);
  }
  installSignalHandlers();
  std::string error;
  if (!start(&error)) {
    spdlog::critical("cannot start: {}", error);
    stop();
    return 1;
  }
  if (config_.watchPolicy) {
    std::string watchError;
    watcher_ = PolicyWatcher::open(config_.policyPaths, &watchError);
    if (!watcher_) {
      spdlog::warn("policy files are not watched ({}); reload with SIGHUP", watchError);
    }
  }
  if (!config_.dockerNetwork.empty()) {
    docker_ = std::make_unique<DockerWatcher>(config_.dockerSocket);
    docker_->start();
    spdlog::info("docker: following the containers of network '{}' on {}", config_.dockerNetwork,
                 config_.dockerSocket);
  }
  spdlog::info("bulkheadd ready: {} endpoints, {} policies, generation {}, API on {}",
               endpoints_.size(), policies_.policies.size(), generation_, config_.apiSocket);
  spdlog::info("audit: policy applied trigger=start generation={} sha256={} policies={}",
               generation_, policySha256_, policies_.policies.size());
  const auto handler = [this](const nlohmann::json& request) { return handle(request); };
  while (!stopRequested) {
    pollfd fds[4] = {{api_->fd(), POLLIN, 0},
                     {watcher_ ? watcher_->fd() : -1, POLLIN, 0},
                     {linkWatcher_->fd(), POLLIN, 0},
                     {docker_ ? docker_->fd() : -1, POLLIN, 0}};
    ::poll(fds, 4, 50);
    if (fds[2].revents & POLLIN) {
      onLinksRemoved();
    }
    if (fds[3].revents & POLLIN) {
      for (const auto& update : docker_->take()) {
        applyDocker(update);
      }
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const uint64_t nowMs = uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
    if (watcher_ && watcher_->poll(nowMs)) {
      reloadPolicy("file-change");
    }
    if (reloadRequested.exchange(false)) {
      reloadPolicy("sighup");
      std::string reopenError;
      if (!violationLog_->reopen(&reopenError)) {
        spdlog::error("violation log: {}", reopenError);
      }
    }
    if (fds[0].revents & POLLIN) {
      api_->serveReady(handler);
    }
    drainViolations();
  }
  spdlog::info("stopping");
  stop();
  return 0;
}

}  // namespace bulkhead::controlplane
