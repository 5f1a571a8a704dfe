#include "dataplane/flow_table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "dataplane/flow_key.h"

namespace bulkhead {
namespace {

using dataplane::ConnState;
using dataplane::FlowEntry;
using dataplane::FlowKey;
using dataplane::FlowTable;
using dataplane::FlowTableConfig;
using dataplane::PacketMeta;
namespace ip_protocol = dataplane::ip_protocol;

constexpr uint64_t Second = 1000000000ull;

// DPDK names a hash's memory after the table and refuses duplicates (and truncates long names),
// so every table gets a short name no other table in the process has.
std::string uniqueName(const char* what) {
  static int counter = 0;
  return std::string("ft_") + what + "_" + std::to_string(counter++);
}

rules::IpAddress ip(const char* text) {
  const auto parsed = rules::IpAddress::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(rules::IpAddress{});
}

PacketMeta packet(const char* src, uint16_t srcPort, const char* dst, uint16_t dstPort,
                  uint8_t protocol = ip_protocol::TCP, uint16_t vlan = 0) {
  PacketMeta meta;
  meta.status = dataplane::ParseStatus::Ok;
  meta.srcIp = ip(src);
  meta.dstIp = ip(dst);
  meta.srcPort = srcPort;
  meta.dstPort = dstPort;
  meta.ipProtocol = protocol;
  meta.vlan = vlan;
  meta.hasL4 = true;
  return meta;
}

FlowKey keyOf(const PacketMeta& meta) {
  bool reversed = false;
  return dataplane::makeFlowKey(meta, reversed);
}

// The key of the `index`-th of many distinct UDP conversations.
FlowKey nthKey(uint32_t index) {
  const std::string src = "10.1." + std::to_string(index / 256) + "." + std::to_string(index % 256);
  return keyOf(packet(src.c_str(), static_cast<uint16_t>(10000 + index % 5000), "10.200.0.1", 53,
                      ip_protocol::UDP));
}

FlowTableConfig smallConfig(uint32_t capacity) {
  FlowTableConfig config;
  config.capacity = capacity;
  return config;
}

TEST(FlowKey, BothDirectionsShareOneKey) {
  bool forwardReversed = true;
  bool backwardReversed = true;
  const FlowKey forward =
      dataplane::makeFlowKey(packet("10.0.0.9", 40000, "10.0.0.3", 80), forwardReversed);
  const FlowKey backward =
      dataplane::makeFlowKey(packet("10.0.0.3", 80, "10.0.0.9", 40000), backwardReversed);
  EXPECT_EQ(forward, backward);
  EXPECT_NE(forwardReversed, backwardReversed);
  // "a" is the endpoint that sorts lower: 10.0.0.3:80.
  EXPECT_TRUE(forwardReversed);
  EXPECT_FALSE(backwardReversed);
  EXPECT_EQ(forward.portA, 80);
  EXPECT_EQ(forward.portB, 40000);
  EXPECT_EQ(forward.family, 4);
  EXPECT_EQ(forward.ipProtocol, ip_protocol::TCP);
  const auto a = ip("10.0.0.3");
  EXPECT_EQ(0, std::memcmp(forward.addressA, a.bytes.data(), 4));
}

TEST(FlowKey, SameAddressOrdersByPort) {
  bool forwardReversed = false;
  bool backwardReversed = false;
  const FlowKey forward =
      dataplane::makeFlowKey(packet("127.0.0.1", 9000, "127.0.0.1", 80), forwardReversed);
  const FlowKey backward =
      dataplane::makeFlowKey(packet("127.0.0.1", 80, "127.0.0.1", 9000), backwardReversed);
  EXPECT_EQ(forward, backward);
  EXPECT_TRUE(forwardReversed);
  EXPECT_FALSE(backwardReversed);
  EXPECT_EQ(forward.portA, 80);
}

TEST(FlowKey, Ipv6BothDirections) {
  bool forwardReversed = false;
  bool backwardReversed = false;
  const FlowKey forward = dataplane::makeFlowKey(
      packet("2001:db8::20", 5353, "2001:db8::10", 53, ip_protocol::UDP), forwardReversed);
  const FlowKey backward = dataplane::makeFlowKey(
      packet("2001:db8::10", 53, "2001:db8::20", 5353, ip_protocol::UDP), backwardReversed);
  EXPECT_EQ(forward, backward);
  EXPECT_NE(forwardReversed, backwardReversed);
  EXPECT_EQ(forward.family, 6);
}

TEST(FlowKey, ProtocolVlanAndPortsDistinguishFlows) {
  const FlowKey base = keyOf(packet("10.0.0.1", 1000, "10.0.0.2", 53, ip_protocol::UDP));
  EXPECT_NE(base, keyOf(packet("10.0.0.1", 1000, "10.0.0.2", 53, ip_protocol::TCP)));
  EXPECT_NE(base, keyOf(packet("10.0.0.1", 1000, "10.0.0.2", 53, ip_protocol::UDP, 7)));
  EXPECT_NE(base, keyOf(packet("10.0.0.1", 1001, "10.0.0.2", 53, ip_protocol::UDP)));
  EXPECT_NE(base, keyOf(packet("10.0.0.1", 1000, "10.0.0.3", 53, ip_protocol::UDP)));
  EXPECT_EQ(base, keyOf(packet("10.0.0.1", 1000, "10.0.0.2", 53, ip_protocol::UDP)));
}

TEST(FlowTable, InsertFindErase) {
  FlowTable table(smallConfig(64), uniqueName("basic"));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), 64u);
  const FlowKey key = keyOf(packet("10.0.0.1", 1234, "10.0.0.2", 80));
  EXPECT_EQ(table.find(key), nullptr);

