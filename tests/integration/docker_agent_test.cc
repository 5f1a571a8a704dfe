// bulkheadd following a real Docker engine: containers become endpoints by their labels as the
// engine runs them, the policy holds between them with real traffic, and restarts of containers,
// of the engine and of the agent are followed. The engine is a private dockerd
// (tests/integration/docker_engine.h) shared by the suite; each test has its own network.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "api/client.h"
#include "tests/integration/docker_engine.h"
#include "tests/integration/docker_suite.h"
#include "tests/integration/host_tools.h"
#include "tests/integration/lab.h"
#include "tests/integration/web_api_policy.h"
#include "tests/support/binaries.h"
#include "tests/support/run_command.h"
#include "wire/quarantine.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::DockerEngine;

using testing::builtBinary;

// api takes HTTP from web on 8080 and pings from web; nothing else reaches it.
const std::string Policy = testing::webToApiPolicy(
    "    - fromEndpoints: [{matchLabels: {app: web}}]\n"
    "      toPorts: [{ports: [{protocol: ICMP}]}]\n");

// busybox httpd on 8080 and 8081 (the one the policy does not open), then sleep as PID 1.
const std::vector<std::string> ApiCommand = testing::apiServerCommand({8080, 8081});

class DockerAgentTest : public testing::DockerSuite {
 protected:
  void SetUp() override {
    DockerSuite::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    lab_ = std::make_unique<testing::Lab>();
    static int networks = 0;
    const std::string index = std::to_string(++networks);
    network_ = &engine_->createNetwork("shop" + index, "10.214." + index + ".0/24", "shop" + index);
    policyPath_ = lab_->dir().write("policy.yaml", Policy);
    socket_ = lab_->dir().file("api.sock");
    violationLog_ = lab_->dir().file("violations.jsonl");
  }

  void TearDown() override {
    stopAgent();
    if (engine_ != nullptr) {
      for (const auto& name : containers_) {
        try {
          engine_->remove(name);
        } catch (const std::exception&) {
        }
      }
      if (network_ != nullptr) {
        try {
          engine_->removeNetwork(network_->name);
        } catch (const std::exception&) {
        }
      }
    }
  }

  std::string run(const std::string& role, const std::map<std::string, std::string>& labels,
                  const std::vector<std::string>& extra = {},
                  const std::vector<std::string>& command = {}) {
    const std::string name = engine_->prefix() + "-" + role;
    engine_->run(name, labels, network_->name, extra, command);
    containers_.push_back(name);
    return name;
  }

  void startAgent(const std::string& extraConfig = "") {
    const std::string config =
        "policy: " + policyPath_ + "\napiSocket: " + socket_ + "\nviolationLog: " + violationLog_ +
        "\ninstance: " + lab_->agentInstance() + "\nstateDirectory: " + lab_->dir().file("state") +
        "\ndocker: {socket: " + engine_->socket() + ", network: " + network_->name + "}\n" +
        "hugepages: off\nmemoryMegabytes: 512\n"
        "violationIntervalSeconds: 1\nlogLevel: debug\n" +
        extraConfig;
    const std::string path = lab_->dir().write("bulkhead.yaml", config);
    agent_ = &lab_->spawn(nullptr, {builtBinary("bulkheadd"), "--config", path},
                          "agent" + std::to_string(++agentStarts_) + ".log");
    ASSERT_TRUE(agent_->waitForLog("bulkheadd ready", 30)) << agent_->log();
  }

  void stopAgent(int signal = SIGTERM) {
    if (agent_ == nullptr) {
      return;
    }
    if (signal != SIGTERM) {
      ::kill(agent_->pid(), signal);
      testing::waitFor([&] { return !agent_->running(); }, 10);
    }
    agent_->stop(10);
    if (signal == SIGTERM) {
      // A clean exit, sanitizers included (a leak or an error report changes the code).
      EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
    }
    agent_ = nullptr;
  }

  json status() {
    std::string error;
    const json reply = api::callApi(socket_, {{"command", "status"}}, &error);
    return reply.is_null() ? json::object() : reply;
  }

