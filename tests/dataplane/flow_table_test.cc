#include "dataplane/flow_table.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dataplane/flow_key.h"

namespace bulkhead {
namespace {

using dataplane::ConnState;
using dataplane::Flow;
using dataplane::FlowKey;
using dataplane::FlowTable;
using dataplane::FlowTableConfig;
using dataplane::PacketMeta;
namespace ip_protocol = dataplane::ip_protocol;

constexpr uint64_t Second = 1000000000ull;

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
  FlowTable table(smallConfig(64));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), 64u);
  const FlowKey key = keyOf(packet("10.0.0.1", 1234, "10.0.0.2", 80));
  EXPECT_FALSE(table.find(key));

  Flow entry = table.insert(key);
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry.key(), key);
  EXPECT_EQ(entry.hot().state, ConnState::New);
  EXPECT_EQ(entry.totalPackets(), 0u);
  EXPECT_EQ(table.size(), 1u);
  entry.hot().packets[0] = 3;
  entry.hot().bytes[1] = 100;

  // The reply direction finds the same entry.
  Flow reply = table.find(keyOf(packet("10.0.0.2", 80, "10.0.0.1", 1234)));
  EXPECT_TRUE(reply == entry);
  EXPECT_EQ(reply.totalPackets(), 3u);
  EXPECT_EQ(reply.totalBytes(), 100u);
  EXPECT_FALSE(table.find(keyOf(packet("10.0.0.1", 1235, "10.0.0.2", 80))));

  table.erase(entry);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.find(key));

  // Re-inserting gives a fresh entry, not the old counters.
  Flow again = table.insert(key);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.totalPackets(), 0u);
  EXPECT_EQ(again.totalBytes(), 0u);
  EXPECT_EQ(table.size(), 1u);
}

TEST(FlowTable, ForEachVisitsEveryEntry) {
  FlowTable table(smallConfig(64));
  std::set<uint32_t> expected;
  for (uint32_t i = 0; i < 20; ++i) {
    Flow entry = table.insert(nthKey(i));
    ASSERT_TRUE(entry);
    entry.hot().packets[0] = i;
    expected.insert(i);
  }
  table.erase(table.find(nthKey(7)));
  expected.erase(7);
  std::set<uint32_t> seen;
  table.forEach([&](Flow entry) { seen.insert(static_cast<uint32_t>(entry.hot().packets[0])); });
  EXPECT_EQ(seen, expected);
}

TEST(FlowTable, FullTableRefusesNewFlowsAndKeepsOldOnes) {
  FlowTable table(smallConfig(8));
  for (uint32_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(table.insert(nthKey(i))) << i;
  }
  EXPECT_EQ(table.size(), 8u);
  EXPECT_FALSE(table.insert(nthKey(8)));
  EXPECT_FALSE(table.insert(nthKey(9)));
  EXPECT_EQ(table.size(), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    EXPECT_TRUE(table.find(nthKey(i))) << "flow " << i << " was evicted";
  }
  EXPECT_FALSE(table.find(nthKey(8)));
  // Room again once a flow ends.
  table.erase(table.find(nthKey(3)));
  EXPECT_TRUE(table.insert(nthKey(8)));
  EXPECT_EQ(table.size(), 8u);
}

TEST(FlowTable, ReachesItsConfiguredCapacity) {
  // Capacity is a promise: a table of N flows holds N flows, however the hash buckets fill.
  constexpr uint32_t Capacity = 4096;
  FlowTable table(smallConfig(Capacity));
  uint32_t inserted = 0;
  for (uint32_t i = 0; i < Capacity; ++i) {
    if (table.insert(nthKey(i))) {
      ++inserted;
    }
  }
  EXPECT_EQ(inserted, Capacity);
  EXPECT_EQ(table.size(), Capacity);
  EXPECT_FALSE(table.insert(nthKey(Capacity)));
  for (uint32_t i = 0; i < Capacity; ++i) {
    ASSERT_TRUE(table.find(nthKey(i))) << i;
  }
}

