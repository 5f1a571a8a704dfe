// bulkhead-cni under a real CNI runtime: podman (CNI backend, runc) with a private configuration
// chains the built plugin after the reference bridge plugin. Without an agent, failurePolicy
// open lets containers start and talk, closed stops them cleanly; with a stand-in agent (a real
// ApiServer in this process), ADD and `podman rm` reach it as attach and detach.
#include "tests/integration/podman_cni.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "tests/integration/lab.h"
#include "tests/support/fake_agent.h"

namespace bulkhead::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Set in the re-executed copy of this binary that holds a harness until it is killed.
constexpr const char* kHoldEnv = "BULKHEAD_PODMAN_HOLD";

std::string cniPlugin() {
  return std::string(BULKHEAD_BINARY_DIR) + "/bulkhead-cni";
}

std::vector<std::string> podmanNetns() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/run/netns", error)) {
    if (entry.path().filename().string().starts_with("netns-")) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

class PodmanCniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string reason = PodmanCni::unavailable(cniPlugin()); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
    podman_ = std::make_unique<PodmanCni>(cniPlugin());
    const auto started = std::chrono::steady_clock::now();
    podman_->loadImage();
    std::cout << "image imported in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count()
              << " ms" << std::endl;
  }

  std::string socketPath() const { return podman_->dir().file("agent.sock"); }

  std::unique_ptr<PodmanCni> podman_;
};

TEST_F(PodmanCniTest, FailOpenWithoutAgentContainersStartAndReachEachOther) {
  const std::string network = podman_->name("-open");
  const std::string bridge = podman_->name("o");
  // Nothing listens on the socket: every ADD finds the agent unreachable.
  podman_->writeNetwork(network, bridge, "10.216.1.0/24", {{"tier", "shop"}}, socketPath(), "open");

  const auto started = std::chrono::steady_clock::now();
  const std::string webId = podman_->run("web", network);
  std::cout << "podman run (open, no agent) took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count()
            << " ms" << std::endl;
  podman_->run("api", network);
  EXPECT_EQ(podman_->state("web"), "running");

  const std::string webIp = podman_->ip("web");
  const std::string apiIp = podman_->ip("api");
  EXPECT_TRUE(webIp.starts_with("10.216.1.")) << webIp;
  EXPECT_TRUE(apiIp.starts_with("10.216.1.")) << apiIp;
  EXPECT_NE(webIp, apiIp);
  EXPECT_EQ(podman_->leases(network),
            (std::vector<std::string>{std::min(webIp, apiIp), std::max(webIp, apiIp)}));

  const std::string webVeth = podman_->hostVethOf("web");
  ASSERT_FALSE(webVeth.empty());
  EXPECT_TRUE(contains(PodmanCni::bridgePorts(bridge), webVeth)) << webVeth;
  EXPECT_EQ(PodmanCni::bridgePorts(bridge).size(), 2u);

  const auto ping = [&](const std::string& from, const std::string& to) {
    return podman_->exec(from, {"ping", "-c", "1", "-W", "2", to}, 10);
  };
  const CommandResult webToApi = ping("web", apiIp);
  EXPECT_EQ(webToApi.exitCode, 0) << webToApi.out << webToApi.err;
  const CommandResult apiToWeb = ping("api", webIp);
  EXPECT_EQ(apiToWeb.exitCode, 0) << apiToWeb.out << apiToWeb.err;

  // Removing a container takes its veth, its lease and CNI's cached result with it; DEL finds
  // no agent either, which is success.
  podman_->remove("web");
  EXPECT_EQ(podman_->state("web"), "");
  EXPECT_FALSE(fs::exists("/sys/class/net/" + webVeth)) << webVeth;
  EXPECT_EQ(podman_->leases(network), std::vector<std::string>{apiIp});
  for (const auto& file : PodmanCni::cniCacheFiles(network)) {
    EXPECT_EQ(file.find(webId), std::string::npos) << file;
  }
}

TEST_F(PodmanCniTest, FailClosedWithoutAgentRunFailsAndLeavesNothing) {
  const std::string network = podman_->name("-closed");
  const std::string bridge = podman_->name("c");
  podman_->writeNetwork(network, bridge, "10.216.2.0/24", {}, socketPath(), "closed");
  const std::vector<std::string> netnsBefore = podmanNetns();

  // --rm: podman removes the container it could not start.
  const auto started = std::chrono::steady_clock::now();
  const CommandResult removed = podman_->tryRun("web", network, {"--rm"});
  std::cout << "podman run (closed, no agent) failed in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count()
            << " ms" << std::endl;
  EXPECT_NE(removed.exitCode, 0) << removed.out;
  EXPECT_FALSE(removed.timedOut);
  const std::string error = removed.err + removed.out;
  EXPECT_NE(error.find("bulkhead-cni"), std::string::npos) << error;
  EXPECT_NE(error.find("the bulkhead agent is not reachable"), std::string::npos) << error;
  EXPECT_NE(error.find("failurePolicy is closed"), std::string::npos) << error;
  EXPECT_EQ(podman_->state("web"), "");

  // Without --rm podman keeps the container it created, never started and without network.
  const CommandResult kept = podman_->tryRun("db", network);
  EXPECT_NE(kept.exitCode, 0) << kept.out;
  EXPECT_NE((kept.err + kept.out).find("not reachable"), std::string::npos) << kept.err;
  EXPECT_EQ(podman_->state("db"), "created");
  EXPECT_EQ(podman_->ip("db"), "");

  // The failed ADD was undone by podman's DEL: no veth on the bridge, no lease, no cached
  // result, no network namespace.
  EXPECT_TRUE(PodmanCni::bridgePorts(bridge).empty());
  EXPECT_TRUE(podman_->leases(network).empty());
  EXPECT_TRUE(PodmanCni::cniCacheFiles(network).empty());
  EXPECT_EQ(podmanNetns(), netnsBefore);
  podman_->remove("db");
  EXPECT_EQ(podman_->state("db"), "");
}

