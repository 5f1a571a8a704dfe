// A real CNI runtime in front of the real agent: podman (CNI backend) chains the reference bridge
// plugin with bulkhead-cni, whose ADD hands each container's veth to bulkheadd. The policy then
// holds between the containers with real traffic; `podman rm` takes the endpoint away, and an
// agent restart recovers the endpoints CNI had attached (a runtime never sends ADD twice).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "controlplane/api_server.h"
#include "tests/integration/lab.h"
#include "tests/integration/podman_cni.h"

namespace bulkhead {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::PodmanCni;

std::string binary(const std::string& name) { return std::string(BULKHEAD_BINARY_DIR) + "/" + name; }

// Podman hands CNI no container labels: the network's configured labels (tenant) and the name
// the runtime passes (bulkhead.io/name) are what a policy can select on.
constexpr const char* Policy = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {bulkhead.io/name: api, tenant: shop}}
  ingress:
    - fromEndpoints: [{matchLabels: {bulkhead.io/name: web, tenant: shop}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}], l7: {protocols: [HTTP]}}]
)";

const std::vector<std::string> ApiCommand = {
    "sh", "-c",
    "mkdir -p /www && echo hello-from-api > /www/index.html && httpd -p 8080 -h /www && "
    "httpd -p 8081 -h /www && exec sleep 3600"};

class PodmanAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string reason = PodmanCni::unavailable(binary("bulkhead-cni")); !reason.empty()) {
      GTEST_SKIP() << reason << " (scripts/setup.sh installs podman, runc, the CNI plugins)";
    }
    lab_ = std::make_unique<testing::Lab>();
    podman_ = std::make_unique<PodmanCni>(binary("bulkhead-cni"));
    podman_->loadImage();
    socket_ = lab_->dir().file("api.sock");
    network_ = podman_->name("-shop");
    bridge_ = podman_->name("s");
    podman_->writeNetwork(network_, bridge_, "10.216.5.0/24", {{"tenant", "shop"}}, socket_,
                          "closed");
    policyPath_ = lab_->dir().write("policy.yaml", Policy);
  }

  void TearDown() override {
    if (podman_) {
      podman_->cleanup();  // DEL reaches the agent while it still runs
    }
    if (agent_ != nullptr) {
      agent_->stop(10);
      EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
    }
  }

  void startAgent() {
    const std::string config = "policy: " + policyPath_ + "\napiSocket: " + socket_ +
                               "\nviolationLog: " + lab_->dir().file("violations.jsonl") +
                               "\nstateDirectory: " + lab_->dir().file("state") +
                               "\nhugepages: off\nmemoryMegabytes: 512\nlogLevel: debug\n";
    const std::string path = lab_->dir().write("bulkhead.yaml", config);
    agent_ = &lab_->spawn(nullptr, {binary("bulkheadd"), "--config", path},
                          "agent" + std::to_string(++starts_) + ".log");
    ASSERT_TRUE(agent_->waitForLog("bulkheadd ready", 30)) << agent_->log();
  }

  json status() {
    std::string error;
    const json reply = controlplane::callApi(socket_, {{"command", "status"}}, &error);
    return reply.is_null() ? json::object() : reply;
  }

  std::optional<json> endpoint(const std::string& name) {
    for (const auto& entry : status().value("endpoints", json::array())) {
      if (entry["name"] == name) {
        return entry;
      }
    }
    return std::nullopt;
  }

  std::string fetch(const std::string& from, int port) {
    const auto result = podman_->exec(
        from,
        {"timeout", "4", "wget", "-q", "-O", "-",
         "http://" + podman_->ip("api") + ":" + std::to_string(port) + "/"},
        15);
    return result.exitCode == 0 ? result.out : "";
  }

  bool reaches(const std::string& from, int port) {
    return testing::waitFor(
        [&] { return fetch(from, port).find("hello-from-api") != std::string::npos; }, 10);
  }

  std::unique_ptr<testing::Lab> lab_;
  std::unique_ptr<PodmanCni> podman_;
  testing::Process* agent_ = nullptr;
  int starts_ = 0;
  std::string socket_;
  std::string network_;
  std::string bridge_;
  std::string policyPath_;
};

TEST_F(PodmanAgentTest, ContainersStartedByPodmanAreEnforcedByLabelAndRemovedCleanly) {
  startAgent();
  podman_->run("api", network_, {}, ApiCommand);
  podman_->run("web", network_);
  podman_->run("other", network_);

  // ADD returned only once the agent had attached the veth: it is listed at once.
  const auto api = endpoint("api");
  ASSERT_TRUE(api) << status().dump();
  EXPECT_EQ(api->at("interface"), podman_->hostVethOf("api"));
  EXPECT_EQ(api->at("labels"), json({{"tenant", "shop"},
                                     {"bulkhead.io/name", "api"},
                                     {"bulkhead.io/network." + network_, "true"}}));
  EXPECT_EQ(api->at("ips"), json::array({podman_->ip("api")}));
  EXPECT_EQ(api->at("bridge"), bridge_);
  EXPECT_EQ(status()["uplink"]["bridge"], bridge_);
  // Only the agent's own uplink is left on the CNI bridge.
  const auto ports = PodmanCni::bridgePorts(bridge_);
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_TRUE(ports[0].starts_with("bhb-")) << ports[0];

  EXPECT_TRUE(reaches("web", 8080)) << agent_->log();
  EXPECT_EQ(fetch("web", 8081), "");
  EXPECT_EQ(fetch("other", 8080), "");

  // DEL on removal: the endpoint and its veth are gone.
  const std::string veth = api->at("interface");
  podman_->remove("api");
  EXPECT_FALSE(endpoint("api")) << status().dump();
  EXPECT_FALSE(fs::exists("/sys/class/net/" + veth));

  // A restarted agent has no ADD to wait for: it recovers what CNI had attached.
  agent_->stop(10);
  EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
  agent_ = nullptr;
  startAgent();
  EXPECT_TRUE(agent_->waitForLog("recovered endpoint 'web'", 5)) << agent_->log();
  ASSERT_TRUE(endpoint("web")) << status().dump();
  ASSERT_TRUE(endpoint("other")) << status().dump();
  EXPECT_EQ(endpoint("web")->at("interface"), podman_->hostVethOf("web"));
  const auto ping = podman_->exec("other", {"ping", "-c", "1", "-W", "2", podman_->ip("web")}, 10);
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err << agent_->log();
}

}  // namespace
}  // namespace bulkhead
