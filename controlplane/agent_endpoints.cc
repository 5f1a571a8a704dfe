// The Agent's endpoints: attaching and detaching them on the wire, the bridges they are on, the
// links under them, and what Docker and the journal say they should be.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "controlplane/agent.h"
#include "controlplane/endpoint_labels.h"

namespace bulkhead::controlplane {
namespace {

// How long a veth on a bridge nobody has claimed stays held while Docker is followed.
constexpr uint64_t UnknownBridgeHoldMs = 2000;

// The names Docker gives bridges it makes: docker0 and br-<12 hex digits of the network id>.
bool looksLikeDockerBridge(const std::string& bridge) {
  if (bridge == "docker0") {
    return true;
  }
  return bridge.size() == 15 && bridge.starts_with("br-") &&
         std::all_of(bridge.begin() + 3, bridge.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) {
    out += (out.empty() ? "" : ", ") + word;
  }
  return out;
}

}  // namespace

std::string Agent::attach(const AttachSpec& spec) {
  if (spec.name.empty()) {
    return "an endpoint needs a name";
  }
  if (spec.interface.empty() || names_.owns(spec.interface) || spec.interface == config_.uplink) {
    return "interface '" + spec.interface + "' cannot carry an endpoint";
  }
  if (const auto [owner, attachment] = registry_->findInterface(spec.interface); owner != nullptr) {
    if (owner->name == spec.name && !spec.containerId.empty() &&
        owner->containerId == spec.containerId) {
      return "";  // already so: a replayed ADD
    }
    if (owner->name == spec.name) {
      return "endpoint '" + spec.name + "' is already attached on '" + spec.interface + "'";
    }
    return "interface '" + spec.interface + "' already carries endpoint '" + owner->name + "'";
  }
  EndpointRegistry::Endpoint* endpoint = registry_->find(spec.name);
  // A container on several networks is one endpoint with an attachment on each; anything else
  // by the same name is somebody else's.
  if (endpoint != nullptr &&
      (spec.containerId.empty() || endpoint->containerId != spec.containerId)) {
    return "endpoint '" + spec.name + "' is already attached";
  }
  // One look at the interface and one at its bridge: every round trip to the kernel waits for
  // its lock while a runtime is making veths.
  const auto link = links_->find(spec.interface);
  if (!link) {
    return "no interface named '" + spec.interface + "'";
  }
  if (link->kind == "bridge") {
    return "'" + spec.interface +
           "' is a bridge; an endpoint is the host end of a container's veth";
  }
  std::string bridge;
  if (link->masterIndex != 0) {
    const auto master = links_->find(link->masterIndex);
    if (!master || master->kind != "bridge") {
      return "interface '" + spec.interface + "' is enslaved to '" +
             (master ? master->name : std::to_string(link->masterIndex)) +
             "', which is not a bridge";
    }
    bridge = master->name;
    if (std::string failure; !protectBridge(bridge, &failure)) {
      return "bridge " + bridge + ": " + failure;
    }
  }
  const uint16_t segment = registry_->segment(bridge).id;
  const auto tag = registry_->tags().allocate();
  if (!tag) {
    return "no tag left on the trunk: it carries at most " +
           std::to_string(dataplane::MaxTags - 2) + " attachments";
  }
  const int ifindex = link->ifindex;
  if (std::string failure; !wire_->plug(*link, *tag, &failure)) {
    registry_->tags().release(*tag);
    return failure;
  }
  bool newIdentity = false;
  if (endpoint == nullptr) {
    endpoint = &registry_->add(spec.name, spec.labels, spec.source, spec.containerId, &newIdentity);
    if (spec.askRuntime) {
      // Cut off until the runtime says which labels it has: a policy that selects the
      // container by them must hold from its first packet.
      endpoint->labelsPending = true;
      runtime_->request(spec.containerId);
    }
  } else {
    rules::Labels merged = endpoint->labels;
    merged.insert(spec.labels.begin(), spec.labels.end());
    if (merged != endpoint->labels) {
      registry_->relabel(*endpoint, std::move(merged), &newIdentity);
    }
  }
  identitiesChanged_ = identitiesChanged_ || newIdentity;
  EndpointRegistry::Attachment attachment;
  attachment.interface = spec.interface;
  attachment.ifindex = ifindex;
  attachment.tag = *tag;
  attachment.segment = segment;
  attachment.macs = spec.macs;
  attachment.ips = spec.ips;
  attachment.netns = spec.netns;
  attachment.containerInterface = spec.containerInterface;
  attachment.request = spec.request;
  endpoint->attachments.push_back(std::move(attachment));
  dirty_ = true;
  journalDirty_ = true;
  spdlog::info("attached endpoint '{}' (identity {}) on {} with tag {}{}", endpoint->name,
               endpoint->identity, spec.interface, *tag,
               bridge.empty() ? "" : ", bridge " + bridge);
  audit_->endpointAttached(endpoint->name, endpoint->identity, spec.source, spec.interface);
  return "";
}

std::string Agent::detach(const std::string& name, const std::string& why) {
  EndpointRegistry::Endpoint* endpoint = registry_->find(name);
  if (endpoint == nullptr) {
    return "no endpoint named '" + name + "' is attached";
  }
  std::vector<std::string> interfaces;
  for (const auto& attachment : endpoint->attachments) {
    wire_->unplug(attachment.ifindex, attachment.tag);
    interfaces.push_back(attachment.interface);
  }
  registry_->remove(name);
  dirty_ = true;
  journalDirty_ = true;
  // Its veths stay quarantined: a container the agent no longer holds is cut off, not let loose.
  spdlog::info("detached endpoint '{}' from {}: {}", name, join(interfaces), why);
  audit_->endpointDetached(name, why);
  return "";
}

std::string Agent::detachInterface(const std::string& name, const std::string& interface,
                                   const std::string& why) {
  EndpointRegistry::Endpoint* endpoint = registry_->find(name);
  if (endpoint == nullptr) {
    return "no endpoint named '" + name + "' is attached";
  }
  auto& attachments = endpoint->attachments;
  const auto found = std::find_if(attachments.begin(), attachments.end(), [&](const auto& a) {
    return a.interface == interface || a.containerInterface == interface;
  });
  if (found == attachments.end()) {
    return "endpoint '" + name + "' has no interface '" + interface + "'";
  }
  if (attachments.size() == 1) {
    return detach(name, why);
  }
  wire_->unplug(found->ifindex, found->tag);
  registry_->tags().release(found->tag);
  const std::string hostInterface = found->interface;
  attachments.erase(found);
  dirty_ = true;
  journalDirty_ = true;
  spdlog::info("endpoint '{}' left {}: {}", name, hostInterface, why);
  audit_->endpointDetached(name, hostInterface + ": " + why);
  return "";
}

bool Agent::protectBridge(const std::string& bridge, std::string* error) {
  EndpointRegistry::Segment& segment = registry_->segment(bridge);
  if (segment.uplinkTag != 0) {
    protected_.insert(bridge);
    return true;
  }
  if (!links_->isBridge(bridge)) {
    *error = "no bridge named '" + bridge + "'";
    return false;
  }
  if (segment.id >= dataplane::MaxTags - 1) {
    *error = "too many bridges for one trunk";
    return false;
  }
  const auto tag = registry_->tags().allocate();
  if (!tag) {
    *error = "no tag left on the trunk for the bridge's uplink";
    return false;
  }
  std::string uplink;
  std::string peer;
  int ifindex = 0;
  if (!wire_->connectBridge(bridge, segment.id, *tag, &uplink, &peer, &ifindex, error)) {
    registry_->tags().release(*tag);
    return false;
  }
  segment.uplinkInterface = uplink;
  segment.uplinkPeer = peer;
  segment.uplinkIfindex = ifindex;
  segment.uplinkTag = *tag;
  segment.hostIps = links_->addressesOf(bridge);
  protected_.insert(bridge);
  dirty_ = true;
  journalDirty_ = true;
  linksDirty_ = true;  // its veths are held from now on
  spdlog::info("protecting bridge {}: segment {}, uplink {} (tag {}) through {}", bridge,
               segment.id, uplink, *tag, peer);
  return true;
}

void Agent::unprotectBridge(const std::string& bridge, const std::string& why) {
  protected_.erase(bridge);
  EndpointRegistry::Segment* segment = registry_->findSegment(bridge);
  if (segment == nullptr || segment->uplinkTag == 0) {
    return;
  }
  const uint16_t id = segment->id;
  std::vector<std::pair<std::string, std::string>> onIt;
  for (const auto& endpoint : registry_->endpoints()) {
    for (const auto& attachment : endpoint.attachments) {
      if (attachment.segment == id) {
        onIt.emplace_back(endpoint.name, attachment.interface);
      }
    }
  }
  for (const auto& [name, interface] : onIt) {
    detachInterface(name, interface, why);
  }
  segment = registry_->segmentById(id);
  wire_->disconnectBridge(id, segment->uplinkIfindex, segment->uplinkTag);
  registry_->tags().release(segment->uplinkTag);
  segment->uplinkTag = 0;
  segment->uplinkIfindex = 0;
  segment->uplinkInterface.clear();
  segment->uplinkPeer.clear();
  segment->hostIps.clear();
  dirty_ = true;
  journalDirty_ = true;
  linksDirty_ = true;
  spdlog::info("bridge {} is no longer protected: {}", bridge, why);
}

bool Agent::holdsBridge(const std::string& bridge, uint64_t nowMs) {
  if (protected_.count(bridge) != 0) {
    return true;
  }
  if (!config_.docker || dockerBridges_.count(bridge) != 0) {
    return false;  // the engine's, and out of scope (or no engine followed): left alone
  }
  // A bridge the engine has not told of: a network created a moment ago may have its first
  // container before the agent hears of the network. Docker's own names are held until the
  // engine says; any other bridge for a moment.
  if (looksLikeDockerBridge(bridge)) {
    return true;
  }
  const uint64_t since = unknownBridgeSinceMs_.emplace(bridge, nowMs).first->second;
  if (nowMs < since + UnknownBridgeHoldMs) {
    const uint64_t due = since + UnknownBridgeHoldMs;
    nextLinksCheckMs_ = nextLinksCheckMs_ == 0 ? due : std::min(nextLinksCheckMs_, due);
    return true;
  }
  return false;
}

void Agent::reconcileLinks() {
  linksDirty_ = false;
  nextLinksCheckMs_ = 0;
  const uint64_t nowMs = monotonicMs();
  std::string error;
  const auto links = links_->list(&error);
  if (!error.empty()) {
    spdlog::warn("links: {}", error);
    return;
  }
  std::map<int, const HostLinks::Link*> byIndex;
  std::map<std::string, const HostLinks::Link*> byName;
  for (const auto& link : links) {
    byIndex[link.ifindex] = &link;
    byName[link.name] = &link;
  }
  // Endpoints whose veth went (the container stopped without a word from its runtime).
  std::vector<std::pair<std::string, std::string>> vanished;
  for (const auto& endpoint : registry_->endpoints()) {
    for (const auto& attachment : endpoint.attachments) {
      const auto found = byIndex.find(attachment.ifindex);
      if (found == byIndex.end() || found->second->name != attachment.interface) {
        vanished.emplace_back(endpoint.name, attachment.interface);
      }
    }
  }
  for (const auto& [name, interface] : vanished) {
    detachInterface(name, interface, "its interface vanished");
  }
  // Bridges that went, and bridges to protect that have come.
  for (const auto& bridge : std::set<std::string>(protected_)) {
    const auto found = byName.find(bridge);
    const bool present = found != byName.end() && found->second->kind == "bridge";
    const EndpointRegistry::Segment* segment = registry_->findSegment(bridge);
    const bool connected = segment != nullptr && segment->uplinkTag != 0;
    if (!present && connected) {
      unprotectBridge(bridge, "the bridge is gone");
      // Named in the configuration: protected again when it comes back.
      if (std::find(config_.protectBridges.begin(), config_.protectBridges.end(), bridge) !=
          config_.protectBridges.end()) {
        protected_.insert(bridge);
      }
    } else if (present && !connected) {
      if (std::string failure; !protectBridge(bridge, &failure)) {
        spdlog::error("bridge {}: {}", bridge, failure);
      }
    }
  }
  // The quarantine holds every veth on a bridge; those on bridges nobody protects go free.
  std::set<int> onBridges;
  for (const auto& link : links) {
    if (link.kind != "veth" || link.masterIndex == 0 || names_.owns(link.name)) {
      continue;
    }
    const auto master = byIndex.find(link.masterIndex);
    if (master == byIndex.end()) {
      continue;
    }
    onBridges.insert(link.ifindex);
    if (registry_->findInterface(link.name).first != nullptr) {
      continue;  // plugged: the patch panel carries it
    }
    const bool held = holdsBridge(master->second->name, nowMs);
    if (held && wire_->isReleased(link.ifindex)) {
      wire_->unrelease(link.ifindex);
      spdlog::info("{} on protected bridge {}: quarantined", link.name, master->second->name);
    } else if (!held && !wire_->isReleased(link.ifindex)) {
      if (std::string failure; !wire_->release(link.ifindex, &failure)) {
        spdlog::warn("{} on bridge {}: {}", link.name, master->second->name, failure);
      } else {
        spdlog::debug("{} on bridge {}, which the agent does not protect: released", link.name,
                      master->second->name);
      }
    }
  }
  for (const int ifindex : std::set<int>(wire_->released())) {
    if (onBridges.count(ifindex) == 0) {
      wire_->unrelease(ifindex);  // gone, or off its bridge: nothing to let through
    }
  }
}

void Agent::applyDockerNetworks(const std::vector<DockerNetwork>& networks) {
  const auto wanted = protectedBridges(networks, dockerScope_);
  const auto unwanted = unprotectedBridges(networks, dockerScope_);
  dockerUnprotected_ = std::set<std::string>(unwanted.begin(), unwanted.end());
  dockerBridges_.clear();
  for (const auto& network : networks) {
    if (!network.bridge.empty()) {
      dockerBridges_.insert(network.bridge);
      unknownBridgeSinceMs_.erase(network.bridge);
    }
  }
  // Networks removed from the engine: their bridges are gone or going.
  for (const auto& bridge : std::set<std::string>(protected_)) {
    const bool stillWanted = std::find(wanted.begin(), wanted.end(), bridge) != wanted.end();
    const bool configured = std::find(config_.protectBridges.begin(), config_.protectBridges.end(),
                                      bridge) != config_.protectBridges.end();
    if (!stillWanted && !configured &&
        (looksLikeDockerBridge(bridge) || dockerUnprotected_.count(bridge) != 0)) {
      unprotectBridge(bridge, "its Docker network is gone or not followed");
    }
  }
  for (const auto& bridge : wanted) {
    if (std::string failure; !protectBridge(bridge, &failure)) {
      spdlog::error("docker: bridge {}: {}", bridge, failure);
    }
  }
  linksDirty_ = true;
}

void Agent::applyDocker(const DockerUpdate& update) {
  switch (update.kind) {
    case DockerUpdate::Kind::Resync: {
      applyDockerNetworks(update.networks);
      const auto desired = desiredEndpoints(update.containers, dockerScope_);
      std::vector<std::string> gone;
      for (const auto& endpoint : registry_->endpoints()) {
        const bool wanted = std::any_of(
            desired.begin(), desired.end(),
            [&](const DesiredEndpoint& d) { return d.containerId == endpoint.containerId; });
        if (endpoint.source == "docker" && !wanted) {
          gone.push_back(endpoint.name);
        }
      }
      for (const auto& name : gone) {
        detach(name, "the container no longer runs on a protected network (resync)");
      }
      for (const auto& endpoint : desired) {
        upsertContainer(endpoint);
      }
      flush();
      const uint64_t nowNs = monotonicMs() * 1000000ull;
      lastResyncMs_ = nowNs > update.sinceNs ? double(nowNs - update.sinceNs) / 1e6 : 0;
      spdlog::info(
          "docker: resynced, {} running containers, {} of them endpoints, enforced {:.0f} "
          "ms after the engine was first asked",
          update.containers.size(), desired.size(), lastResyncMs_);
      return;
    }
    case DockerUpdate::Kind::Networks:
      applyDockerNetworks(update.networks);
      return;
    case DockerUpdate::Kind::Running: {
      const auto desired = desiredEndpoint(update.containers.front(), dockerScope_);
      if (desired) {
        if (upsertContainer(*desired)) {
          attachEvents_.push_back({update.sinceNs, update.pushedNs});
        }
      } else if (const auto* existing = registry_->findByContainer(update.containers.front().id);
                 existing != nullptr && existing->source == "docker") {
        detach(existing->name, "the container left the protected networks");
      }
      return;
    }
    case DockerUpdate::Kind::Gone:
      if (const auto* existing = registry_->findByContainer(update.id);
          existing != nullptr && existing->source == "docker") {
        detach(existing->name, "the container stopped");
      }
      return;
  }
}

bool Agent::upsertContainer(const DesiredEndpoint& desired) {
  std::vector<AttachSpec> specs;
  for (const auto& network : desired.attachments) {
    std::string error;
    const auto veth = containerVethOf(desired.netns, network.mac, *links_, &error);
    if (!veth) {
      spdlog::warn("docker: container '{}' on network {}: {} (its veth stays quarantined)",
                   desired.name, network.network, error);
      continue;
    }
    AttachSpec spec;
    spec.name = desired.name;
    spec.labels = desired.labels;
    spec.source = "docker";
    spec.containerId = desired.containerId;
    spec.interface = veth->hostInterface;
    spec.bridge = network.bridge;
    dataplane::MacAddress mac;
    if (dataplane::MacAddress::parse(network.mac, mac)) {
      spec.macs.push_back(mac);
    }
    for (const auto& text : network.ips) {
      if (const auto ip = rules::IpAddress::parse(text)) {
        spec.ips.push_back(*ip);
      }
    }
    spec.netns = desired.netns;
    spec.containerInterface = veth->containerInterface;
    specs.push_back(std::move(spec));
  }
  if (const auto* existing = registry_->findByContainer(desired.containerId)) {
    bool same = existing->source == "docker" && existing->name == desired.name &&
                existing->labels == desired.labels && existing->attachments.size() == specs.size();
    for (size_t i = 0; same && i < specs.size(); ++i) {
      const auto& attachment = existing->attachments[i];
      same = attachment.interface == specs[i].interface && attachment.macs == specs[i].macs &&
             attachment.ips == specs[i].ips;
    }
    if (same) {
      return false;  // already so: a replayed or duplicate event
    }
    const std::string name = existing->name;
    detach(name, "the container changed");
  }
  bool attached = false;
  for (const auto& spec : specs) {
    if (const std::string failure = attach(spec); !failure.empty()) {
      // Failing closed: its veth stays in the quarantine, cut off rather than unfiltered.
      spdlog::error("docker: container '{}' on {} is not attached ({}); it stays cut off",
                    desired.name, spec.interface, failure);
    } else {
      attached = true;
    }
  }
  return attached;
}

std::string Agent::attachRequest(const api::EndpointRequest& request, const nlohmann::json& raw) {
  const rules::Labels given = withoutReservedLabels(request.labels);
  AttachSpec spec;
  spec.name = request.name;
  spec.labels = endpointLabels(request.name, given, request.image, request.networks,
                               config_.namespaceLabel, config_.namespaces);
  spec.source = "api";
  spec.askRuntime = runtime_ != nullptr && !request.containerId.empty();
  spec.containerId = request.containerId;
  spec.interface = request.interface;
  spec.bridge = request.bridge;
  for (const auto& text : request.macs) {
    dataplane::MacAddress mac;
    if (!dataplane::MacAddress::parse(text, mac)) {
      return "'" + text + "' is not a MAC address";
    }
    spec.macs.push_back(mac);
  }
  for (const auto& text : request.ips) {
    const auto ip = rules::IpAddress::parse(text);
    if (!ip) {
      return "'" + text + "' is not an IP address";
    }
    spec.ips.push_back(*ip);
  }
  spec.netns = request.netns;
  spec.containerInterface = request.containerInterface;
  spec.request = raw;
  return attach(spec);
}

void Agent::applyRuntimeLabels(const RuntimeContainer& answer) {
  EndpointRegistry::Endpoint* endpoint = registry_->findByContainer(answer.containerId);
  if (endpoint == nullptr || !endpoint->labelsPending) {
    return;  // gone meanwhile
  }
  if (!answer.found) {
    spdlog::error(
        "endpoint '{}': the runtime at {} cannot tell container {}'s labels ({}); it "
        "stays cut off",
        endpoint->name, runtime_->socketPath(), answer.containerId.substr(0, 12), answer.error);
    return;
  }
  // The container's own labels, with what the request said (the network's configuration, the
  // pod's facts, bulkhead.io/*) laid over them.
  rules::Labels labels = withoutReservedLabels(answer.labels);
  for (const auto& [key, value] : endpoint->labels) {
    labels[key] = value;
  }
  if (!answer.image.empty()) {
    labels.emplace(std::string(rules::reserved_labels::Image), answer.image);
  }
  bool newIdentity = false;
  registry_->relabel(*endpoint, std::move(labels), &newIdentity);
  identitiesChanged_ = identitiesChanged_ || newIdentity;
  endpoint->labelsPending = false;
  dirty_ = true;
  spdlog::info("endpoint '{}' has the runtime's labels: identity {}", endpoint->name,
               endpoint->identity);
}

void Agent::recover(const AgentJournal& previous) {
  size_t recovered = 0;
  for (const auto& raw : previous.apiEndpoints) {
    api::EndpointRequest request;
    std::string failure = api::parseEndpointRequest(raw, request);
    if (failure.empty() && !links_->exists(request.interface)) {
      failure = "its interface " + request.interface + " went while no agent ran";
    }
    if (failure.empty()) {
      failure = attachRequest(request, raw);
    }
    if (failure.empty()) {
      ++recovered;
      spdlog::info("recovered endpoint '{}' on {}", request.name, request.interface);
    } else {
      spdlog::warn("could not recover endpoint '{}': {}", raw.value("name", "?"), failure);
    }
  }
  if (!previous.apiEndpoints.empty()) {
    spdlog::info("recovered {} of {} API endpoints", recovered, previous.apiEndpoints.size());
  }
}

}  // namespace bulkhead::controlplane
