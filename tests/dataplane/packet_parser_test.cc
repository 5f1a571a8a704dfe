#include "dataplane/packet_parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/frames.h"

namespace bulkhead {
namespace {

using dataplane::PacketMeta;
using dataplane::parsePacket;
using dataplane::ParseStatus;
using testing::arpRequest;
using testing::Bytes;
using testing::DefaultDstMac;
using testing::DefaultSrcMac;
using testing::EtherArp;
using testing::EtherIpv4;
using testing::EtherIpv6;
using testing::ethernet;
using testing::EtherPppoeSession;
using testing::EtherQinQ;
using testing::EtherVlan;
using testing::icmpEcho;
using testing::ip;
using testing::ipv4;
using testing::ipv6;
using testing::ipv6Fragment;
using testing::ipv6Options;
using testing::join;
using testing::put16;
using testing::tcp;
using testing::text;
using testing::udp;
namespace ip_protocol = dataplane::ip_protocol;
namespace tcp_flags = dataplane::tcp_flags;

// A valid TCP/IPv4 frame with payload, used by several tests.
Bytes tcpIpv4Frame() {
  return join({ethernet(EtherIpv4), ipv4({}, tcp(40000, 80, tcp_flags::Psh | tcp_flags::Ack,
                                                 text("GET / HTTP/1.1\r\n")))});
}

Bytes udpIpv6Frame() {
  return join({ethernet(EtherIpv6), ipv6(ip_protocol::UDP, udp(5353, 53, text("abcdefgh")))});
}

// Parses a copy of `frame` held in a heap block of exactly its size, so that AddressSanitizer
// reports any read beyond it.
PacketMeta parseExact(const uint8_t* data, size_t length) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[length == 0 ? 1 : length]);
  if (length > 0) {
    std::memcpy(copy.get(), data, length);
  }
  // Zero length: a null pointer, so that reading even one byte would crash.
  return parsePacket(length == 0 ? nullptr : copy.get(), static_cast<uint32_t>(length));
}

PacketMeta parseExact(const Bytes& frame) {
  return parseExact(frame.data(), frame.size());
}

bool isKnownStatus(ParseStatus status) {
  return status == ParseStatus::Ok || status == ParseStatus::NotIp ||
         status == ParseStatus::Truncated || status == ParseStatus::Malformed;
}

// What must hold for any parse result of a `length`-byte frame.
void expectConsistent(const PacketMeta& meta, size_t length, const std::string& context) {
  ASSERT_TRUE(isKnownStatus(meta.status)) << context;
  if (meta.status != ParseStatus::Ok) {
    return;
  }
  EXPECT_LE(size_t{meta.l3Offset} + meta.l3Length, length) << context;
  if (meta.hasL4) {
    EXPECT_GE(meta.l4Offset, meta.l3Offset) << context;
    EXPECT_LE(meta.l4Offset, meta.payloadOffset) << context;
    EXPECT_EQ(size_t{meta.payloadOffset} + meta.payloadLength,
              size_t{meta.l3Offset} + meta.l3Length)
        << context;
    if (meta.ipProtocol == ip_protocol::TCP) {
      EXPECT_LE(size_t{meta.l4Offset} + 20, length) << context;
    } else if (meta.ipProtocol == ip_protocol::UDP) {
      EXPECT_LE(size_t{meta.l4Offset} + 8, length) << context;
    }
  }
}

// ---- Well-formed frames ----