  // The endpoint the agent shows for `container`, once it is attached on the container's current
  // host veth (a restarted container has a new one).
  std::optional<json> endpointOf(const std::string& container) {
    std::string veth;
    try {
      veth = engine_->hostVethOf(container);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    for (const auto& endpoint : status().value("endpoints", json::array())) {
      if (endpoint["name"] == container && endpoint["interface"] == veth) {
        return endpoint;
      }
    }
    return std::nullopt;
  }

  ::testing::AssertionResult attached(const std::string& container, int timeoutSeconds = 15) {
    if (testing::waitFor([&] { return endpointOf(container).has_value(); }, timeoutSeconds)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << container << " was not attached within " << timeoutSeconds
           << " s; status: " << status().dump() << "\nagent log:\n"
           << (agent_ ? agent_->log() : "(no agent)");
  }

  bool listed(const std::string& container) {
    for (const auto& endpoint : status().value("endpoints", json::array())) {
      if (endpoint["name"] == container) {
        return true;
      }
    }
    return false;
  }

  // Whether the agent reaches `bridge` through an uplink of its own.
  bool hasUplink(const std::string& bridge) {
    for (const auto& segment : status().value("segments", json::array())) {
      if (segment["bridge"] == bridge && !segment.value("uplink", "").empty()) {
        return true;
      }
    }
    return false;
  }

  // The page api serves, fetched from `from` (busybox wget, bounded by busybox timeout).
  std::string fetch(const std::string& from, const std::string& to, int port) {
    const auto result = engine_->exec(
        from,
        {"timeout", "4", "wget", "-q", "-O", "-",
         "http://" + engine_->ip(to, network_->name) + ":" + std::to_string(port) + "/"},
        15);
    return result.exitCode == 0 ? result.out : "";
  }

  // Whether `from` reaches api's HTTP, retried briefly: ARP and the agent's first packets.
  bool reaches(const std::string& from, const std::string& to, int port, int timeoutSeconds = 10) {
    return testing::waitFor(
        [&] { return fetch(from, to, port).find("hello-from-api") != std::string::npos; },
        timeoutSeconds);
  }

  std::vector<json> violations() {
    std::vector<json> out;
    std::ifstream in(violationLog_);
    for (std::string line; std::getline(in, line);) {
      out.push_back(json::parse(line));
    }
    return out;
  }

  std::unique_ptr<testing::Lab> lab_;
  const testing::DockerNetwork* network_ = nullptr;
  std::vector<std::string> containers_;
  testing::Process* agent_ = nullptr;
  int agentStarts_ = 0;
  std::string policyPath_;
  std::string socket_;
  std::string violationLog_;
};

TEST_F(DockerAgentTest, LabelledContainersGetIdentitiesAndThePolicyHoldsBetweenThem) {
  // One container runs before the agent (found by the resync), one starts after (an event).
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  startAgent();
  // A container may not name itself: bulkhead.io/ labels are the agent's to set.
  const std::string web = run("web", {{"app", "web"}, {"bulkhead.io/name", api}});
  const std::string other = run("other", {{"app", "other"}});
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  ASSERT_TRUE(attached(other));

  const json webEndpoint = *endpointOf(web);
  EXPECT_EQ(webEndpoint["source"], "docker");
  EXPECT_EQ(webEndpoint["bridge"], network_->bridge) << agent_->log();
  EXPECT_EQ(webEndpoint["labels"], json({{"app", "web"},
                                         {"bulkhead.io/name", web},
                                         {"bulkhead.io/image", DockerEngine::kImage},
                                         {"bulkhead.io/network." + network_->name, "true"}}));
  EXPECT_EQ(webEndpoint["ips"], json::array({engine_->ip(web, network_->name)}));
  EXPECT_NE(endpointOf(api)->at("identity"), webEndpoint["identity"]);
  // The operator's view: the CLI's table and status name where endpoints come from.
  const auto table =
      testing::runCommand({builtBinary("bulkhead"), "endpoints", "--socket", socket_}, 30);
  EXPECT_EQ(table.exitCode, 0) << table.err;
  EXPECT_NE(table.out.find(web + "\t" + webEndpoint["identity"].dump() + "\tdocker\t"),
            std::string::npos)
      << table.out;
  const auto text =
      testing::runCommand({builtBinary("bulkhead"), "status", "--socket", socket_}, 30);
  EXPECT_NE(text.out.find("docker: networks " + network_->name), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("connected (API "), std::string::npos) << text.out;
  // Still on the engine's bridge, as Docker put it: the patch panel takes its frames before the
  // bridge sees them, and the quarantine keeps the bridge from reaching it around the agent.
  std::error_code ignored;
  EXPECT_EQ(
      std::filesystem::read_symlink(
          "/sys/class/net/" + webEndpoint["interface"].get<std::string>() + "/master", ignored)
          .filename()
          .string(),
      network_->bridge);

  EXPECT_TRUE(reaches(web, api, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, api, 8081), "");    // a port the policy does not open
  EXPECT_EQ(fetch(other, api, 8080), "");  // a container the policy does not name
  const auto ping =
      engine_->exec(web, {"ping", "-c", "1", "-W", "2", engine_->ip(api, network_->name)});
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  EXPECT_TRUE(testing::waitFor(
      [&] {
        for (const auto& line : violations()) {
          if (line["src"]["endpoint"] == other && line["dst"]["endpoint"] == api) {
            return true;
          }
        }
        return false;
      },
      5))
      << "no violation line for other -> api";
  // The containers still reach their gateway (the bridge) through the agent's uplink.
  const std::string gateway = network_->subnet.substr(0, network_->subnet.rfind('.')) + ".1";
  const auto toGateway = engine_->exec(other, {"ping", "-c", "1", "-W", "2", gateway});
  EXPECT_EQ(toGateway.exitCode, 0) << toGateway.out << toGateway.err << agent_->log();
}

TEST_F(DockerAgentTest, AContainerTheAgentCannotProtectIsCutOffNotLeftOpen) {
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(web));
  // An endpoint attached through the API already holds the name the container will have.
  const std::string name = engine_->prefix() + "-taken";
  const auto& holder = lab_->addHost("holder", "10.214.99.2/24");
  std::string error;
  const json reply = api::callApi(
      socket_,
      {{"command", "attach"}, {"endpoint", {{"name", name}, {"interface", holder.hostIfname}}}},
      &error);
  ASSERT_EQ(reply.value("ok", false), true) << reply.dump() << error;

  engine_->run(name, {{"app", "web"}}, network_->name);
  containers_.push_back(name);
  ASSERT_TRUE(agent_->waitForLog("it stays cut off", 15)) << agent_->log();
  EXPECT_EQ(endpointOf(name), std::nullopt);  // the name still belongs to the API's endpoint
  const auto ping =
      engine_->exec(web, {"ping", "-c", "1", "-W", "2", engine_->ip(name, network_->name)});
  EXPECT_NE(ping.exitCode, 0) << ping.out;
}

TEST_F(DockerAgentTest, ARestartedContainerWithANewAddressKeepsItsPolicy) {
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  ASSERT_TRUE(reaches(web, api, 8080));
  const json before = *endpointOf(api);
  const std::string oldIp = engine_->ip(api, network_->name);

  engine_->stop(api);
  ASSERT_TRUE(testing::waitFor([&] { return !listed(api); }, 10)) << status().dump();
  // Another container takes api's address, so api comes back with a new one.
  run("squatter", {{"app", "squatter"}}, {"--ip", oldIp});
  engine_->restart(api);
  ASSERT_TRUE(attached(api));
  const json after = *endpointOf(api);
  EXPECT_NE(engine_->ip(api, network_->name), oldIp);
  EXPECT_NE(after["interface"], before["interface"]);
  EXPECT_EQ(after["identity"], before["identity"]);
  EXPECT_TRUE(reaches(web, api, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, api, 8081), "");
}

TEST_F(DockerAgentTest, AContainerStoppedAndRemovedLeavesNoPortVethOrFlow) {
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  ASSERT_TRUE(reaches(web, api, 8080));
  const std::string veth = endpointOf(api)->at("interface");
  // The flows tracked with `name` on either side (`ended`: those that ended lately instead).
  const auto flowsWith = [&](const std::string& name, bool ended = false) {
    std::string error;
    const json reply = api::callApi(socket_, {{"command", "flows"}}, &error);
    int count = 0;
    for (const auto& flow : reply.value("flows", json::array())) {
      count += (flow["src"]["endpoint"] == name || flow["dst"]["endpoint"] == name) &&
               flow.value("ended", false) == ended;
    }
    return count;
  };
  EXPECT_GT(flowsWith(api), 0);

  engine_->stop(api);
  engine_->remove(api);
  EXPECT_TRUE(testing::waitFor([&] { return !listed(api); }, 10)) << status().dump();
  EXPECT_FALSE(std::filesystem::exists("/sys/class/net/" + veth));
  EXPECT_TRUE(testing::waitFor([&] { return flowsWith(api) == 0; }, 5));
  // Gone from the table, kept in the history of ended flows, still under its name.
  EXPECT_GT(flowsWith(api, true), 0);
  EXPECT_EQ(status()["endpoints"].size(), 1u);  // web alone; the uplink is not an endpoint
}

TEST_F(DockerAgentTest, ANetworkMadeAgainGetsTheUplinkOnItsNewBridge) {
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(web));
  const std::string oldBridge = network_->bridge;
  EXPECT_TRUE(hasUplink(oldBridge)) << status().dump();

