#pragma once

#include <cstdint>
#include <span>

#include "dpi/classification.h"
#include "rules/policy_snapshot.h"

namespace bulkhead::dpi {

// How nDPI 4.2 arrives at a protocol's name, as far as a policy may care. The Detector already
// keeps nDPI from guessing by port and address; what is left are dissectors that decide, or
// choose between names, by the port or address themselves. Established by reading nDPI 4.2's
// dissectors (lib/protocols/*.c) and proven by tests/dpi/steering_class_test.cc, which sends
// HTTP, TLS, SSH, DNS and opaque bytes to every default port nDPI knows.
enum class Evidence : uint8_t {
  Payload,           // the dissector reads protocol-specific bytes of the flow
  NamedByPort,       // the bytes prove `alias`; the port only picks the name (TLS on 993: IMAPS)
  DecidedByPort,     // the port decides, with at most lengths or a few bits besides
  DecidedByAddress,  // a built-in address range or an address-keyed cache decides
};

const char* toString(Evidence evidence);

enum class Transport : uint8_t { Any, Tcp, Udp };

struct EvidenceRule {
  uint16_t protocol;  // nDPI id
  Transport transport;
  Evidence evidence;
  uint16_t alias;   // NamedByPort: the protocol the bytes prove
  const char* how;  // for people: "UDP 123 and 3 bits of one byte"
};

// Every protocol that is not plain Payload, in id order.
std::span<const EvidenceRule> evidenceRules();

// The evidence behind `protocol` seen alone (not as a host-named part of a pair) on a flow of
// IANA protocol `ipProtocol` (0: any transport, the weakest rule wins). `alias` is set for
// NamedByPort.
Evidence evidenceFor(uint16_t protocol, uint8_t ipProtocol, uint16_t* alias = nullptr);

// True when nDPI 4.2 also names `protocol` from a host name (its host_match table): a rule
// naming a protocol that is decided by port still matches it as the app of TLS.<it>, HTTP.<it>.
bool namedByHost(uint16_t protocol);

// The part of nDPI's answer for a flow that inspection of the flow's own bytes established:
// what a policy matches. `found` is the Detector's (unguessed) result.
//  - bytes nDPI itself flags as malformed for the protocol it names: nothing;
//  - a confidence other than DPI: nothing (a DPI cache names a flow from an earlier flow's
//    addresses; only the master that this flow's bytes proved stays, e.g. TLS of TLS.<cached>);
//  - NamedByPort parts become the protocol their bytes prove (IMAPS -> TLS, MDNS -> DNS);
//  - a DecidedBy* part makes nothing of its pair: the same code path that named it put the other
//    part there too (STUN.GoogleHangoutDuo comes from a Google address, no STUN bytes);
//  - the app under a master that carries a name (HTTP Host, TLS/QUIC SNI, DNS query, SMTP
//    EHLO) came from that name: it stays, as trustworthy as the name (a client picks it);
//  - the app under STUN is chosen by address or a cache: STUN alone stays.
rules::AppProtocol inspectedProtocol(const rules::AppProtocol& found, Confidence confidence,
                                     bool malformed, uint8_t ipProtocol);

}  // namespace bulkhead::dpi