TEST(PacketParser, TcpOverIpv4) {
  const Bytes payload = text("GET / HTTP/1.1\r\n");
  const Bytes frame =
      join({ethernet(EtherIpv4), ipv4({.src = "192.168.1.10", .dst = "10.1.2.3", .ttl = 17},
                                      tcp(40000, 443, tcp_flags::Psh | tcp_flags::Ack, payload))});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.dstMac, DefaultDstMac);
  EXPECT_EQ(meta.srcMac, DefaultSrcMac);
  EXPECT_EQ(meta.etherType, EtherIpv4);
  EXPECT_EQ(meta.vlan, 0);
  EXPECT_EQ(meta.srcIp, ip("192.168.1.10"));
  EXPECT_EQ(meta.dstIp, ip("10.1.2.3"));
  EXPECT_EQ(meta.srcIp.family, 4);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::TCP);
  EXPECT_EQ(meta.ttl, 17);
  EXPECT_FALSE(meta.fragment);
  EXPECT_TRUE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 40000);
  EXPECT_EQ(meta.dstPort, 443);
  EXPECT_EQ(meta.tcpFlags, tcp_flags::Psh | tcp_flags::Ack);
  EXPECT_EQ(meta.l3Offset, 14);
  EXPECT_EQ(meta.l3Length, 20 + 20 + payload.size());
  EXPECT_EQ(meta.l4Offset, 34);
  EXPECT_EQ(meta.payloadOffset, 54);
  EXPECT_EQ(meta.payloadLength, payload.size());
  EXPECT_EQ(0, std::memcmp(frame.data() + meta.payloadOffset, payload.data(), payload.size()));
}

TEST(PacketParser, TcpOptionsMoveThePayload) {
  const Bytes options{2, 4, 0x05, 0xB4, 1, 1, 4, 2};  // MSS, NOP, NOP, SACK permitted
  const Bytes frame = join({ethernet(EtherIpv4), ipv4({}, tcp(1, 2, tcp_flags::Syn, {}, options))});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.tcpFlags, tcp_flags::Syn);
  EXPECT_EQ(meta.l4Offset, 34);
  EXPECT_EQ(meta.payloadOffset, 34 + 28);
  EXPECT_EQ(meta.payloadLength, 0);
}

TEST(PacketParser, UdpOverIpv4) {
  const Bytes frame =
      join({ethernet(EtherIpv4), ipv4({.protocol = ip_protocol::UDP}, udp(5353, 53, text("q")))});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::UDP);
  EXPECT_TRUE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 5353);
  EXPECT_EQ(meta.dstPort, 53);
  EXPECT_EQ(meta.tcpFlags, 0);
  EXPECT_EQ(meta.l4Offset, 34);
  EXPECT_EQ(meta.payloadOffset, 42);
  EXPECT_EQ(meta.payloadLength, 1);
}

TEST(PacketParser, UdpOverIpv6) {
  const Bytes frame = udpIpv6Frame();
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.etherType, EtherIpv6);
  EXPECT_EQ(meta.srcIp, ip("2001:db8::1"));
  EXPECT_EQ(meta.dstIp, ip("2001:db8::2"));
  EXPECT_EQ(meta.srcIp.family, 6);
  EXPECT_EQ(meta.ttl, 63);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::UDP);
  EXPECT_EQ(meta.l3Offset, 14);
  EXPECT_EQ(meta.l3Length, 40 + 8 + 8);
  EXPECT_EQ(meta.l4Offset, 54);
  EXPECT_TRUE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 5353);
  EXPECT_EQ(meta.dstPort, 53);
  EXPECT_EQ(meta.payloadOffset, 62);
  EXPECT_EQ(meta.payloadLength, 8);
  EXPECT_FALSE(meta.fragment);
}

TEST(PacketParser, TcpOverIpv6) {
  const Bytes frame = join(
      {ethernet(EtherIpv6), ipv6(ip_protocol::TCP, tcp(50000, 22, tcp_flags::Syn | tcp_flags::Ack),
                                 "fe80::1", "fe80::2")});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.srcIp, ip("fe80::1"));
  EXPECT_EQ(meta.dstIp, ip("fe80::2"));
  EXPECT_EQ(meta.srcPort, 50000);
  EXPECT_EQ(meta.dstPort, 22);
  EXPECT_EQ(meta.tcpFlags, tcp_flags::Syn | tcp_flags::Ack);
  EXPECT_EQ(meta.payloadLength, 0);
}

TEST(PacketParser, SingleVlanTag) {
  const Bytes frame = join({ethernet(EtherIpv4, {{EtherVlan, 0x2000 | 42}}),  // PCP 1, VID 42
                            ipv4({.protocol = ip_protocol::UDP}, udp(1000, 2000))});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.vlan, 42);
  EXPECT_EQ(meta.etherType, EtherIpv4);
  EXPECT_EQ(meta.l3Offset, 18);
  EXPECT_EQ(meta.l4Offset, 38);
  EXPECT_EQ(meta.srcPort, 1000);
  EXPECT_EQ(meta.dstPort, 2000);
}

