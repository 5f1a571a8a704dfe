#include "dataplane/fragment_tracker.h"

#include <gtest/gtest.h>

namespace bulkhead {
namespace {

using dataplane::FlowKey;
using dataplane::FragmentTracker;
using dataplane::PacketMeta;
namespace ip_protocol = dataplane::ip_protocol;

constexpr uint64_t Second = 1000000000ull;

rules::IpAddress ip(const char* text) {
  const auto parsed = rules::IpAddress::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(rules::IpAddress{});
}

// The metadata of an IPv4 fragment (first or later) of datagram `id`.
PacketMeta fragment(const char* src, const char* dst, uint32_t id, bool first,
                    uint8_t protocol = ip_protocol::UDP) {
  PacketMeta meta;
  meta.status = dataplane::ParseStatus::Ok;
  meta.srcIp = ip(src);
  meta.dstIp = ip(dst);
  meta.ipProtocol = protocol;
  meta.fragment = true;
  meta.firstFragment = first;
  meta.fragmentId = id;
  if (first) {
    meta.hasL4 = true;
    meta.srcPort = 4000;
    meta.dstPort = 5000;
  }
  return meta;
}

FlowKey keyOf(const PacketMeta& meta) {
  bool reversed = false;
  return dataplane::makeFlowKey(meta, reversed);
}

TEST(FragmentTracker, LaterFragmentFindsTheFirstFragmentsFlow) {
  FragmentTracker tracker;
  const PacketMeta first = fragment("10.0.0.1", "10.0.0.2", 77, true);
  const FlowKey flow = keyOf(first);
  tracker.remember(first, flow, 100 * Second);
  const FlowKey* found = tracker.find(fragment("10.0.0.1", "10.0.0.2", 77, false), 101 * Second);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, flow);
  EXPECT_EQ(found->portA, 4000);
  EXPECT_EQ(found->portB, 5000);
}

TEST(FragmentTracker, UnknownDatagramIsNotFound) {
  FragmentTracker tracker;
  EXPECT_EQ(tracker.find(fragment("10.0.0.1", "10.0.0.2", 77, false), Second), nullptr);
}

TEST(FragmentTracker, MismatchedIdAddressesOrProtocolAreNotFound) {
  FragmentTracker tracker;
  const PacketMeta first = fragment("10.0.0.1", "10.0.0.2", 77, true);
  tracker.remember(first, keyOf(first), Second);
  EXPECT_EQ(tracker.find(fragment("10.0.0.1", "10.0.0.2", 78, false), Second), nullptr);
  EXPECT_EQ(tracker.find(fragment("10.0.0.9", "10.0.0.2", 77, false), Second), nullptr);
  EXPECT_EQ(tracker.find(fragment("10.0.0.1", "10.0.0.9", 77, false), Second), nullptr);
  // The same datagram id in the other direction is a different datagram.
  EXPECT_EQ(tracker.find(fragment("10.0.0.2", "10.0.0.1", 77, false), Second), nullptr);
  EXPECT_EQ(tracker.find(fragment("10.0.0.1", "10.0.0.2", 77, false, ip_protocol::TCP), Second),
            nullptr);
  EXPECT_NE(tracker.find(fragment("10.0.0.1", "10.0.0.2", 77, false), Second), nullptr);
}

TEST(FragmentTracker, Ipv6Datagrams) {
  FragmentTracker tracker;
  const PacketMeta first = fragment("2001:db8::1", "2001:db8::2", 0xCAFEF00D, true);
  tracker.remember(first, keyOf(first), Second);
  const FlowKey* found =
      tracker.find(fragment("2001:db8::1", "2001:db8::2", 0xCAFEF00D, false), 2 * Second);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, keyOf(first));
  EXPECT_EQ(tracker.find(fragment("2001:db8::1", "2001:db8::3", 0xCAFEF00D, false), 2 * Second),
            nullptr);
}

TEST(FragmentTracker, ForgetsAfterTheReassemblyTimeout) {
  FragmentTracker tracker;
  const PacketMeta first = fragment("10.0.0.1", "10.0.0.2", 5, true);
  const uint64_t seen = 1000 * Second;
  tracker.remember(first, keyOf(first), seen);
  const PacketMeta later = fragment("10.0.0.1", "10.0.0.2", 5, false);
  EXPECT_NE(tracker.find(later, seen), nullptr);
  EXPECT_NE(tracker.find(later, seen + 30 * Second), nullptr);  // exactly 30 s: still valid
  EXPECT_EQ(tracker.find(later, seen + 30 * Second + 1), nullptr);
  EXPECT_EQ(tracker.find(later, seen + 3600 * Second), nullptr);
}

TEST(FragmentTracker, RememberingAgainRefreshesTheTimeout) {
  FragmentTracker tracker;
  const PacketMeta first = fragment("10.0.0.1", "10.0.0.2", 5, true);
  tracker.remember(first, keyOf(first), 0);
  tracker.remember(first, keyOf(first), 20 * Second);
  EXPECT_NE(tracker.find(fragment("10.0.0.1", "10.0.0.2", 5, false), 45 * Second), nullptr);
}

TEST(FragmentTracker, NewerDatagramInTheSameSlotReplacesTheOlder) {
  FragmentTracker tracker(1);  // one slot: every datagram collides
  const PacketMeta a = fragment("10.0.0.1", "10.0.0.2", 1, true);
  const PacketMeta b = fragment("10.0.0.3", "10.0.0.4", 2, true);
  tracker.remember(a, keyOf(a), Second);
  tracker.remember(b, keyOf(b), Second);
  EXPECT_EQ(tracker.find(fragment("10.0.0.1", "10.0.0.2", 1, false), Second), nullptr);
  const FlowKey* found = tracker.find(fragment("10.0.0.3", "10.0.0.4", 2, false), Second);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, keyOf(b));
}

TEST(FragmentTracker, ManyConcurrentDatagrams) {
  FragmentTracker tracker;
  // Far fewer datagrams than slots: most of them must survive (a direct-mapped table may lose
  // a few to collisions, never most).
  int found = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    const PacketMeta first = fragment("10.0.0.1", "10.0.0.2", id, true);
    tracker.remember(first, keyOf(first), Second);
  }
  for (uint32_t id = 0; id < 64; ++id) {
    if (tracker.find(fragment("10.0.0.1", "10.0.0.2", id, false), Second) != nullptr) {
      ++found;
    }
  }
  EXPECT_GE(found, 56);
}

}  // namespace
}  // namespace bulkhead
