// bulkheadd on the wire with a real Docker engine at the scale the per-veth ports could not
// reach: every container of every network (one created after the agent) behind one trunk, the
// policy held on each network with real clients and servers; and no moment at a container's
// start when anything passes unjudged, counted at the receivers.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/client.h"
#include "tests/integration/docker_engine.h"
#include "tests/integration/docker_suite.h"
#include "tests/integration/lab.h"
#include "tests/integration/live_agent.h"
#include "tests/integration/web_api_policy.h"
#include "tests/support/binaries.h"
#include "tests/support/run_command.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::DockerEngine;

using testing::builtBinary;

// api takes HTTP from web on 8080 and ICMP from web; the host may reach it on 8082 only. An
// intruder may send nothing to anyone, the host included.
const std::string Policy = testing::webToApiPolicy(
    "    - fromEndpoints: [{matchLabels: {app: web}}]\n"
    "      toPorts: [{ports: [{protocol: ICMP}]}]\n"
    "    - fromEntities: [host]\n"
    "      toPorts: [{ports: [{port: 8082, protocol: TCP}]}]\n",
    "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: intruder}\n"
    "spec:\n  endpointSelector: {matchLabels: {app: intruder}}\n  egress: []\n");

const std::vector<std::string> ApiCommand = testing::apiServerCommand({8080, 8081, 8082});

class DockerWireTest : public testing::DockerSuite {
 protected:
  void SetUp() override {
    DockerSuite::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    if (const auto tool = testing::missingTool({"tcpdump", "nsenter"}); !tool.empty()) {
      GTEST_SKIP() << "needs '" << tool << "' (scripts/setup.sh installs it)";
    }
    lab_ = std::make_unique<testing::Lab>();
    policyPath_ = lab_->dir().write("policy.yaml", Policy);
    socket_ = lab_->dir().file("api.sock");
    violationLog_ = lab_->dir().file("violations.jsonl");
  }

  void TearDown() override {
    if (agent_ != nullptr) {
      agent_->stop(10);
      EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
    }
    if (engine_ != nullptr) {
      const auto all = engine_->docker({"ps", "--all", "--quiet"}, 30);
      std::vector<std::string> remove = {"rm", "--force"};
      std::istringstream ids(all.out);
      for (std::string id; ids >> id;) {
        remove.push_back(id);
      }
      if (remove.size() > 2) {
        engine_->docker(remove, 120);
      }
      for (const auto& name : networks_) {
        try {
          engine_->removeNetwork(name);
        } catch (const std::exception&) {
        }
      }
    }
  }

  const testing::DockerNetwork& network(const std::string& name, const std::string& subnet) {
    const auto& made = engine_->createNetwork(name, subnet, name);
    networks_.push_back(made.name);
    return made;
  }

  void startAgent() {
    // Every network of the engine: no `networks` list.
    const std::string config =
        "policy: " + policyPath_ + "\napiSocket: " + socket_ + "\nviolationLog: " + violationLog_ +
        "\ninstance: " + lab_->agentInstance() + "\nstateDirectory: " + lab_->dir().file("state") +
        "\ndocker: {socket: " + engine_->socket() + "}\n" +
        "hugepages: off\nmemoryMegabytes: 512\n"
        "violationIntervalSeconds: 1\nlogLevel: info\n";
    const std::string path = lab_->dir().write("bulkhead.yaml", config);
    agent_ = &lab_->spawn(nullptr, {builtBinary("bulkheadd"), "--config", path}, "agent.log");
    ASSERT_TRUE(agent_->waitForLog("bulkheadd ready", 30)) << agent_->log();
  }

  json status() {
    std::string error;
    const json reply = api::callApi(socket_, {{"command", "status"}}, &error);
    return reply.is_null() ? json::object() : reply;
  }

  size_t endpointCount() { return status().value("endpoints", json::array()).size(); }