TEST(PacketParser, QinQKeepsTheOuterVlan) {
  const Bytes frame = join({ethernet(EtherIpv6, {{EtherQinQ, 100}, {EtherVlan, 200}}),
                            ipv6(ip_protocol::UDP, udp(1000, 2000))});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.vlan, 100);
  EXPECT_EQ(meta.etherType, EtherIpv6);
  EXPECT_EQ(meta.l3Offset, 22);
  EXPECT_EQ(meta.l4Offset, 62);
  EXPECT_EQ(meta.dstPort, 2000);
}

TEST(PacketParser, ThreeVlanTagsAreMalformed) {
  const Bytes frame =
      join({ethernet(EtherIpv4, {{EtherQinQ, 100}, {EtherVlan, 200}, {EtherVlan, 300}}),
            ipv4({.protocol = ip_protocol::UDP}, udp(1000, 2000))});
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Malformed);
}

TEST(PacketParser, TruncatedVlanTag) {
  Bytes frame = ethernet(EtherVlan);
  frame.push_back(0x00);  // half a tag
  frame.push_back(0x2A);
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Truncated);
}

TEST(PacketParser, PppoeSessionCarryingIpv4) {
  const Bytes inner = ipv4({.src = "100.64.0.1", .dst = "8.8.8.8", .protocol = ip_protocol::UDP},
                           udp(33000, 53, text("x")));
  Bytes pppoe{0x11, 0x00};  // version/type, code: session data
  put16(pppoe, 0x0BAD);     // session id
  put16(pppoe, static_cast<uint16_t>(inner.size() + 2));
  put16(pppoe, 0x0021);  // PPP: IPv4
  const Bytes frame = join({ethernet(EtherPppoeSession), pppoe, inner});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.etherType, EtherIpv4);
  EXPECT_EQ(meta.l3Offset, 22);
  EXPECT_EQ(meta.srcIp, ip("100.64.0.1"));
  EXPECT_EQ(meta.dstIp, ip("8.8.8.8"));
  EXPECT_EQ(meta.srcPort, 33000);
  EXPECT_EQ(meta.dstPort, 53);
  EXPECT_EQ(meta.l4Offset, 42);
}

TEST(PacketParser, PppoeSessionWithoutIpIsNotIp) {
  Bytes pppoe{0x11, 0x00, 0x00, 0x01, 0x00, 0x04};
  put16(pppoe, 0xC021);  // LCP
  pppoe.push_back(0x01);
  pppoe.push_back(0x01);
  const Bytes frame = join({ethernet(EtherPppoeSession), pppoe});
  EXPECT_EQ(parseExact(frame).status, ParseStatus::NotIp);
}

TEST(PacketParser, ArpIsNotIp) {
  const Bytes arp = arpRequest("10.0.0.1", "10.0.0.2");  // from DefaultSrcMac
  const PacketMeta meta = parseExact(join({ethernet(EtherArp), arp}));
  EXPECT_EQ(meta.status, ParseStatus::NotIp);
  EXPECT_EQ(meta.etherType, EtherArp);
  EXPECT_FALSE(meta.hasL4);
  EXPECT_EQ(meta.srcMac, DefaultSrcMac);
}

TEST(PacketParser, Ipv4WithOptions) {
  // IHL 6: one 4-byte option word (router alert) before TCP.
  const Bytes frame = join({ethernet(EtherIpv4), ipv4({.options = {0x94, 0x04, 0x00, 0x00}},
                                                      tcp(1234, 80, tcp_flags::Syn))});
  ASSERT_EQ(frame[14], 0x46);
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.l3Length, 24 + 20);
  EXPECT_EQ(meta.l4Offset, 14 + 24);
  EXPECT_EQ(meta.srcPort, 1234);
  EXPECT_EQ(meta.dstPort, 80);
  EXPECT_EQ(meta.tcpFlags, tcp_flags::Syn);
  EXPECT_EQ(meta.payloadOffset, 14 + 24 + 20);
}

