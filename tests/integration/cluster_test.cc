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

#include "tests/integration/lab.h"
#include "tests/integration/live_agent.h"
#include "tests/support/etcd_cluster.h"

namespace bulkhead {
namespace {

using nlohmann::json;
using testing::EtcdCluster;
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
    if (!EtcdCluster::available() || !std::filesystem::exists("/usr/bin/python3")) {
      GTEST_SKIP() << "needs Debian's etcd-server and /usr/bin/python3 (scripts/setup.sh)";
    }
  }

  // `members` etcd members; the hosts' namespaces, the fabric, and both agents.
  void startCluster(int members) {
    etcd_ = std::make_unique<EtcdCluster>(etcdDir_, members);
    ASSERT_TRUE(etcd_->ready()) << etcd_->log(0);
    labA_ = std::make_unique<Lab>();
    labB_ = std::make_unique<Lab>();
    fabric_ = &labA_->addHost("fabric", "10.213.1.1/24");  // its veth is host A's uplink
    web_ = &labA_->addHost("web", "10.213.1.11/24");
    db_ = &labA_->addHost("db", "10.213.1.13/24");
    api_ = &labB_->addHost("api", "10.213.2.12/24");
    // The fabric's leg toward host B: host B's uplink. It goes with the fabric's namespace.
    fabricB_ = labB_->prefix() + "f";
    const std::string ip = testing::findOnPath("ip");
    run({ip, "link", "add", fabricB_, "type", "veth", "peer", "name", "eth1", "netns",
         fabric_->netns});
    run({ip, "link", "set", fabricB_, "up"});
    run({testing::findOnPath("ethtool"), "-K", fabricB_, "tx", "off", "rx", "off", "tso", "off",
         "gso", "off", "gro", "off", "txvlan", "off"},
        true);
    for (const auto& command : std::vector<std::vector<std::string>>{
             {"ip", "addr", "add", "10.213.2.1/24", "dev", "eth1"},
             {"ip", "link", "set", "eth1", "up"},
             {"ethtool", "-K", "eth1", "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro",
              "off"},
             {"sysctl", "-qw", "net.ipv4.ip_forward=1"}}) {
      const auto result = labA_->exec(*fabric_, command);
      ASSERT_TRUE(result.exitCode == 0 || command[0] == "ethtool") << result.err;
    }
    // A route to the other host's subnet only, not a default one: nothing else (a resolver's
    // query, say) is sent anywhere.
    for (const auto& [host, gateway] : {std::pair<Host*, const char*>{web_, "10.213.1.1"},
                                        {db_, "10.213.1.1"},
                                        {api_, "10.213.2.1"}}) {
      Lab& lab = host == api_ ? *labB_ : *labA_;
      const char* other = host == api_ ? "10.213.1.0/24" : "10.213.2.0/24";
      const auto result = lab.exec(*host, {"ip", "route", "add", other, "via", gateway});
      ASSERT_EQ(result.exitCode, 0) << result.err;
    }
    agentA_ = std::make_unique<LiveAgent>(*labA_);
    agentB_ = std::make_unique<LiveAgent>(*labB_);
    std::string why;
    ASSERT_TRUE(agentA_->start(Policy, {{web_, {{"app", "web"}}}, {db_, {{"app", "db"}}}}, &why,
                               config("host-a", "10.213.1.0/24", fabric_->hostIfname)))
        << why;
    ASSERT_TRUE(agentB_->start(Policy, {{api_, {{"app", "api"}}}}, &why,
                               config("host-b", "10.213.2.0/24", fabricB_)))
        << why;
    ASSERT_TRUE(believes(*agentA_, 1)) << kvstore(*agentA_) << agentA_->log();
    ASSERT_TRUE(believes(*agentB_, 2)) << kvstore(*agentB_) << agentB_->log();
    server_ = &labB_->spawn(api_,
                            {"/usr/bin/python3", "-m", "http.server", "8080", "--bind", api_->ip,
                             "--directory", "/tmp"},
                            "api-http.log");
    ASSERT_TRUE(testing::waitFor(
        [&] {
          return labB_
                     ->exec(
                         *api_,
                         {"/usr/bin/python3", "-c",
                          "import socket; socket.create_connection(('" + api_->ip + "', 8080), 1)"},
                         5)
                     .exitCode == 0;
        },
        10))
        << server_->log();
  }

