#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "rules/labels.h"
#include "rules/policy_snapshot.h"

namespace bulkhead::learning {

// One side of an observed flow, as a policy can name it: an endpoint by its identity's labels
// (never by its address, which the next start changes), the host, or the world.
struct EdgePeer {
  enum class Kind : uint8_t { Endpoint, Host, World };
  Kind kind = Kind::World;
  rules::Labels labels;  // Endpoint: the labels its identity has
  // A world destination that named no host: its address ("198.51.100.7"), the only thing a rule
  // could allow it by. Empty otherwise: a world peer with a host name is that name, whatever
  // address served it, and a world source is any client.
  std::string address;

  auto operator<=>(const EdgePeer&) const = default;
};

// What tells two observed edges apart: who talked to whom, on which port, in which protocol.
// Flows with the same key are one edge with counts.
struct EdgeKey {
  EdgePeer src;  // the initiator
  EdgePeer dst;
  uint8_t ipProtocol = 0;  // IANA: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP, ...
  uint16_t port = 0;       // the responder's; 0 where the protocol has none
  // What inspection of the flow's bytes proved, as bulkhead names it (rules::protocolLabel):
  // "HTTP", "TLS.YouTube", "Unknown". Never nDPI's guess from the port.
  std::string protocol = "Unknown";
  std::string host;  // HTTP Host, TLS SNI or DNS query name, lower case; empty: none

  auto operator<=>(const EdgeKey&) const = default;
};

// What was seen of an edge's flows.
struct EdgeStats {
  uint64_t flows = 0;
  uint64_t allowed = 0;
  uint64_t denied = 0;     // of them, denied by an enforce-mode policy: dropped
  uint64_t monitored = 0;  // denied by monitor-mode policies only: passed and reported
  uint64_t packets = 0;    // both directions, as far as the verdict (see FlowObservation)
  uint64_t bytes = 0;
  uint64_t firstSeenNs = 0;  // CLOCK_REALTIME
  uint64_t lastSeenNs = 0;
  std::string lastRule;  // the rule that decided the last flow ("web/egress/0", "default-deny")
  // The last flow's addresses: what a report shows, and what lets the edge be judged again by
  // address rules (toCIDR) although the key keeps no address.
  std::string srcAddress;
  std::string dstAddress;
};

struct ObservedEdge {
  EdgeKey key;
  EdgeStats stats;
};

// One flow as it was judged: what EdgeStore::record adds to its edge.
struct FlowObservation {
  EdgeKey key;
  rules::Decision decision = rules::Decision::Allow;
  bool enforced = true;  // for Deny: dropped (else passed in monitor mode)
  std::string rule;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t timeNs = 0;
  std::string srcAddress;
  std::string dstAddress;
};

}  // namespace bulkhead::learning
