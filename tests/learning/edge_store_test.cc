#include "learning/edge_store.h"

#include <gtest/gtest.h>

namespace bulkhead::learning {
namespace {

EdgePeer endpoint(const std::string& name, const std::string& app) {
  EdgePeer peer;
  peer.kind = EdgePeer::Kind::Endpoint;
  peer.labels = {{"app", app}, {"bulkhead.io/name", name}};
  return peer;
}

FlowObservation flow(const std::string& from, const std::string& to, uint16_t port, uint64_t timeNs,
                     rules::Decision decision = rules::Decision::Allow, bool enforced = true) {
  FlowObservation out;
  out.key.src = endpoint(from, from);
  out.key.dst = endpoint(to, to);
  out.key.ipProtocol = 6;
  out.key.port = port;
  out.key.protocol = "HTTP";
  out.decision = decision;
  out.enforced = enforced;
  out.rule = "r";
  out.packets = 10;
  out.bytes = 1000;
  out.timeNs = timeNs;
  out.srcAddress = "10.0.0.1";
  out.dstAddress = "10.0.0.2";
  return out;
}

TEST(EdgeStore, FlowsOfOneKeyAreOneEdgeWithCounts) {
  EdgeStore store;
  store.record(flow("web", "api", 8080, 200));
  store.record(flow("web", "api", 8080, 100, rules::Decision::Deny, false));
  store.record(flow("web", "api", 8080, 300, rules::Decision::Deny, true));
  store.record(flow("web", "api", 9090, 400));
  ASSERT_EQ(store.size(), 2u);
  EXPECT_EQ(store.flowsRecorded(), 4u);
  const auto edges = store.edges();
  const ObservedEdge& first = edges[0];
  EXPECT_EQ(first.key.port, 8080);
  EXPECT_EQ(first.stats.flows, 3u);
  EXPECT_EQ(first.stats.allowed, 1u);
  EXPECT_EQ(first.stats.monitored, 1u);
  EXPECT_EQ(first.stats.denied, 1u);
  EXPECT_EQ(first.stats.packets, 30u);
  EXPECT_EQ(first.stats.bytes, 3000u);
  EXPECT_EQ(first.stats.firstSeenNs, 100u);
  EXPECT_EQ(first.stats.lastSeenNs, 300u);
  EXPECT_EQ(store.edges(350).size(), 1u);
  EXPECT_EQ(store.edges(350)[0].key.port, 9090);
}

TEST(EdgeStore, AtCapacityTheEdgeSeenLongestAgoGoes) {
  EdgeStore store(3);
  store.record(flow("a", "b", 1, 1));
  store.record(flow("a", "b", 2, 2));
  store.record(flow("a", "b", 3, 3));
  store.record(flow("a", "b", 1, 4));  // port 1 is seen again: port 2 is now the oldest
  store.record(flow("a", "b", 4, 5));
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.evicted(), 1u);
  std::vector<uint16_t> ports;
  for (const auto& edge : store.edges()) {
    ports.push_back(edge.key.port);
  }
  EXPECT_EQ(ports, (std::vector<uint16_t>{3, 1, 4}));
  for (uint16_t port = 100; port < 1100; ++port) {
    store.record(flow("a", "b", port, 10 + port));
  }
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.evicted(), 1001u);
}

TEST(EdgeStore, ItsJsonLoadsBackAsTheSameEdgesInTheSameOrder) {
  EdgeStore store;
  store.record(flow("web", "api", 8080, 5));
  FlowObservation world = flow("web", "x", 443, 7);
  world.key.dst = EdgePeer{};
  world.key.host = "api.example.test";
  world.key.protocol = "TLS";
  store.record(world);
  FlowObservation cidr = flow("web", "x", 9999, 6);
  cidr.key.dst = EdgePeer{EdgePeer::Kind::World, {}, "198.51.100.7"};
  cidr.key.src.labels["quote\"\nnewline"] = "caf\xc3\xa9";
  store.record(cidr);
  FlowObservation host = flow("web", "x", 22, 8);
  host.key.src = EdgePeer{EdgePeer::Kind::Host, {}, ""};
  store.record(host);

  EdgeStore loaded;
  std::string error;
  ASSERT_TRUE(loaded.load(nlohmann::json::parse(store.toJson().dump()), &error)) << error;
  const auto before = store.edges();
  const auto after = loaded.edges();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].key, before[i].key) << i;
    EXPECT_EQ(toJson(after[i]), toJson(before[i])) << i;
  }
}

TEST(EdgeStore, ADamagedDocumentLeavesTheStoreEmptyWithTheReason) {
  EdgeStore store;
  store.record(flow("web", "api", 8080, 5));
  const nlohmann::json good = store.toJson();
  const auto damaged = [&](auto change) {
    nlohmann::json copy = good;
    change(copy);
    return copy;
  };
  const nlohmann::json cases[] = {
      nlohmann::json::array(),
      damaged([](nlohmann::json& d) { d["version"] = 2; }),
      damaged([](nlohmann::json& d) { d.erase("edges"); }),
      damaged([](nlohmann::json& d) { d["edges"][0]["src"]["kind"] = "pod"; }),
      damaged([](nlohmann::json& d) { d["edges"][0]["src"]["labels"]["app"] = 7; }),
      damaged([](nlohmann::json& d) { d["edges"][0]["port"] = 70000; }),
      damaged([](nlohmann::json& d) { d["edges"][0]["flows"] = -1; }),
      damaged([](nlohmann::json& d) { d["edges"][0]["protocol"] = ""; }),
      damaged([](nlohmann::json& d) { d["edges"].push_back(d["edges"][0]); }),
  };
  for (const auto& document : cases) {
    EdgeStore loaded;
    loaded.record(flow("x", "y", 1, 1));
    std::string error;
    EXPECT_FALSE(loaded.load(document, &error)) << document.dump();
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(loaded.size(), 0u) << document.dump();
  }
}

}  // namespace
}  // namespace bulkhead::learning
