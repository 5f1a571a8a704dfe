#include "wire/offload_map.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cstring>
#include <vector>

#include "wire/patch_panel_maps.h"

namespace bulkhead::wire {
namespace {

bh_offload_key keyOf(const dataplane::OffloadDirection& direction) {
  bh_offload_key key = {};
  key.tag = direction.ingressTag;
  key.protocol = direction.ipProtocol;
  std::memcpy(&key.saddr, direction.srcIp.bytes.data(), 4);
  std::memcpy(&key.daddr, direction.dstIp.bytes.data(), 4);
  key.sport = htons(direction.srcPort);
  key.dport = htons(direction.dstPort);
  return key;
}

}  // namespace

bool OffloadMap::install(const dataplane::OffloadDirection& direction, uint32_t version) {
  if (direction.srcIp.family != 4 || direction.dstIp.family != 4) {
    return false;
  }
  const bh_offload_key key = keyOf(direction);
  bh_offload_value value = {};
  std::memcpy(value.src_mac, direction.srcMac.bytes.data(), 6);
  std::memcpy(value.dst_mac, direction.dstMac.bytes.data(), 6);
  value.egress_tag = direction.egressTag;
  value.version = version;
  return bpf_map_update_elem(fd_, &key, &value, BPF_ANY) == 0;
}

bool OffloadMap::read(const dataplane::OffloadDirection& direction,
                      dataplane::OffloadCounts* counts) {
  return lookup(direction, counts, false);
}

bool OffloadMap::take(const dataplane::OffloadDirection& direction,
                      dataplane::OffloadCounts* counts) {
  return lookup(direction, counts, true);
}

bool OffloadMap::lookup(const dataplane::OffloadDirection& direction,
                        dataplane::OffloadCounts* counts, bool remove) {
  if (direction.srcIp.family != 4) {
    return false;
  }
  const bh_offload_key key = keyOf(direction);
  bh_offload_value value = {};
  // Hash maps take lookup-and-delete since Linux 5.14: one step, so the programs cannot count
  // a frame into the entry between our read and its removal.
  const int found = remove ? bpf_map_lookup_and_delete_elem(fd_, &key, &value)
                           : bpf_map_lookup_elem(fd_, &key, &value);
  if (found != 0) {
    return false;
  }
  counts->packets = value.packets;
  counts->bytes = value.bytes;
  counts->lastSeenNs = value.last_ns;
  return true;
}

size_t OffloadMap::removeTag(int mapFd, uint16_t tag) {
  std::vector<bh_offload_key> doomed;
  bh_offload_key key = {};
  bh_offload_key next = {};
  const bh_offload_key* previous = nullptr;
  while (bpf_map_get_next_key(mapFd, previous, &next) == 0) {
    bh_offload_value value = {};
    if (next.tag == tag ||
        (bpf_map_lookup_elem(mapFd, &next, &value) == 0 && value.egress_tag == tag)) {
      doomed.push_back(next);
    }
    key = next;
    previous = &key;
  }
  for (const auto& gone : doomed) {
    bpf_map_delete_elem(mapFd, &gone);
  }
  return doomed.size();
}

}  // namespace bulkhead::wire
