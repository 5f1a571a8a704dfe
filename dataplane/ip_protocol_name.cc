#include "dataplane/ip_protocol_name.h"

#include "dataplane/packet_meta.h"

namespace bulkhead::dataplane {

std::string ipProtocolName(uint8_t ipProtocol) {
  switch (ipProtocol) {
    case ip_protocol::TCP:
      return "TCP";
    case ip_protocol::UDP:
      return "UDP";
    case ip_protocol::ICMP:
      return "ICMP";
    case ip_protocol::ICMPv6:
      return "ICMPv6";
    case ip_protocol::SCTP:
      return "SCTP";
    default:
      return std::to_string(ipProtocol);
  }
}

}  // namespace bulkhead::dataplane