  bool protects(const std::string& bridge) {
    for (const auto& segment : status().value("segments", json::array())) {
      if (segment["bridge"] == bridge && !segment.value("uplink", "").empty()) {
        return true;
      }
    }
    return false;
  }

  std::string fetch(const std::string& from, const std::string& ip, int port) {
    const auto result = engine_->exec(from,
                                      {"timeout", "4", "wget", "-q", "-O", "-",
                                       "http://" + ip + ":" + std::to_string(port) + "/"},
                                      15);
    return result.exitCode == 0 ? result.out : "";
  }

  bool reaches(const std::string& from, const std::string& ip, int port) {
    return testing::waitFor(
        [&] { return fetch(from, ip, port).find("hello-from-api") != std::string::npos; }, 10);
  }

  bool violationFrom(const std::string& source, const std::string& destination) {
    return testing::awaitViolation(violationLog_,
                                   [&](const json& line) {
                                     return line["src"]["endpoint"] == source &&
                                            line["dst"]["endpoint"] == destination;
                                   })
        .has_value();
  }

  std::unique_ptr<testing::Lab> lab_;
  std::vector<std::string> networks_;
  testing::Process* agent_ = nullptr;
  std::string policyPath_;
  std::string socket_;
  std::string violationLog_;
};

TEST_F(DockerWireTest, NinetyContainersOnThreeNetworksAreEveryOneAnEndpoint) {
  constexpr int PerNetwork = 30;
  std::vector<const testing::DockerNetwork*> nets = {&network("wa", "10.215.1.0/24"),
                                                     &network("wb", "10.215.2.0/24")};
  startAgent();
  // Created while the agent runs: followed as well, without being named anywhere.
  nets.push_back(&network("wc", "10.215.3.0/24"));
  ASSERT_TRUE(testing::waitFor([&] { return protects(nets[2]->bridge); }, 10)) << status().dump();

  // Containers started from three threads at once, as a compose project would.
  std::vector<std::thread> starters;
  std::atomic<int> failures{0};
  for (size_t n = 0; n < nets.size(); ++n) {
    starters.emplace_back([&, n] {
      const std::string tag = engine_->prefix() + "-" + std::to_string(n);
      try {
        engine_->run(tag + "-api", {{"app", "api"}}, nets[n]->name, {}, ApiCommand);
        engine_->run(tag + "-web", {{"app", "web"}}, nets[n]->name);
        engine_->run(tag + "-other", {{"app", "other"}}, nets[n]->name);
        for (int i = 3; i < PerNetwork; ++i) {
          engine_->run(tag + "-f" + std::to_string(i), {{"app", "filler"}}, nets[n]->name);
        }
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& starter : starters) {
    starter.join();
  }
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(testing::waitFor([&] { return endpointCount() == 3u * PerNetwork; }, 60))
      << endpointCount() << " endpoints\n"
      << agent_->log();
  const json now = status();
  for (const auto& endpoint : now["endpoints"]) {
    EXPECT_EQ(endpoint["source"], "docker");
    EXPECT_FALSE(endpoint.value("labelsPending", false));
  }
  EXPECT_GE(now["wire"]["tagsInUse"].get<int>(), 3 * PerNetwork + 3);

  for (size_t n = 0; n < nets.size(); ++n) {
    const std::string tag = engine_->prefix() + "-" + std::to_string(n);
    const std::string apiIp = engine_->ip(tag + "-api", nets[n]->name);
    EXPECT_TRUE(reaches(tag + "-web", apiIp, 8080)) << nets[n]->name << "\n" << agent_->log();
    EXPECT_EQ(fetch(tag + "-web", apiIp, 8081), "") << nets[n]->name;
    EXPECT_EQ(fetch(tag + "-other", apiIp, 8080), "") << nets[n]->name;
    EXPECT_TRUE(violationFrom(tag + "-other", tag + "-api")) << nets[n]->name;
  }
}

// A receiver on `interface` inside the network namespace of process `pid` (0: the host's):
// tcpdump counting what arrives from `source` (an address), the frames it saw written to a file.
testing::Process& receiver(testing::Lab& lab, int pid, const std::string& interface,
                           const std::string& source, const std::string& log) {
  std::vector<std::string> argv;
  if (pid != 0) {
    argv = {testing::findOnPath("nsenter"), "--net=/proc/" + std::to_string(pid) + "/ns/net"};
  }
  argv.insert(argv.end(), {testing::findOnPath("tcpdump"), "-l", "-nn", "-Q", "in", "-i", interface,
                           "src", "host", source});
  return lab.spawn(nullptr, argv, log);
}

size_t packetsSeen(const testing::Process& capture) {
  std::istringstream lines(capture.log());
  size_t count = 0;
  for (std::string line; std::getline(lines, line);) {
    count += line.find(" IP ") != std::string::npos;
  }
  return count;
}

TEST_F(DockerWireTest, AForbiddenContainerGetsNothingThroughFromItsFirstInstant) {
  const auto& net = network("wn", "10.215.9.0/24");
  startAgent();
  const std::string api = engine_->prefix() + "-api";
  engine_->run(api, {{"app", "api"}}, net.name, {}, ApiCommand);
  const std::string apiIp = engine_->ip(api, net.name);
  const std::string gateway = "10.215.9.1";
  const int apiPid = std::stoi(engine_->docker({"inspect", "--format", "{{.State.Pid}}", api}).out);
  // The intruder always gets the same address, so that the receivers can count it alone.
  const std::string intruderIp = "10.215.9.200";
  auto& atApi = receiver(*lab_, apiPid, "eth0", intruderIp, "at-api.log");
  auto& atHost = receiver(*lab_, 0, net.bridge, intruderIp, "at-host.log");
  ASSERT_TRUE(atApi.waitForLog("listening on", 10)) << atApi.log();
  ASSERT_TRUE(atHost.waitForLog("listening on", 10)) << atHost.log();

  // From its PID 1's first instruction: pings and TCP connects to api and to the host, in a
  // loop, until it is removed.
  const std::vector<std::string> knock = {
      "sh", "-c",
      "while true; do ping -c 1 -W 1 " + apiIp + " & ping -c 1 -W 1 " + gateway + " & nc -w 1 " +
          apiIp + " 8080 </dev/null & nc -w 1 " + gateway + " 9 </dev/null; done"};
  const std::string intruder = engine_->prefix() + "-intruder";
  for (int start = 0; start < 20; ++start) {
    engine_->run(intruder, {{"app", "intruder"}}, net.name, {"--ip", intruderIp}, knock);
    // Judged, not just dropped somewhere: the agent attached it and logs what it tried.
    std::this_thread::sleep_for(std::chrono::milliseconds(start == 0 ? 1500 : 300));
    engine_->remove(intruder);
  }
  EXPECT_TRUE(violationFrom(intruder, api)) << agent_->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(packetsSeen(atApi), 0u) << atApi.log();
  EXPECT_EQ(packetsSeen(atHost), 0u) << atHost.log();
  // A control with the same address and loop that the policy lets ping api and reach the host:
  // the receivers do count it, so their zeros above are zeros.
  engine_->run(intruder, {{"app", "web"}}, net.name, {"--ip", intruderIp}, knock);
  EXPECT_TRUE(testing::waitFor([&] { return packetsSeen(atApi) > 0; }, 10)) << atApi.log();
  EXPECT_TRUE(testing::waitFor([&] { return packetsSeen(atHost) > 0; }, 10)) << atHost.log();
  engine_->remove(intruder);
}

TEST_F(DockerWireTest, TheHostReachesAContainerOnlyThroughTheFastPath) {
  const auto& net = network("wh", "10.215.10.0/24");
  startAgent();
  const std::string api = engine_->prefix() + "-api";
  engine_->run(api, {{"app", "api"}}, net.name, {}, ApiCommand);
  ASSERT_TRUE(testing::waitFor([&] { return endpointCount() == 1; }, 15)) << agent_->log();
  const std::string apiIp = engine_->ip(api, net.name);
  const auto fromHost = [&](int port) {
    return testing::runCommand({testing::findOnPath("curl"), "-s", "--max-time", "3",
                                "http://" + apiIp + ":" + std::to_string(port) + "/"},
                               10)
        .out;
  };
  // The host's own HTTP to api: 8082 is allowed to the entity host, 8081 is not.
  EXPECT_TRUE(testing::waitFor(
      [&] { return fromHost(8082).find("hello-from-api") != std::string::npos; }, 10))
      << agent_->log();
  EXPECT_EQ(fromHost(8081), "");
  EXPECT_TRUE(testing::awaitViolation(violationLog_,
                                      [&](const json& line) {
                                        return line["src"]["endpoint"] == "host" &&
                                               line["dst"]["endpoint"] == api &&
                                               line["dst"]["port"] == 8081;
                                      })
                  .has_value())
      << agent_->log();
}

TEST_F(DockerWireTest, AKilledAgentCutsEveryoneOffUnderTrafficAndARestartRecoversThemAll) {
  const auto& net = network("wk", "10.215.11.0/24");
  startAgent();
  const std::string api = engine_->prefix() + "-api";
  engine_->run(api, {{"app", "api"}}, net.name, {}, ApiCommand);
  const std::string apiIp = engine_->ip(api, net.name);
  const int apiPid = std::stoi(engine_->docker({"inspect", "--format", "{{.State.Pid}}", api}).out);
  const std::string webIp = "10.215.11.100";
  auto& atApi = receiver(*lab_, apiPid, "eth0", webIp, "at-api.log");
  ASSERT_TRUE(atApi.waitForLog("listening on", 10)) << atApi.log();
  // web pings api ten times a second, allowed, for the whole test.
  const std::string web = engine_->prefix() + "-web";
  engine_->run(web, {{"app", "web"}}, net.name, {"--ip", webIp},
               {"sh", "-c", "while true; do ping -c 1 -W 1 " + apiIp + "; sleep 0.1; done"});
  ASSERT_TRUE(testing::waitFor([&] { return packetsSeen(atApi) > 5; }, 15)) << agent_->log();
  const json before = status();

  ::kill(agent_->pid(), SIGKILL);
  agent_->stop(10);
  agent_ = nullptr;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // what was in flight lands
  const size_t atKill = packetsSeen(atApi);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Down for 3 s under 10 pings a second: not one reached api.
  EXPECT_EQ(packetsSeen(atApi), atKill) << atApi.log();
  EXPECT_EQ(fetch(web, apiIp, 8080), "");

  startAgent();
  EXPECT_TRUE(agent_->waitForLog("did not stop cleanly", 5)) << agent_->log();
  ASSERT_TRUE(testing::waitFor([&] { return endpointCount() == 2; }, 15)) << agent_->log();
  EXPECT_TRUE(testing::waitFor([&] { return packetsSeen(atApi) > atKill; }, 10)) << agent_->log();
  EXPECT_TRUE(reaches(web, apiIp, 8080)) << agent_->log();
  EXPECT_EQ(fetch(web, apiIp, 8081), "");
  // The same identities as before the crash.
  std::map<std::string, int> identities;
  for (const auto& endpoint : before["endpoints"]) {
    identities[endpoint["name"]] = endpoint["identity"];
  }
  for (const auto& endpoint : status()["endpoints"]) {
    EXPECT_EQ(identities[endpoint["name"]], endpoint["identity"].get<int>()) << endpoint.dump();
  }
  atApi.stop(5);
}

}  // namespace
}  // namespace bulkhead
