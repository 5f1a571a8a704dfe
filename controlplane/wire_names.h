#pragma once

#include <cstdint>
#include <string>

namespace bulkhead::controlplane {

// The names everything an agent puts in the kernel is known by, from its instance name: the
// trunk's veth pair, the uplink pairs into bridges, the BPF pins, the nftables table. Two agents
// of different instances never touch each other's objects, and a later agent of the same
// instance finds what an earlier one left.
struct WireNames {
  std::string instance;

  // One trunk per worker; worker 0's names carry no number.
  std::string trunkKernelEnd(unsigned worker = 0) const {
    return instance + "-tk" + (worker != 0 ? std::to_string(worker) : "");
  }
  std::string trunkPort(unsigned worker = 0) const {  // the fast path's (DPDK's) end
    return instance + "-td" + (worker != 0 ? std::to_string(worker) : "");
  }
  std::string uplink(uint16_t segment) const { return instance + "-u" + std::to_string(segment); }
  std::string uplinkPeer(uint16_t segment) const {
    return instance + "-b" + std::to_string(segment);
  }
  std::string pinDirectory() const { return "/sys/fs/bpf/bulkhead/" + instance; }
  std::string quarantineTable() const { return "bulkhead_" + instance; }
  // The trunk's ends and the uplink pairs: interfaces no endpoint may claim.
  bool owns(const std::string& interface) const { return interface.starts_with(instance + "-"); }
};

// An instance name: lower-case letters and digits, 1..8 of them (interface names stay within
// 15 characters). "" when valid, else why not.
std::string validateInstanceName(const std::string& instance);

}  // namespace bulkhead::controlplane
