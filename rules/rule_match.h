#pragma once

#include <algorithm>
#include <string_view>

#include "rules/policy_snapshot.h"

namespace bulkhead::rules {

// The checks a compiled rule makes of a flow, one at a time: the snapshot's verdict asks them
// all (policy_snapshot.cc), the explanation of a denial asks which failed first
// (policy_explain.cc). Inline: the verdict lookup is on every new flow's path.

// Protocols whose flows the policy matches by destination port: TCP, UDP, SCTP.
inline bool hasPorts(uint8_t ipProtocol) {
  return ipProtocol == 6 || ipProtocol == 17 || ipProtocol == 132;
}

inline bool peerMatches(const PolicySnapshot::CompiledRule& rule, IdentityId peer,
                        const IpAddress& peerIp) {
  if (rule.anyPeer) {
    return true;
  }
  if (std::binary_search(rule.peers.begin(), rule.peers.end(), peer)) {
    return true;
  }
  // CIDRs describe the world outside the host; a container is selected by labels, never by the
  // address it happens to have -- except by AdminNetworkPolicy's networks, defined to match
  // every address.
  if (peer == reserved_identity::World || rule.cidrsMatchEndpoints) {
    for (const auto& cidr : rule.cidrs) {
      if (cidr.contains(peerIp)) {
        return true;
      }
    }
  }
  return false;
}

// `destination`: the flow's destination identity, whose labels give named ports their number.
inline bool portMatches(const PolicySnapshot::CompiledRule& rule, uint8_t ipProtocol, uint16_t port,
                        IdentityId destination) {
  if (rule.ports.empty()) {
    return true;
  }
  if (!rule.namedPorts.empty()) [[unlikely]] {
    const auto first = std::lower_bound(rule.namedPorts.begin(), rule.namedPorts.end(), destination,
                                        [](const PolicySnapshot::CompiledRule::NamedPort& named,
                                           IdentityId id) { return named.destination < id; });
    for (auto it = first; it != rule.namedPorts.end() && it->destination == destination; ++it) {
      if (it->protocol == ipProtocol && it->port == port) {
        return true;
      }
    }
  }
  for (const auto& entry : rule.ports) {
    if (!entry.name.empty()) {
      continue;  // resolved into namedPorts
    }
    const bool protocolOk =
        entry.protocol == L4Protocol::Any || static_cast<uint8_t>(entry.protocol) == ipProtocol;
    if (!protocolOk) {
      continue;
    }
    const bool anyPort = entry.first == 0 && entry.last == 65535;
    if (anyPort || (hasPorts(ipProtocol) && port >= entry.first && port <= entry.last)) {
      return true;
    }
  }
  return false;
}

inline bool protocolMatches(const PolicySnapshot::CompiledRule& rule, const AppProtocol& app) {
  return rule.protocols.empty() ||
         std::binary_search(rule.protocols.begin(), rule.protocols.end(), app.master) ||
         std::binary_search(rule.protocols.begin(), rule.protocols.end(), app.app);
}

inline bool hostMatches(const PolicySnapshot::CompiledRule& rule, std::string_view host) {
  return rule.hosts.empty() ||
         std::any_of(rule.hosts.begin(), rule.hosts.end(),
                     [&](const HostPattern& pattern) { return pattern.matches(host); });
}

}  // namespace bulkhead::rules