TEST(PacketParser, Ipv4FirstFragmentCarriesPorts) {
  // MF set, offset 0: UDP header and the first 16 bytes of a longer datagram.
  Bytes firstPart = udp(4000, 5000, Bytes(16, 0xAB));
  firstPart[4] = 0;  // UDP length of the whole datagram (40 bytes), not of this fragment
  firstPart[5] = 40;
  const Bytes frame = join(
      {ethernet(EtherIpv4),
       ipv4({.protocol = ip_protocol::UDP, .id = 0xBEEF, .fragmentField = 0x2000}, firstPart)});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_TRUE(meta.fragment);
  EXPECT_TRUE(meta.firstFragment);
  EXPECT_EQ(meta.fragmentId, 0xBEEFu);
  EXPECT_TRUE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 4000);
  EXPECT_EQ(meta.dstPort, 5000);
}

TEST(PacketParser, Ipv4LaterFragmentHasNoPorts) {
  // Offset 24 bytes (3 units), last fragment: its first bytes are payload, not a header.
  const Bytes frame = join(
      {ethernet(EtherIpv4),
       ipv4({.protocol = ip_protocol::UDP, .id = 0xBEEF, .fragmentField = 3}, Bytes(16, 0xCD))});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_TRUE(meta.fragment);
  EXPECT_FALSE(meta.firstFragment);
  EXPECT_EQ(meta.fragmentId, 0xBEEFu);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::UDP);
  EXPECT_FALSE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 0);
  EXPECT_EQ(meta.dstPort, 0);
  EXPECT_EQ(meta.l3Length, 36);
}

TEST(PacketParser, Ipv4DontFragmentIsNotAFragment) {
  const PacketMeta meta = parseExact(tcpIpv4Frame());
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_FALSE(meta.fragment);
  EXPECT_FALSE(meta.firstFragment);
}

TEST(PacketParser, Ipv6HopByHopAndDestinationOptions) {
  const Bytes payload = join({ipv6Options(60, 0),                // hop-by-hop, 8 bytes
                              ipv6Options(ip_protocol::TCP, 1),  // destination options, 16 bytes
                              tcp(443, 51000, tcp_flags::Ack, text("hello"))});
  const Bytes frame = join({ethernet(EtherIpv6), ipv6(0, payload)});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::TCP);
  EXPECT_EQ(meta.l3Length, 40 + 8 + 16 + 20 + 5);
  EXPECT_EQ(meta.l4Offset, 14 + 40 + 8 + 16);
  EXPECT_TRUE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 443);
  EXPECT_EQ(meta.dstPort, 51000);
  EXPECT_EQ(meta.tcpFlags, tcp_flags::Ack);
  EXPECT_EQ(meta.payloadLength, 5);
}

TEST(PacketParser, Ipv6ExtensionHeaderBeyondPayloadIsTruncated) {
  // Destination options claiming 16 bytes when only 8 follow.
  const Bytes frame = join({ethernet(EtherIpv6), ipv6(60, ipv6Options(ip_protocol::UDP, 1))});
  Bytes shortened = frame;
  shortened.resize(frame.size() - 8);
  shortened[14 + 5] = 8;  // payload length: 8 bytes
  EXPECT_EQ(parseExact(shortened).status, ParseStatus::Truncated);
}

TEST(PacketParser, Ipv6LongExtensionChainIsMalformed) {
  Bytes chain;
  for (int i = 0; i < 12; ++i) {
    chain = join({chain, ipv6Options(i == 11 ? ip_protocol::UDP : 60, 0)});
  }
  const Bytes frame = join({ethernet(EtherIpv6), ipv6(60, join({chain, udp(1, 2)}))});
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Malformed);
}

TEST(PacketParser, Ipv6FirstFragment) {
  const Bytes payload =
      join({ipv6Fragment(ip_protocol::UDP, 0, true, 0xCAFEF00D), udp(7000, 8000, Bytes(24, 1))});
  const PacketMeta meta = parseExact(join({ethernet(EtherIpv6), ipv6(44, payload)}));
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_TRUE(meta.fragment);
  EXPECT_TRUE(meta.firstFragment);
  EXPECT_EQ(meta.fragmentId, 0xCAFEF00Du);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::UDP);
  EXPECT_TRUE(meta.hasL4);
  EXPECT_EQ(meta.l4Offset, 14 + 40 + 8);
  EXPECT_EQ(meta.srcPort, 7000);
  EXPECT_EQ(meta.dstPort, 8000);
}

