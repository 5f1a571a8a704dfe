#pragma once

#include <rte_build_config.h>

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "dataplane/packet_meta.h"
#include "rules/identity.h"
#include "rules/policy_snapshot.h"

namespace bulkhead::dataplane {

inline constexpr int16_t NoPortIndex = -1;

// What a port is bound to. An endpoint port carries exactly one endpoint's traffic: its identity
// is the identity of every packet entering it, and only its own MACs and IPs may appear as
// source addresses there. The uplink carries the world.
struct PortBinding {
  uint16_t portId = 0;
  MacAddress ownMac;  // the interface's own address: frames from it are the host's, not the wire's
  bool uplink = false;
  uint32_t endpointSlot = UINT32_MAX;
  rules::IdentityId identity = rules::reserved_identity::World;
  std::vector<MacAddress> macs;       // empty: any source MAC accepted
  std::vector<rules::IpAddress> ips;  // empty: any source IP accepted
};

struct IpHash {
  size_t operator()(const rules::IpAddress& ip) const {
    uint64_t hash = ip.family;
    for (uint8_t byte : ip.bytes) {
      hash = (hash ^ byte) * 0x100000001B3ull;
    }
    return hash;
  }
};

inline uint64_t macKey(const MacAddress& mac) {
  uint64_t key = 0;
  for (uint8_t byte : mac.bytes) {
    key = (key << 8) | byte;
  }
  return key;
}

// Everything workers read that the control thread changes: the policy and the port bindings.
// Immutable once published; replaced as a whole and freed after an RCU grace period, so a
// worker sees either the old state or the new one for a whole burst, never half of each.
struct ForwardingState {
  uint64_t version = 0;
  rules::PolicySnapshotPtr policy;
  std::vector<PortBinding> ports;
  std::array<int16_t, RTE_MAX_ETHPORTS> indexByPort;
  std::unordered_map<uint64_t, int16_t> endpointByMac;  // endpoint MAC -> index in ports
  std::unordered_map<rules::IpAddress, int16_t, IpHash> endpointByIp;
  int16_t uplink = NoPortIndex;
  std::vector<rules::IpAddress> hostIps;  // the host's own addresses, beyond the uplink

  ForwardingState() { indexByPort.fill(NoPortIndex); }

  // Fills the lookup tables from `ports`; call once before publishing.
  void index();

  const PortBinding* binding(uint16_t portId) const {
    const int16_t index = portId < RTE_MAX_ETHPORTS ? indexByPort[portId] : NoPortIndex;
    return index == NoPortIndex ? nullptr : &ports[static_cast<size_t>(index)];
  }
};

}  // namespace bulkhead::dataplane
