#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "rules/cidr.h"

namespace bulkhead::dataplane {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  static bool parse(const std::string& text, MacAddress& out);
  std::string toString() const;
  bool isMulticast() const { return (bytes[0] & 1) != 0; }
  bool operator==(const MacAddress&) const = default;
  auto operator<=>(const MacAddress&) const = default;
};

enum class ParseStatus : uint8_t {
  Ok,         // IPv4/IPv6 parsed as far as its headers go
  NotIp,      // a valid frame that is not IP (ARP, LLDP, ...): etherType says which
  Truncated,  // a header claims more bytes than the frame has
  Malformed,  // a header is inconsistent (bad version, IHL, lengths, extension chain)
};

const char* toString(ParseStatus status);

// Everything the pipeline needs from a frame's headers. Offsets are from the frame's first byte;
// nothing here points into the frame, so it stays valid after the mbuf is gone.
struct PacketMeta {
  ParseStatus status = ParseStatus::Malformed;
  MacAddress dstMac;
  MacAddress srcMac;
  uint16_t etherType = 0;  // after any 802.1Q/802.1ad tags
  uint16_t vlan = 0;       // outermost VLAN id, 0 when untagged

  uint16_t l3Offset = 0;
  uint16_t l3Length = 0;  // the IP packet's own length (Ethernet padding excluded)
  rules::IpAddress srcIp;
  rules::IpAddress dstIp;
  uint8_t ipProtocol = 0;  // upper-layer protocol after IPv6 extension headers
  uint8_t ttl = 0;

  bool fragment = false;       // part of a fragmented datagram
  bool firstFragment = false;  // offset 0: carries the L4 header
  uint32_t fragmentId = 0;

  bool hasL4 = false;  // ports/flags below are valid
  uint16_t l4Offset = 0;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  uint8_t tcpFlags = 0;
  uint8_t icmpType = 0;
  uint8_t icmpCode = 0;
  uint16_t payloadOffset = 0;
  uint16_t payloadLength = 0;
};

namespace tcp_flags {
inline constexpr uint8_t Fin = 0x01;
inline constexpr uint8_t Syn = 0x02;
inline constexpr uint8_t Rst = 0x04;
inline constexpr uint8_t Psh = 0x08;
inline constexpr uint8_t Ack = 0x10;
}  // namespace tcp_flags

namespace ip_protocol {
inline constexpr uint8_t ICMP = 1;
inline constexpr uint8_t TCP = 6;
inline constexpr uint8_t UDP = 17;
inline constexpr uint8_t ICMPv6 = 58;
inline constexpr uint8_t SCTP = 132;
}  // namespace ip_protocol

}  // namespace bulkhead::dataplane
