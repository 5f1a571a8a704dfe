#include "dataplane/icmp_unreachable.h"

#include <algorithm>
#include <cstring>

#include "dataplane/inet_checksum.h"

namespace bulkhead::dataplane {
namespace {

bool isErrorMessage(const PacketMeta& meta) {
  if (meta.ipProtocol == ip_protocol::ICMP) {
    // Echo reply (0), echo request (8), timestamp (13, 14) and the like are queries; 3, 4, 5,
    // 11 and 12 are errors.
    return meta.icmpType == 3 || meta.icmpType == 4 || meta.icmpType == 5 || meta.icmpType == 11 ||
           meta.icmpType == 12;
  }
  if (meta.ipProtocol == ip_protocol::ICMPv6) {
    return meta.icmpType < 128;  // RFC 4443: 0..127 are errors
  }
  return false;
}

bool isGroupAddress(const rules::IpAddress& ip) {
  if (ip.family == 4) {
    return ip.bytes[0] >= 224 ||  // multicast, reserved, limited broadcast
           ip.bytes[0] == 0;
  }
  return ip.bytes[0] == 0xFF;
}

}  // namespace

size_t buildIcmpUnreachable(const uint8_t* frame, uint32_t length, const PacketMeta& meta,
                            uint8_t* out, size_t capacity) {
  if (meta.status != ParseStatus::Ok || isErrorMessage(meta) || isGroupAddress(meta.srcIp) ||
      isGroupAddress(meta.dstIp) || meta.dstMac.isMulticast() || meta.srcMac.isMulticast() ||
      (meta.fragment && !meta.firstFragment) || length <= meta.l3Offset) {
    return 0;
  }
  const bool v6 = meta.srcIp.family == 6;
  const size_t ipHeader = v6 ? 40 : 20;
  const size_t available = std::min<size_t>(length - meta.l3Offset, meta.l3Length);
  const size_t quoted = std::min(available, UnreachableQuote);
  const size_t total = meta.l3Offset + ipHeader + 8 + quoted;
  if (total > capacity) {
    return 0;
  }
  std::memset(out, 0, total);
  // L2: the original header (VLAN tags included), back to where the datagram came from.
  std::memcpy(out, frame, meta.l3Offset);
  std::memcpy(out, meta.srcMac.bytes.data(), 6);
  std::memcpy(out + 6, meta.dstMac.bytes.data(), 6);
  const size_t addressLength = v6 ? 16 : 4;
  const size_t icmpLength = 8 + quoted;
  uint8_t* ip = out + meta.l3Offset;
  uint8_t* icmp = ip + ipHeader;
  std::memcpy(icmp + 8, frame + meta.l3Offset, quoted);
  if (v6) {
    ip[0] = 0x60;
    writeBe16(ip + 4, static_cast<uint16_t>(icmpLength));
    ip[6] = ip_protocol::ICMPv6;
    ip[7] = 64;
    std::memcpy(ip + 8, meta.dstIp.bytes.data(), 16);
    std::memcpy(ip + 24, meta.srcIp.bytes.data(), 16);
    icmp[0] = 1;                                        // destination unreachable
    icmp[1] = 1;                                        // communication administratively prohibited
    uint32_t sum = inetSum(ip + 8, 2 * addressLength);  // pseudo-header: addresses,
    sum += static_cast<uint32_t>(icmpLength) + ip_protocol::ICMPv6;  // length, next header
    writeBe16(icmp + 2, inetFold(inetSum(icmp, icmpLength, sum)));
  } else {
    ip[0] = 0x45;
    writeBe16(ip + 2, static_cast<uint16_t>(ipHeader + icmpLength));
    ip[8] = 64;
    ip[9] = ip_protocol::ICMP;
    std::memcpy(ip + 12, meta.dstIp.bytes.data(), 4);
    std::memcpy(ip + 16, meta.srcIp.bytes.data(), 4);
    writeBe16(ip + 10, inetFold(inetSum(ip, ipHeader)));
    icmp[0] = 3;   // destination unreachable
    icmp[1] = 13;  // communication administratively prohibited (RFC 1812)
    writeBe16(icmp + 2, inetFold(inetSum(icmp, icmpLength)));
  }
  return total;
}

}  // namespace bulkhead::dataplane
