#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "controlplane/host_links.h"
#include "controlplane/wire_names.h"
#include "wire/patch_panel.h"
#include "wire/quarantine.h"

namespace bulkhead::controlplane {

// The agent's kernel side (docs/architecture.md, "The wire"): the trunk veth pairs, one per
// worker, whose DPDK ends are the fast path's only ports, the patch panel (tc BPF) that puts every
// plugged interface on the trunk with its tag, an uplink pair into each protected bridge, and the
// quarantine that keeps every other path through the bridges shut. Everything it makes it can list
// (objects()) and take away again. The control thread owns it; failures are false with a sentence.
class Wire {
 public:
  // Sets it all up. What an earlier agent of the same instance left is taken over: the filters
  // it put on `previouslyPlugged` interfaces are removed (their bridges stay closed: the
  // quarantine is replaced in one step, never absent), its trunks made anew (`trunks` of them,
  // one per worker), its
  // `previousUplinks` removed, its pins replaced. `released` (ifindexes) are the veths on
  // bridges the agent does not protect: the quarantine lets them through from its first
  // instant. A failure undoes what the call made, but leaves a quarantine it took over (the
  // containers stay cut off).
  static std::unique_ptr<Wire> open(const WireNames& names, HostLinks& links,
                                    const std::vector<std::string>& previouslyPlugged,
                                    const std::vector<std::string>& previousUplinks,
                                    const std::vector<int>& released, std::string* error,
                                    unsigned trunks = 1);
  ~Wire();
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  const WireNames& names() const { return names_; }

  // `interface`'s frames go into the trunk with `tag`; frames tagged so come out of it.
  bool plug(const std::string& interface, uint16_t tag, int* ifindex, std::string* error);
  // The same for a link already looked up (the attach path asks the kernel once).
  bool plug(const HostLinks::Link& link, uint16_t tag, std::string* error);
  void unplug(int ifindex, uint16_t tag);

  // The fast path's way into `bridge`: a veth pair (ours plugged with `tag`, the other end on the
  // bridge and let through the quarantine). Returns our end's name in `uplink`.
  bool connectBridge(const std::string& bridge, uint16_t segment, uint16_t tag, std::string* uplink,
                     std::string* peer, int* ifindex, std::string* error);
  void disconnectBridge(uint16_t segment, int ifindex, uint16_t tag);

  // Ports (ifindexes) on bridges the agent does not protect: let through the quarantine, or no
  // longer.
  bool release(int ifindex, std::string* error);
  void unrelease(int ifindex);
  bool isReleased(int ifindex) const { return released_.count(ifindex) != 0; }
  const std::set<int>& released() const { return released_; }

  wire::PatchPanelCounters counters() const { return panel_->counters(); }
  // Worker `worker`'s doorbell (dataplane/doorbell.h); null with `error` where the kernel cannot
  // ring one. Must not outlive the wire.
  std::unique_ptr<dataplane::Doorbell> doorbell(unsigned worker, std::string* error) {
    return panel_->doorbell(worker, error);
  }
  unsigned trunks() const { return trunks_; }
  // Established-flow offload (wire/patch_panel.h): the workers' map, the version the next
  // forwarding state goes with (set before it is published), and the agent's keep-alive.
  std::unique_ptr<dataplane::FlowOffload> offload(std::string* error) {
    return panel_->offload(error);
  }
  void setOffloadVersion(uint32_t version) { panel_->setOffloadVersion(version); }
  void keepOffloading(unsigned seconds) { panel_->keepOffloading(seconds); }
  // Everything this wire has in the kernel, for `bulkhead status` and tests.
  nlohmann::json objects() const;
  std::vector<std::string> plugged() const;
  const std::vector<std::string>& uplinks() const { return uplinks_; }

  // A clean stop: filters, pins, trunk and uplinks go. The quarantine stays when
  // `keepQuarantine` (containers stay cut off: fail closed), else it goes too.
  void shutdown(bool keepQuarantine);

  // What an agent of this instance left (a crash, or a fail-closed stop): filters on
  // `plugged`, pins, trunk, uplinks, quarantine. For `bulkheadd --release` and tests.
  static void releaseAll(const WireNames& names, HostLinks& links,
                         const std::vector<std::string>& plugged,
                         const std::vector<std::string>& uplinks);

 private:
  Wire(WireNames names, HostLinks& links) : names_(std::move(names)), links_(links) {}

  WireNames names_;
  HostLinks& links_;
  std::unique_ptr<wire::PatchPanel> panel_;
  std::unique_ptr<wire::Quarantine> quarantine_;
  std::vector<std::pair<int, std::string>> plugged_;  // ifindex, name
  std::vector<std::string> uplinks_;                  // our ends
  std::set<int> released_;
  unsigned trunks_ = 0;  // made so far
};

}  // namespace bulkhead::controlplane