TEST(PacketParser, Ipv6LaterFragment) {
  const Bytes payload = join({ipv6Fragment(ip_protocol::UDP, 32, false, 0xCAFEF00D), Bytes(24, 2)});
  const PacketMeta meta = parseExact(join({ethernet(EtherIpv6), ipv6(44, payload)}));
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_TRUE(meta.fragment);
  EXPECT_FALSE(meta.firstFragment);
  EXPECT_EQ(meta.fragmentId, 0xCAFEF00Du);
  EXPECT_EQ(meta.ipProtocol, ip_protocol::UDP);
  EXPECT_FALSE(meta.hasL4);
  EXPECT_EQ(meta.srcPort, 0);
  EXPECT_EQ(meta.dstPort, 0);
}

TEST(PacketParser, IcmpEchoIdentifierKeysBothPorts) {
  for (const uint8_t type : {uint8_t{8}, uint8_t{0}}) {  // request and reply
    const Bytes frame = join({ethernet(EtherIpv4), ipv4({.protocol = ip_protocol::ICMP},
                                                        icmpEcho(type, 0x4242, 7, Bytes(8, 0)))});
    const PacketMeta meta = parseExact(frame);
    ASSERT_EQ(meta.status, ParseStatus::Ok);
    EXPECT_EQ(meta.ipProtocol, ip_protocol::ICMP);
    EXPECT_TRUE(meta.hasL4);
    EXPECT_EQ(meta.icmpType, type);
    EXPECT_EQ(meta.icmpCode, 0);
    EXPECT_EQ(meta.srcPort, 0x4242);
    EXPECT_EQ(meta.dstPort, 0x4242);
    EXPECT_EQ(meta.payloadOffset, 34 + 8);
    EXPECT_EQ(meta.payloadLength, 8);
  }
}

TEST(PacketParser, IcmpErrorHasNoPorts) {
  const Bytes unreachable{3, 3, 0, 0, 0, 0, 0, 0};  // port unreachable
  const Bytes frame =
      join({ethernet(EtherIpv4), ipv4({.protocol = ip_protocol::ICMP}, unreachable)});
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.icmpType, 3);
  EXPECT_EQ(meta.icmpCode, 3);
  EXPECT_EQ(meta.srcPort, 0);
  EXPECT_EQ(meta.dstPort, 0);
}

TEST(PacketParser, IcmpEchoShorterThanItsIdentifierIsTruncated) {
  const Bytes frame =
      join({ethernet(EtherIpv4), ipv4({.protocol = ip_protocol::ICMP}, Bytes{8, 0, 0, 0, 0x42})});
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Truncated);
}

TEST(PacketParser, Icmpv6Echo) {
  for (const uint8_t type : {uint8_t{128}, uint8_t{129}}) {
    const Bytes frame = join(
        {ethernet(EtherIpv6), ipv6(ip_protocol::ICMPv6, icmpEcho(type, 0x0BB0, 1, text("ping")))});
    const PacketMeta meta = parseExact(frame);
    ASSERT_EQ(meta.status, ParseStatus::Ok);
    EXPECT_EQ(meta.ipProtocol, ip_protocol::ICMPv6);
    EXPECT_EQ(meta.icmpType, type);
    EXPECT_TRUE(meta.hasL4);
    EXPECT_EQ(meta.srcPort, 0x0BB0);
    EXPECT_EQ(meta.dstPort, 0x0BB0);
    EXPECT_EQ(meta.payloadLength, 4);
  }
}

TEST(PacketParser, EthernetPaddingIsExcludedFromL3Length) {
  Bytes frame = join({ethernet(EtherIpv4), ipv4({}, tcp(1, 2, tcp_flags::Ack))});
  ASSERT_EQ(frame.size(), 54u);
  frame.resize(60, 0xEE);  // minimum Ethernet frame, padded
  const PacketMeta meta = parseExact(frame);
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.l3Length, 40);
  EXPECT_EQ(meta.payloadOffset, 54);
  EXPECT_EQ(meta.payloadLength, 0);
}