TEST_F(PodmanCniTest, AddAttachesAndRemoveDetachesAtTheAgent) {
  FakeAgent agent(socketPath());
  const std::string network = podman_->name("-agent");
  const std::string bridge = podman_->name("a");
  podman_->writeNetwork(network, bridge, "10.216.3.0/24", {{"tier", "web"}}, socketPath(),
                        "closed");

  podman_->run("web", network);
  // ADD runs before `podman run` returns: the attach is already there.
  const auto attaches = agent.requests("attach");
  ASSERT_EQ(attaches.size(), 1u);
  const json endpoint = attaches[0].body["endpoint"];
  const std::string veth = podman_->hostVethOf("web");
  EXPECT_EQ(endpoint["name"], "web") << endpoint.dump();
  EXPECT_EQ(endpoint["interface"], veth) << endpoint.dump();
  EXPECT_TRUE(attaches[0].interfaceExisted) << endpoint.dump();
  EXPECT_TRUE(contains(PodmanCni::bridgePorts(bridge), veth));
  EXPECT_EQ(endpoint["ips"], json::array({podman_->ip("web")})) << endpoint.dump();
  EXPECT_EQ(endpoint["macs"], json::array({podman_->mac("web")})) << endpoint.dump();
  EXPECT_EQ(endpoint["networks"], json::array({network})) << endpoint.dump();
  EXPECT_EQ(endpoint["labels"].value("tier", ""), "web") << endpoint.dump();
  EXPECT_TRUE(agent.requests("detach").empty());

  podman_->remove("web");
  ASSERT_TRUE(waitFor([&] { return !agent.requests("detach").empty(); }, 10));
  const auto detaches = agent.requests("detach");
  // A second DEL (conmon's cleanup racing `podman rm`) would be harmless: the agent answers
  // "no endpoint named", which the plugin takes as success. Only the name matters.
  for (const auto& detach : detaches) {
    EXPECT_EQ(detach.body.value("name", ""), "web") << detach.body.dump();
  }
  EXPECT_FALSE(fs::exists("/sys/class/net/" + veth)) << veth;
}

// Run by the next test in a copy of this binary, never on its own: sets up a harness with a
// running container, reports its names, and sleeps until the parent kills it (bounded, in case
// the parent dies first).
TEST(PodmanCniHold, DISABLED_HoldHarnessUntilKilled) {
  if (std::getenv(kHoldEnv) == nullptr) {
    GTEST_SKIP() << "helper for the kill test; set " << kHoldEnv;
  }
  PodmanCni podman(cniPlugin());
  podman.loadImage();
  const std::string bridge = podman.name("k");
  podman.writeNetwork(podman.name("-killed"), bridge, "10.216.4.0/24", {},
                      podman.dir().file("agent.sock"), "open");
  podman.run("held", podman.name("-killed"));
  std::cout << "PODMAN READY bridge=" << bridge << " veth=" << podman.hostVethOf("held")
            << " dir=" << podman.dir().path().string() << std::endl;
  std::this_thread::sleep_for(std::chrono::seconds(60));
  FAIL() << "nobody killed the held harness";
}

// A field "key=value" from the line the held harness prints.
std::string field(const std::string& log, const std::string& key) {
  const auto start = log.find(key + "=");
  if (start == std::string::npos) {
    return "";
  }
  const auto value = start + key.size() + 1;
  return log.substr(value, log.find_first_of(" \n", value) - value);
}

TEST(PodmanCniSweep, SigkilledHarnessIsSweptByTheNext) {
  if (const std::string reason = PodmanCni::unavailable(cniPlugin()); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  Lab parent;  // only to run the child; it creates nothing on the machine
  setenv(kHoldEnv, "1", 1);
  Process& child =
      parent.spawn(nullptr,
                   {fs::read_symlink("/proc/self/exe").string(), "--gtest_also_run_disabled_tests",
                    "--gtest_filter=PodmanCniHold.DISABLED_HoldHarnessUntilKilled"},
                   "held.log");
  unsetenv(kHoldEnv);
  ASSERT_TRUE(child.waitForLog("PODMAN READY", 60)) << child.log();
  const std::string log = child.log();
  const std::string bridge = field(log, "bridge");
  const std::string veth = field(log, "veth");
  const std::string dir = field(log, "dir");
  ASSERT_FALSE(veth.empty()) << log;

  kill(child.pid(), SIGKILL);  // our own, unreaped child: ctest's timeout does the same
  child.stop(1);
  // Nothing could run in the child: its container still runs under conmon, on its bridge.
  EXPECT_TRUE(fs::exists("/sys/class/net/" + veth)) << veth;
  EXPECT_TRUE(fs::exists("/sys/class/net/" + bridge)) << bridge;
  EXPECT_TRUE(fs::exists(dir)) << dir;

  sweepStalePodmanHarnesses();  // what the next harness does first
  EXPECT_FALSE(fs::exists("/sys/class/net/" + veth)) << veth;
  EXPECT_FALSE(fs::exists("/sys/class/net/" + bridge)) << bridge;
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

}  // namespace
}  // namespace bulkhead::testing
