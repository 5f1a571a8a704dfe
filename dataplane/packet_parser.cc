#include "dataplane/packet_parser.h"

#include <rte_mbuf.h>

#include <cstdio>
#include <cstring>

namespace bulkhead::dataplane {
namespace {

constexpr uint16_t EtherTypeIpv4 = 0x0800;
constexpr uint16_t EtherTypeIpv6 = 0x86DD;
constexpr uint16_t EtherTypeVlan = 0x8100;
constexpr uint16_t EtherTypeQinQ = 0x88A8;
constexpr uint16_t EtherTypePppoeSession = 0x8864;
constexpr uint16_t PppIpv4 = 0x0021;
constexpr uint16_t PppIpv6 = 0x0057;
constexpr size_t PppoeHeader = 8;  // PPPoE header (6) + PPP protocol (2)
constexpr size_t EthernetHeader = 14;
constexpr size_t VlanTag = 4;
constexpr int MaxVlanTags = 2;
constexpr int MaxIpv6ExtensionHeaders = 8;

uint16_t read16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t read32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The L4 header (if this datagram carries one) at `offset`, within an IP packet ending at `end`.
void parseL4(const uint8_t* data, uint32_t offset, uint32_t end, PacketMeta& meta) {
  meta.l4Offset = static_cast<uint16_t>(offset);
  const uint32_t available = end - offset;
  const uint8_t* l4 = data + offset;
  switch (meta.ipProtocol) {
    case ip_protocol::TCP: {
      if (available < 20) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      const uint32_t headerLength = (l4[12] >> 4) * 4u;
      if (headerLength < 20) {
        meta.status = ParseStatus::Malformed;
        return;
      }
      if (headerLength > available) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      meta.srcPort = read16(l4);
      meta.dstPort = read16(l4 + 2);
      meta.tcpFlags = l4[13];
      meta.payloadOffset = static_cast<uint16_t>(offset + headerLength);
      meta.payloadLength = static_cast<uint16_t>(available - headerLength);
      meta.hasL4 = true;
      return;
    }
    case ip_protocol::UDP:
    case ip_protocol::SCTP: {
      const uint32_t headerLength = meta.ipProtocol == ip_protocol::UDP ? 8 : 12;
      if (available < headerLength) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      meta.srcPort = read16(l4);
      meta.dstPort = read16(l4 + 2);
      meta.payloadOffset = static_cast<uint16_t>(offset + headerLength);
      meta.payloadLength = static_cast<uint16_t>(available - headerLength);
      meta.hasL4 = true;
      return;
    }
    case ip_protocol::ICMP:
    case ip_protocol::ICMPv6: {
      if (available < 4) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      meta.icmpType = l4[0];
      meta.icmpCode = l4[1];
      const bool echo = meta.ipProtocol == ip_protocol::ICMP
                            ? (meta.icmpType == 8 || meta.icmpType == 0)
                            : (meta.icmpType == 128 || meta.icmpType == 129);
      if (echo) {
        if (available < 8) {
          meta.status = ParseStatus::Truncated;
          return;
        }
        // Echo request and reply share the identifier: it keys both directions of a "flow".
        meta.srcPort = meta.dstPort = read16(l4 + 4);
      }
      meta.payloadOffset = static_cast<uint16_t>(offset + (available >= 8 ? 8 : available));
      meta.payloadLength = static_cast<uint16_t>(end - meta.payloadOffset);
      meta.hasL4 = true;
      return;
    }
    default:
      meta.payloadOffset = static_cast<uint16_t>(offset);
      meta.payloadLength = static_cast<uint16_t>(available);
      return;
  }
}

void parseIpv4(const uint8_t* data, uint32_t offset, uint32_t length, PacketMeta& meta) {
  if (length - offset < 20) {
    meta.status = ParseStatus::Truncated;
    return;
  }
  const uint8_t* ip = data + offset;
  if ((ip[0] >> 4) != 4) {
    meta.status = ParseStatus::Malformed;
    return;
  }
  const uint32_t headerLength = (ip[0] & 0x0F) * 4u;
  const uint32_t totalLength = read16(ip + 2);
  if (headerLength < 20 || totalLength < headerLength) {
    meta.status = ParseStatus::Malformed;
    return;
  }
  if (totalLength > length - offset) {
    meta.status = ParseStatus::Truncated;
    return;
  }
  meta.l3Length = static_cast<uint16_t>(totalLength);
  meta.ttl = ip[8];
  meta.ipProtocol = ip[9];
  meta.srcIp = rules::IpAddress::fromBytes(4, ip + 12);
  meta.dstIp = rules::IpAddress::fromBytes(4, ip + 16);
  const uint16_t fragmentField = read16(ip + 6);
  const uint16_t fragmentOffset = fragmentField & 0x1FFF;
  const bool moreFragments = (fragmentField & 0x2000) != 0;
  meta.fragment = moreFragments || fragmentOffset != 0;
  meta.firstFragment = meta.fragment && fragmentOffset == 0;
  meta.fragmentId = read16(ip + 4);
  meta.status = ParseStatus::Ok;
  if (meta.fragment && !meta.firstFragment) {
    return;  // no L4 header in a later fragment
  }
  parseL4(data, offset + headerLength, offset + totalLength, meta);
}

void parseIpv6(const uint8_t* data, uint32_t offset, uint32_t length, PacketMeta& meta) {
  if (length - offset < 40) {
    meta.status = ParseStatus::Truncated;
    return;
  }
  const uint8_t* ip = data + offset;
  if ((ip[0] >> 4) != 6) {
    meta.status = ParseStatus::Malformed;
    return;
  }
  const uint32_t payloadLength = read16(ip + 4);
  if (payloadLength > length - offset - 40) {
    meta.status = ParseStatus::Truncated;
    return;
  }
  const uint32_t end = offset + 40 + payloadLength;
  meta.l3Length = static_cast<uint16_t>(40 + payloadLength);
  meta.ttl = ip[7];
  meta.srcIp = rules::IpAddress::fromBytes(6, ip + 8);
  meta.dstIp = rules::IpAddress::fromBytes(6, ip + 24);
  uint8_t next = ip[6];
  uint32_t cursor = offset + 40;
  for (int headers = 0;; ++headers) {
    if (headers > MaxIpv6ExtensionHeaders) {
      meta.status = ParseStatus::Malformed;  // a chain this long is an evasion attempt
      return;
    }
    if (next == 0 || next == 43 || next == 60 || next == 51) {  // hop-by-hop, routing, dst, AH
      if (end - cursor < 8) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      const uint32_t extensionLength =
          next == 51 ? (data[cursor + 1] + 2u) * 4u : (data[cursor + 1] + 1u) * 8u;
      if (extensionLength > end - cursor) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      next = data[cursor];
      cursor += extensionLength;
      continue;
    }
    if (next == 44) {  // fragment
      if (end - cursor < 8) {
        meta.status = ParseStatus::Truncated;
        return;
      }
      const uint16_t field = read16(data + cursor + 2);
      meta.fragment = true;
      meta.firstFragment = (field & 0xFFF8) == 0;
      meta.fragmentId = read32(data + cursor + 4);
      next = data[cursor];
      cursor += 8;
      if (!meta.firstFragment) {
        meta.ipProtocol = next;
        meta.status = ParseStatus::Ok;
        return;
      }
      continue;
    }
    break;
  }
  meta.ipProtocol = next;
  meta.status = ParseStatus::Ok;
  if (next == 59) {  // no next header
    return;
  }
  parseL4(data, cursor, end, meta);
}

}  // namespace

bool MacAddress::parse(const std::string& text, MacAddress& out) {
  unsigned values[6];
  char extra = 0;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &values[0], &values[1], &values[2],
                  &values[3], &values[4], &values[5], &extra) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) {
    out.bytes[i] = static_cast<uint8_t>(values[i]);
  }
  return true;
}