TEST(PacketParser, StatusNames) {
  EXPECT_STREQ(dataplane::toString(ParseStatus::Ok), "ok");
  EXPECT_STREQ(dataplane::toString(ParseStatus::NotIp), "not-ip");
  EXPECT_STREQ(dataplane::toString(ParseStatus::Truncated), "truncated");
  EXPECT_STREQ(dataplane::toString(ParseStatus::Malformed), "malformed");
}

TEST(PacketParser, MacAddressText) {
  dataplane::MacAddress mac;
  ASSERT_TRUE(dataplane::MacAddress::parse("02:aB:00:10:ff:7e", mac));
  EXPECT_EQ(mac.toString(), "02:ab:00:10:ff:7e");
  EXPECT_FALSE(dataplane::MacAddress::parse("02:ab:00:10:ff", mac));
  EXPECT_FALSE(dataplane::MacAddress::parse("02:ab:00:10:ff:7e:01", mac));
}

// ---- Inconsistent or short headers ----

TEST(PacketParser, IhlBelowFiveIsMalformed) {
  Bytes frame = tcpIpv4Frame();
  frame[14] = 0x44;  // IHL 4: a 16-byte header cannot exist
  const PacketMeta meta = parseExact(frame);
  EXPECT_EQ(meta.status, ParseStatus::Malformed);
  EXPECT_FALSE(meta.hasL4);
}

TEST(PacketParser, TotalLengthBelowHeaderLengthIsMalformed) {
  Bytes frame = tcpIpv4Frame();
  frame[16] = 0;
  frame[17] = 19;  // shorter than the 20-byte header it sits in
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Malformed);
}

TEST(PacketParser, WrongIpVersionIsMalformed) {
  Bytes frame = tcpIpv4Frame();
  frame[14] = 0x65;
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Malformed);
  Bytes v6 = udpIpv6Frame();
  v6[14] = 0x40;
  EXPECT_EQ(parseExact(v6).status, ParseStatus::Malformed);
}

TEST(PacketParser, TcpDataOffsetBelowFiveIsMalformed) {
  Bytes frame = tcpIpv4Frame();
  frame[34 + 12] = 0x40;  // data offset 4
  const PacketMeta meta = parseExact(frame);
  EXPECT_EQ(meta.status, ParseStatus::Malformed);
  EXPECT_FALSE(meta.hasL4);
}

TEST(PacketParser, TcpDataOffsetBeyondPacketIsTruncated) {
  Bytes frame = join({ethernet(EtherIpv4), ipv4({}, tcp(1, 2, tcp_flags::Ack))});
  frame[34 + 12] = 0xF0;  // 60-byte header in a 20-byte segment
  const PacketMeta meta = parseExact(frame);
  EXPECT_EQ(meta.status, ParseStatus::Truncated);
  EXPECT_FALSE(meta.hasL4);
}

TEST(PacketParser, Ipv4TotalLengthBeyondFrameIsTruncated) {
  Bytes frame = tcpIpv4Frame();
  const uint16_t claimed = static_cast<uint16_t>(frame.size() - 14 + 1);
  frame[16] = static_cast<uint8_t>(claimed >> 8);
  frame[17] = static_cast<uint8_t>(claimed & 0xFF);
  const PacketMeta meta = parseExact(frame);
  EXPECT_EQ(meta.status, ParseStatus::Truncated);
  EXPECT_FALSE(meta.hasL4);
}

TEST(PacketParser, Ipv6PayloadLengthBeyondFrameIsTruncated) {
  Bytes frame = udpIpv6Frame();
  frame[14 + 5] = static_cast<uint8_t>(frame[14 + 5] + 1);
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Truncated);
}

TEST(PacketParser, IpHeaderClaimingTcpButTooShortForIt) {
  // A valid IPv4 header whose total length leaves 10 bytes for a 20-byte TCP header.
  const Bytes frame = join({ethernet(EtherIpv4), ipv4({}, Bytes(10, 0))});
  EXPECT_EQ(parseExact(frame).status, ParseStatus::Truncated);
}

