// The Docker reconciler without Docker: what endpoints and protected bridges the engine's view
// should become.
#include "controlplane/docker_reconciler.h"

#include <gtest/gtest.h>

namespace bulkhead::controlplane {
namespace {

DockerContainer container(const std::string& name, std::vector<DockerContainer::Network> networks,
                          std::map<std::string, std::string> labels = {}) {
  DockerContainer out;
  out.id = name + "-id";
  out.name = name;
  out.image = "busybox:1";
  out.netnsPath = "/var/run/docker/netns/" + name;
  out.labels = std::move(labels);
  out.networks = std::move(networks);
  return out;
}

DockerContainer::Network network(const std::string& name, const std::string& bridge,
                                 const std::string& ip, const std::string& mac) {
  return {name, bridge, ip, "", mac};
}

TEST(DockerReconcilerTest, EveryBridgeNetworkIsFollowedWhenNoneAreNamed) {
  const DockerScope all;
  const auto desired = desiredEndpoints(
      {container("web", {network("front", "br-aaaaaaaaaaaa", "10.1.0.2", "02:00:00:00:00:01")}),
       container("db", {network("back", "br-bbbbbbbbbbbb", "10.2.0.2", "02:00:00:00:00:02")})},
      all);
  ASSERT_EQ(desired.size(), 2u);
  EXPECT_EQ(desired[0].attachments[0].bridge, "br-aaaaaaaaaaaa");
  EXPECT_EQ(desired[1].attachments[0].ips, std::vector<std::string>{"10.2.0.2"});
}

TEST(DockerReconcilerTest, NamedNetworksLimitTheAttachmentsButNotTheNetworkLabels) {
  const DockerScope scope{{"front"}};
  const auto desired = desiredEndpoint(
      container("api", {network("front", "br-aaaaaaaaaaaa", "10.1.0.3", "02:00:00:00:00:03"),
                        network("back", "br-bbbbbbbbbbbb", "10.2.0.3", "02:00:00:00:00:04")}),
      scope);
  ASSERT_TRUE(desired.has_value());
  ASSERT_EQ(desired->attachments.size(), 1u);
  EXPECT_EQ(desired->attachments[0].network, "front");
  // Both networks are facts about the container, whichever of them the agent protects.
  EXPECT_EQ(desired->labels.at("bulkhead.io/network.front"), "true");
  EXPECT_EQ(desired->labels.at("bulkhead.io/network.back"), "true");
}

// What a container host has for a Kubernetes namespace: the compose project by default, or the
// label namespaceLabel names -- never a label the container sets under bulkhead.io/ itself.
TEST(DockerReconcilerTest, TheNamespaceIsTheComposeProjectOrTheConfiguredLabel) {
  const auto attached = network("front", "br-aaaaaaaaaaaa", "10.1.0.5", "02:00:00:00:00:05");
  const auto composed = desiredEndpoint(
      container("shop-web-1", {attached},
                {{"com.docker.compose.project", "shop"}, {"bulkhead.io/namespace", "bank"}}),
      DockerScope{});
  ASSERT_TRUE(composed.has_value());
  EXPECT_EQ(composed->labels.at("bulkhead.io/namespace"), "shop");
  const auto plain = desiredEndpoint(container("web", {attached}), DockerScope{});
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->labels.contains("bulkhead.io/namespace"));
  const auto forged = desiredEndpoint(
      container("web", {attached}, {{"bulkhead.io/namespace", "bank"}}), DockerScope{});
  EXPECT_FALSE(forged->labels.contains("bulkhead.io/namespace"));
  DockerScope tenant;
  tenant.namespaceLabel = "tenant";
  const auto configured = desiredEndpoint(
      container("web", {attached}, {{"tenant", "acme"}, {"com.docker.compose.project", "shop"}}),
      tenant);
  EXPECT_EQ(configured->labels.at("bulkhead.io/namespace"), "acme");
}

TEST(DockerReconcilerTest, AContainerOnTwoProtectedNetworksIsOneEndpointWithTwoAttachments) {
  const auto desired = desiredEndpoint(
      container("api", {network("front", "br-aaaaaaaaaaaa", "10.1.0.3", "02:00:00:00:00:03"),
                        network("back", "br-bbbbbbbbbbbb", "10.2.0.3", "02:00:00:00:00:04")}),
      DockerScope{});
  ASSERT_TRUE(desired.has_value());
  ASSERT_EQ(desired->attachments.size(), 2u);
  EXPECT_EQ(desired->attachments[1].mac, "02:00:00:00:00:04");
}

TEST(DockerReconcilerTest, HostNetworkingAndOutOfScopeContainersAreNoEndpoints) {
  EXPECT_FALSE(desiredEndpoint(container("h", {network("host", "", "", "")}), DockerScope{}));
  EXPECT_FALSE(desiredEndpoint(
      container("x", {network("other", "br-cccccccccccc", "10.3.0.2", "02:00:00:00:00:05")}),
      DockerScope{{"front"}}));
  auto noNetns =
      container("y", {network("front", "br-aaaaaaaaaaaa", "10.1.0.9", "02:00:00:00:00:09")});
  noNetns.netnsPath.clear();
  EXPECT_FALSE(desiredEndpoint(noNetns, DockerScope{}));
}

TEST(DockerReconcilerTest, AContainerCannotClaimBulkheadLabels) {
  const auto desired = desiredEndpoint(
      container("evil", {network("front", "br-aaaaaaaaaaaa", "10.1.0.6", "02:00:00:00:00:06")},
                {{"bulkhead.io/name", "api"}, {"bulkhead.io/network.admin", "true"}, {"app", "x"}}),
      DockerScope{});
  ASSERT_TRUE(desired.has_value());
  EXPECT_EQ(desired->labels.at("bulkhead.io/name"), "evil");
  EXPECT_EQ(desired->labels.count("bulkhead.io/network.admin"), 0u);
  EXPECT_EQ(desired->labels.at("app"), "x");
  EXPECT_EQ(desired->labels.at("bulkhead.io/image"), "busybox:1");
}

TEST(DockerReconcilerTest, BridgesSplitIntoProtectedAndLeftAlone) {
  const std::vector<DockerNetwork> networks = {{"1", "front", "br-aaaaaaaaaaaa"},
                                               {"2", "back", "br-bbbbbbbbbbbb"},
                                               {"3", "host", ""},
                                               {"4", "bridge", "docker0"}};
  EXPECT_EQ(protectedBridges(networks, DockerScope{}),
            (std::vector<std::string>{"br-aaaaaaaaaaaa", "br-bbbbbbbbbbbb", "docker0"}));
  const DockerScope some{{"back"}};
  EXPECT_EQ(protectedBridges(networks, some), std::vector<std::string>{"br-bbbbbbbbbbbb"});
  EXPECT_EQ(unprotectedBridges(networks, some),
            (std::vector<std::string>{"br-aaaaaaaaaaaa", "docker0"}));
}

TEST(DockerReconcilerTest, NetworksListParsesBridgeNames) {
  const auto parsed = parseNetworks(nlohmann::json::parse(R"([
    {"Id": "aaaaaaaaaaaa0000", "Name": "front", "Driver": "bridge", "Options": {}},
    {"Id": "bbbb", "Name": "bridge", "Driver": "bridge",
     "Options": {"com.docker.network.bridge.name": "docker0"}},
    {"Id": "cccc", "Name": "host", "Driver": "host"},
    {"Name": "no-id"}, 7])"));
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0].bridge, "br-aaaaaaaaaaaa");
  EXPECT_EQ(parsed[1].bridge, "docker0");
  EXPECT_EQ(parsed[2].bridge, "");
}

}  // namespace
}  // namespace bulkhead::controlplane