  void TearDown() override {
    // The agents first, while etcd runs: a clean stop revokes each one's lease.
    for (auto* agent : {agentA_.get(), agentB_.get()}) {
      if (agent != nullptr) {
        EXPECT_EQ(agent->stop(), std::optional<int>(0)) << agent->log();
      }
    }
    agentA_.reset();
    agentB_.reset();
    labA_.reset();
    labB_.reset();
    etcd_.reset();
  }

  std::string config(const std::string& host, const std::string& subnet,
                     const std::string& uplink) const {
    std::string endpoints;
    for (const auto& url : etcd_->clientUrls()) {
      endpoints += (endpoints.empty() ? "" : ", ") + url;
    }
    return "uplink: " + uplink + "\nmetricsAddress: off\nkvstore:\n  endpoints: [" + endpoints +
           "]\n  host: " + host + "\n  subnets: [" + subnet +
           "]\n  leaseSeconds: 5\n  timeoutSeconds: 1\n";
  }

  void run(const std::vector<std::string>& argv, bool mayFail = false) {
    const auto result = testing::runCommand(argv, 10);
    if (!mayFail) {
      ASSERT_EQ(result.exitCode, 0) << argv[0] << " " << argv[1] << ": " << result.err;
    }
  }

  static json kvstore(const LiveAgent& agent) {
    const auto status = agent.cli({"status", "--json"});
    return status.exitCode == 0 ? json::parse(status.out)["kvstore"] : json();
  }
  static bool believes(const LiveAgent& agent, size_t remoteEndpoints, int seconds = 15) {
    return testing::waitFor(
        [&] {
          const json state = kvstore(agent);
          return state.is_object() && state["remoteEndpoints"] == remoteEndpoints;
        },
        seconds);
  }

  // curl from a container of host A to api on host B: the HTTP status, 0 when none came.
  int toApi(const Host& from, int timeoutSeconds = 3) {
    const auto result =
        labA_->exec(from,
                    {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                     std::to_string(timeoutSeconds), "http://" + api_->ip + ":8080/"},
                    timeoutSeconds + 5);
    return std::atoi(result.out.c_str());
  }

  static int identityOf(const LiveAgent& agent, const std::string& name) {
    for (const auto& endpoint : json::parse(agent.cli({"endpoints", "--json"}).out)) {
      if (endpoint["name"] == name) {
        return endpoint["identity"].get<int>();
      }
    }
    return -1;
  }

  testing::TempDir etcdDir_;  // outlives the labs: the members' data and logs
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<Lab> labA_;
  std::unique_ptr<Lab> labB_;
  Host* fabric_ = nullptr;
  Host* web_ = nullptr;
  Host* db_ = nullptr;
  Host* api_ = nullptr;
  std::string fabricB_;
  std::unique_ptr<LiveAgent> agentA_;
  std::unique_ptr<LiveAgent> agentB_;
  testing::Process* server_ = nullptr;
};

