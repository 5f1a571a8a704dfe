// A real CNI runtime in front of the real agent: podman (CNI backend) chains the reference bridge
// plugin with bulkhead-cni, whose ADD hands each container's veth to bulkheadd. The policy then
// holds between the containers with real traffic; `podman rm` takes the endpoint away, and an
// agent restart recovers the endpoints CNI had attached (a runtime never sends ADD twice).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "api/client.h"
#include "tests/integration/lab.h"
#include "tests/integration/podman_cni.h"
#include "tests/integration/web_api_policy.h"
#include "tests/support/binaries.h"

namespace bulkhead {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::PodmanCni;

using testing::builtBinary;

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

const std::vector<std::string> ApiCommand = testing::apiServerCommand({8080, 8081});

class PodmanAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string reason = PodmanCni::unavailable(builtBinary("bulkhead-cni"));
        !reason.empty()) {
      GTEST_SKIP() << reason << " (scripts/setup.sh installs podman, runc, the CNI plugins)";
    }
    lab_ = std::make_unique<testing::Lab>();
    podman_ = std::make_unique<PodmanCni>(builtBinary("bulkhead-cni"));
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

  void startAgent(const std::string& extraConfig = "") {
    const std::string config =
        "policy: " + policyPath_ + "\napiSocket: " + socket_ +
        "\nviolationLog: " + lab_->dir().file("violations.jsonl") +
        "\ninstance: " + lab_->agentInstance() + "\nstateDirectory: " + lab_->dir().file("state") +
        "\nhugepages: off\nmemoryMegabytes: 512\nlogLevel: debug\n" + extraConfig;
    const std::string path = lab_->dir().write("bulkhead.yaml", config);
    agent_ = &lab_->spawn(nullptr, {builtBinary("bulkheadd"), "--config", path},
                          "agent" + std::to_string(++starts_) + ".log");
    ASSERT_TRUE(agent_->waitForLog("bulkheadd ready", 30)) << agent_->log();
  }

  json status() {
    std::string error;
    const json reply = api::callApi(socket_, {{"command", "status"}}, &error);
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

  std::string fetch(const std::string& from, int port, std::string ip = "") {
    if (ip.empty()) {
      ip = podman_->ip("api");
    }
    const auto result = podman_->exec(from,
                                      {"timeout", "4", "wget", "-q", "-O", "-",
                                       "http://" + ip + ":" + std::to_string(port) + "/"},
                                      15);
    return result.exitCode == 0 ? result.out : "";
  }

  bool reaches(const std::string& from, int port, const std::string& ip = "") {
    return testing::waitFor(
        [&] { return fetch(from, port, ip).find("hello-from-api") != std::string::npos; }, 10);
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
  // The containers stay on the CNI bridge, beside the agent's uplink into it.
  const auto ports = PodmanCni::bridgePorts(bridge_);
  EXPECT_EQ(ports.size(), 4u);
  EXPECT_NE(std::find(ports.begin(), ports.end(), lab_->agentInstance() + "-b1"), ports.end());

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
  // No ADD came for them, yet they were never loose: their bridge was quarantined throughout.
  ASSERT_TRUE(endpoint("web")) << status().dump();
  ASSERT_TRUE(endpoint("other")) << status().dump();
  EXPECT_EQ(endpoint("web")->at("interface"), podman_->hostVethOf("web"));
  const auto ping = podman_->exec("other", {"ping", "-c", "1", "-W", "2", podman_->ip("web")}, 10);
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err << agent_->log();
}

// Podman passes CNI no labels; with its API (`podman system service`) configured as the
// agent's runtimeSocket, the agent asks it for them by the CNI container id. A container on two
// CNI networks is one endpoint with an attachment on each bridge.
const std::string LabelPolicy = testing::webToApiPolicy();

TEST_F(PodmanAgentTest, TwoCniNetworksAndContainersSelectedByTheirOwnLabels) {
  const std::string front = podman_->name("-front");
  const std::string frontBridge = podman_->name("f");
  const std::string back = podman_->name("-back");
  const std::string backBridge = podman_->name("k");
  podman_->writeNetwork(front, frontBridge, "10.216.6.0/24", {}, socket_, "closed");
  podman_->writeNetwork(back, backBridge, "10.216.7.0/24", {}, socket_, "closed");
  std::ofstream(policyPath_) << LabelPolicy;
  const std::string runtime = lab_->dir().file("podman.sock");
  auto& service =
      lab_->spawn(nullptr, podman_->command({"system", "service", "--time=0", "unix://" + runtime}),
                  "podman-service.log");
  ASSERT_TRUE(testing::waitFor([&] { return fs::exists(runtime); }, 20)) << service.log();
  startAgent("runtimeSocket: " + runtime + "\n");

  podman_->run("api", front + "," + back, {"--label", "app=api"}, ApiCommand);
  podman_->run("web", front, {"--label", "app=web"});
  podman_->run("other", front, {"--label", "app=other"});
  podman_->run("web2", back, {"--label", "app=web"});
  podman_->run("other2", back, {"--label", "app=other", "--label", "bulkhead.io/name=web2"});

  // ADD returned with each container attached but cut off; its labels follow from the runtime
  // as soon as podman lets go of the container.
  const auto labelled = [&](const std::string& name) {
    const auto found = endpoint(name);
    return found && !found->value("labelsPending", true);
  };
  for (const std::string name : {"api", "web", "other", "web2", "other2"}) {
    ASSERT_TRUE(testing::waitFor([&] { return labelled(name); }, 15))
        << name << ": " << status().dump() << agent_->log();
  }
  const auto api = endpoint("api");
  ASSERT_TRUE(api) << status().dump() << agent_->log();
  EXPECT_EQ(api->at("labels").value("app", ""), "api") << api->dump();
  EXPECT_EQ(api->at("labels").value("bulkhead.io/image", ""),
            std::string("localhost/") + PodmanCni::kImage);
  EXPECT_EQ(api->at("labels").value("bulkhead.io/network." + front, ""), "true");
  EXPECT_EQ(api->at("labels").value("bulkhead.io/network." + back, ""), "true");
  ASSERT_EQ(api->at("attachments").size(), 2u) << api->dump();
  std::set<std::string> bridges;
  for (const auto& attachment : api->at("attachments")) {
    bridges.insert(attachment["bridge"].get<std::string>());
  }
  EXPECT_EQ(bridges, (std::set<std::string>{frontBridge, backBridge}));
  // A container's label cannot make it another: bulkhead.io/ is the agent's.
  EXPECT_EQ(endpoint("other2")->at("labels").value("app", ""), "other");

  const std::string apiFront = podman_->ip("api", front);
  const std::string apiBack = podman_->ip("api", back);
  ASSERT_FALSE(apiFront.empty());
  ASSERT_FALSE(apiBack.empty());
  EXPECT_TRUE(reaches("web", 8080, apiFront)) << agent_->log();
  EXPECT_TRUE(reaches("web2", 8080, apiBack)) << agent_->log();
  EXPECT_EQ(fetch("other", 8080, apiFront), "");
  EXPECT_EQ(fetch("other2", 8080, apiBack), "");
  EXPECT_EQ(fetch("web", 8081, apiFront), "");

  // Each network's DEL takes its attachment; the endpoint goes with the last.
  podman_->remove("api");
  EXPECT_FALSE(endpoint("api")) << status().dump();
  service.stop(10);
}

}  // namespace
}  // namespace bulkhead