  FlowEntry* entry = table.insert(key);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->key, key);
  EXPECT_EQ(entry->state, ConnState::New);
  EXPECT_EQ(entry->totalPackets(), 0u);
  EXPECT_EQ(table.size(), 1u);
  entry->packets[0] = 3;
  entry->bytes[1] = 100;

  // The reply direction finds the same entry.
  FlowEntry* reply = table.find(keyOf(packet("10.0.0.2", 80, "10.0.0.1", 1234)));
  EXPECT_EQ(reply, entry);
  EXPECT_EQ(reply->totalPackets(), 3u);
  EXPECT_EQ(reply->totalBytes(), 100u);
  EXPECT_EQ(table.find(keyOf(packet("10.0.0.1", 1235, "10.0.0.2", 80))), nullptr);

  table.erase(*entry);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.find(key), nullptr);

  // Re-inserting gives a fresh entry, not the old counters.
  FlowEntry* again = table.insert(key);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->totalPackets(), 0u);
  EXPECT_EQ(again->totalBytes(), 0u);
  EXPECT_EQ(table.size(), 1u);
}

TEST(FlowTable, ForEachVisitsEveryEntry) {
  FlowTable table(smallConfig(64), uniqueName("each"));
  std::set<uint32_t> expected;
  for (uint32_t i = 0; i < 20; ++i) {
    FlowEntry* entry = table.insert(nthKey(i));
    ASSERT_NE(entry, nullptr);
    entry->packets[0] = i;
    expected.insert(i);
  }
  table.erase(*table.find(nthKey(7)));
  expected.erase(7);
  std::set<uint32_t> seen;
  table.forEach([&](FlowEntry& entry) { seen.insert(static_cast<uint32_t>(entry.packets[0])); });
  EXPECT_EQ(seen, expected);
}

TEST(FlowTable, FullTableRefusesNewFlowsAndKeepsOldOnes) {
  FlowTable table(smallConfig(8), uniqueName("full"));
  for (uint32_t i = 0; i < 8; ++i) {
    ASSERT_NE(table.insert(nthKey(i)), nullptr) << i;
  }
  EXPECT_EQ(table.size(), 8u);
  EXPECT_EQ(table.insert(nthKey(8)), nullptr);
  EXPECT_EQ(table.insert(nthKey(9)), nullptr);
  EXPECT_EQ(table.size(), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    EXPECT_NE(table.find(nthKey(i)), nullptr) << "flow " << i << " was evicted";
  }
  EXPECT_EQ(table.find(nthKey(8)), nullptr);
  // Room again once a flow ends.
  table.erase(*table.find(nthKey(3)));
  EXPECT_NE(table.insert(nthKey(8)), nullptr);
  EXPECT_EQ(table.size(), 8u);
}

TEST(FlowTable, ReachesItsConfiguredCapacity) {
  // Capacity is a promise: a table of N flows holds N flows, however the hash buckets fill.
  constexpr uint32_t Capacity = 4096;
  FlowTable table(smallConfig(Capacity), uniqueName("cap"));
  uint32_t inserted = 0;
  for (uint32_t i = 0; i < Capacity; ++i) {
    if (table.insert(nthKey(i)) != nullptr) {
      ++inserted;
    }
  }
  EXPECT_EQ(inserted, Capacity);
  EXPECT_EQ(table.size(), Capacity);
  EXPECT_EQ(table.insert(nthKey(Capacity)), nullptr);
  for (uint32_t i = 0; i < Capacity; ++i) {
    ASSERT_NE(table.find(nthKey(i)), nullptr) << i;
  }
}

