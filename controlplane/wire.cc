#include "controlplane/wire.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "dataplane/conversation_hash.h"

namespace bulkhead::controlplane {

std::unique_ptr<Wire> Wire::open(const WireNames& names, HostLinks& links,
                                 const std::vector<std::string>& previouslyPlugged,
                                 const std::vector<std::string>& previousUplinks,
                                 const std::vector<int>& released, std::string* error,
                                 unsigned trunks) {
  // Before anything is made: a host whose bpffs cannot be mounted gets nothing half-done.
  bool mounted = false;
  if (!wire::ensureBpffs(&mounted, error)) {
    return nullptr;
  }
  if (mounted) {
    spdlog::info("wire: bpffs was not mounted; mounted it at /sys/fs/bpf");
  }
  std::unique_ptr<Wire> wire(new Wire(names, links));
  const bool tookOver = wire::Quarantine::exists(names.quarantineTable());
  // The quarantine first: from here on no bridge carries a container's frames on its own.
  wire->quarantine_ = wire::Quarantine::open(names.quarantineTable(), {}, released, error);
  if (!wire->quarantine_) {
    return nullptr;
  }
  wire->released_.insert(released.begin(), released.end());
  // A failure from here on undoes what this call made. A quarantine taken over from a crashed
  // agent stays: its containers were cut off before and remain so.
  const auto fail = [&](const std::string& why) -> std::unique_ptr<Wire> {
    *error = why;
    wire->shutdown(tookOver);
    return nullptr;
  };
  // What an earlier agent left goes; the quarantine holds the containers' bridges shut meanwhile.
  for (const auto& interface : previouslyPlugged) {
    const int ifindex = links.ifindexOf(interface);
    std::string ignored;
    if (ifindex > 0 && !wire::PatchPanel::removeFilter(ifindex, &ignored)) {
      spdlog::warn("wire: {}", ignored);
    }
  }
  std::string failure;
  for (const auto& uplink : previousUplinks) {
    if (names.owns(uplink) && !links.remove(uplink, &failure)) {
      spdlog::warn("wire: {}", failure);
    }
  }
  wire::PatchPanel::removePins(names.pinDirectory());
  wire->panel_ = wire::PatchPanel::load(names.pinDirectory(), &failure);
  if (!wire->panel_) {
    return fail(failure);
  }
  if (trunks == 0 || trunks > BH_MAX_WORKERS) {
    return fail(std::to_string(trunks) + " trunks: between 1 and " +
                std::to_string(BH_MAX_WORKERS) + " are possible");
  }
  // Trunks an earlier agent with more workers left go too.
  for (unsigned worker = trunks; worker < BH_MAX_WORKERS; ++worker) {
    links.remove(names.trunkKernelEnd(worker), &failure);
  }
  std::vector<int> kernelEnds;
  for (unsigned worker = 0; worker < trunks; ++worker) {
    const std::string kernelEnd = names.trunkKernelEnd(worker);
    const std::string port = names.trunkPort(worker);
    if (!links.remove(kernelEnd, &failure) ||
        !links.createVethPair(kernelEnd, port, "", &failure)) {
      return fail("trunk: " + failure);
    }
    wire->trunks_ = worker + 1;
    for (const auto& end : {kernelEnd, port}) {
      disableIpv6(end);
    }
    if (!setTrunkOffloads(kernelEnd, &failure)) {
      return fail("trunk: " + failure);
    }
    if (!disableOffloads(port, &failure)) {
      spdlog::warn("trunk: {}", failure);
    }
    kernelEnds.push_back(links.ifindexOf(kernelEnd));
  }
  if (!wire->panel_->setTrunks(kernelEnds, &failure)) {
    return fail("trunk: " + failure);
  }
  return wire;
}

Wire::~Wire() = default;

bool Wire::plug(const std::string& interface, uint16_t tag, int* ifindex, std::string* error) {
  const auto link = links_.find(interface);
  if (!link) {
    *error = "no interface named '" + interface + "'";
    return false;
  }
  *ifindex = link->ifindex;
  return plug(*link, tag, error);
}

bool Wire::plug(const HostLinks::Link& link, uint16_t tag, std::string* error) {
  // A container's veth: its frames are handed straight to the container's end.
  const bool peer = link.kind == "veth" && link.peerElsewhere;
  if (!panel_->plug(link.ifindex, tag, peer, error)) {
    return false;
  }
  // Whatever the bridge would send it is dropped: the patch panel alone reaches it now.
  unrelease(link.ifindex);
  plugged_.push_back({link.ifindex, link.name});
  return true;
}

void Wire::unplug(int ifindex, uint16_t tag) {
  std::string failure;
  if (!panel_->unplug(ifindex, tag, &failure)) {
    spdlog::warn("wire: {}", failure);
  }
  plugged_.erase(std::remove_if(plugged_.begin(), plugged_.end(),
                                [&](const auto& entry) { return entry.first == ifindex; }),
                 plugged_.end());
}

bool Wire::connectBridge(const std::string& bridge, uint16_t segment, uint16_t tag,
                         std::string* uplink, std::string* peer, int* ifindex, std::string* error) {
  *uplink = names_.uplink(segment);
  *peer = names_.uplinkPeer(segment);
  std::string failure;
  if (!links_.remove(*uplink, &failure) ||
      !links_.createVethPair(*uplink, *peer, bridge, &failure)) {
    *error = "uplink into " + bridge + ": " + failure;
    return false;
  }
  for (const auto& end : {*uplink, *peer}) {
    disableIpv6(end);
    if (!disableOffloads(end, &failure)) {
      spdlog::warn("uplink: {}", failure);
    }
  }
  if (!quarantine_->addUplink(links_.ifindexOf(*peer), &failure) ||
      !plug(*uplink, tag, ifindex, &failure)) {
    links_.remove(*uplink, error);
    *error = "uplink into " + bridge + ": " + failure;
    return false;
  }
  uplinks_.push_back(*uplink);
  return true;
}

void Wire::disconnectBridge(uint16_t segment, int ifindex, uint16_t tag) {
  unplug(ifindex, tag);
  quarantine_->removeUplink(links_.ifindexOf(names_.uplinkPeer(segment)));
  std::string failure;
  const std::string uplink = names_.uplink(segment);
  if (!links_.remove(uplink, &failure)) {
    spdlog::warn("uplink: {}", failure);
  }
  uplinks_.erase(std::remove(uplinks_.begin(), uplinks_.end(), uplink), uplinks_.end());
}

bool Wire::release(int ifindex, std::string* error) {
  if (!quarantine_->release(ifindex, error)) {
    return false;
  }
  released_.insert(ifindex);
  return true;
}

void Wire::unrelease(int ifindex) {
  if (released_.erase(ifindex) != 0) {
    quarantine_->unrelease(ifindex);
  }
}

std::vector<std::string> Wire::plugged() const {
  std::vector<std::string> names;
  for (const auto& [ifindex, name] : plugged_) {
    names.push_back(name);
  }
  return names;
}

nlohmann::json Wire::objects() const {
  nlohmann::json trunks = nlohmann::json::array();
  for (unsigned worker = 0; worker < trunks_; ++worker) {
    trunks.push_back(
        {{"kernelEnd", names_.trunkKernelEnd(worker)}, {"port", names_.trunkPort(worker)}});
  }
  return {{"trunk", trunks.empty() ? nlohmann::json::object() : trunks[0]},
          {"trunks", trunks},
          {"uplinks", uplinks_},
          {"plugged", plugged()},
          {"pins", panel_ ? panel_->pinDirectory() : ""},
          {"quarantine", quarantine_ ? quarantine_->table() : ""},
          {"released", released_}};
}

void Wire::shutdown(bool keepQuarantine) {
  if (panel_) {
    panel_->removeAll();
    panel_.reset();
  }
  std::string failure;
  for (const auto& uplink : uplinks_) {
    if (!links_.remove(uplink, &failure)) {
      spdlog::warn("uplink: {}", failure);
    }
  }
  uplinks_.clear();
  plugged_.clear();
  for (unsigned worker = 0; worker < trunks_; ++worker) {
    if (!links_.remove(names_.trunkKernelEnd(worker), &failure)) {
      spdlog::warn("trunk: {}", failure);
    }
  }
  trunks_ = 0;
  if (quarantine_ && !keepQuarantine && !quarantine_->remove(&failure)) {
    spdlog::warn("quarantine: {}", failure);
  }
  quarantine_.reset();
}

void Wire::releaseAll(const WireNames& names, HostLinks& links,
                      const std::vector<std::string>& plugged,
                      const std::vector<std::string>& uplinks) {
  std::string failure;
  for (const auto& interface : plugged) {
    const int ifindex = links.ifindexOf(interface);
    if (ifindex > 0 && !wire::PatchPanel::removeFilter(ifindex, &failure)) {
      spdlog::warn("wire: {}", failure);
    }
  }
  wire::PatchPanel::removePins(names.pinDirectory());
  for (const auto& uplink : uplinks) {
    links.remove(uplink, &failure);
  }
  for (unsigned worker = 0; worker < BH_MAX_WORKERS; ++worker) {
    links.remove(names.trunkKernelEnd(worker), &failure);
  }
  if (!wire::Quarantine::removeTable(names.quarantineTable(), &failure)) {
    spdlog::warn("quarantine: {}", failure);
  }
}

}  // namespace bulkhead::controlplane
