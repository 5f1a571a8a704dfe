// The agent as one host of a cluster (#14): a real etcd on loopback ports gives its identity
// numbers and holds what it publishes; the test stands in for another host by writing what that
// host's agent would (its lease, its host entry, its endpoints), and the traffic through the
// real agent shows what it believed.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "kvstore/cluster_identities.h"
#include "kvstore/endpoint_directory.h"
#include "tests/integration/agent_fixture.h"
#include "tests/support/etcd_cluster.h"

namespace bulkhead {
namespace {

using testing::EtcdCluster;

constexpr const char* Prefix = "/bulkhead";

class AgentKvstoreTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped()) {
      return;
    }
    if (!EtcdCluster::available()) {
      GTEST_SKIP() << "needs Debian's etcd-server (" << EtcdCluster::Binary
                   << "; scripts/setup.sh installs it)";
    }
    etcd_ = std::make_unique<EtcdCluster>(lab_->dir(), 1);
    ASSERT_TRUE(etcd_->ready()) << etcd_->log(0);
    kvstore::EtcdOptions options;
    options.endpoints = etcd_->clientUrls();
    options.timeoutSeconds = 2;
    store_ = std::make_unique<kvstore::EtcdClient>(options);
    // web, api and db (10.213.0.11-13) are this host's; .48-.63 are host-b's.
    extraConfig_ = "kvstore:\n  endpoints: [" + etcd_->clientUrl(0) +
                   "]\n  host: host-a\n  subnets: [10.213.0.0/28]\n  leaseSeconds: 5\n"
                   "  timeoutSeconds: 1\n";
  }

  void TearDown() override {
    AgentTest::TearDown();  // the agent first: it revokes its lease while etcd still runs
    store_.reset();
    etcd_.reset();
  }

  json status() { return json::parse(cli({"status", "--json"}).out); }

  // host-b, as its agent would be: a lease, its host entry, and its endpoint `name` with the
  // cluster's number for `labels` at `ip`.
  int64_t joinHostB() {
    std::string error;
    const auto lease = store_->grantLease(60, &error);
    EXPECT_TRUE(lease) << error;
    EXPECT_TRUE(store_->put(kvstore::hostKey(Prefix, "host-b"),
                            R"({"subnets": ["10.213.0.48/28"]})", *lease, &error))
        << error;
    return *lease;
  }
  void publishOnHostB(int64_t lease, const std::string& name, const rules::Labels& labels,
                      const std::string& ip) {
    std::string error;
    kvstore::ClusterIdentities identities(*store_, Prefix, "host-b", lease);
    const auto id = identities.allocate(labels, &error);
    ASSERT_TRUE(id) << error;
    kvstore::PublishedEndpoint endpoint{name, *id, labels, {*rules::IpAddress::parse(ip)}};
    ASSERT_TRUE(store_->put(kvstore::endpointKey(Prefix, "host-b", name),
                            kvstore::encodeEndpoint(endpoint), lease, &error))
        << error;
  }
  bool remoteEndpointsReach(size_t count) {
    return testing::waitFor([&] { return status()["kvstore"]["remoteEndpoints"] == count; }, 10);
  }

  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<kvstore::EtcdClient> store_;
};