  engine_->remove(web);
  ASSERT_TRUE(testing::waitFor([&] { return status()["endpoints"].empty(); }, 10));
  const std::string shortName = network_->shortName;
  engine_->removeNetwork(network_->name);
  network_ = &engine_->createNetwork(shortName, "10.214.98.0/24", "again");
  ASSERT_NE(network_->bridge, oldBridge);

  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web2 = run("web2", {{"app", "web"}});
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web2));
  EXPECT_TRUE(hasUplink(network_->bridge)) << status().dump();
  EXPECT_FALSE(hasUplink(oldBridge)) << status().dump();
  EXPECT_TRUE(reaches(web2, api, 8080)) << agent_->log();
  const auto toGateway = engine_->exec(web2, {"ping", "-c", "1", "-W", "2", "10.214.98.1"});
  EXPECT_EQ(toGateway.exitCode, 0) << toGateway.out << agent_->log();
}

TEST_F(DockerAgentTest, AnEngineRestartIsFollowed) {
  const std::string api = run("api", {{"app", "api"}}, {"--restart=always"}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}}, {"--restart=always"});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  ASSERT_TRUE(reaches(web, api, 8080));

  engine_->stopEngine();
  // The engine stops its containers: their veths vanish and the agent lets go of them.
  EXPECT_TRUE(testing::waitFor([&] { return status()["endpoints"].empty(); }, 20))
      << status().dump();
  EXPECT_FALSE(status()["docker"]["connected"].get<bool>());
  engine_->startEngine();
  ASSERT_TRUE(attached(api, 30));
  ASSERT_TRUE(attached(web, 30));
  EXPECT_TRUE(status()["docker"]["connected"].get<bool>());
  EXPECT_TRUE(reaches(web, api, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, api, 8081), "");
  EXPECT_EQ(status()["endpoints"].size(), 2u);  // nothing twice
}

