#pragma once

#include <cstdint>
#include <string>

namespace bulkhead::dataplane {

// The name operators know an IP protocol by ("TCP", "ICMPv6", ...), or its IANA number as text
// for the ones bulkhead has no name for. Shared by flow reports and the violation log so the two
// always spell a protocol the same way.
std::string ipProtocolName(uint8_t ipProtocol);

}  // namespace bulkhead::dataplane
