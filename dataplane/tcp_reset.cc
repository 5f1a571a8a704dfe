#include "dataplane/tcp_reset.h"

#include <cstring>

#include "dataplane/inet_checksum.h"

namespace bulkhead::dataplane {
namespace {

constexpr size_t TcpHeader = 20;

uint32_t read32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void write32(uint8_t* p, uint32_t v) {
  writeBe16(p, static_cast<uint16_t>(v >> 16));
  writeBe16(p + 2, static_cast<uint16_t>(v));
}

// One RST segment from (srcIp:srcPort, srcMac) to (dstIp:dstPort, dstMac).
size_t build(const uint8_t* frame, const PacketMeta& meta, bool reverse, uint32_t seq,
             uint32_t ack, uint8_t* out, size_t capacity) {
  const bool v6 = meta.srcIp.family == 6;
  const size_t ipHeader = v6 ? 40 : 20;
  const size_t length = meta.l3Offset + ipHeader + TcpHeader;
  if (length > capacity) {
    return 0;
  }
  std::memset(out, 0, length);
  // L2: the original header (VLAN tags included) with MACs swapped when going back.
  std::memcpy(out, frame, meta.l3Offset);
  const MacAddress& dstMac = reverse ? meta.srcMac : meta.dstMac;
  const MacAddress& srcMac = reverse ? meta.dstMac : meta.srcMac;
  std::memcpy(out, dstMac.bytes.data(), 6);
  std::memcpy(out + 6, srcMac.bytes.data(), 6);
  const rules::IpAddress& srcIp = reverse ? meta.dstIp : meta.srcIp;
  const rules::IpAddress& dstIp = reverse ? meta.srcIp : meta.dstIp;
  const size_t addressLength = v6 ? 16 : 4;

  uint8_t* ip = out + meta.l3Offset;
  if (v6) {
    ip[0] = 0x60;
    writeBe16(ip + 4, TcpHeader);
    ip[6] = ip_protocol::TCP;
    ip[7] = 64;
    std::memcpy(ip + 8, srcIp.bytes.data(), 16);
    std::memcpy(ip + 24, dstIp.bytes.data(), 16);
  } else {
    ip[0] = 0x45;
    writeBe16(ip + 2, static_cast<uint16_t>(20 + TcpHeader));
    writeBe16(ip + 6, 0x4000);  // don't fragment
    ip[8] = 64;
    ip[9] = ip_protocol::TCP;
    std::memcpy(ip + 12, srcIp.bytes.data(), 4);
    std::memcpy(ip + 16, dstIp.bytes.data(), 4);
    writeBe16(ip + 10, inetFold(inetSum(ip, 20)));
  }

  uint8_t* tcp = ip + ipHeader;
  writeBe16(tcp, reverse ? meta.dstPort : meta.srcPort);
  writeBe16(tcp + 2, reverse ? meta.srcPort : meta.dstPort);
  write32(tcp + 4, seq);
  write32(tcp + 8, ack);
  tcp[12] = 5 << 4;
  tcp[13] = tcp_flags::Rst | tcp_flags::Ack;
  // Pseudo-header: addresses, protocol, TCP length.
  uint32_t total = inetSum(srcIp.bytes.data(), addressLength);
  total = inetSum(dstIp.bytes.data(), addressLength, total);
  total += ip_protocol::TCP + TcpHeader;
  writeBe16(tcp + 16, inetFold(inetSum(tcp, TcpHeader, total)));
  return length;
}

}  // namespace

size_t buildTcpReset(const uint8_t* frame, const PacketMeta& meta, bool toSender, uint8_t* out,
                     size_t capacity) {
  if (meta.ipProtocol != ip_protocol::TCP || !meta.hasL4) {
    return 0;
  }
  const uint8_t* tcp = frame + meta.l4Offset;
  const uint32_t seq = read32(tcp + 4);
  const uint32_t ack = read32(tcp + 8);
  const uint8_t flags = tcp[13];
  // RFC 5961: a RST is taken only at exactly the next expected sequence number. The sender
  // expects what it acknowledged; the receiver never got this (dropped) segment, so it still
  // expects this segment's own sequence number.
  uint32_t next = seq + meta.payloadLength;
  next += (flags & tcp_flags::Syn) ? 1 : 0;
  next += (flags & tcp_flags::Fin) ? 1 : 0;
  if (toSender) {
    return build(frame, meta, true, (flags & tcp_flags::Ack) ? ack : 0, next, out, capacity);
  }
  return build(frame, meta, false, seq, ack, out, capacity);
}

}  // namespace bulkhead::dataplane