// dockerd crashing is not the containers stopping: while it is gone their traffic flows and is
// judged exactly as before, the agent keeps every endpoint and reconnects when the engine is back.
TEST_F(DockerAgentTest, ADockerdKilledUnderTrafficChangesNoVerdict) {
  const std::string api = run("api", {{"app", "api"}}, {"--restart=always"}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}}, {"--restart=always"});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  ASSERT_TRUE(reaches(web, api, 8080));

  // Two loops inside web, which outlive dockerd: one line per attempt, "ok"/"fail" for the port
  // the policy opens, "open"/"shut" for the one it does not. Read from the host through
  // /proc/PID/root, since `docker exec` needs the engine.
  const std::string base = "http://" + engine_->ip(api, network_->name);
  const auto loop = [&](const std::string& port, const std::string& yes, const std::string& no,
                        const std::string& file) {
    return "while :; do if timeout 2 wget -q -O - " + base + ":" + port +
           "/ 2>/dev/null | grep -q hello-from-api; then echo " + yes + "; else echo " + no +
           "; fi >> " + file + "; sleep 0.2; done";
  };
  ASSERT_EQ(engine_->docker({"exec", "-d", web, "sh", "-c", loop("8080", "ok", "fail", "/tmp/a")})
                .exitCode,
            0);
  ASSERT_EQ(engine_->docker({"exec", "-d", web, "sh", "-c", loop("8081", "open", "shut", "/tmp/d")})
                .exitCode,
            0);
  const auto pid = engine_->docker({"inspect", "-f", "{{.State.Pid}}", web});
  ASSERT_EQ(pid.exitCode, 0) << pid.out;
  const std::string root = "/proc/" + testing::trim(pid.out) + "/root";
  const auto count = [&](const std::string& file, const std::string& word) {
    std::ifstream in(root + file);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      n += line == word ? 1 : 0;
    }
    return n;
  };
  ASSERT_TRUE(testing::waitFor([&] { return count("/tmp/a", "ok") >= 3; }, 10));

  engine_->killEngine();
  EXPECT_TRUE(testing::waitFor([&] { return !status()["docker"]["connected"].get<bool>(); }, 10))
      << status().dump();
  const int okBefore = count("/tmp/a", "ok");
  const int shutBefore = count("/tmp/d", "shut");
  std::this_thread::sleep_for(std::chrono::seconds(6));
  EXPECT_TRUE(agent_->running()) << agent_->log();
  EXPECT_EQ(status()["endpoints"].size(), 2u) << status().dump();
  EXPECT_GE(count("/tmp/a", "ok") - okBefore, 10) << "allowed requests while dockerd was down";
  EXPECT_GE(count("/tmp/d", "shut") - shutBefore, 1) << "denied attempts while dockerd was down";
  EXPECT_EQ(count("/tmp/a", "fail"), 0) << "an allowed request failed";
  EXPECT_EQ(count("/tmp/d", "open"), 0) << "a denied request passed";

  // The engine comes back, stops the containers it finds running (no live-restore) and restarts
  // them: the agent follows on their new veths, the policy unchanged.
  engine_->startEngine();
  EXPECT_TRUE(testing::waitFor([&] { return status()["docker"]["connected"].get<bool>(); }, 30))
      << agent_->log();
  ASSERT_TRUE(attached(api, 30));
  ASSERT_TRUE(attached(web, 30));
  EXPECT_TRUE(reaches(web, api, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, api, 8081), "");
  EXPECT_EQ(status()["endpoints"].size(), 2u) << status().dump();
}

