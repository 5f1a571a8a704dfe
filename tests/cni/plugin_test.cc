#include "cni/plugin.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "tests/support/fake_agent.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using nlohmann::json;

using testing::FakeAgent;

// What the reference bridge plugin hands on: the bridge, the host veth, the container's eth0.
// The names exist in no sysfs, so the rule has to work from the JSON alone.
nlohmann::ordered_json bridgeResult(const std::string& version = "1.0.0") {
  return nlohmann::ordered_json::parse(R"({
    "cniVersion": ")" + version + R"(",
    "interfaces": [
      {"name": "bh-test-br0", "mac": "aa:bb:cc:00:00:01"},
      {"name": "bh-veth7f3a", "mac": "aa:bb:cc:00:00:02"},
      {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/bh-test"}
    ],
    "ips": [
      {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
      {"address": "10.99.0.1/24", "interface": 0},
      {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2}
    ],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {}
  })");
}

// Members are public: the host-veth helper below drives the fixture from outside.
class CniPlugin : public ::testing::Test {
 public:
  CniPlugin() { options_.sysClassNet = (dir_.path() / "sys").string(); }

  std::string socket() const { return dir_.file("api.sock"); }

  nlohmann::ordered_json config(const std::string& version = "1.0.0") const {
    nlohmann::ordered_json conf = {{"cniVersion", version},
                                   {"name", "shop"},
                                   {"type", "bulkhead-cni"},
                                   {"agentSocket", socket()},
                                   {"labels", {{"app", "web"}, {"tier", "front"}}},
                                   {"runtimeConfig", json::object()},
                                   {"prevResult", bridgeResult(version)}};
    return conf;
  }

  cni::Environment env(const std::string& command) const {
    return {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", "3f2a9c1d7e4b5a6c8d9e0f1a2b3c4d5e"},
            {"CNI_NETNS", "/run/netns/bh-test"},
            {"CNI_IFNAME", "eth0"},
            {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web-1;K8S_POD_NAMESPACE=shop"},
            {"CNI_PATH", "/usr/lib/cni"}};
  }

  cni::Outcome run(const cni::Environment& environment, const nlohmann::ordered_json& conf) {
    return cni::run(environment, conf.dump(), options_);
  }

  testing::TempDir dir_;
  cni::Options options_;
};

json parsed(const cni::Outcome& outcome) {
  const json answer = json::parse(outcome.out, nullptr, false);
  EXPECT_FALSE(answer.is_discarded()) << outcome.out;
  return answer;
}

// A CNI error object with this code, a message containing `text`, and a failing exit.
void expectError(const cni::Outcome& outcome, int code, const std::string& text) {
  EXPECT_NE(outcome.exitCode, 0);
  const json error = parsed(outcome);
  EXPECT_EQ(error.value("code", 0), code) << outcome.out;
  EXPECT_TRUE(error.contains("cniVersion")) << outcome.out;
  const std::string all = error.value("msg", "") + " " + error.value("details", "");
  EXPECT_NE(all.find(text), std::string::npos) << outcome.out;
}

TEST_F(CniPlugin, VersionListsTheSupportedSpecs) {
  for (const std::string input : {"", R"({"cniVersion": "0.4.0"})"}) {
    const auto outcome = cni::run({{"CNI_COMMAND", "VERSION"}}, input, options_);
    EXPECT_EQ(outcome.exitCode, 0);
    EXPECT_EQ(parsed(outcome),
              json::parse(R"({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]})"));
  }
}

TEST_F(CniPlugin, MalformedStdinIsADecodeError) {
  expectError(cni::run(env("ADD"), "{\"cniVersion\": \"1.0.0\", ", options_), 6, "not valid JSON");
  expectError(cni::run(env("ADD"), "", options_), 6, "no network configuration");
  expectError(cni::run(env("DEL"), "[1, 2]", options_), 6, "must be a JSON object");
}

TEST_F(CniPlugin, DeepOrOversizedStdinIsADecodeErrorNotACrash) {
  // 50,000 levels in prevResult (about 100 KB) overflowed the plugin's stack copying it.
  const std::string deep = R"({"cniVersion":"1.0.0","name":"n","prevResult":)" +
                           std::string(50000, '[') + std::string(50000, ']') + "}";
  for (const char* command : {"ADD", "DEL", "CHECK"}) {
    expectError(cni::run(env(command), deep, options_), 6, "not valid JSON");
  }
  const auto outcome = cni::run(env("ADD"), deep, options_);
  EXPECT_NE(outcome.out.find("nested deeper than 64"), std::string::npos) << outcome.out;
  const std::string huge =
      R"({"cniVersion":"1.0.0","name":")" + std::string(5 << 20, 'n') + R"("})";
  expectError(cni::run(env("ADD"), huge, options_), 6, "not valid JSON");
}

TEST_F(CniPlugin, BytesThatAreNotUtf8ComeBackEscaped) {
  cni::Environment environment = env("ADD");
  // Linux allows any byte but '/', ':' and white space in an interface name.
  environment["CNI_IFNAME"] = std::string("eth") + char(0xff) + "0";
  const auto outcome = run(environment, config());
  EXPECT_FALSE(json::parse(outcome.out, nullptr, false).is_discarded()) << outcome.out;
  EXPECT_NE(outcome.out.find(R"(eth\\xff0)"), std::string::npos) << outcome.out;
}

TEST_F(CniPlugin, AddWithoutPrevResultSaysItIsChained) {
  FakeAgent agent(socket());
  auto conf = config();
  conf.erase("prevResult");
  expectError(run(env("ADD"), conf), 7, "chained plugin");
  EXPECT_TRUE(agent.requests().empty());
}

TEST_F(CniPlugin, UnsupportedVersionsAreRefused) {
  for (const std::string version : {"0.3.1", "2.0.0"}) {
    auto conf = config();
    conf["cniVersion"] = version;
    const auto outcome = run(env("ADD"), conf);
    expectError(outcome, 1, "CNI version " + version + " is not supported");
    expectError(outcome, 1, "0.4.0 and 1.0.0");
  }
  auto conf = config();
  conf.erase("cniVersion");
  expectError(run(env("ADD"), conf), 7, "no cniVersion");
}

TEST_F(CniPlugin, MissingOrBadEnvironmentIsNamed) {
  auto environment = env("ADD");
  environment.erase("CNI_COMMAND");
  expectError(run(environment, config()), 4, "CNI_COMMAND is not set");
  expectError(run(env("RESTART"), config()), 4, "CNI_COMMAND 'RESTART' is not supported");

  environment = env("ADD");
  environment.erase("CNI_CONTAINERID");
  expectError(run(environment, config()), 4, "missing environment variable CNI_CONTAINERID");
  environment.erase("CNI_NETNS");
  expectError(run(environment, config()), 4, "CNI_CONTAINERID, CNI_NETNS");

  environment = env("ADD");
  environment["CNI_CONTAINERID"] = "-bad id";
  expectError(run(environment, config()), 4, "not a valid container ID");
  environment = env("ADD");
  environment["CNI_ARGS"] = "IgnoreUnknown=1;garbage";
  expectError(run(environment, config()), 4, "'garbage' is not KEY=VALUE");
}

TEST_F(CniPlugin, InvalidPluginKeysAreConfigErrors) {
  auto conf = config();
  conf["failurePolicy"] = "maybe";
  expectError(run(env("ADD"), conf), 7, "failurePolicy must be \"closed\" or \"open\"");
  conf = config();
  conf["labels"] = {{"app", 3}};
  expectError(run(env("ADD"), conf), 7, "label 'app'");
  conf = config();
  conf["agentSocket"] = "relative.sock";
  expectError(run(env("CHECK"), conf), 7, "agentSocket must be an absolute path");
  // A configuration broken since ADD must not block the container's teardown.
  conf = config();
  conf["labels"] = "app=web";
  const auto outcome = run(env("DEL"), conf);
  EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
}

TEST_F(CniPlugin, AgentDownFailsAddWhenClosed) {
  for (const bool explicitly : {false, true}) {
    auto conf = config();
    if (explicitly) {
      conf["failurePolicy"] = "closed";
    }
    const auto outcome = run(env("ADD"), conf);
    expectError(outcome, 11, "the bulkhead agent is not reachable");
    expectError(outcome, 11, "failurePolicy is closed");
  }
}

TEST_F(CniPlugin, AgentDownPassesPrevResultThroughWhenOpen) {
  for (const std::string version : {"1.0.0", "0.4.0"}) {
    auto conf = config(version);
    conf["failurePolicy"] = "open";
    const auto outcome = run(env("ADD"), conf);
    EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
    // Same keys in the same order: the runtime gets back exactly what the bridge plugin said.
    EXPECT_EQ(nlohmann::ordered_json::parse(outcome.out).dump(), bridgeResult(version).dump());
    EXPECT_NE(outcome.err.find("warning"), std::string::npos) << outcome.err;
    EXPECT_NE(outcome.err.find("'web-1' runs unprotected"), std::string::npos) << outcome.err;
  }
}

TEST_F(CniPlugin, DelSucceedsWithTheAgentDown) {
  const auto outcome = run(env("DEL"), config());
  EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
  EXPECT_EQ(outcome.out, "");
  // DEL needs neither the namespace nor a prevResult.
  auto environment = env("DEL");
  environment.erase("CNI_NETNS");
  auto conf = config();
  conf.erase("prevResult");
  EXPECT_EQ(run(environment, conf).exitCode, 0);
}

TEST_F(CniPlugin, AddAttachesTheHostVethAndPrintsPrevResult) {
  FakeAgent agent(socket());
  auto conf = config();
  conf["labels"]["bulkhead.io/pod-namespace"] = "configured";  // the runtime's value wins
  const auto outcome = run(env("ADD"), conf);
  ASSERT_EQ(outcome.exitCode, 0) << outcome.out;
  EXPECT_EQ(outcome.err, "");
  EXPECT_EQ(nlohmann::ordered_json::parse(outcome.out).dump(), bridgeResult().dump());
  const auto requests = agent.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0], json::parse(R"({
    "command": "attach",
    "endpoint": {
      "name": "web-1",
      "interface": "bh-veth7f3a",
      "labels": {"app": "web", "tier": "front", "bulkhead.io/pod-namespace": "shop"},
      "networks": ["shop"],
      "ips": ["10.88.0.5", "fd00::5"],
      "macs": ["0a:58:0a:58:00:05"],
      "bridge": "",
      "netns": "/run/netns/bh-test",
      "containerInterface": "eth0",
      "containerId": "3f2a9c1d7e4b5a6c8d9e0f1a2b3c4d5e"
    }
  })"));
}

