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
  rules::AppProtocol protocol;
  Confidence confidence = Confidence::Unknown;
  std::array<char, MaxHostLength + 1> host{};  // NUL-terminated; HTTP Host, TLS SNI, DNS name

  std::string_view hostName() const { return host.data(); }
  // Only real inspection counts for policy: a guess from the port number or address would let a
  // client pick the protocol a policy sees by picking the port.
  rules::AppProtocol policyProtocol() const {
    return confidence == Confidence::Dpi || confidence == Confidence::DpiCache
               ? protocol
               : rules::AppProtocol{};
  }
};

}  // namespace bulkhead::dpi