TEST_F(DockerAgentTest, AKilledAgentFailsClosedAndARestartRecoversEveryContainer) {
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  ASSERT_TRUE(reaches(web, api, 8080));
  const auto identity = endpointOf(api)->at("identity");

  stopAgent(SIGKILL);
  // Fail closed: the patch panel still takes the containers' frames into a trunk nobody reads,
  // and the quarantine keeps the bridge shut. Nothing passes, allowed or not.
  EXPECT_EQ(fetch(web, api, 8080), "");
  EXPECT_TRUE(wire::Quarantine::exists("bulkhead_" + lab_->agentInstance()));
  startAgent();
  EXPECT_TRUE(agent_->waitForLog("did not stop cleanly", 5)) << agent_->log();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  EXPECT_EQ(endpointOf(api)->at("identity"), identity);
  EXPECT_EQ(endpointOf(api)->at("bridge"), network_->bridge);
  EXPECT_TRUE(hasUplink(network_->bridge));
  EXPECT_TRUE(reaches(web, api, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, api, 8081), "");
}

TEST_F(DockerAgentTest, ACleanStopLeavesNothingInTheKernel) {
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  const std::string instance = lab_->agentInstance();
  const std::string veth = endpointOf(api)->at("interface");
  ASSERT_TRUE(std::filesystem::exists("/sys/fs/bpf/bulkhead/" + instance));

  stopAgent();
  EXPECT_FALSE(std::filesystem::exists("/sys/fs/bpf/bulkhead/" + instance));
  EXPECT_FALSE(wire::Quarantine::exists("bulkhead_" + instance));
  EXPECT_FALSE(std::filesystem::exists("/sys/class/net/" + instance + "-tk"));
  EXPECT_FALSE(std::filesystem::exists("/sys/class/net/" + instance + "-u1"));
  const auto filters = testing::runCommand({"tc", "filter", "show", "dev", veth, "ingress"}, 10);
  EXPECT_EQ(filters.out.find("bh_from_port"), std::string::npos) << filters.out;
  // Out of the path altogether: the containers talk on their bridge as Docker made it.
  EXPECT_TRUE(reaches(web, api, 8081)) << "unfiltered once no agent runs";
}

TEST_F(DockerAgentTest, FailOpenReleasesWhatACrashedAgentLeft) {
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}});
  startAgent("failOpen: true\n");
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  EXPECT_EQ(fetch(web, api, 8081), "");
  const std::string config = lab_->dir().file("bulkhead.yaml");
  stopAgent(SIGKILL);  // a crash: nobody removes anything...
  EXPECT_EQ(fetch(web, api, 8081), "");
  // ...until the service manager's ExecStopPost runs `bulkheadd --release --if-fail-open`.
  const auto released = testing::runCommand(
      {builtBinary("bulkheadd"), "--config", config, "--release", "--if-fail-open"}, 30);
  EXPECT_EQ(released.exitCode, 0) << released.out << released.err;
  EXPECT_TRUE(reaches(web, api, 8081)) << "unfiltered while no agent runs";
  EXPECT_FALSE(wire::Quarantine::exists("bulkhead_" + lab_->agentInstance()));
  startAgent("failOpen: true\n");
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  EXPECT_TRUE(reaches(web, api, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, api, 8081), "");
}

