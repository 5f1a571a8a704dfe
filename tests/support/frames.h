#pragma once

// Builds Ethernet, ARP, IPv4, IPv6, TCP, UDP and ICMP frames for tests, every header written byte
// by byte with its lengths (and the IPv4 header checksum) computed, so that parser, pipeline and
// DPI tests feed the code exactly the bytes a wire would carry.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "dataplane/packet_meta.h"
#include "rules/cidr.h"

namespace bulkhead::testing {

using Bytes = std::vector<uint8_t>;

inline constexpr uint16_t EtherIpv4 = 0x0800;
inline constexpr uint16_t EtherIpv6 = 0x86DD;
inline constexpr uint16_t EtherArp = 0x0806;
inline constexpr uint16_t EtherVlan = 0x8100;
inline constexpr uint16_t EtherQinQ = 0x88A8;
inline constexpr uint16_t EtherPppoeSession = 0x8864;

// The addresses ethernet() writes unless told otherwise.
inline const dataplane::MacAddress DefaultDstMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
inline const dataplane::MacAddress DefaultSrcMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

// ---- Bytes ----

inline void put16(Bytes& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value & 0xFF));
}

inline void put32(Bytes& out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value >> 16));
  put16(out, static_cast<uint16_t>(value & 0xFFFF));
}