TEST_F(CniPlugin, AddTellsTheAgentWhichBridgeTheVethWasOn) {
  FakeAgent agent(socket());
  auto conf = config();
  conf["bridge"] = "bh-test-br0";
  ASSERT_EQ(run(env("ADD"), conf).exitCode, 0);
  ASSERT_EQ(agent.requests().size(), 1u);
  EXPECT_EQ(agent.requests()[0]["endpoint"]["bridge"], "bh-test-br0");
  EXPECT_EQ(agent.requests()[0]["endpoint"]["interface"], "bh-veth7f3a");
}

TEST_F(CniPlugin, WithoutAPodNameTheEndpointIsTheShortContainerId) {
  FakeAgent agent(socket());
  auto environment = env("ADD");
  environment["CNI_ARGS"] = "IgnoreUnknown=1";
  ASSERT_EQ(run(environment, config()).exitCode, 0);
  const auto requests = agent.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["endpoint"]["name"], "3f2a9c1d7e4b");
  EXPECT_EQ(requests[0]["endpoint"]["labels"], json::parse(R"({"app": "web", "tier": "front"})"));
}

TEST_F(CniPlugin, AgentRefusalFailsAddWithItsMessage) {
  FakeAgent agent(socket());
  agent.refuseWith("interface 'bh-veth7f3a' already carries endpoint 'db'");
  const auto outcome = run(env("ADD"), config());
  expectError(outcome, 999, "interface 'bh-veth7f3a' already carries endpoint 'db'");
  expectError(outcome, 999, "refused endpoint 'web-1'");

  auto conf = config();
  conf["failurePolicy"] = "open";
  const auto open = run(env("ADD"), conf);
  EXPECT_EQ(open.exitCode, 0) << open.out;
  EXPECT_EQ(nlohmann::ordered_json::parse(open.out).dump(), bridgeResult().dump());
  EXPECT_NE(open.err.find("already carries endpoint 'db'"), std::string::npos) << open.err;
}

