#include "wire/patch_panel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "wire/offload_map.h"
#include "wire/patch_panel.skel.h"
#include "wire/patch_panel_maps.h"
#include "wire/trunk_doorbell.h"

namespace bulkhead::wire {
namespace {

namespace fs = std::filesystem;

// Our filter among an interface's tc filters: one place to look for it, and a distinct
// priority so that someone else's filters are never replaced or removed.
constexpr uint32_t FilterHandle = 0xb4;
constexpr uint32_t FilterPriority = 0xb4;
constexpr const char* BpffsPath = "/sys/fs/bpf";

std::string failure(const std::string& what, int code) {
  return what + ": " + std::strerror(code < 0 ? -code : code);
}

bpf_tc_hook ingressHook(int ifindex) {
  bpf_tc_hook hook = {};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

bool attachFilter(int ifindex, int programFd, std::string* error) {
  bpf_tc_hook hook = ingressHook(ifindex);
  const int created = bpf_tc_hook_create(&hook);
  if (created != 0 && created != -EEXIST) {
    *error = failure("tc clsact on interface " + std::to_string(ifindex), created);
    return false;
  }
  bpf_tc_opts opts = {};
  opts.sz = sizeof(opts);
  opts.prog_fd = programFd;
  opts.handle = FilterHandle;
  opts.priority = FilterPriority;
  opts.flags = BPF_TC_F_REPLACE;
  const int attached = bpf_tc_attach(&hook, &opts);
  if (attached != 0) {
    *error = failure("tc filter on interface " + std::to_string(ifindex), attached);
    return false;
  }
  return true;
}

// libbpf prints its own view of failures on stderr; the agent reports them itself.
int quietLibbpf(libbpf_print_level level, const char*, va_list) {
  (void)level;
  return 0;
}

}  // namespace

bool ensureBpffs(bool* mounted, std::string* error) {
  *mounted = false;
  struct statfs info = {};
  if (statfs(BpffsPath, &info) == 0 && info.f_type == BPF_FS_MAGIC) {
    return true;
  }
  std::error_code ignored;
  fs::create_directories(BpffsPath, ignored);
  if (mount("bpf", BpffsPath, "bpf", 0, nullptr) != 0) {
    *error = std::string("bpffs is not mounted at ") + BpffsPath +
             " and mounting it failed: " + std::strerror(errno) + " (mount -t bpf bpf " +
             BpffsPath + ")";
    return false;
  }
  *mounted = true;
  return true;
}

std::unique_ptr<PatchPanel> PatchPanel::load(const std::string& pinDirectory, std::string* error) {
  libbpf_set_print(quietLibbpf);
  bool mounted = false;
  if (!ensureBpffs(&mounted, error)) {
    return nullptr;
  }
  patch_panel* skeleton = patch_panel__open_and_load();
  if (skeleton == nullptr) {
    *error = failure("loading the patch panel's BPF programs", errno);
    return nullptr;
  }
  std::unique_ptr<PatchPanel> panel(new PatchPanel(skeleton, pinDirectory));
  std::error_code ec;
  fs::create_directories(pinDirectory, ec);
  if (ec) {
    *error = "cannot create " + pinDirectory + ": " + ec.message();
    return nullptr;
  }
  const auto pin = [&](auto* object, const char* name, auto pinner) {
    const std::string path = pinDirectory + "/" + name;
    unlink(path.c_str());  // a crashed agent's pin of the same name
    const int pinned = pinner(object, path.c_str());
    if (pinned != 0) {
      *error = failure("pinning " + path, pinned);
      return false;
    }
    return true;
  };
  const bool pinned = pin(skeleton->maps.bh_port_tag, "bh_port_tag", bpf_map__pin) &&
                      pin(skeleton->maps.bh_tag_port, "bh_tag_port", bpf_map__pin) &&
                      pin(skeleton->maps.bh_config, "bh_config", bpf_map__pin) &&
                      pin(skeleton->maps.bh_counters, "bh_counters", bpf_map__pin) &&
                      pin(skeleton->progs.bh_from_port, "bh_from_port", bpf_program__pin) &&
                      pin(skeleton->progs.bh_from_trunk, "bh_from_trunk", bpf_program__pin);
  if (!pinned) {
    removePins(pinDirectory);
    return nullptr;
  }
  return panel;
}

PatchPanel::~PatchPanel() {
  patch_panel__destroy(skeleton_);
}

bool PatchPanel::setTrunks(const std::vector<int>& ifindexes, std::string* error) {
  if (ifindexes.empty() || ifindexes.size() > BH_MAX_WORKERS) {
    *error = std::to_string(ifindexes.size()) + " trunks: between 1 and " +
             std::to_string(BH_MAX_WORKERS) + " are possible";
    return false;
  }
  // The way back first, on every trunk: by the time a frame goes into one, its answers return.
  for (const int ifindex : ifindexes) {
    if (!attachFilter(ifindex, bpf_program__fd(skeleton_->progs.bh_from_trunk), error)) {
      return false;
    }
    trunkIfindexes_.push_back(ifindex);
  }
  const uint32_t zero = 0;
  bh_config config = {};
  config.trunks = static_cast<uint32_t>(ifindexes.size());
  for (size_t i = 0; i < ifindexes.size(); ++i) {
    config.trunk_ifindex[i] = static_cast<uint32_t>(ifindexes[i]);
  }
  if (const int updated = bpf_map__update_elem(skeleton_->maps.bh_config, &zero, sizeof(zero),
                                               &config, sizeof(config), BPF_ANY);
      updated != 0) {
    *error = failure("setting the trunks", updated);
    return false;
  }
  return true;
}

bool PatchPanel::plug(int ifindex, uint16_t tag, bool peer, std::string* error) {
  if (tag == 0 || tag >= BH_TAGS - 1) {
    *error = "tag " + std::to_string(tag) + " is not a VLAN id that can be given out";
    return false;
  }
  const uint32_t key = static_cast<uint32_t>(ifindex);
  const uint32_t tagKey = tag;
  const bh_port port = {key, peer ? BH_PORT_PEER : 0u};
  // The way back first: by the time the port's first frame is tagged, its answers can return.
  if (const int updated = bpf_map__update_elem(skeleton_->maps.bh_tag_port, &tagKey, sizeof(tagKey),
                                               &port, sizeof(port), BPF_ANY);
      updated != 0) {
    *error = failure("tag " + std::to_string(tag), updated);
    return false;
  }
  if (const int updated = bpf_map__update_elem(skeleton_->maps.bh_port_tag, &key, sizeof(key), &tag,
                                               sizeof(tag), BPF_ANY);
      updated != 0) {
    *error = failure("interface " + std::to_string(ifindex), updated);
    return false;
  }
  return attachFilter(ifindex, bpf_program__fd(skeleton_->progs.bh_from_port), error);
}

bool PatchPanel::unplug(int ifindex, uint16_t tag, std::string* error) {
  std::string filterError;
  const bool filterRemoved = removeFilter(ifindex, &filterError);
  const uint32_t key = static_cast<uint32_t>(ifindex);
  bpf_map__delete_elem(skeleton_->maps.bh_port_tag, &key, sizeof(key), 0);
  const uint32_t tagKey = tag;
  bh_port current = {};
  if (bpf_map__lookup_elem(skeleton_->maps.bh_tag_port, &tagKey, sizeof(tagKey), &current,
                           sizeof(current), 0) == 0 &&
      current.ifindex == key) {
    const bh_port none = {};
    bpf_map__update_elem(skeleton_->maps.bh_tag_port, &tagKey, sizeof(tagKey), &none, sizeof(none),
                         BPF_ANY);
  }
  OffloadMap::removeTag(bpf_map__fd(skeleton_->maps.bh_offload), tag);
  if (!filterRemoved) {
    *error = filterError;
  }
  return filterRemoved;
}

bool PatchPanel::removeFilter(int ifindex, std::string* error) {
  char name[IF_NAMESIZE];
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
    return true;  // the interface is gone, and its filters with it
  }
  bpf_tc_hook hook = ingressHook(ifindex);
  bpf_tc_opts opts = {};
  opts.sz = sizeof(opts);
  opts.handle = FilterHandle;
  opts.priority = FilterPriority;
  const int detached = bpf_tc_detach(&hook, &opts);
  if (detached != 0 && detached != -ENOENT && detached != -EINVAL) {
    *error = failure(std::string("removing the tc filter of ") + name, detached);
    return false;
  }
  // bulkhead owns tc on the interfaces it plugs: the clsact qdisc it added goes with its filter.
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  bpf_tc_hook_destroy(&hook);
  return true;
}

void PatchPanel::removeAll() {
  std::vector<uint32_t> plugged;
  uint32_t key = 0;
  uint32_t next = 0;
  const uint32_t* previous = nullptr;
  while (bpf_map__get_next_key(skeleton_->maps.bh_port_tag, previous, &next, sizeof(next)) == 0) {
    plugged.push_back(next);
    key = next;
    previous = &key;
  }
  std::string ignored;
  for (uint32_t ifindex : plugged) {
    removeFilter(static_cast<int>(ifindex), &ignored);
  }
  for (const int ifindex : trunkIfindexes_) {
    removeFilter(ifindex, &ignored);
  }
  trunkIfindexes_.clear();
  removePins(pinDirectory_);
}

void PatchPanel::removePins(const std::string& pinDirectory) {
  std::error_code ec;
  for (const char* name : {"bh_port_tag", "bh_tag_port", "bh_config", "bh_counters", "bh_from_port",
                           "bh_from_trunk"}) {
    fs::remove(pinDirectory + "/" + name, ec);
  }
  fs::remove(pinDirectory, ec);
  // The parent (/sys/fs/bpf/bulkhead) goes too once no agent has a directory in it.
  fs::remove(fs::path(pinDirectory).parent_path(), ec);
}

std::unique_ptr<dataplane::Doorbell> PatchPanel::doorbell(unsigned worker, std::string* error) {
  if (skeleton_->bss == nullptr) {
    *error = "the patch panel's globals are not mapped (kernel without mmapable BPF arrays)";
    return nullptr;
  }
  if (worker >= BH_MAX_WORKERS) {
    *error = "no doorbell for worker " + std::to_string(worker);
    return nullptr;
  }
  uint32_t* asleep = const_cast<uint32_t*>(&skeleton_->bss->bh_asleep[worker]);
  if (worker == 0) {
    return TrunkDoorbell::open(asleep, bpf_map__fd(skeleton_->maps.bh_doorbell), -1, error);
  }
  // The other workers' rings are made here and put where the program finds them; the map holds
  // its own reference, the doorbell closes ours.
  const int ring =
      bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bh_doorbell", 0, 0, BH_DOORBELL_BYTES, nullptr);
  if (ring < 0) {
    *error = failure("creating worker " + std::to_string(worker) + "'s doorbell", ring);
    return nullptr;
  }
  const uint32_t key = worker;
  if (const int updated = bpf_map__update_elem(skeleton_->maps.bh_doorbells, &key, sizeof(key),
                                               &ring, sizeof(ring), BPF_ANY);
      updated != 0) {
    close(ring);
    *error = failure("installing worker " + std::to_string(worker) + "'s doorbell", updated);
    return nullptr;
  }
  return TrunkDoorbell::open(asleep, ring, ring, error);
}

std::unique_ptr<dataplane::FlowOffload> PatchPanel::offload(std::string* error) {
  if (skeleton_->bss == nullptr) {
    *error = "the patch panel's globals are not mapped (kernel without mmapable BPF arrays)";
    return nullptr;
  }
  return std::make_unique<OffloadMap>(bpf_map__fd(skeleton_->maps.bh_offload));
}

void PatchPanel::setOffloadVersion(uint32_t version) {
  if (skeleton_->bss != nullptr) {
    // A plain store the programs see at their next frame: entries of the old version are
    // ignored from then on, before any worker reads the state this version goes with (the
    // caller publishes it after this).
    __atomic_store_n(&skeleton_->bss->bh_offload_version, version, __ATOMIC_SEQ_CST);
  }
}

void PatchPanel::keepOffloading(unsigned seconds) {
  if (skeleton_->bss == nullptr) {
    return;
  }
  timespec now = {};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t until = static_cast<uint64_t>(now.tv_sec + seconds) * 1000000000ull +
                         static_cast<uint64_t>(now.tv_nsec);
  __atomic_store_n(&skeleton_->bss->bh_offload_until, until, __ATOMIC_RELAXED);
}

PatchPanelCounters PatchPanel::counters() const {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(cpus > 0 ? static_cast<size_t>(cpus) : 1);
  uint64_t totals[BH_COUNTERS] = {};
  for (uint32_t counter = 0; counter < BH_COUNTERS; ++counter) {
    if (bpf_map__lookup_elem(skeleton_->maps.bh_counters, &counter, sizeof(counter), values.data(),
                             values.size() * sizeof(uint64_t), 0) == 0) {
      for (uint64_t value : values) {
        totals[counter] += value;
      }
    }
  }
  PatchPanelCounters out;
  out.portToTrunk = totals[BH_PORT_TO_TRUNK];
  out.portUnknown = totals[BH_PORT_UNKNOWN];
  out.portTagged = totals[BH_PORT_TAGGED];
  out.noTrunk = totals[BH_NO_TRUNK];
  out.trunkToPort = totals[BH_TRUNK_TO_PORT];
  out.trunkUntagged = totals[BH_TRUNK_UNTAGGED];
  out.trunkUnknownTag = totals[BH_TRUNK_UNKNOWN_TAG];
  out.pushFailed = totals[BH_PUSH_FAILED];
  out.portToOtherTrunk = totals[BH_PORT_TO_OTHER_TRUNK];
  out.offloaded = totals[BH_PORT_OFFLOADED];
  out.offloadStale = totals[BH_OFFLOAD_STALE];
  return out;
}

}  // namespace bulkhead::wire