std::string MacAddress::toString() const {
  char buffer[18];
  std::snprintf(buffer, sizeof(buffer), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1],
                bytes[2], bytes[3], bytes[4], bytes[5]);
  return buffer;
}

const char* toString(ParseStatus status) {
  switch (status) {
    case ParseStatus::Ok:
      return "ok";
    case ParseStatus::NotIp:
      return "not-ip";
    case ParseStatus::Truncated:
      return "truncated";
    case ParseStatus::Malformed:
      return "malformed";
  }
  return "?";
}

PacketMeta parsePacket(const uint8_t* data, uint32_t length) {
  PacketMeta meta;
  if (length > UINT16_MAX) {
    meta.status = ParseStatus::Malformed;  // larger than any frame an mbuf segment holds
    return meta;
  }
  if (length < EthernetHeader) {
    meta.status = ParseStatus::Truncated;
    return meta;
  }
  std::memcpy(meta.dstMac.bytes.data(), data, 6);
  std::memcpy(meta.srcMac.bytes.data(), data + 6, 6);
  uint32_t offset = 12;
  uint16_t etherType = read16(data + offset);
  offset += 2;
  for (int tags = 0; etherType == EtherTypeVlan || etherType == EtherTypeQinQ; ++tags) {
    if (tags == MaxVlanTags || length - offset < VlanTag) {
      meta.status = tags == MaxVlanTags ? ParseStatus::Malformed : ParseStatus::Truncated;
      return meta;
    }
    if (tags == 0) {
      meta.vlan = read16(data + offset) & 0x0FFF;
    }
    etherType = read16(data + offset + 2);
    offset += VlanTag;
  }
  if (etherType == EtherTypePppoeSession) {
    // Seen on access links and in real captures; IP inside is handled like any other.
    if (length - offset < PppoeHeader) {
      meta.status = ParseStatus::Truncated;
      return meta;
    }
    const uint16_t pppProtocol = read16(data + offset + 6);
    offset += PppoeHeader;
    etherType = pppProtocol == PppIpv4 ? EtherTypeIpv4
                : pppProtocol == PppIpv6 ? EtherTypeIpv6
                                         : EtherTypePppoeSession;
  }
  meta.etherType = etherType;
  meta.l3Offset = static_cast<uint16_t>(offset);
  if (etherType == EtherTypeIpv4) {
    parseIpv4(data, offset, length, meta);
  } else if (etherType == EtherTypeIpv6) {
    parseIpv6(data, offset, length, meta);
  } else {
    meta.status = ParseStatus::NotIp;
  }
  return meta;
}

PacketMeta parsePacket(const rte_mbuf* mbuf) {
  return parsePacket(rte_pktmbuf_mtod(mbuf, const uint8_t*), mbuf->data_len);
}

}  // namespace bulkhead::dataplane
