// Two hosts of one cluster on one machine (#14, "Done means"): a real etcd on loopback ports and
// two real agents, each the agent of its own "host" -- its containers behind its trunk and an
// uplink into a shared fabric namespace that routes between the two hosts' subnets. A policy
// allows web (host A) to api (host B) on 8080 HTTP; everything else to api is denied, by host B.
//
//   web 10.213.1.11, db 10.213.1.13 ── agent A ── fabric 10.213.1.1 | 10.213.2.1 ── agent B ──
//   api 10.213.2.12
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/integration/cluster_lab.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::ClusterLab;
using testing::Host;
using testing::Lab;
using testing::LiveAgent;

constexpr const char* Policy = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}], l7: {protocols: [HTTP]}}]
)";

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::haveRoot()) {
      GTEST_SKIP() << "needs root: creates network namespaces and runs two DPDK agents";
    }
    if (const auto tool = testing::missingTool({"ip", "curl", "sysctl"}); !tool.empty()) {
      GTEST_SKIP() << "needs '" << tool << "' (scripts/setup.sh installs it)";
    }
    if (!testing::EtcdCluster::available() || !std::filesystem::exists("/usr/bin/python3")) {
      GTEST_SKIP() << "needs Debian's etcd-server and /usr/bin/python3 (scripts/setup.sh)";
    }
  }

  void startCluster(int etcdMembers) {
    try {
      cluster_ = std::make_unique<ClusterLab>(etcdMembers, Policy);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }

  void TearDown() override {
    if (cluster_) {
      // A clean stop of each (a crashed one aside) exits 0: what sanitizer builds rely on.
      const bool killed = !cluster_->hasAgentA();
      const auto [a, b] = cluster_->stopAgents();
      if (!killed) {
        EXPECT_EQ(a, std::optional<int>(0));
      }
      EXPECT_EQ(b, std::optional<int>(0));
      cluster_.reset();
    }
  }

  LiveAgent& agentA() { return cluster_->agentA(); }
  LiveAgent& agentB() { return cluster_->agentB(); }
  Lab& labA() { return cluster_->labA(); }
  Lab& labB() { return cluster_->labB(); }
  Host& web() { return cluster_->web(); }
  Host& db() { return cluster_->db(); }
  testing::EtcdCluster& etcd() { return cluster_->etcd(); }
  int toApi(const Host& from, int timeoutSeconds = 3) {
    return cluster_->toApi(from, timeoutSeconds);
  }
  static json kvstore(const LiveAgent& agent) { return ClusterLab::kvstore(agent); }
  static bool believes(const LiveAgent& agent, size_t count, int seconds = 15) {
    return ClusterLab::believes(agent, count, seconds);
  }
  static int identityOf(const LiveAgent& agent, const std::string& name) {
    return ClusterLab::identityOf(agent, name);
  }

  std::unique_ptr<ClusterLab> cluster_;
};

// web on host A reaches api on host B by labels, not addresses; db on host A is denied by host B,
// which names it; one label set has one number on both hosts; a container that comes back with
// a new address keeps working, also with one of three etcd members killed.
TEST_F(ClusterTest, WebOnHostAReachesApiOnHostBAndDbIsDeniedThere) {
  ASSERT_NO_FATAL_FAILURE(startCluster(3));
  EXPECT_EQ(toApi(web()), 200) << agentA().log() << agentB().log();
  EXPECT_EQ(toApi(db(), 2), 0);
  const auto denied = agentB().violation([](const json& v) {
    return v["src"]["endpoint"] == "host-a/db" && v["dst"]["port"] == 8080;
  });
  ASSERT_TRUE(denied) << agentB().log();
  EXPECT_EQ((*denied)["src"]["labels"]["app"], "db");
  EXPECT_EQ((*denied)["src"]["identity"], identityOf(agentA(), "db")) << "one number, both hosts";
  EXPECT_EQ((*denied)["dst"]["endpoint"], "api");
  EXPECT_EQ((*denied)["denied_by"], "ingress");
  for (const auto& line : agentA().violations()) {
    EXPECT_NE(line["dst"]["port"], 8080) << "api's ingress is host B's to enforce: " << line;
  }

  // One of three members killed: the agents carry on through the others.
  etcd().stop(0);
  // web comes back with a new address (a restart): detached, and attached again through the API.
  ASSERT_EQ(agentA().cli({"endpoint", "detach", "web"}).exitCode, 0);
  ASSERT_EQ(labA().exec(web(), {"ip", "addr", "flush", "dev", "eth0"}).exitCode, 0);
  ASSERT_EQ(labA().exec(web(), {"ip", "addr", "add", "10.213.1.21/24", "dev", "eth0"}).exitCode, 0);
  ASSERT_EQ(
      labA().exec(web(), {"ip", "route", "add", "10.213.2.0/24", "via", "10.213.1.1"}).exitCode, 0);
  const auto attached =
      agentA().cli({"endpoint", "attach", "web", "--interface", web().hostIfname, "--label",
                    "app=web", "--ip", "10.213.1.21", "--mac", web().mac});
  ASSERT_EQ(attached.exitCode, 0) << attached.err;
  EXPECT_TRUE(testing::waitFor([&] { return toApi(web(), 1) == 200; }, 15))
      << kvstore(agentB()) << agentB().log();
}

