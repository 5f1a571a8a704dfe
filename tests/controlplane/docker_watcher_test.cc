// How the Docker watcher reads the engine's answers: shapes taken from Docker 20.10 (API 1.41).
// The live engine is exercised in tests/integration/docker_agent_test.cc.
#include "controlplane/docker_watcher.h"

#include <gtest/gtest.h>

#include "http/curl_transfer.h"

namespace bulkhead::controlplane {
namespace {

using nlohmann::json;

json inspectOf(bool running) {
  return json::parse(R"({
    "Id": "5b1e0c7f9a2d4e6b8c0a1f3e5d7b9a2c4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b",
    "Name": "/api-1",
    "State": {"Status": "running", "Running": )" +
                     std::string(running ? "true" : "false") +
                     R"(, "Pid": 4242},
    "Config": {"Image": "bulkhead-test/busybox:1",
               "Labels": {"app": "api", "tier": "back", "bulkhead.io/name": "db"}},
    "NetworkSettings": {
      "SandboxKey": "/var/run/docker/netns/2c4e6f8a0b1c",
      "IPAddress": "",
      "Networks": {
        "shop": {"NetworkID": "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0",
                 "IPAddress": "10.214.0.3", "GlobalIPv6Address": "",
                 "MacAddress": "02:42:0a:d6:00:03"},
        "other": {"NetworkID": "1111111111111111111111111111111111111111111111111111111111111111",
                  "IPAddress": "10.215.0.3", "MacAddress": "02:42:0a:d7:00:03"}
      }
    }
  })");
}

TEST(DockerApiVersion, SpeaksTheOlderOfTheEnginesAndOurs) {
  std::string error;
  EXPECT_EQ(negotiateApiVersion({{"ApiVersion", "1.41"}, {"MinAPIVersion", "1.12"}}, &error),
            "1.41");
  EXPECT_EQ(negotiateApiVersion({{"ApiVersion", "1.49"}, {"MinAPIVersion", "1.24"}}, &error),
            "1.41");
  // Compared as numbers: 1.9 is older than 1.41.
  EXPECT_EQ(negotiateApiVersion({{"ApiVersion", "1.30"}}, &error), "1.30");
  // An engine that dropped our version: its oldest.
  EXPECT_EQ(negotiateApiVersion({{"ApiVersion", "1.52"}, {"MinAPIVersion", "1.44"}}, &error),
            "1.44");
  EXPECT_EQ(error, "");
}

TEST(DockerApiVersion, RefusesAnEngineTooOldOrSilent) {
  std::string error;
  EXPECT_EQ(negotiateApiVersion({{"ApiVersion", "1.9"}}, &error), "");
  EXPECT_NE(error.find("1.24"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(negotiateApiVersion(json::object(), &error), "");
  EXPECT_NE(error.find("ApiVersion"), std::string::npos) << error;
}

TEST(DockerNetwork, BridgeNameComesFromTheOptionElseTheNetworkId) {
  EXPECT_EQ(bridgeOfNetwork(json::parse(R"({"Id": "9f8e7d6c5b4a3928", "Driver": "bridge",
      "Options": {"com.docker.network.bridge.name": "shop0"}})")),
            "shop0");
  EXPECT_EQ(bridgeOfNetwork(json::parse(R"({"Id": "9f8e7d6c5b4a3928", "Driver": "bridge",
      "Options": {}})")),
            "br-9f8e7d6c5b4a");
  EXPECT_EQ(bridgeOfNetwork(json::parse(R"({"Id": "9f8e7d6c5b4a3928", "Driver": "macvlan"})")), "");
}

TEST(DockerInspect, ARunningContainerBecomesWhatTheAgentNeeds) {
  const std::map<std::string, std::string> bridges = {
      {"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0", "shop0"}};
  const auto container = parseInspect(inspectOf(true), bridges);
  ASSERT_TRUE(container);
  EXPECT_EQ(container->name, "api-1");  // without Docker's leading slash
  EXPECT_EQ(container->image, "bulkhead-test/busybox:1");
  EXPECT_EQ(container->netnsPath, "/var/run/docker/netns/2c4e6f8a0b1c");
  // Labels as the container has them; the agent, not the parser, drops reserved keys.
  EXPECT_EQ(container->labels.at("app"), "api");
  EXPECT_EQ(container->labels.size(), 3u);
  ASSERT_EQ(container->networks.size(), 2u);
  const auto& shop =
      container->networks[1].name == "shop" ? container->networks[1] : container->networks[0];
  EXPECT_EQ(shop.bridge, "shop0");
  EXPECT_EQ(shop.ip, "10.214.0.3");
  EXPECT_EQ(shop.mac, "02:42:0a:d6:00:03");
  const auto& other =
      container->networks[1].name == "other" ? container->networks[1] : container->networks[0];
  EXPECT_EQ(other.bridge, "");  // a network whose bridge is not known
}

TEST(DockerInspect, AStoppedOrMalformedContainerIsNone) {
  EXPECT_FALSE(parseInspect(inspectOf(false), {}));
  EXPECT_FALSE(parseInspect(json::parse(R"({"message": "No such container"})"), {}));
  EXPECT_FALSE(parseInspect(json::parse("[1, 2]"), {}));
  // Wrong types read as absent; before, each of these threw out of the watcher's thread.
  auto yes = inspectOf(true);
  yes["State"]["Running"] = "yes";
  EXPECT_FALSE(parseInspect(yes, {}));
  for (const char* member : {"State", "Config", "NetworkSettings"}) {
    auto wrong = inspectOf(true);
    wrong[member] = json::array({1});
    EXPECT_NO_THROW(parseInspect(wrong, {})) << member;
  }
  auto networks = inspectOf(true);
  networks["NetworkSettings"]["Networks"] = "shop";
  ASSERT_TRUE(parseInspect(networks, {}));
  EXPECT_TRUE(parseInspect(networks, {})->networks.empty());
  auto nameless = inspectOf(true);
  nameless.erase("Name");
  EXPECT_FALSE(parseInspect(nameless, {}));
}

TEST(DockerEvent, EachShapeTheAgentFollowsAndTheRestIgnored) {
  using Kind = DockerEvent::Kind;
  const auto kindOf = [](const char* text) { return parseEvent(json::parse(text)).kind; };
  EXPECT_EQ(kindOf(R"({"Type":"container","Action":"start","Actor":{"ID":"a"}})"), Kind::Started);
  EXPECT_EQ(kindOf(R"({"Type":"container","Action":"unpause","Actor":{"ID":"a"}})"),
            Kind::Started);
  EXPECT_EQ(kindOf(R"({"Type":"container","Action":"die","Actor":{"ID":"a"}})"), Kind::Stopped);
  EXPECT_EQ(kindOf(R"({"Type":"container","Action":"destroy","Actor":{"ID":"a"}})"),
            Kind::Removed);
  EXPECT_EQ(kindOf(R"({"Type":"container","Action":"exec_start","Actor":{"ID":"a"}})"),
            Kind::Ignored);
  EXPECT_EQ(kindOf(R"({"Type":"network","Action":"create","Actor":{"ID":"n"}})"),
            Kind::NetworksChanged);
  const auto connected = parseEvent(json::parse(
      R"({"Type":"network","Action":"connect","timeNano":12,"Actor":{"Attributes":{"container":"c"}}})"));
  EXPECT_EQ(connected.kind, Kind::Connected);
  EXPECT_EQ(connected.id, "c");
  EXPECT_EQ(connected.timeNs, 12u);
  // Wrong shapes name no container: ignored, never a throw.
  for (const char* odd : {R"({"Type":"network","Action":"connect","Actor":"a string"})",
                          R"({"Type":"container","Action":"start","Actor":{"ID":7}})",
                          R"({"Type":"container","Action":"start","Actor":[]})",
                          R"({"Type":["container"],"Action":"start"})", "[1]", "null"}) {
    EXPECT_EQ(kindOf(odd), Kind::Ignored) << odd;
  }
}

TEST(UrlEncode, EscapesAFilterForTheQueryString) {
  EXPECT_EQ(http::urlEncode(R"({"type":["container"]})"),
            "%7B%22type%22%3A%5B%22container%22%5D%7D");
  EXPECT_EQ(http::urlEncode("abc-_.~9"), "abc-_.~9");
}

}  // namespace
}  // namespace bulkhead::controlplane