// #14 item 1: the agent's numbers are the cluster's -- another host asking for the same labels
// gets the same ones -- and its endpoints are in the directory under its lease, gone at once
// when it stops.
TEST_F(AgentKvstoreTest, IdentitiesAreTheClustersAndEndpointsArePublished) {
  startAgent();
  ASSERT_TRUE(testing::waitFor([&] { return status()["kvstore"]["state"] == "connected"; }, 10))
      << status()["kvstore"] << agent_->log();
  httpServer(*api_, 8080);
  EXPECT_EQ(httpGet(*web_, *api_, 8080), 200);

  kvstore::ClusterIdentities other(*store_, Prefix, "host-c", 0);
  for (const auto& endpoint : json::parse(cli({"endpoints", "--json"}).out)) {
    rules::Labels labels;
    for (const auto& [key, value] : endpoint["labels"].items()) {
      labels[key] = value.get<std::string>();
    }
    std::string error;
    EXPECT_EQ(other.allocate(labels, &error), endpoint["identity"].get<rules::IdentityId>())
        << endpoint << error;
    const auto published = store_->get(
        kvstore::endpointKey(Prefix, "host-a", endpoint["name"].get<std::string>()), &error);
    ASSERT_TRUE(published && published->kvs.size() == 1) << endpoint["name"] << error;
    const auto entry = kvstore::decodeEndpoint("", published->kvs[0].value);
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->identity, endpoint["identity"].get<rules::IdentityId>());
    EXPECT_NE(published->kvs[0].lease, 0) << "published under the host's lease";
  }
  std::string error;
  EXPECT_EQ(store_->get(kvstore::hostKey(Prefix, "host-a"), &error)->kvs.size(), 1u);

  // db's last endpoint leaves: its entry goes, and its number with the last reference (host-c,
  // which only asked above, lets go of its own first).
  std::map<std::string, rules::IdentityId> numbers;
  for (const auto& endpoint : json::parse(cli({"endpoints", "--json"}).out)) {
    numbers[endpoint["name"].get<std::string>()] = endpoint["identity"].get<rules::IdentityId>();
  }
  ASSERT_EQ(numbers.size(), 3u);
  ASSERT_TRUE(other.release(numbers["db"], &error)) << error;
  ASSERT_EQ(cli({"endpoint", "detach", "db"}).exitCode, 0);
  EXPECT_TRUE(testing::waitFor(
      [&] { return store_->get(other.idKey(numbers["db"]), &error)->kvs.empty(); }, 10))
      << "the number goes with its last reference";
  EXPECT_TRUE(store_->get(kvstore::endpointKey(Prefix, "host-a", "db"), &error)->kvs.empty());
  EXPECT_EQ(store_->get(other.idKey(numbers["web"]), &error)->kvs.size(), 1u) << "web's stays";
  EXPECT_EQ(store_->get(other.idKey(numbers["api"]), &error)->kvs.size(), 1u) << "api's stays";

  agent_->stop(10);
  EXPECT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
  agent_ = nullptr;
  EXPECT_TRUE(store_->get(Prefix + std::string("/endpoints/host-a/"), &error, true)->kvs.empty())
      << "a clean stop revokes the lease";
  EXPECT_TRUE(store_->get(kvstore::hostKey(Prefix, "host-a"), &error)->kvs.empty());
}

// #14 item 2: traffic from behind the uplink takes the identity of the other host's endpoint at
// that address -- allowed as web, denied (and named) as db -- and only while the directory
// says so; an address outside that host's subnets is not believed.
TEST_F(AgentKvstoreTest, ARemoteEndpointHasItsHostsIdentityBeyondTheUplink) {
  Host& remote = lab_->addHost("world", "10.213.0.50/24");  // behind the uplink: host-b's
  startAgent(true, remote.hostIfname);
  httpServer(*api_, 8080);
  EXPECT_EQ(httpGet(remote, *api_, 8080, 2), 0) << "the world before host-b publishes";

  const int64_t lease = joinHostB();
  publishOnHostB(lease, "remote-web", {{"app", "web"}}, "10.213.0.50");
  ASSERT_TRUE(remoteEndpointsReach(1)) << status()["kvstore"] << agent_->log();
  EXPECT_EQ(httpGet(remote, *api_, 8080), 200) << "web on host-b may reach api on 8080";

  // The same address as host-b's db: denied, and the violation names the remote endpoint.
  publishOnHostB(lease, "remote-web", {{"app", "db"}}, "10.213.0.50");
  ASSERT_TRUE(testing::waitFor(
      [&] {
        const auto remotes = status()["kvstore"];
        return remotes["remoteEndpoints"] == 1 && httpGet(remote, *api_, 8080, 1) == 0;
      },
      10))
      << agent_->log();
  const auto line = violation([](const json& v) {
    return v["src"]["endpoint"] == "host-b/remote-web" && v["dst"]["port"] == 8080;
  });
  ASSERT_TRUE(line) << agent_->log();
  EXPECT_EQ((*line)["src"]["labels"]["app"], "db");
  EXPECT_GE((*line)["src"]["identity"].get<int>(), 256);

  // host-b claims web's address, inside this host's subnets and outside its own: not believed.
  publishOnHostB(lease, "impostor", {{"app", "web"}}, WebIp);
  ASSERT_TRUE(testing::waitFor(
      [&] {
        const auto refused = status()["kvstore"]["refused"];
        return refused.is_array() && refused.dump().find("impostor") != std::string::npos;
      },
      10))
      << status()["kvstore"];
  EXPECT_EQ(status()["kvstore"]["remoteEndpoints"], 1);

  // host-b gone (its lease ended): its endpoints are the world again.
  std::string error;
  ASSERT_TRUE(store_->revokeLease(lease, &error)) << error;
  ASSERT_TRUE(remoteEndpointsReach(0)) << status()["kvstore"];
  EXPECT_EQ(httpGet(remote, *api_, 8080, 2), 0);
}