TEST(FlowTable, ExpireRemovesOnlyIdleFlows) {
  FlowTableConfig config = smallConfig(64);
  config.timeouts.udpSeconds = 60;
  config.timeouts.tcpEstablishedSeconds = 3600;
  config.timeouts.tcpHandshakeSeconds = 30;
  FlowTable table(config);
  const uint64_t now = 10000 * Second;

  const FlowKey idleUdp = keyOf(packet("10.0.0.1", 1000, "10.0.0.2", 53, ip_protocol::UDP));
  const FlowKey freshUdp = keyOf(packet("10.0.0.1", 1001, "10.0.0.2", 53, ip_protocol::UDP));
  const FlowKey exactlyAtTimeout =
      keyOf(packet("10.0.0.1", 1002, "10.0.0.2", 53, ip_protocol::UDP));
  const FlowKey establishedTcp = keyOf(packet("10.0.0.1", 1003, "10.0.0.2", 443));
  const FlowKey halfOpenTcp = keyOf(packet("10.0.0.1", 1004, "10.0.0.2", 443));
  const FlowKey future = keyOf(packet("10.0.0.1", 1005, "10.0.0.2", 53, ip_protocol::UDP));

  table.insert(idleUdp).hot().lastSeenNs = now - 61 * Second;
  table.insert(freshUdp).hot().lastSeenNs = now - 59 * Second;
  table.insert(exactlyAtTimeout).hot().lastSeenNs = now - 60 * Second;
  Flow tcp = table.insert(establishedTcp);
  tcp.hot().state = ConnState::Established;
  tcp.hot().lastSeenNs = now - 600 * Second;  // long idle, but established TCP lasts an hour
  Flow halfOpen = table.insert(halfOpenTcp);
  halfOpen.hot().state = ConnState::SynSent;
  halfOpen.hot().lastSeenNs = now - 31 * Second;
  table.insert(future).hot().lastSeenNs = now + Second;  // a clock going backwards never expires

  std::vector<FlowKey> expired;
  const size_t removed = table.expire(now, 1000, [&](Flow entry) {
    // The callback sees the entry before it is removed.
    EXPECT_TRUE(table.find(entry.key()));
    expired.push_back(entry.key());
  });
  EXPECT_EQ(removed, 2u);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_TRUE((expired[0] == idleUdp && expired[1] == halfOpenTcp) ||
              (expired[0] == halfOpenTcp && expired[1] == idleUdp));
  EXPECT_EQ(table.size(), 4u);
  EXPECT_FALSE(table.find(idleUdp));
  EXPECT_FALSE(table.find(halfOpenTcp));
  EXPECT_TRUE(table.find(freshUdp));
  EXPECT_TRUE(table.find(exactlyAtTimeout));
  EXPECT_TRUE(table.find(establishedTcp));
  EXPECT_TRUE(table.find(future));

  // An hour later everything but the established TCP flow has gone; then that one too.
  EXPECT_EQ(table.expire(now + 3000 * Second, 1000, [](Flow) {}), 3u);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.expire(now + 3601 * Second, 1000, [](Flow) {}), 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST(FlowTable, ExpireRespectsItsBudget) {
  FlowTableConfig config = smallConfig(64);
  config.timeouts.udpSeconds = 60;
  FlowTable table(config);
  constexpr uint32_t Flows = 40;
  for (uint32_t i = 0; i < Flows; ++i) {
    table.insert(nthKey(i)).hot().lastSeenNs = 0;
  }
  const uint64_t now = 3600 * Second;
  size_t calls = 0;
  const auto count = [&](Flow) { ++calls; };

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
  FlowTable table(smallConfig(16));
  size_t calls = 0;
  EXPECT_EQ(table.expire(UINT64_MAX, 1000, [&](Flow) { ++calls; }), 0u);
  EXPECT_EQ(calls, 0u);
}

TEST(FlowTable, TablesAreIndependent) {
  FlowTable first(smallConfig(16));
  FlowTable second(smallConfig(16));
  const FlowKey key = nthKey(1);
  ASSERT_TRUE(first.insert(key));
  EXPECT_FALSE(second.find(key));
  EXPECT_EQ(second.size(), 0u);
}

TEST(FlowTable, Ipv6FlowsAreKeptWholeAndApart) {
  FlowTable table(smallConfig(64));
  const FlowKey first = keyOf(packet("2001:db8::1", 5000, "2001:db8::2", 53, ip_protocol::UDP));
  // Same ports, protocol and family; the addresses differ only in their last bytes.
  const FlowKey second = keyOf(packet("2001:db8::1", 5000, "2001:db8::3", 53, ip_protocol::UDP));
  const Flow one = table.insert(first);
  const Flow two = table.insert(second);
  ASSERT_TRUE(one);
  ASSERT_TRUE(two);
  EXPECT_FALSE(one == two);
  EXPECT_EQ(one.key(), first);
  EXPECT_EQ(two.key(), second);
  EXPECT_TRUE(table.find(keyOf(packet("2001:db8::2", 53, "2001:db8::1", 5000, ip_protocol::UDP))) ==
              one);
  EXPECT_EQ(one.responderIp().toString(), "2001:db8::2");
  table.erase(one);
  EXPECT_FALSE(table.find(first));
  EXPECT_TRUE(table.find(second) == two);
}

TEST(FlowTable, ChurnAtFullLoadFindsExactlyWhatIsTracked) {
  // Random inserts and erases of keys over a table kept near capacity, against a model: the
  // index's overflow counts must let every lookup find what is tracked and nothing else.
  constexpr uint32_t Capacity = 2000;
  constexpr uint32_t Keys = 3000;
  FlowTable table(smallConfig(Capacity));
  std::map<uint32_t, uint32_t> model;  // key number -> the slot it got
  std::mt19937 random(7);
  for (int step = 0; step < 200000; ++step) {
    const uint32_t which = random() % Keys;
    const auto tracked = model.find(which);
    if (tracked != model.end() && random() % 2 == 0) {
      table.erase(table.find(nthKey(which)));
      model.erase(tracked);
    } else if (tracked == model.end()) {
      const Flow flow = table.insert(nthKey(which));
      ASSERT_EQ(static_cast<bool>(flow), model.size() < Capacity) << step;
      if (flow) {
        model[which] = flow.slot();
      }
    }
    ASSERT_EQ(table.size(), model.size());
    const uint32_t probe = random() % Keys;
    const Flow found = table.find(nthKey(probe));
    const auto expected = model.find(probe);
    ASSERT_EQ(static_cast<bool>(found), expected != model.end()) << step << " key " << probe;
    if (found) {
      ASSERT_EQ(found.slot(), expected->second);
      ASSERT_EQ(found.key(), nthKey(probe));
    }
  }
  for (const auto& [which, slot] : model) {
    ASSERT_TRUE(table.find(nthKey(which))) << which;
  }
}

TEST(FlowTable, AFlowCostsAtMost128BytesIndexIncluded) {
  // What every tracked flow takes of the table, whatever it carries: its two parts and its
  // share of the index (sized for the capacity). IPv6 addresses and a flow's extra part come on
  // top, only for the flows that need them.
  EXPECT_GE(FlowTable(FlowTableConfig{}).capacity(), 1u << 20) << "the default holds 1M flows";
  for (const uint32_t capacity : {1024u, 65536u, 1u << 20}) {
    FlowTable table(smallConfig(capacity));
    EXPECT_LE(table.bytesPerFlow(), 128.0) << capacity;
  }
}

TEST(FlowTable, ExtraPartsAreMadeZeroedAndReused) {
  FlowTable table(smallConfig(4));
  const Flow flow = table.insert(nthKey(1));
  EXPECT_EQ(flow.extra(), nullptr);
  dataplane::FlowExtra& extra = table.attachExtra(flow);
  EXPECT_EQ(&table.attachExtra(flow), &extra);  // one per flow
  EXPECT_EQ(extra.host[0], '\0');
  extra.host[0] = 'x';
  table.detachExtra(flow);
  EXPECT_EQ(flow.extra(), nullptr);
  const Flow other = table.insert(nthKey(2));
  dataplane::FlowExtra& reused = table.attachExtra(other);
  EXPECT_EQ(&reused, &extra);  // the last freed comes back first: memory already touched
  EXPECT_EQ(reused.host[0], '\0');
  // Erasing a flow frees its extra part with it.
  table.erase(other);
  EXPECT_EQ(&table.attachExtra(table.insert(nthKey(3))), &extra);
}

// The established-flow path hashes an IPv4 packet's key straight from its headers, without the
// full key: it must name the same flow as the full key, from either direction.
TEST(FlowTable, AnIpv4KeyCompactedFromTheHeadersFindsTheSameFlow) {
  FlowTable table(smallConfig(64));
  const std::vector<PacketMeta> packets{
      packet("10.0.0.9", 40000, "10.0.0.3", 80),
      packet("10.0.0.3", 80, "10.0.0.9", 40000),
      packet("127.0.0.1", 9000, "127.0.0.1", 80),  // same address: the ports decide
      packet("127.0.0.1", 80, "127.0.0.1", 9000),
      packet("192.168.1.1", 53, "10.255.0.1", 53, ip_protocol::UDP, 7),
      packet("10.255.0.1", 53, "192.168.1.1", 53, ip_protocol::UDP, 7),
  };
  for (const PacketMeta& meta : packets) {
    bool fullReversed = false;
    const FlowKey key = dataplane::makeFlowKey(meta, fullReversed);
    uint64_t low = 0;
    uint64_t high = 0;
    bool reversed = !fullReversed;
    dataplane::compactIpv4Key(meta, low, high, reversed);
    EXPECT_EQ(reversed, fullReversed) << meta.srcIp.toString() << ":" << meta.srcPort;
    dataplane::FlowLookup fromHeaders;
    table.fillLookup(low, high, fromHeaders);
    const dataplane::FlowLookup fromKey = table.lookup(key);
    EXPECT_EQ(fromHeaders.hash, fromKey.hash);
    EXPECT_TRUE(fromHeaders.compact == fromKey.compact);
    const Flow inserted = table.insert(key);
    ASSERT_TRUE(inserted);
    FlowKey unread;  // an IPv4 find never reads the full key
    std::memset(&unread, 0xAB, sizeof(unread));
    EXPECT_EQ(table.find(unread, fromHeaders), inserted);
  }
  EXPECT_EQ(table.size(), 3u);  // one flow per conversation, whichever side spoke
  // A near miss is another flow.
  const PacketMeta otherPort = packet("10.0.0.9", 40001, "10.0.0.3", 80);
  uint64_t low = 0;
  uint64_t high = 0;
  bool reversed = false;
  dataplane::compactIpv4Key(otherPort, low, high, reversed);
  dataplane::FlowLookup lookup;
  table.fillLookup(low, high, lookup);
  FlowKey unread;
  std::memset(&unread, 0, sizeof(unread));
  EXPECT_FALSE(table.find(unread, lookup));
}

}  // namespace
}  // namespace bulkhead
