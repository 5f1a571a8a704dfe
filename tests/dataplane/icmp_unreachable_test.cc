// The ICMP unreachable a rejected packet's sender gets: parsed back as the fast path would see
// it, its checksums recomputed here from the bytes.
#include "dataplane/icmp_unreachable.h"

#include <gtest/gtest.h>

#include "dataplane/packet_parser.h"
#include "tests/support/frames.h"

namespace bulkhead {
namespace {

using dataplane::ParseStatus;
using testing::Bytes;

// The one's complement sum of `length` bytes from `data`, plus `start`: 0xFFFF when a
// checksum inside them is right.
uint16_t onesSum(const uint8_t* data, size_t length, uint32_t start = 0) {
  uint32_t sum = start;
  for (size_t i = 0; i < length; i += 2) {
    sum += (uint32_t{data[i]} << 8) | (i + 1 < length ? data[i + 1] : 0);
  }
  while (sum >> 16) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

Bytes build(const Bytes& frame) {
  const dataplane::PacketMeta meta = dataplane::parsePacket(frame.data(), frame.size());
  EXPECT_EQ(meta.status, ParseStatus::Ok);
  Bytes out(dataplane::MaxUnreachableFrame);
  const size_t length = dataplane::buildIcmpUnreachable(
      frame.data(), static_cast<uint32_t>(frame.size()), meta, out.data(), out.size());
  out.resize(length);
  return out;
}

TEST(IcmpUnreachable, TellsAnIpv4SenderAFilterRefusedItsDatagram) {
  // Tagged as on the trunk, with a payload longer than the quote.
  const Bytes frame = testing::join(
      {testing::ethernet(testing::EtherIpv4, {{testing::EtherVlan, 17}}),
       testing::ipv4(
           {.src = "10.1.0.5", .dst = "10.1.0.9", .protocol = dataplane::ip_protocol::UDP},
           testing::udp(40000, 53, Bytes(100, 0xAB)))});
  const Bytes answer = build(frame);
  ASSERT_FALSE(answer.empty());
  const auto meta = dataplane::parsePacket(answer.data(), answer.size());
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.vlan, 17) << "the tag is kept: the worker retags it for the sender";
  EXPECT_EQ(meta.dstMac, testing::DefaultSrcMac);
  EXPECT_EQ(meta.srcMac, testing::DefaultDstMac);
  EXPECT_EQ(meta.srcIp, testing::ip("10.1.0.9"));
  EXPECT_EQ(meta.dstIp, testing::ip("10.1.0.5"));
  EXPECT_EQ(meta.ipProtocol, dataplane::ip_protocol::ICMP);
  EXPECT_EQ(meta.icmpType, 3);
  EXPECT_EQ(meta.icmpCode, 13);
  const uint8_t* ip = answer.data() + meta.l3Offset;
  EXPECT_EQ(onesSum(ip, 20), 0xFFFF) << "IPv4 header checksum";
  const size_t icmpLength = answer.size() - meta.l3Offset - 20;
  EXPECT_EQ(icmpLength, 8 + dataplane::UnreachableQuote);
  EXPECT_EQ(onesSum(ip + 20, icmpLength), 0xFFFF) << "ICMP checksum";
  // The quote: the refused datagram from its IP header on, its ports included.
  const size_t l3 = 18;
  EXPECT_TRUE(std::equal(ip + 28, ip + 28 + dataplane::UnreachableQuote, frame.begin() + l3));
}

TEST(IcmpUnreachable, TellsAnIpv6SenderWithTheChecksumOverItsPseudoHeader) {
  const Bytes frame = testing::join(
      {testing::ethernet(testing::EtherIpv6),
       testing::ipv6(dataplane::ip_protocol::UDP, testing::udp(40000, 5353, Bytes(8, 1)),
                     "2001:db8::5", "2001:db8::9")});
  const Bytes answer = build(frame);
  ASSERT_FALSE(answer.empty());
  const auto meta = dataplane::parsePacket(answer.data(), answer.size());
  ASSERT_EQ(meta.status, ParseStatus::Ok);
  EXPECT_EQ(meta.ipProtocol, dataplane::ip_protocol::ICMPv6);
  EXPECT_EQ(meta.icmpType, 1);
  EXPECT_EQ(meta.icmpCode, 1);
  EXPECT_EQ(meta.srcIp, testing::ip("2001:db8::9"));
  EXPECT_EQ(meta.dstIp, testing::ip("2001:db8::5"));
  const uint8_t* ip = answer.data() + meta.l3Offset;
  const size_t icmpLength = answer.size() - meta.l3Offset - 40;
  EXPECT_EQ(icmpLength, 8 + (40 + 16u)) << "the whole short datagram is quoted";
  // Pseudo-header: both addresses, the length, the next header.
  uint32_t pseudo = onesSum(ip + 8, 32);
  pseudo += static_cast<uint32_t>(icmpLength) + dataplane::ip_protocol::ICMPv6;
  EXPECT_EQ(onesSum(ip + 40, icmpLength, pseudo), 0xFFFF) << "ICMPv6 checksum";
}

// RFC 1122 3.2.2 and RFC 4443 2.4 (e): never an error about an error, about a group address, or
// about a fragment that is not the first.
TEST(IcmpUnreachable, NeverAnswersAnErrorAGroupAddressOrALaterFragment) {
  const Bytes error =
      testing::ipv4Frame({.protocol = dataplane::ip_protocol::ICMP},
                         testing::join({Bytes{3, 3, 0, 0, 0, 0, 0, 0}, Bytes(28, 0)}));
  EXPECT_TRUE(build(error).empty());
  const Bytes multicast = testing::ipv4Frame(
      {.dst = "239.1.1.1", .protocol = dataplane::ip_protocol::UDP}, testing::udp(5000, 5000));
  EXPECT_TRUE(build(multicast).empty());
  const Bytes broadcast = testing::ipv4Frame(
      {.dst = "255.255.255.255", .protocol = dataplane::ip_protocol::UDP}, testing::udp(68, 67));
  EXPECT_TRUE(build(broadcast).empty());
  const Bytes laterFragment = testing::ipv4Frame(
      {.protocol = dataplane::ip_protocol::UDP, .fragmentField = 0x0010}, Bytes(64, 0));
  EXPECT_TRUE(build(laterFragment).empty());
  // An echo request is a query, not an error: it may be answered.
  const Bytes echo =
      testing::ipv4Frame({.protocol = dataplane::ip_protocol::ICMP}, testing::icmpEcho(8, 1, 1));
  EXPECT_FALSE(build(echo).empty());
}

}  // namespace
}  // namespace bulkhead
