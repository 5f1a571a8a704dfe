#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/packet_meta.h"
#include "rules/identity.h"
#include "rules/labels.h"

namespace bulkhead::dataplane {

// A workload bulkhead protects: a container interface (live) or a named set of addresses
// (offline). Its identity comes from its labels; its addresses are only for anti-spoofing and,
// offline, for telling which endpoint sent a captured packet.
struct Endpoint {
  std::string name;
  rules::Labels labels;
  rules::IdentityId identity = rules::reserved_identity::Unknown;
  std::vector<MacAddress> macs;
  std::vector<rules::IpAddress> ips;
};

struct ResolvedPeer {
  rules::IdentityId identity = rules::reserved_identity::World;
  uint32_t endpoint = UINT32_MAX;  // index into the caller's endpoint list, or none
};

struct ResolvedFlow {
  ResolvedPeer src;
  ResolvedPeer dst;
};

// Tells the pipeline who is on each side of a new flow. Live, the source is the endpoint bound
// to the ingress port; offline, it is looked up by address. Called once per new flow.
class EndpointResolver {
 public:
  virtual ~EndpointResolver() = default;
  virtual ResolvedFlow resolve(const PacketMeta& meta, uint16_t ingressPort) const = 0;
};

}  // namespace bulkhead::dataplane