// etcd away for 30 s: both hosts keep enforcing what they have -- web still reaches api, db is
// still denied -- and nothing is allowed that was not.
TEST_F(ClusterTest, WithEtcdStoppedBothHostsKeepEnforcingWhatTheyHave) {
  ASSERT_NO_FATAL_FAILURE(startCluster(1));
  ASSERT_EQ(toApi(web()), 200);
  etcd().stop(0);
  ASSERT_TRUE(testing::waitFor([&] { return kvstore(agentB())["state"] == "unreachable"; }, 15));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int rounds = 0;
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_EQ(toApi(web()), 200) << "round " << rounds;
    EXPECT_EQ(toApi(db(), 1), 0) << "round " << rounds;
    ++rounds;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  EXPECT_GE(rounds, 5);
  etcd().start(0);
  ASSERT_TRUE(etcd().ready()) << etcd().log(0);
  EXPECT_TRUE(testing::waitFor([&] { return kvstore(agentA())["state"] == "connected"; }, 15));
  EXPECT_TRUE(believes(agentB(), 2));
  EXPECT_EQ(toApi(web()), 200);
}

// An agent killed: its endpoints vanish from the other host once its lease (5 s) expires (its
// own containers stay cut off: it fails closed). Two hosts numbering one new label set at once
// get one number.
TEST_F(ClusterTest, AKilledHostsEndpointsVanishAfterItsLease) {
  ASSERT_NO_FATAL_FAILURE(startCluster(1));
  ASSERT_EQ(toApi(web()), 200);
  // One new label set on both hosts at the same moment.
  Host& workerA = labA().addHost("worker", "10.213.1.31/24");
  Host& workerB = labB().addHost("worker", "10.213.2.31/24");
  const auto attach = [](const LiveAgent& agent, const Host& host) {
    return agent.cli({"endpoint", "attach", "worker", "--interface", host.hostIfname, "--label",
                      "app=worker", "--ip", host.ip, "--mac", host.mac});
  };
  std::thread onB([&] { attach(agentB(), workerB); });
  const auto onA = attach(agentA(), workerA);
  onB.join();
  ASSERT_EQ(onA.exitCode, 0) << onA.err;
  ASSERT_TRUE(testing::waitFor(
      [&] { return identityOf(agentA(), "worker") > 0 && identityOf(agentB(), "worker") > 0; },
      10));
  EXPECT_EQ(identityOf(agentA(), "worker"), identityOf(agentB(), "worker"));

  const auto killed = std::chrono::steady_clock::now();
  cluster_->killAgentA();
  EXPECT_TRUE(believes(agentB(), 0, 20)) << kvstore(agentB());
  const auto gone = std::chrono::steady_clock::now() - killed;
  EXPECT_GE(gone, std::chrono::seconds(3)) << "not before the lease could expire";
  EXPECT_EQ(kvstore(agentB())["hosts"], json::array({"host-b"}));
}

// #14 item 3: a policy applied through host A's agent is in force on both hosts at one
// revision with one digest; what does not validate -- alone, or beside a host's own files -- is
// refused whole; a deleted document leaves both hosts.
TEST_F(ClusterTest, APolicyAppliedThroughOneHostIsInForceOnBoth) {
  ASSERT_NO_FATAL_FAILURE(startCluster(1));
  ASSERT_EQ(toApi(db(), 2), 0);
  const std::string dbToApi = labA().dir().write("db-to-api.yaml", R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: db-to-api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)");
  const auto applied = agentA().cli({"policy", "apply", dbToApi});
  ASSERT_EQ(applied.exitCode, 0) << applied.err << agentA().log();
  EXPECT_NE(applied.out.find("db-to-api"), std::string::npos) << applied.out;
  EXPECT_TRUE(testing::waitFor([&] { return toApi(db(), 1) == 200; }, 15)) << agentB().log();
  ASSERT_TRUE(testing::waitFor(
      [&] { return kvstore(agentA())["policySha256"] == kvstore(agentB())["policySha256"]; }, 10));
  EXPECT_EQ(kvstore(agentA())["policies"], 1);
  EXPECT_EQ(kvstore(agentA())["policyRevision"], kvstore(agentB())["policyRevision"]);
  EXPECT_NE(agentB().log().find("documents sha256 " +
                                kvstore(agentB())["policySha256"].get<std::string>()),
            std::string::npos)
      << "the audit line names what was applied";

  // Refused whole: an invalid document (where it is wrong), and one whose name a host's own
  // files already use.
  const std::string broken = labA().dir().write(
      "broken.yaml",
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: b}\n"
      "spec:\n  endpointSelector: {}\n  ingres: []\n");
  const auto refused = agentA().cli({"policy", "apply", broken});
  EXPECT_EQ(refused.exitCode, 1);
  EXPECT_NE(refused.err.find(broken + ":6:3"), std::string::npos) << refused.err;
  const std::string clash = labA().dir().write(
      "clash.yaml",
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: api}\n"
      "spec:\n  endpointSelector: {matchLabels: {app: db}}\n  ingress: []\n");
  const auto clashed = agentA().cli({"policy", "apply", clash});
  EXPECT_EQ(clashed.exitCode, 1);
  EXPECT_NE(clashed.err.find("duplicate policy name 'api'"), std::string::npos) << clashed.err;
  EXPECT_EQ(kvstore(agentA())["policies"], 1) << "nothing of either was applied";

  const auto deleted = agentB().cli({"policy", "delete", "db-to-api"});
  ASSERT_EQ(deleted.exitCode, 0) << deleted.err;
  EXPECT_TRUE(testing::waitFor([&] { return toApi(db(), 1) == 0; }, 15));
  EXPECT_TRUE(testing::waitFor([&] { return kvstore(agentA())["policies"] == 0; }, 10));
  const auto again = agentB().cli({"policy", "delete", "db-to-api"});
  EXPECT_EQ(again.exitCode, 1);
  EXPECT_NE(again.err.find("has no policy named db-to-api"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace bulkhead