// #14 item 1, faults: with etcd away the agent keeps enforcing with the numbers it has, and an
// endpoint with a new label set stays cut off -- numbered by nobody -- until etcd is back.
TEST_F(AgentKvstoreTest, WithoutTheStoreKnownIdentitiesHoldAndNewOnesWait) {
  startAgent(false);
  ASSERT_TRUE(testing::waitFor([&] { return status()["kvstore"]["state"] == "connected"; }, 10));
  httpServer(*api_, 8080);
  httpServer(*db_, 5432);
  ASSERT_EQ(httpGet(*web_, *api_, 8080), 200);

  etcd_->stop(0);
  ASSERT_TRUE(testing::waitFor([&] { return status()["kvstore"]["state"] == "unreachable"; }, 15))
      << status()["kvstore"];
  EXPECT_EQ(httpGet(*web_, *api_, 8080), 200) << "what was allowed stays allowed";
  ASSERT_EQ(cli({"endpoint", "attach", "db", "--interface", db_->hostIfname, "--label", "app=db",
                 "--ip", db_->ip, "--mac", db_->mac})
                .exitCode,
            0);
  const auto identityOfDb = [&] {
    for (const auto& endpoint : json::parse(cli({"endpoints", "--json"}).out)) {
      if (endpoint["name"] == "db") {
        return endpoint["identity"].get<int>();
      }
    }
    return -1;
  };
  EXPECT_EQ(identityOfDb(), 0) << "no number without the store";
  EXPECT_EQ(status()["kvstore"]["pendingIdentities"], 1);
  const auto apiToDb = [&] {
    return lab_
        ->exec(*api_,
               {"curl", "-s", "-o", "/dev/null", "--max-time", "1",
                "http://" + std::string(DbIp) + ":5432/"},
               5)
        .exitCode;
  };
  EXPECT_NE(apiToDb(), 0) << "an endpoint without a number is cut off";

  etcd_->start(0);
  ASSERT_TRUE(etcd_->ready()) << etcd_->log(0);
  ASSERT_TRUE(testing::waitFor([&] { return identityOfDb() >= 256; }, 15)) << agent_->log();
  EXPECT_TRUE(testing::waitFor([&] { return apiToDb() == 0; }, 10)) << agent_->log();
  EXPECT_EQ(status()["kvstore"]["state"], "connected");
}

// A single host has no cluster to apply to: the agent says so, and its policy stays its files.
TEST_F(AgentTest, WithoutAKvstorePolicyApplyAndDeleteSaySo) {
  startAgent();
  const auto applied = cli({"policy", "apply", policyPath_});
  EXPECT_EQ(applied.exitCode, 1);
  EXPECT_NE(applied.err.find("this agent has no kvstore"), std::string::npos) << applied.err;
  const auto deleted = cli({"policy", "delete", "api"});
  EXPECT_EQ(deleted.exitCode, 1);
  EXPECT_NE(deleted.err.find("this agent has no kvstore"), std::string::npos) << deleted.err;
  EXPECT_TRUE(json::parse(cli({"status", "--json"}).out)["kvstore"].is_null());
}

}  // namespace
}  // namespace bulkhead
