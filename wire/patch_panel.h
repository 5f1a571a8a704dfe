#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/doorbell.h"
#include "dataplane/flow_offload.h"

struct patch_panel;

namespace bulkhead::wire {

struct PatchPanelCounters {
  uint64_t portToTrunk = 0;
  uint64_t portUnknown = 0;  // frames of an interface with the program but no tag: dropped
  uint64_t portTagged = 0;   // frames that already carried a VLAN tag: dropped
  uint64_t noTrunk = 0;
  uint64_t trunkToPort = 0;
  uint64_t trunkUntagged = 0;
  uint64_t trunkUnknownTag = 0;
  uint64_t pushFailed = 0;
  uint64_t portToOtherTrunk = 0;  // of portToTrunk, into a trunk other than the first (worker 0's)
  uint64_t offloaded = 0;         // frames of offloaded flows, sent on past the trunk
  uint64_t offloadStale = 0;      // frames of flows offloaded under an older version: to the trunk
};

// The kernel half of the wire (wire/patch_panel.bpf.c): on every plugged interface a tc program
// that gives its frames the interface's 802.1Q tag and sends them into the trunk, and on the
// trunk's kernel end one that takes the tag off and sends each frame out of the interface the
// tag names. Plugging or unplugging an interface is two map writes and one tc filter: no DPDK
// port, no UMEM, no policy recompile.
//
// The programs and maps are pinned under `pinDirectory` (on bpffs, mounted if it is not) so
// that a later agent finds what a crashed one left. Every call reports failure as false with a
// sentence in `error`; none throws. The control thread owns it.
class PatchPanel {
 public:
  static std::unique_ptr<PatchPanel> load(const std::string& pinDirectory, std::string* error);
  // Closes the agent's handles only: whatever is attached stays attached (that is how a crash
  // fails closed); removeAll() is the clean way out.
  ~PatchPanel();
  PatchPanel(const PatchPanel&) = delete;
  PatchPanel& operator=(const PatchPanel&) = delete;

  // Frames of plugged interfaces go to the trunks' kernel ends in `ifindexes`, one per worker:
  // each IP frame to its conversation owner's (dataplane/conversation_hash.h), the rest to the
  // first. Frames arriving on any of them go back out by their tag. At most BH_MAX_WORKERS.
  bool setTrunks(const std::vector<int>& ifindexes, std::string* error);
  // The interface's frames get `tag`; frames with `tag` leave through it -- handed straight to
  // its peer when `peer` (a veth whose other end is in another namespace). Replaces any filter
  // of ours already on it (one a crashed agent left) in one step.
  bool plug(int ifindex, uint16_t tag, bool peer, std::string* error);
  // Takes the filter off and forgets the tag, and every offloaded flow that enters or leaves by
  // it. An interface that is already gone is fine.
  bool unplug(int ifindex, uint16_t tag, std::string* error);

  // Established-flow offload (dataplane/flow_offload.h). The workers' way into the map; null
  // with `error` where the kernel cannot map the panel's globals. Lives no longer than the panel.
  std::unique_ptr<dataplane::FlowOffload> offload(std::string* error);
  // Entries made under another version are void from now on; 0 voids all and offloads nothing.
  void setOffloadVersion(uint32_t version);
  // Offloaded flows pass for `seconds` more (CLOCK_MONOTONIC) unless this is called again: an
  // agent that stops calling it -- a dead one -- stops the offload.
  void keepOffloading(unsigned seconds);
  // The trunk's filter, the plugged interfaces' filters (of those still there), the pins.
  void removeAll();

  // Worker `worker`'s doorbell: rung by the next frame into its trunk while it sleeps. Lives no
  // longer than the panel.
  std::unique_ptr<dataplane::Doorbell> doorbell(unsigned worker, std::string* error);

  PatchPanelCounters counters() const;
  const std::string& pinDirectory() const { return pinDirectory_; }

  // Our filter on an interface (a crashed agent's, say), if there is one.
  static bool removeFilter(int ifindex, std::string* error);
  // What a previous agent pinned under the directory: unpinned (the programs go once no filter
  // holds them).
  static void removePins(const std::string& pinDirectory);

 private:
  PatchPanel(patch_panel* skeleton, std::string pinDirectory)
      : skeleton_(skeleton), pinDirectory_(std::move(pinDirectory)) {}

  patch_panel* skeleton_;
  std::string pinDirectory_;
  std::vector<int> trunkIfindexes_;
};

// Makes sure bpffs is mounted at /sys/fs/bpf, mounting it when it is not (`mounted` says so);
// false with the reason.
bool ensureBpffs(bool* mounted, std::string* error);

}  // namespace bulkhead::wire