TEST_F(CniPlugin, DelDetachesAndIsIdempotent) {
  FakeAgent agent(socket());
  ASSERT_EQ(run(env("ADD"), config()).exitCode, 0);
  for (int round = 0; round < 2; ++round) {
    const auto outcome = run(env("DEL"), config());
    EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
    EXPECT_EQ(outcome.out, "");
  }
  const auto requests = agent.requests();
  ASSERT_EQ(requests.size(), 3u);
  // The interface this network gave the container: a container on two networks keeps the other.
  EXPECT_EQ(requests[1],
            json::parse(R"({"command": "detach", "name": "web-1", "interface": "eth0"})"));
  EXPECT_EQ(requests[2], requests[1]);

  agent.refuseWith("the agent is shutting down");
  expectError(run(env("DEL"), config()), 999, "could not detach 'web-1'");
}

TEST_F(CniPlugin, CheckAsksTheAgent) {
  FakeAgent agent(socket());
  expectError(run(env("CHECK"), config()), 999, "'web-1' is not attached");
  ASSERT_EQ(run(env("ADD"), config()).exitCode, 0);
  const auto outcome = run(env("CHECK"), config());
  EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(agent.requests().back(), json::parse(R"({"command": "status"})"));

  agent.attachByHand("web-1", "veth-other");
  expectError(run(env("CHECK"), config()), 999, "attached on 'veth-other', not on 'bh-veth7f3a'");
  auto conf = config();
  conf.erase("prevResult");
  expectError(run(env("CHECK"), conf), 7, "no prevResult");
}