// web on host A reaches api on host B by labels, not addresses; db on host A is denied by host B,
// which names it; one label set has one number on both hosts; a container that comes back with
// a new address keeps working, also with one of three etcd members killed.
TEST_F(ClusterTest, WebOnHostAReachesApiOnHostBAndDbIsDeniedThere) {
  ASSERT_NO_FATAL_FAILURE(startCluster(3));
  EXPECT_EQ(toApi(*web_), 200) << agentA_->log() << agentB_->log();
  EXPECT_EQ(toApi(*db_, 2), 0);
  const auto denied = agentB_->violation([](const json& v) {
    return v["src"]["endpoint"] == "host-a/db" && v["dst"]["port"] == 8080;
  });
  ASSERT_TRUE(denied) << agentB_->log();
  EXPECT_EQ((*denied)["src"]["labels"]["app"], "db");
  EXPECT_EQ((*denied)["src"]["identity"], identityOf(*agentA_, "db")) << "one number, both hosts";
  EXPECT_EQ((*denied)["dst"]["endpoint"], "api");
  EXPECT_EQ((*denied)["denied_by"], "ingress");
  for (const auto& line : agentA_->violations()) {
    EXPECT_NE(line["dst"]["port"], 8080) << "api's ingress is host B's to enforce: " << line;
  }

  // One of three members killed: the agents carry on through the others.
  etcd_->stop(0);
  // web comes back with a new address (a restart): detached, and attached again through the API.
  ASSERT_EQ(agentA_->cli({"endpoint", "detach", "web"}).exitCode, 0);
  ASSERT_EQ(labA_->exec(*web_, {"ip", "addr", "flush", "dev", "eth0"}).exitCode, 0);
  ASSERT_EQ(labA_->exec(*web_, {"ip", "addr", "add", "10.213.1.21/24", "dev", "eth0"}).exitCode, 0);
  ASSERT_EQ(
      labA_->exec(*web_, {"ip", "route", "add", "10.213.2.0/24", "via", "10.213.1.1"}).exitCode, 0);
  const auto attached =
      agentA_->cli({"endpoint", "attach", "web", "--interface", web_->hostIfname, "--label",
                    "app=web", "--ip", "10.213.1.21", "--mac", web_->mac});
  ASSERT_EQ(attached.exitCode, 0) << attached.err;
  EXPECT_TRUE(testing::waitFor([&] { return toApi(*web_, 1) == 200; }, 15))
      << kvstore(*agentB_) << agentB_->log();
}

// etcd away for 30 s: both hosts keep enforcing what they have -- web still reaches api, db is
// still denied -- and nothing is allowed that was not.
TEST_F(ClusterTest, WithEtcdStoppedBothHostsKeepEnforcingWhatTheyHave) {
  ASSERT_NO_FATAL_FAILURE(startCluster(1));
  ASSERT_EQ(toApi(*web_), 200);
  etcd_->stop(0);
  ASSERT_TRUE(testing::waitFor([&] { return kvstore(*agentB_)["state"] == "unreachable"; }, 15));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int rounds = 0;
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_EQ(toApi(*web_), 200) << "round " << rounds;
    EXPECT_EQ(toApi(*db_, 1), 0) << "round " << rounds;
    ++rounds;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  EXPECT_GE(rounds, 5);
  etcd_->start(0);
  ASSERT_TRUE(etcd_->ready()) << etcd_->log(0);
  EXPECT_TRUE(testing::waitFor([&] { return kvstore(*agentA_)["state"] == "connected"; }, 15));
  EXPECT_TRUE(believes(*agentB_, 2));
  EXPECT_EQ(toApi(*web_), 200);
}

// An agent killed: its endpoints vanish from the other host once its lease (5 s) expires (its
// own containers stay cut off: it fails closed). Two hosts numbering one new label set at once
// get one number.
TEST_F(ClusterTest, AKilledHostsEndpointsVanishAfterItsLease) {
  ASSERT_NO_FATAL_FAILURE(startCluster(1));
  ASSERT_EQ(toApi(*web_), 200);
  // One new label set on both hosts at the same moment.
  Host& workerA = labA_->addHost("worker", "10.213.1.31/24");
  Host& workerB = labB_->addHost("worker", "10.213.2.31/24");
  const auto attach = [](const LiveAgent& agent, const Host& host) {
    return agent.cli({"endpoint", "attach", "worker", "--interface", host.hostIfname, "--label",
                      "app=worker", "--ip", host.ip, "--mac", host.mac});
  };
  std::thread onB([&] { attach(*agentB_, workerB); });
  const auto onA = attach(*agentA_, workerA);
  onB.join();
  ASSERT_EQ(onA.exitCode, 0) << onA.err;
  ASSERT_TRUE(testing::waitFor(
      [&] { return identityOf(*agentA_, "worker") > 0 && identityOf(*agentB_, "worker") > 0; },
      10));
  EXPECT_EQ(identityOf(*agentA_, "worker"), identityOf(*agentB_, "worker"));

  const auto killed = std::chrono::steady_clock::now();
  agentA_->kill();
  agentA_.reset();
  EXPECT_TRUE(believes(*agentB_, 0, 20)) << kvstore(*agentB_);
  const auto gone = std::chrono::steady_clock::now() - killed;
  EXPECT_GE(gone, std::chrono::seconds(3)) << "not before the lease could expire";
  EXPECT_EQ(kvstore(*agentB_)["hosts"], json::array({"host-b"}));
}