TEST(PacketParser, OversizedLengthIsMalformed) {
  Bytes frame = tcpIpv4Frame();
  frame.resize(70000, 0);
  EXPECT_EQ(parsePacket(frame.data(), static_cast<uint32_t>(frame.size())).status,
            ParseStatus::Malformed);
}

// ---- Robustness ----

void expectEveryPrefixTruncated(const Bytes& frame, const char* what) {
  ASSERT_EQ(parseExact(frame).status, ParseStatus::Ok) << what;
  for (size_t length = 0; length < frame.size(); ++length) {
    const std::string context = std::string(what) + " cut at " + std::to_string(length);
    const PacketMeta meta = parseExact(frame.data(), length);
    // Every header of a valid frame is complete only at its full length: any shorter copy
    // misses bytes that a header claims.
    EXPECT_EQ(meta.status, ParseStatus::Truncated) << context;
    EXPECT_FALSE(meta.status == ParseStatus::Ok && meta.hasL4 &&
                 size_t{meta.payloadOffset} > length)
        << context;
    expectConsistent(meta, length, context);
  }
}

TEST(PacketParserRobustness, EveryPrefixOfTcpIpv4) {
  expectEveryPrefixTruncated(tcpIpv4Frame(), "TCP/IPv4");
}

TEST(PacketParserRobustness, EveryPrefixOfUdpIpv6) {
  expectEveryPrefixTruncated(udpIpv6Frame(), "UDP/IPv6");
}

TEST(PacketParserRobustness, EveryPrefixOfIpv6WithExtensionsAndVlan) {
  const Bytes payload = join({ipv6Options(44, 0), ipv6Fragment(ip_protocol::TCP, 0, true, 9),
                              tcp(1, 2, tcp_flags::Syn, text("x"))});
  expectEveryPrefixTruncated(join({ethernet(EtherIpv6, {{EtherVlan, 5}}), ipv6(0, payload)}),
                             "TCP/IPv6 with extension headers");
}

TEST(PacketParserRobustness, RandomFramesNeverCrash) {
  std::mt19937 random(20240611);  // fixed seed: the same frames on every run
  const Bytes templates[] = {
      tcpIpv4Frame(),
      udpIpv6Frame(),
      join({ethernet(EtherIpv4, {{EtherVlan, 7}}),
            ipv4({.protocol = ip_protocol::ICMP}, icmpEcho(8, 1, 1, Bytes(32, 0)))}),
      join({ethernet(EtherIpv6),
            ipv6(0, join({ipv6Options(44, 0), ipv6Fragment(ip_protocol::UDP, 0, true, 3),
                          udp(1, 2, Bytes(40, 0))}))}),
  };
  size_t statusCounts[4] = {};
  for (int iteration = 0; iteration < 20000; ++iteration) {
    const Bytes& base = templates[random() % std::size(templates)];
    const size_t length = random() % 201;
    Bytes frame(length);
    for (size_t i = 0; i < length; ++i) {
      frame[i] = i < base.size() ? base[i] : static_cast<uint8_t>(random());
    }
    // Keep the Ethernet header valid most of the time; scramble a few bytes past it.
    const int flips = static_cast<int>(random() % 6);
    for (int flip = 0; flip < flips && length > 14; ++flip) {
      frame[14 + random() % (length - 14)] = static_cast<uint8_t>(random());
    }
    const PacketMeta meta = parseExact(frame);
    const std::string context = "iteration " + std::to_string(iteration);
    expectConsistent(meta, length, context);
    if (::testing::Test::HasFailure()) {
      FAIL() << context;
    }
    ++statusCounts[static_cast<size_t>(meta.status)];
  }
  // The loop is only worth something if it reached the L4 parsers as well as the error paths.
  EXPECT_GT(statusCounts[static_cast<size_t>(ParseStatus::Ok)], 100u);
  EXPECT_GT(statusCounts[static_cast<size_t>(ParseStatus::Truncated)], 100u);
  EXPECT_GT(statusCounts[static_cast<size_t>(ParseStatus::Malformed)], 100u);
}

}  // namespace
}  // namespace bulkhead
