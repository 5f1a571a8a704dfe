#pragma once

#include <map>
#include <vector>

#include "dataplane/endpoint.h"

namespace bulkhead::dataplane {

// Resolves both sides of a flow by address, for captures (which have no ingress ports): an IP
// an endpoint owns, else a MAC it owns, else the host's addresses, else the world.
class AddressResolver final : public EndpointResolver {
 public:
  AddressResolver(const std::vector<Endpoint>& endpoints, const std::vector<rules::IpAddress>& hostIps,
                  const std::vector<MacAddress>& hostMacs);

  ResolvedFlow resolve(const PacketMeta& meta, uint16_t ingressPort) const override;

 private:
  ResolvedPeer lookup(const rules::IpAddress& ip, const MacAddress& mac) const;

  std::map<rules::IpAddress, ResolvedPeer> byIp_;
  std::map<MacAddress, ResolvedPeer> byMac_;
};

}  // namespace bulkhead::dataplane