inline Bytes join(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts) {
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

inline Bytes text(std::string_view value) {
  return Bytes(value.begin(), value.end());
}

// Parses an IPv4 or IPv6 address, failing the test (and returning no address) if it is not one.
inline rules::IpAddress ip(const char* textual) {
  const auto parsed = rules::IpAddress::parse(textual);
  EXPECT_TRUE(parsed.has_value()) << textual;
  return parsed.value_or(rules::IpAddress{});
}

// ---- Link layer ----

// An 802.1Q/802.1ad tag.
struct Tag {
  uint16_t tpid;
  uint16_t tci;
};

// An Ethernet header, with `tags` between the addresses and `etherType`.
inline Bytes ethernet(uint16_t etherType, std::initializer_list<Tag> tags = {},
                      const dataplane::MacAddress& dst = DefaultDstMac,
                      const dataplane::MacAddress& src = DefaultSrcMac) {
  Bytes out(dst.bytes.begin(), dst.bytes.end());
  out.insert(out.end(), src.bytes.begin(), src.bytes.end());
  for (const Tag& tag : tags) {
    put16(out, tag.tpid);
    put16(out, tag.tci);
  }
  put16(out, etherType);
  return out;
}

// An ARP request (Ethernet/IPv4) from `senderIp` asking for `targetIp`.
inline Bytes arpRequest(const char* senderIp, const char* targetIp,
                        const dataplane::MacAddress& senderMac = DefaultSrcMac) {
  Bytes out;
  put16(out, 1);          // hardware: Ethernet
  put16(out, EtherIpv4);  // protocol: IPv4
  out.push_back(6);
  out.push_back(4);
  put16(out, 1);  // request
  const auto sender = ip(senderIp);
  const auto target = ip(targetIp);
  out.insert(out.end(), senderMac.bytes.begin(), senderMac.bytes.end());
  out.insert(out.end(), sender.bytes.begin(), sender.bytes.begin() + 4);
  out.insert(out.end(), 6, 0);  // target hardware address: unknown
  out.insert(out.end(), target.bytes.begin(), target.bytes.begin() + 4);
  return out;
}

// ---- IP ----

struct Ipv4Header {
  const char* src = "10.0.0.1";
  const char* dst = "10.0.0.2";
  uint8_t protocol = dataplane::ip_protocol::TCP;
  uint16_t id = 0x1234;
  uint16_t fragmentField = 0x4000;  // flags and offset: DF, offset 0
  uint8_t ttl = 64;
  Bytes options;  // a multiple of 4 bytes
};

// An IPv4 packet, from the IP header on, with a valid header checksum.
inline Bytes ipv4(const Ipv4Header& header, const Bytes& payload) {
  Bytes out;
  const size_t headerLength = 20 + header.options.size();
  out.push_back(static_cast<uint8_t>(0x40 | (headerLength / 4)));
  out.push_back(0);
  put16(out, static_cast<uint16_t>(headerLength + payload.size()));
  put16(out, header.id);
  put16(out, header.fragmentField);
  out.push_back(header.ttl);
  out.push_back(header.protocol);
  put16(out, 0);  // checksum, filled below
  const auto src = ip(header.src);
  const auto dst = ip(header.dst);
  out.insert(out.end(), src.bytes.begin(), src.bytes.begin() + 4);
  out.insert(out.end(), dst.bytes.begin(), dst.bytes.begin() + 4);
  out.insert(out.end(), header.options.begin(), header.options.end());
  uint32_t sum = 0;
  for (size_t i = 0; i < headerLength; i += 2) {
    sum += static_cast<uint32_t>((out[i] << 8) | out[i + 1]);
  }
  while (sum > 0xFFFF) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  const auto checksum = static_cast<uint16_t>(~sum);
  out[10] = static_cast<uint8_t>(checksum >> 8);
  out[11] = static_cast<uint8_t>(checksum & 0xFF);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// An Ethernet frame (untagged, default addresses) carrying an IPv4 packet.
inline Bytes ipv4Frame(const Ipv4Header& header, const Bytes& payload) {
  return join({ethernet(EtherIpv4), ipv4(header, payload)});
}

// An IPv6 packet. `nextHeader` is the first header after the fixed one; any extension headers
// are part of `payload`.
inline Bytes ipv6(uint8_t nextHeader, const Bytes& payload, const char* src = "2001:db8::1",
                  const char* dst = "2001:db8::2", uint8_t hopLimit = 63) {
  Bytes out;
  put32(out, 0x60000000);
  put16(out, static_cast<uint16_t>(payload.size()));
  out.push_back(nextHeader);
  out.push_back(hopLimit);
  const auto source = ip(src);
  const auto destination = ip(dst);
  out.insert(out.end(), source.bytes.begin(), source.bytes.end());
  out.insert(out.end(), destination.bytes.begin(), destination.bytes.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// An IPv6 hop-by-hop or destination-options header: `next`, length in 8-octet units beyond the
// first 8, padded with PadN.
inline Bytes ipv6Options(uint8_t next, uint8_t extraUnits) {
  Bytes out{next, extraUnits};
  const size_t total = (extraUnits + 1u) * 8u;
  out.push_back(1);  // PadN
  out.push_back(static_cast<uint8_t>(total - 4));
  out.resize(total, 0);
  return out;
}

inline Bytes ipv6Fragment(uint8_t next, uint16_t offsetBytes, bool more, uint32_t id) {
  Bytes out{next, 0};
  put16(out, static_cast<uint16_t>(((offsetBytes / 8) << 3) | (more ? 1 : 0)));
  put32(out, id);
  return out;
}

// ---- Transport ----

// A TCP segment. The acknowledgement number is written only when `flags` has ACK; the checksum
// is left zero.
inline Bytes tcp(uint16_t srcPort, uint16_t dstPort, uint8_t flags, const Bytes& payload = {},
                 const Bytes& options = {}, uint32_t seq = 1000, uint32_t ack = 2000,
                 uint16_t window = 65535) {
  Bytes out;
  put16(out, srcPort);
  put16(out, dstPort);
  put32(out, seq);
  put32(out, (flags & dataplane::tcp_flags::Ack) ? ack : 0);
  out.push_back(static_cast<uint8_t>(((20 + options.size()) / 4) << 4));
  out.push_back(flags);
  put16(out, window);
  put16(out, 0);  // checksum
  put16(out, 0);  // urgent pointer
  out.insert(out.end(), options.begin(), options.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// A UDP header whose length field counts `payloadLength` bytes after it (checksum zero).
inline Bytes udpHeader(uint16_t srcPort, uint16_t dstPort, size_t payloadLength) {
  Bytes out;
  put16(out, srcPort);
  put16(out, dstPort);
  put16(out, static_cast<uint16_t>(8 + payloadLength));
  put16(out, 0);
  return out;
}

inline Bytes udp(uint16_t srcPort, uint16_t dstPort, const Bytes& payload = {}) {
  Bytes out = udpHeader(srcPort, dstPort, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// An SCTP packet holding one INIT chunk, as a client's association starts (checksum zero).
inline Bytes sctpInit(uint16_t srcPort, uint16_t dstPort, uint32_t initiateTag = 0x1234abcd) {
  Bytes out;
  put16(out, srcPort);
  put16(out, dstPort);
  put32(out, 0);     // verification tag: 0 in an INIT
  put32(out, 0);     // CRC32c checksum
  out.push_back(1);  // chunk type INIT
  out.push_back(0);
  put16(out, 20);
  put32(out, initiateTag);
  put32(out, 65536);  // advertised receiver window
  put16(out, 10);     // outbound streams
  put16(out, 10);     // inbound streams
  put32(out, 1);      // initial TSN
  return out;
}

// An ICMP or ICMPv6 echo request or reply (checksum zero).
inline Bytes icmpEcho(uint8_t type, uint16_t id, uint16_t sequence, const Bytes& payload = {}) {
  Bytes out{type, 0};
  put16(out, 0);
  put16(out, id);
  put16(out, sequence);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// ---- Conversations ----

// What a builder puts in front of the IP packet: an Ethernet header, or nothing (for code fed
// from the IP header on, such as the DPI detector).
enum class Framing { Ethernet, IpOnly };

// Both sides of a TCP/IPv4 connection with consistent sequence numbers, as nDPI tracks them.
class TcpSession {
 public:
  TcpSession(const char* client, uint16_t clientPort, const char* server, uint16_t serverPort,
             Framing framing = Framing::Ethernet)
      : client_(client),
        server_(server),
        clientPort_(clientPort),
        serverPort_(serverPort),
        framing_(framing) {}

  Bytes syn() { return segment(true, Syn, {}); }
  Bytes synAck() { return segment(false, Syn | Ack, {}); }
  Bytes ack() { return segment(true, Ack, {}); }
  Bytes serverAck() { return segment(false, Ack, {}); }
  Bytes fromClient(std::string_view payload) { return segment(true, Psh | Ack, payload); }
  Bytes fromServer(std::string_view payload) { return segment(false, Psh | Ack, payload); }
  Bytes clientFin() { return segment(true, Fin | Ack, {}); }
  Bytes serverFin() { return segment(false, Fin | Ack, {}); }

 private:
  static constexpr uint8_t Fin = dataplane::tcp_flags::Fin;
  static constexpr uint8_t Syn = dataplane::tcp_flags::Syn;
  static constexpr uint8_t Psh = dataplane::tcp_flags::Psh;
  static constexpr uint8_t Ack = dataplane::tcp_flags::Ack;

  Bytes segment(bool fromClient, uint8_t flags, std::string_view payload) {
    uint32_t& seq = fromClient ? clientSeq_ : serverSeq_;
    const uint32_t acknowledged = fromClient ? serverSeq_ : clientSeq_;
    const Bytes l4 =
        tcp(fromClient ? clientPort_ : serverPort_, fromClient ? serverPort_ : clientPort_, flags,
            text(payload), {}, seq, acknowledged, 64240);
    seq += static_cast<uint32_t>(payload.size()) + ((flags & (Syn | Fin)) ? 1 : 0);
    const Bytes packet = ipv4({.src = fromClient ? client_ : server_,
                               .dst = fromClient ? server_ : client_,
                               .protocol = dataplane::ip_protocol::TCP,
                               .id = 1},
                              l4);
    return framing_ == Framing::Ethernet ? join({ethernet(EtherIpv4), packet}) : packet;
  }

  const char* client_;
  const char* server_;
  uint16_t clientPort_;
  uint16_t serverPort_;
  Framing framing_;
  uint32_t clientSeq_ = 0x10000000;
  uint32_t serverSeq_ = 0x20000000;
};

}  // namespace bulkhead::testing