// #14 item 3: a policy applied through host A's agent is in force on both hosts at one
// revision with one digest; what does not validate -- alone, or beside a host's own files -- is
// refused whole; a deleted document leaves both hosts.
TEST_F(ClusterTest, APolicyAppliedThroughOneHostIsInForceOnBoth) {
  ASSERT_NO_FATAL_FAILURE(startCluster(1));
  ASSERT_EQ(toApi(*db_, 2), 0);
  const std::string dbToApi = labA_->dir().write("db-to-api.yaml", R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: db-to-api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)");
  const auto applied = agentA_->cli({"policy", "apply", dbToApi});
  ASSERT_EQ(applied.exitCode, 0) << applied.err << agentA_->log();
  EXPECT_NE(applied.out.find("db-to-api"), std::string::npos) << applied.out;
  EXPECT_TRUE(testing::waitFor([&] { return toApi(*db_, 1) == 200; }, 15)) << agentB_->log();
  ASSERT_TRUE(testing::waitFor(
      [&] { return kvstore(*agentA_)["policySha256"] == kvstore(*agentB_)["policySha256"]; }, 10));
  EXPECT_EQ(kvstore(*agentA_)["policies"], 1);
  EXPECT_EQ(kvstore(*agentA_)["policyRevision"], kvstore(*agentB_)["policyRevision"]);
  EXPECT_NE(agentB_->log().find("documents sha256 " +
                                kvstore(*agentB_)["policySha256"].get<std::string>()),
            std::string::npos)
      << "the audit line names what was applied";

  // Refused whole: an invalid document (where it is wrong), and one whose name a host's own
  // files already use.
  const std::string broken = labA_->dir().write(
      "broken.yaml",
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: b}\n"
      "spec:\n  endpointSelector: {}\n  ingres: []\n");
  const auto refused = agentA_->cli({"policy", "apply", broken});
  EXPECT_EQ(refused.exitCode, 1);
  EXPECT_NE(refused.err.find(broken + ":6:3"), std::string::npos) << refused.err;
  const std::string clash = labA_->dir().write(
      "clash.yaml",
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: api}\n"
      "spec:\n  endpointSelector: {matchLabels: {app: db}}\n  ingress: []\n");
  const auto clashed = agentA_->cli({"policy", "apply", clash});
  EXPECT_EQ(clashed.exitCode, 1);
  EXPECT_NE(clashed.err.find("duplicate policy name 'api'"), std::string::npos) << clashed.err;
  EXPECT_EQ(kvstore(*agentA_)["policies"], 1) << "nothing of either was applied";

  const auto deleted = agentB_->cli({"policy", "delete", "db-to-api"});
  ASSERT_EQ(deleted.exitCode, 0) << deleted.err;
  EXPECT_TRUE(testing::waitFor([&] { return toApi(*db_, 1) == 0; }, 15));
  EXPECT_TRUE(testing::waitFor([&] { return kvstore(*agentA_)["policies"] == 0; }, 10));
  const auto again = agentB_->cli({"policy", "delete", "db-to-api"});
  EXPECT_EQ(again.exitCode, 1);
  EXPECT_NE(again.err.find("has no policy named db-to-api"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace bulkhead
