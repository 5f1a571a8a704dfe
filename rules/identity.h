#pragma once

#include <cstdint>
#include <vector>

#include "rules/labels.h"

namespace bulkhead::rules {

// A numeric security identity: every endpoint with the same label set shares one. Packets carry
// identities (derived from the port they entered on), never IP addresses, into policy lookups.
using IdentityId = uint32_t;

namespace reserved_identity {
inline constexpr IdentityId Unknown = 0;
inline constexpr IdentityId Host = 1;   // the container host itself
inline constexpr IdentityId World = 2;  // any address no endpoint claims
inline constexpr IdentityId FirstEndpoint = 256;
}  // namespace reserved_identity

struct Identity {
  IdentityId id = reserved_identity::Unknown;
  Labels labels;
  // Only other hosts' endpoints have it (docs/multihost.md): here it is a peer that rules
  // select, never a subject -- the policies selecting it are its own host's to enforce.
  bool remote = false;
};

using IdentityList = std::vector<Identity>;

}  // namespace bulkhead::rules
