#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "rules/policy_snapshot.h"

namespace bulkhead::dpi {

// How nDPI reached its answer; mirrors ndpi_confidence_t without exposing nDPI's headers.
enum class Confidence : uint8_t { Unknown, MatchByPort, MatchByIp, DpiCache, Dpi };

const char* toString(Confidence confidence);

inline constexpr size_t MaxHostLength = 79;  // nDPI 4.2 keeps host_server_name[80]

// The outcome of detection for one flow, kept in the flow entry after nDPI's state is freed.
struct Classification {
  // nDPI's names for what its dissectors found, without its port and address guesses (see
  // Detector): reported as nDPI spells them ("IMAPS", "HTTP.Google").
  rules::AppProtocol protocol;
  // The part of `protocol` the flow's own bytes proved (dpi/protocol_evidence.h): all a policy
  // matches. A client that picks a port or a server cannot pick this.
  rules::AppProtocol inspected;
  Confidence confidence = Confidence::Unknown;
  uint16_t packets = 0;  // of the flow nDPI had seen when it decided (or gave up)
  // nDPI named the flow but flagged its bytes as not fitting the protocol (its risk
  // MALFORMED_PACKET): random bytes sent to TCP port 53 come out as "DNS" that way.
  bool malformed = false;
  std::array<char, MaxHostLength + 1> host{};  // NUL-terminated; HTTP Host, TLS SNI, DNS name

  std::string_view hostName() const { return host.data(); }
  const rules::AppProtocol& policyProtocol() const { return inspected; }
};

}  // namespace bulkhead::dpi
