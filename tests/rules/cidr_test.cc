#include "rules/cidr.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>

namespace bulkhead {
namespace {

using rules::Cidr;
using rules::IpAddress;

IpAddress ip(const char* text) {
  const auto parsed = IpAddress::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(IpAddress{});
}

Cidr cidr(const char* text) {
  std::string error;
  const auto parsed = Cidr::parse(text, &error);
  EXPECT_TRUE(parsed.has_value()) << text << ": " << error;
  return parsed.value_or(Cidr{});
}

std::string parseError(const char* text) {
  std::string error;
  const auto parsed = Cidr::parse(text, &error);
  EXPECT_FALSE(parsed.has_value()) << text << " parsed as " << parsed->toString();
  return error;
}

TEST(IpAddressTest, ParsesIpv4IntoFirstFourBytesInNetworkOrder) {
  const auto address = IpAddress::parse("10.1.2.3");
  ASSERT_TRUE(address.has_value());
  EXPECT_EQ(address->family, 4);
  EXPECT_EQ(address->bytes[0], 10);
  EXPECT_EQ(address->bytes[1], 1);
  EXPECT_EQ(address->bytes[2], 2);
  EXPECT_EQ(address->bytes[3], 3);
  for (size_t i = 4; i < address->bytes.size(); ++i) {
    EXPECT_EQ(address->bytes[i], 0) << "byte " << i;
  }
  EXPECT_EQ(address->toString(), "10.1.2.3");
}

TEST(IpAddressTest, V4FromHostOrderEqualsParsedAddress) {
  EXPECT_EQ(IpAddress::v4(0x0A010203), ip("10.1.2.3"));
  EXPECT_EQ(IpAddress::v4(0xC0A80001).toString(), "192.168.0.1");
}

TEST(IpAddressTest, FromBytesCopiesOnlyTheFamilyLength) {
  std::array<uint8_t, 16> data;
  data.fill(0xFF);
  data[0] = 192;
  data[1] = 0;
  data[2] = 2;
  data[3] = 7;
  const IpAddress v4 = IpAddress::fromBytes(4, data.data());
  EXPECT_EQ(v4, ip("192.0.2.7"));
  const IpAddress v6 = IpAddress::fromBytes(6, data.data());
  EXPECT_EQ(v6.family, 6);
  EXPECT_EQ(v6.toString(), "c000:207:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST(IpAddressTest, ParsesIpv6AndPrintsCanonicalForm) {
  const auto address = IpAddress::parse("2001:0DB8:0000:0000:0000:0000:0000:0001");
  ASSERT_TRUE(address.has_value());
  EXPECT_EQ(address->family, 6);
  EXPECT_EQ(address->bytes[0], 0x20);
  EXPECT_EQ(address->bytes[1], 0x01);
  EXPECT_EQ(address->bytes[15], 0x01);
  EXPECT_EQ(address->toString(), "2001:db8::1");
  EXPECT_EQ(ip("::").toString(), "::");
  EXPECT_EQ(ip("::ffff:10.0.0.1").family, 6);
}

TEST(IpAddressTest, RejectsMalformedText) {
  for (const char* text : {"", "10.0.0", "10.0.0.256", "10.0.0.1.2", " 10.0.0.1", "10.0.0.1 ",
                           "2001:db8:::1", "2001:db8::g", "host.local", "10.0.0.0/8"}) {
    EXPECT_FALSE(IpAddress::parse(text).has_value()) << "'" << text << "'";
  }
}

TEST(IpAddressTest, DefaultAddressHasNoFamilyAndPrintsEmpty) {
  const IpAddress none;
  EXPECT_EQ(none.family, 0);
  EXPECT_EQ(none.toString(), "");
  EXPECT_NE(none, ip("0.0.0.0"));
}

TEST(CidrTest, ParsesIpv4Prefix) {
  const Cidr prefix = cidr("10.0.0.0/8");
  EXPECT_EQ(prefix.prefixLength(), 8);
  EXPECT_EQ(prefix.network(), ip("10.0.0.0"));
  EXPECT_EQ(prefix.toString(), "10.0.0.0/8");
}

TEST(CidrTest, ParsesIpv6Prefix) {
  const Cidr prefix = cidr("2001:DB8::/32");
  EXPECT_EQ(prefix.prefixLength(), 32);
  EXPECT_EQ(prefix.toString(), "2001:db8::/32");
}

TEST(CidrTest, BareAddressIsFullLengthPrefix) {
  EXPECT_EQ(cidr("192.0.2.1").toString(), "192.0.2.1/32");
  EXPECT_EQ(cidr("2001:db8::5").toString(), "2001:db8::5/128");
}

TEST(CidrTest, HostBitsBelowThePrefixAreCleared) {
  EXPECT_EQ(cidr("10.1.2.3/8").toString(), "10.0.0.0/8");
  EXPECT_EQ(cidr("192.168.255.255/20").toString(), "192.168.240.0/20");
  EXPECT_EQ(cidr("2001:db8:ffff::1/33").toString(), "2001:db8:8000::/33");
  EXPECT_EQ(cidr("255.255.255.255/0").toString(), "0.0.0.0/0");
}

TEST(CidrTest, RejectsPrefixLongerThanTheFamily) {
  EXPECT_EQ(parseError("10.0.0.0/33"), "prefix length in '10.0.0.0/33' must be 0..32");
  EXPECT_EQ(parseError("2001:db8::/129"), "prefix length in '2001:db8::/129' must be 0..128");
}

TEST(CidrTest, RejectsMalformedPrefixLength) {
  EXPECT_EQ(parseError("10.0.0.0/"), "prefix length in '10.0.0.0/' must be 0..32");
  EXPECT_EQ(parseError("10.0.0.0/-1"), "prefix length in '10.0.0.0/-1' must be 0..32");
  EXPECT_EQ(parseError("10.0.0.0/8x"), "prefix length in '10.0.0.0/8x' must be 0..32");
  EXPECT_EQ(parseError("10.0.0.0/8/9"), "prefix length in '10.0.0.0/8/9' must be 0..32");
  EXPECT_EQ(parseError("10.0.0.0/ 8"), "prefix length in '10.0.0.0/ 8' must be 0..32");
}

TEST(CidrTest, RejectsBadAddress) {
  EXPECT_EQ(parseError("10.0.0/8"), "'10.0.0/8' is not an IPv4 or IPv6 address or prefix");
  EXPECT_EQ(parseError("300.0.0.0/8"), "'300.0.0.0/8' is not an IPv4 or IPv6 address or prefix");
  EXPECT_EQ(parseError("/8"), "'/8' is not an IPv4 or IPv6 address or prefix");
  EXPECT_EQ(parseError(""), "'' is not an IPv4 or IPv6 address or prefix");
  EXPECT_EQ(parseError("example.com/24"),
            "'example.com/24' is not an IPv4 or IPv6 address or prefix");
}

TEST(CidrTest, Ipv4ContainsIsInclusiveAtBothEnds) {
  const Cidr prefix = cidr("192.168.1.0/24");
  EXPECT_TRUE(prefix.contains(ip("192.168.1.0")));
  EXPECT_TRUE(prefix.contains(ip("192.168.1.255")));
  EXPECT_FALSE(prefix.contains(ip("192.168.0.255")));
  EXPECT_FALSE(prefix.contains(ip("192.168.2.0")));
}

TEST(CidrTest, NonByteAlignedIpv4Prefix) {
  const Cidr prefix = cidr("10.0.0.16/28");  // 10.0.0.16 - 10.0.0.31
  EXPECT_FALSE(prefix.contains(ip("10.0.0.15")));
  EXPECT_TRUE(prefix.contains(ip("10.0.0.16")));
  EXPECT_TRUE(prefix.contains(ip("10.0.0.31")));
  EXPECT_FALSE(prefix.contains(ip("10.0.0.32")));

  const Cidr wide = cidr("172.16.0.0/12");  // 172.16.0.0 - 172.31.255.255
  EXPECT_FALSE(wide.contains(ip("172.15.255.255")));
  EXPECT_TRUE(wide.contains(ip("172.16.0.0")));
  EXPECT_TRUE(wide.contains(ip("172.31.255.255")));
  EXPECT_FALSE(wide.contains(ip("172.32.0.0")));

  const Cidr one = cidr("128.0.0.0/1");
  EXPECT_TRUE(one.contains(ip("255.255.255.255")));
  EXPECT_FALSE(one.contains(ip("127.255.255.255")));
}

TEST(CidrTest, FullLengthPrefixContainsOnlyThatAddress) {
  const Cidr host = cidr("10.0.0.1/32");
  EXPECT_TRUE(host.contains(ip("10.0.0.1")));
  EXPECT_FALSE(host.contains(ip("10.0.0.0")));
  EXPECT_FALSE(host.contains(ip("10.0.0.2")));

  const Cidr host6 = cidr("2001:db8::1/128");
  EXPECT_TRUE(host6.contains(ip("2001:db8::1")));
  EXPECT_FALSE(host6.contains(ip("2001:db8::")));
  EXPECT_FALSE(host6.contains(ip("2001:db8::2")));
}

TEST(CidrTest, ZeroLengthPrefixContainsEveryAddressOfItsFamily) {
  const Cidr all4 = cidr("0.0.0.0/0");
  EXPECT_TRUE(all4.contains(ip("0.0.0.0")));
  EXPECT_TRUE(all4.contains(ip("255.255.255.255")));
  EXPECT_TRUE(all4.contains(ip("10.1.2.3")));
  EXPECT_FALSE(all4.contains(ip("::1")));

  const Cidr all6 = cidr("::/0");
  EXPECT_TRUE(all6.contains(ip("::")));
  EXPECT_TRUE(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(all6.contains(ip("10.1.2.3")));
}

TEST(CidrTest, Ipv6ContainsAtPrefixEdges) {
  const Cidr prefix = cidr("2001:db8::/32");
  EXPECT_TRUE(prefix.contains(ip("2001:db8::")));
  EXPECT_TRUE(prefix.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(prefix.contains(ip("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(prefix.contains(ip("2001:db9::")));
}

TEST(CidrTest, NonByteAlignedIpv6Prefix) {
  const Cidr prefix = cidr("fd00::/7");  // fc00:: - fdff:...
  EXPECT_TRUE(prefix.contains(ip("fc00::1")));
  EXPECT_TRUE(prefix.contains(ip("fdff:ffff::1")));
  EXPECT_FALSE(prefix.contains(ip("fe00::")));
  EXPECT_FALSE(prefix.contains(ip("fbff:ffff::1")));

  const Cidr odd = cidr("2001:db8:8000::/33");
  EXPECT_TRUE(odd.contains(ip("2001:db8:8000::")));
  EXPECT_TRUE(odd.contains(ip("2001:db8:ffff:ffff::")));
  EXPECT_FALSE(odd.contains(ip("2001:db8:7fff:ffff::")));
}

TEST(CidrTest, NeverContainsAnAddressOfTheOtherFamily) {
  // An IPv4 address and an IPv6 prefix can share their leading bytes; family decides.
  EXPECT_FALSE(cidr("10.0.0.0/8").contains(ip("a00::1")));
  EXPECT_FALSE(cidr("a00::/8").contains(ip("10.0.0.1")));
  EXPECT_FALSE(cidr("::ffff:10.0.0.0/104").contains(ip("10.0.0.1")));
  EXPECT_FALSE(cidr("0.0.0.0/0").contains(IpAddress{}));
}

TEST(CidrTest, ContainsAfterNormalisingHostBits) {
  const Cidr prefix = cidr("10.0.0.200/25");
  EXPECT_EQ(prefix.network(), ip("10.0.0.128"));
  EXPECT_TRUE(prefix.contains(ip("10.0.0.128")));
  EXPECT_TRUE(prefix.contains(ip("10.0.0.255")));
  EXPECT_FALSE(prefix.contains(ip("10.0.0.127")));
}

}  // namespace
}  // namespace bulkhead