TEST(FlowTable, ExpireRemovesOnlyIdleFlows) {
  FlowTableConfig config = smallConfig(64);
  config.timeouts.udpSeconds = 60;
  config.timeouts.tcpEstablishedSeconds = 3600;
  config.timeouts.tcpHandshakeSeconds = 30;
  FlowTable table(config, uniqueName("expire"));
  const uint64_t now = 10000 * Second;

  const FlowKey idleUdp = keyOf(packet("10.0.0.1", 1000, "10.0.0.2", 53, ip_protocol::UDP));
  const FlowKey freshUdp = keyOf(packet("10.0.0.1", 1001, "10.0.0.2", 53, ip_protocol::UDP));
  const FlowKey exactlyAtTimeout =
      keyOf(packet("10.0.0.1", 1002, "10.0.0.2", 53, ip_protocol::UDP));
  const FlowKey establishedTcp = keyOf(packet("10.0.0.1", 1003, "10.0.0.2", 443));
  const FlowKey halfOpenTcp = keyOf(packet("10.0.0.1", 1004, "10.0.0.2", 443));
  const FlowKey future = keyOf(packet("10.0.0.1", 1005, "10.0.0.2", 53, ip_protocol::UDP));

  table.insert(idleUdp)->lastSeenNs = now - 61 * Second;
  table.insert(freshUdp)->lastSeenNs = now - 59 * Second;
  table.insert(exactlyAtTimeout)->lastSeenNs = now - 60 * Second;
  FlowEntry* tcp = table.insert(establishedTcp);
  tcp->state = ConnState::Established;
  tcp->lastSeenNs = now - 600 * Second;  // long idle, but established TCP lasts an hour
  FlowEntry* halfOpen = table.insert(halfOpenTcp);
  halfOpen->state = ConnState::SynSent;
  halfOpen->lastSeenNs = now - 31 * Second;
  table.insert(future)->lastSeenNs = now + Second;  // a clock going backwards never expires

  std::vector<FlowKey> expired;
  const size_t removed = table.expire(now, 1000, [&](FlowEntry& entry) {
    // The callback sees the entry before it is removed.
    EXPECT_NE(table.find(entry.key), nullptr);
    expired.push_back(entry.key);
  });
  EXPECT_EQ(removed, 2u);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_TRUE((expired[0] == idleUdp && expired[1] == halfOpenTcp) ||
              (expired[0] == halfOpenTcp && expired[1] == idleUdp));
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.find(idleUdp), nullptr);
  EXPECT_EQ(table.find(halfOpenTcp), nullptr);
  EXPECT_NE(table.find(freshUdp), nullptr);
  EXPECT_NE(table.find(exactlyAtTimeout), nullptr);
  EXPECT_NE(table.find(establishedTcp), nullptr);
  EXPECT_NE(table.find(future), nullptr);

  // An hour later everything but the established TCP flow has gone; then that one too.
  EXPECT_EQ(table.expire(now + 3000 * Second, 1000, [](FlowEntry&) {}), 3u);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.expire(now + 3601 * Second, 1000, [](FlowEntry&) {}), 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST(FlowTable, ExpireRespectsItsBudget) {
  FlowTableConfig config = smallConfig(64);
  config.timeouts.udpSeconds = 60;
  FlowTable table(config, uniqueName("budget"));
  constexpr uint32_t Flows = 40;
  for (uint32_t i = 0; i < Flows; ++i) {
    table.insert(nthKey(i))->lastSeenNs = 0;
  }
  const uint64_t now = 3600 * Second;
  size_t calls = 0;
  const auto count = [&](FlowEntry&) { ++calls; };

  EXPECT_EQ(table.expire(now, 0, count), 0u);
  EXPECT_EQ(table.size(), Flows);

  // A budget of 5 slots can remove at most 5 flows per call, and each call resumes where the
  // previous one stopped, so enough small calls sweep the whole table.
  size_t total = 0;
  size_t rounds = 0;
  while (table.size() > 0 && rounds < 1000) {
    const size_t removed = table.expire(now, 5, count);
    EXPECT_LE(removed, 5u);
    total += removed;
    ++rounds;
  }
  EXPECT_EQ(total, Flows);
  EXPECT_EQ(calls, Flows);
  EXPECT_EQ(table.size(), 0u);
  // The table has a little more than 64 slots: sweeping them 5 at a time takes about 13 calls.
  EXPECT_GE(rounds, Flows / 5);
  EXPECT_LE(rounds, 20u);
}

TEST(FlowTable, ExpireOnEmptyTableVisitsNothing) {
  FlowTable table(smallConfig(16), uniqueName("empty"));
  size_t calls = 0;
  EXPECT_EQ(table.expire(UINT64_MAX, 1000, [&](FlowEntry&) { ++calls; }), 0u);
  EXPECT_EQ(calls, 0u);
}

TEST(FlowTable, TablesWithDistinctNamesAreIndependent) {
  FlowTable first(smallConfig(16), uniqueName("one"));
  FlowTable second(smallConfig(16), uniqueName("two"));
  const FlowKey key = nthKey(1);
  ASSERT_NE(first.insert(key), nullptr);
  EXPECT_EQ(second.find(key), nullptr);
  EXPECT_EQ(second.size(), 0u);
}

TEST(FlowTable, DuplicateNameIsRefused) {
  const std::string name = uniqueName("dup");
  FlowTable first(smallConfig(16), name);
  EXPECT_THROW(FlowTable(smallConfig(16), name), std::runtime_error);
}

}  // namespace
}  // namespace bulkhead
