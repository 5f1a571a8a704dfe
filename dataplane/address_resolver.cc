#include "dataplane/address_resolver.h"

namespace bulkhead::dataplane {

AddressResolver::AddressResolver(const std::vector<Endpoint>& endpoints,
                                 const std::vector<rules::IpAddress>& hostIps,
                                 const std::vector<MacAddress>& hostMacs) {
  for (uint32_t index = 0; index < endpoints.size(); ++index) {
    const ResolvedPeer peer{endpoints[index].identity, index};
    for (const auto& ip : endpoints[index].ips) {
      byIp_.emplace(ip, peer);
    }
    for (const auto& mac : endpoints[index].macs) {
      byMac_.emplace(mac, peer);
    }
  }
  const ResolvedPeer host{rules::reserved_identity::Host, UINT32_MAX};
  for (const auto& ip : hostIps) {
    byIp_.emplace(ip, host);
  }
  for (const auto& mac : hostMacs) {
    byMac_.emplace(mac, host);
  }
}

ResolvedPeer AddressResolver::lookup(const rules::IpAddress& ip, const MacAddress& mac) const {
  if (const auto found = byIp_.find(ip); found != byIp_.end()) {
    return found->second;
  }
  if (const auto found = byMac_.find(mac); found != byMac_.end()) {
    return found->second;
  }
  return {};
}

ResolvedFlow AddressResolver::resolve(const PacketMeta& meta, uint16_t) const {
  return {lookup(meta.srcIp, meta.srcMac), lookup(meta.dstIp, meta.dstMac)};
}

}  // namespace bulkhead::dataplane
