#include "dataplane/anti_spoofing.h"

#include <gtest/gtest.h>

#include "dataplane/packet_parser.h"
#include "tests/support/frames.h"

namespace bulkhead::dataplane {
namespace {

using testing::Bytes;

Attachment endpointAt(const char* ip) {
  Attachment attachment;
  attachment.tag = 7;
  attachment.macs = {testing::DefaultSrcMac};
  attachment.ips = {testing::ip(ip)};
  return attachment;
}

Bytes arpFrame(const char* senderIp, const MacAddress& senderMac = testing::DefaultSrcMac) {
  return testing::join({testing::ethernet(testing::EtherArp, {{testing::EtherVlan, 7}}),
                        testing::arpRequest(senderIp, "10.0.0.9", senderMac)});
}

TEST(AntiSpoofing, ArpMustCarryTheAttachmentsOwnAddresses) {
  const Attachment web = endpointAt("10.0.0.2");
  for (const auto& [frame, allowed] :
       {std::pair{arpFrame("10.0.0.2"), true}, std::pair{arpFrame("10.0.0.3"), false},
        std::pair{arpFrame("0.0.0.0"), true},  // an RFC 5227 probe
        std::pair{arpFrame("10.0.0.2", {{2, 0, 0, 0, 0, 0x66}}), false}}) {
    const PacketMeta meta = parsePacket(frame.data(), uint32_t(frame.size()));
    EXPECT_EQ(sourceAllowed(web, meta, frame.data(), frame.size()), allowed);
  }
}

TEST(AntiSpoofing, AShortArpFrameIsRefusedWithoutReadingPastItsEnd) {
  // The sender's addresses sit past the frame's end, in bytes that happen to be the
  // attachment's own: before, the check read them and let the frame through.
  const Attachment web = endpointAt("10.0.0.2");
  const Bytes whole = arpFrame("10.0.0.2");
  for (size_t length = 18; length < whole.size(); ++length) {
    const PacketMeta meta = parsePacket(whole.data(), uint32_t(length));
    if (meta.etherType != testing::EtherArp) {
      continue;
    }
    EXPECT_FALSE(sourceAllowed(web, meta, whole.data(), length)) << length;
  }
}

TEST(AntiSpoofing, IpSourcesAreTheAttachmentsOrLinkLocal) {
  const Attachment web = endpointAt("10.0.0.2");
  const auto check = [&](const Bytes& frame) {
    const PacketMeta meta = parsePacket(frame.data(), uint32_t(frame.size()));
    return sourceAllowed(web, meta, frame.data(), frame.size());
  };
  const auto v4 = [](const char* src) {
    return testing::join(
        {testing::ethernet(testing::EtherIpv4, {{testing::EtherVlan, 7}}),
         testing::ipv4({.src = src, .dst = "10.0.0.9", .protocol = 17}, testing::udp(1000, 53))});
  };
  EXPECT_TRUE(check(v4("10.0.0.2")));
  EXPECT_FALSE(check(v4("10.0.0.3")));
  const Bytes linkLocal =
      testing::join({testing::ethernet(testing::EtherIpv6, {{testing::EtherVlan, 7}}),
                     testing::ipv6(17, testing::udp(546, 547), "fe80::1", "ff02::1:2")});
  EXPECT_TRUE(check(linkLocal));
}

}  // namespace
}  // namespace bulkhead::dataplane