TEST_F(DockerAgentTest, WithoutFailOpenTheServiceManagersReleaseKeepsItClosed) {
  const std::string api = run("api", {{"app", "api"}}, {}, ApiCommand);
  const std::string web = run("web", {{"app", "web"}});
  startAgent();
  ASSERT_TRUE(attached(api));
  ASSERT_TRUE(attached(web));
  stopAgent(SIGKILL);
  const auto kept =
      testing::runCommand({builtBinary("bulkheadd"), "--config", lab_->dir().file("bulkhead.yaml"),
                           "--release", "--if-fail-open"},
                          30);
  EXPECT_EQ(kept.exitCode, 0) << kept.err;
  EXPECT_NE(kept.out.find("fail closed"), std::string::npos) << kept.out;
  EXPECT_EQ(fetch(web, api, 8080), "");
  EXPECT_TRUE(wire::Quarantine::exists("bulkhead_" + lab_->agentInstance()));
}

}  // namespace
}  // namespace bulkhead

namespace bulkhead {
namespace {

// A sample of the ported network-policy-api cases live, with containers: compose projects are
// the namespaces, their labels come from the agent's `namespaces`, and the admin tier's deny and
// allow and the baseline's deny hold on real traffic.
TEST_F(DockerAgentTest, AdminNetworkPolicyHoldsBetweenComposeProjects) {
  std::ofstream(policyPath_) << R"(apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: ingress-tcp}
spec:
  priority: 3
  subject: {namespaces: {matchLabels: {conformance-house: gryffindor}}}
  ingress:
    - name: deny-from-slytherin-at-8080
      action: Deny
      from: [{namespaces: {matchLabels: {conformance-house: slytherin}}}]
      ports: [{portNumber: {protocol: TCP, port: 8080}}]
    - name: allow-from-hufflepuff-at-8081
      action: Allow
      from: [{namespaces: {matchLabels: {conformance-house: hufflepuff}}}]
      ports: [{portNumber: {protocol: TCP, port: 8081}}]
    - name: slytherin-to-the-application
      action: Pass
      from: [{namespaces: {matchLabels: {conformance-house: slytherin}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {matchLabels: {conformance-house: gryffindor}}}
  ingress:
    - {name: deny-all, action: Deny, from: [{namespaces: {}}]}
)";
  startAgent(
      "namespaces:\n"
      "  gryffindor: {conformance-house: gryffindor}\n"
      "  slytherin: {conformance-house: slytherin}\n"
      "  hufflepuff: {conformance-house: hufflepuff}\n");
  const std::string harry =
      run("harry", {{"com.docker.compose.project", "gryffindor"}}, {}, ApiCommand);
  const std::string draco = run("draco", {{"com.docker.compose.project", "slytherin"}});
  const std::string cedric = run("cedric", {{"com.docker.compose.project", "hufflepuff"}});
  ASSERT_TRUE(attached(harry));
  ASSERT_TRUE(attached(draco));
  ASSERT_TRUE(attached(cedric));
  EXPECT_EQ(
      endpointOf(draco)->at("labels").value("bulkhead.io/namespace.labels.conformance-house", ""),
      "slytherin");

  EXPECT_TRUE(reaches(cedric, harry, 8081)) << "the admin tier allows it" << agent_->log();
  EXPECT_EQ(fetch(cedric, harry, 8080), "") << "the baseline denies it";
  EXPECT_EQ(fetch(draco, harry, 8080), "") << "the admin tier denies it";
  EXPECT_EQ(fetch(draco, harry, 8081), "") << "passed, and no application policy: the baseline";
  EXPECT_TRUE(testing::waitFor(
      [&] {
        std::set<std::string> rules;
        for (const auto& line : violations()) {
          if (line["dst"]["endpoint"] == harry) {
            rules.insert(line.value("rule", "") + " " + line["mismatch"].value("what", ""));
          }
        }
        return rules.contains("ingress-tcp/ingress/0 admin-deny") &&
               rules.contains("default/ingress/0 baseline-deny");
      },
      5))
      << "violation lines naming the admin and the baseline rule";
}

}  // namespace
}  // namespace bulkhead