TEST_F(CniPlugin, CheckWithTheAgentDownFollowsTheFailurePolicy) {
  expectError(run(env("CHECK"), config()), 11, "not reachable");
  auto conf = config();
  conf["failurePolicy"] = "open";
  const auto outcome = run(env("CHECK"), conf);
  EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
  EXPECT_EQ(outcome.out, "");
  EXPECT_NE(outcome.err.find("warning"), std::string::npos);
}

// The interface the agent is given, for a prevResult's interfaces and an optional `bridge` key.
std::string attachedInterface(CniPlugin& test, FakeAgent& agent, nlohmann::ordered_json interfaces,
                              const std::string& bridge = "") {
  auto conf = test.config();
  conf["prevResult"]["interfaces"] = std::move(interfaces);
  conf["prevResult"].erase("ips");
  if (!bridge.empty()) {
    conf["bridge"] = bridge;
  }
  const auto outcome = test.run(test.env("ADD"), conf);
  EXPECT_EQ(outcome.exitCode, 0) << outcome.out;
  const auto requests = agent.requests();
  if (outcome.exitCode != 0 || requests.empty()) {
    return "";
  }
  test.run(test.env("DEL"), conf);
  return requests.back()["endpoint"].value("interface", "");
}

class HostVethRule : public CniPlugin {};

TEST_F(HostVethRule, PrefersTheBridgeKeyThenSysfsThenTheLastListed) {
  FakeAgent agent(socket());
  const auto veth = nlohmann::ordered_json::parse(R"({"name": "vethab12"})");
  const auto bridge = nlohmann::ordered_json::parse(R"({"name": "cni9"})");
  const auto eth0 =
      nlohmann::ordered_json::parse(R"({"name": "eth0", "sandbox": "/run/netns/bh-test"})");
  // The bridge plugin's order: the last host interface is the veth.
  EXPECT_EQ(attachedInterface(*this, agent, {bridge, veth, eth0}), "vethab12");
  // ptp: only the veth.
  EXPECT_EQ(attachedInterface(*this, agent, {veth, eth0}), "vethab12");
  // Listed the other way round, the `bridge` key tells them apart...
  EXPECT_EQ(attachedInterface(*this, agent, {veth, bridge, eth0}, "cni9"), "vethab12");
  // ...and so does sysfs, where a bridge has a `bridge` directory.
  std::filesystem::create_directories(std::filesystem::path(options_.sysClassNet) / "cni9" /
                                      "bridge");
  std::filesystem::create_directories(std::filesystem::path(options_.sysClassNet) / "vethab12");
  EXPECT_EQ(attachedInterface(*this, agent, {veth, bridge, eth0}), "vethab12");
}

TEST_F(HostVethRule, AResultWithoutAHostInterfaceIsRefused) {
  FakeAgent agent(socket());
  auto conf = config();
  conf["prevResult"]["interfaces"] = nlohmann::ordered_json::parse(
      R"([{"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/bh-test"}])");
  expectError(run(env("ADD"), conf), 7, "no host-side veth for 'eth0'");
  conf = config();
  conf["prevResult"]["interfaces"][2]["name"] = "net1";
  expectError(run(env("ADD"), conf), 7, "no interface 'eth0' inside the container");
  EXPECT_TRUE(agent.requests().empty());
}

}  // namespace
}  // namespace bulkhead
