#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "dataplane/packet_meta.h"
#include "rules/identity.h"
#include "rules/policy_snapshot.h"

namespace bulkhead::dataplane {

// 802.1Q VLAN ids on the trunk. 0 and 4095 are reserved by 802.1Q.
inline constexpr uint16_t MaxTags = 4096;
inline constexpr int16_t NoAttachment = -1;

// What a tag on the trunk is bound to. An endpoint attachment carries one endpoint's veth on one
// segment: its identity is the identity of every frame tagged with it, and only its own MACs and
// IPs may appear as source addresses there. An uplink carries the segment's bridge: the host,
// and the world behind it.
struct Attachment {
  uint16_t tag = 0;
  uint16_t segment = 0;
  bool uplink = false;
  // Nothing passes to or from it (an endpoint whose labels, and so whose policy, are not known
  // yet): it is on the wire, cut off.
  bool blocked = false;
  uint32_t endpointSlot = UINT32_MAX;
  rules::IdentityId identity = rules::reserved_identity::World;
  std::vector<MacAddress> macs;       // empty: any source MAC accepted
  std::vector<rules::IpAddress> ips;  // empty: any source IP accepted
};

// One L2 domain: the attachments of one bridge (or of no bridge), and its uplink. Frames are only
// ever switched within a segment; another segment is reached through the uplink and the host.
struct Segment {
  int16_t uplink = NoAttachment;  // index into ForwardingState::attachments
  std::vector<int16_t> members;   // endpoint attachments, for flooding
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

// A MAC within a segment: the segment id above the 48 bits of the address.
inline uint64_t segmentMacKey(uint16_t segment, const MacAddress& mac) {
  return (uint64_t{segment} << 48) | macKey(mac);
}

struct SegmentIp {
  uint16_t segment = 0;
  rules::IpAddress ip;
  bool operator==(const SegmentIp&) const = default;
};

struct SegmentIpHash {
  size_t operator()(const SegmentIp& key) const {
    return IpHash{}(key.ip) ^ (size_t{key.segment} << 40);
  }
};

// A worker's end of the trunk.
struct TrunkQueue {
  uint16_t port = 0;   // the DPDK port
  uint16_t queue = 0;  // its rx and tx queue
  MacAddress mac;      // the interface's own address: frames from it are the host's
};

// Everything workers read that the control thread changes: the policy, the trunk and what each
// of its tags is bound to. Immutable once published; replaced as a whole and freed after an RCU
// grace period, so a worker sees either the old state or the new one for a whole burst, never
// half of each.
struct ForwardingState {
  uint64_t version = 0;
  // Under which the workers offload the established flows this state allows
  // (dataplane/flow_offload.h); 0: they offload nothing.
  uint32_t offloadVersion = 0;
  rules::PolicySnapshotPtr policy;
  bool hasTrunk = false;
  // Where each worker (by id) receives its tagged frames and sends them back: one trunk per
  // worker for the agent (the patch panel picks the owner's), queues of one port in tests.
  std::vector<TrunkQueue> trunks;
  std::vector<Attachment> attachments;
  std::vector<Segment> segments;  // by segment id
  std::array<int16_t, MaxTags> byTag;
  std::unordered_map<uint64_t, int16_t> endpointByMac;  // segmentMacKey -> attachment
  std::unordered_map<SegmentIp, int16_t, SegmentIpHash> endpointByIp;
  std::vector<rules::IpAddress> hostIps;  // the host's own addresses, beyond the uplinks
  // Other hosts' endpoints beyond the uplinks (docs/multihost.md), by address: the identity
  // their host published and this one believes.
  std::unordered_map<rules::IpAddress, rules::IdentityId, IpHash> remoteIdentities;
  // (segment << 32 | endpoint slot) -> attachment: where a flow's side is attached.
  std::unordered_map<uint64_t, int16_t> byEndpoint;

  ForwardingState() { byTag.fill(NoAttachment); }

  // Fills the lookup tables from `attachments`; call once before publishing.
  void index();

  // The attachment of a flow's side on `segment`: the endpoint's, or the segment's uplink for a
  // side beyond it (no endpoint); null when there is none (any more).
  const Attachment* sideOf(uint16_t segment, uint32_t endpointSlot) const;
  static uint64_t endpointSegmentKey(uint16_t segment, uint32_t endpointSlot) {
    return (uint64_t{segment} << 32) | endpointSlot;
  }
  const Attachment* attachment(uint16_t tag) const {
    const int16_t index = tag < MaxTags ? byTag[tag] : NoAttachment;
    return index == NoAttachment ? nullptr : &attachments[static_cast<size_t>(index)];
  }
};

}  // namespace bulkhead::dataplane
