// Cluster identities against a real etcd: one number per label set across hosts, also when they
// allocate at the same moment; numbers released with their last host; a store that is away.
#include "kvstore/cluster_identities.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "tests/support/etcd_test.h"

namespace bulkhead::kvstore {
namespace {

using ClusterIdentitiesTest = testing::EtcdTest;

rules::Labels app(const std::string& name) {
  return {{"app", name}, {"tier", "shop"}};
}

TEST_F(ClusterIdentitiesTest, ALabelSetHasOneNumberOnEveryHost) {
  const EtcdClient store(options());
  ClusterIdentities hostA(store, "/bulkhead", "host-a", 0);
  ClusterIdentities hostB(store, "/bulkhead", "host-b", 0);
  std::string error;
  const auto web = hostA.allocate(app("web"), &error);
  ASSERT_TRUE(web) << error;
  EXPECT_EQ(*web, rules::reserved_identity::FirstEndpoint);
  const auto api = hostA.allocate(app("api"), &error);
  ASSERT_TRUE(api) << error;
  EXPECT_NE(*api, *web);

  EXPECT_EQ(hostB.allocate(app("api"), &error), api) << error;
  EXPECT_EQ(hostB.allocate(app("web"), &error), web) << error;
  EXPECT_EQ(hostB.labelsOf(*api), app("api"));

  // What the store holds: both directions, and one reference per host that uses the number.
  const auto labels = store.get(hostA.labelsKey(app("web")), &error);
  ASSERT_TRUE(labels && labels->kvs.size() == 1) << error;
  EXPECT_NE(labels->kvs[0].value.find("\"id\":" + std::to_string(*web)), std::string::npos);
  EXPECT_EQ(store.get(hostA.idKey(*web), &error)->kvs.size(), 1u);
  EXPECT_EQ(store.get("/bulkhead/identities/refs/", &error, true)->kvs.size(), 4u);

  // A third host reading the store sees the same mapping without allocating.
  ClusterIdentities hostC(store, "/bulkhead", "host-c", 0);
  ASSERT_TRUE(hostC.refresh(&error)) << error;
  EXPECT_EQ(hostC.cached().size(), 2u);
  EXPECT_EQ(hostC.labelsOf(*web), app("web"));
}

// #14 item 1: two hosts giving out numbers for the same label sets at the same moment end with
// one number per label set and one label set per number.
TEST_F(ClusterIdentitiesTest, HostsAllocatingAtOnceAgreeOnEveryNumber) {
  constexpr int Hosts = 4;
  constexpr int LabelSets = 24;
  std::vector<std::map<rules::Labels, rules::IdentityId>> given(Hosts);
  std::vector<std::string> failures(Hosts);
  std::vector<std::thread> threads;
  for (int host = 0; host < Hosts; ++host) {
    threads.emplace_back([&, host] {
      const EtcdClient store(options());  // a client of its own, as on another host
      ClusterIdentities identities(store, "/bulkhead", "host-" + std::to_string(host), 0);
      std::vector<int> order(LabelSets);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), std::mt19937(host));
      for (const int set : order) {
        std::string error;
        const auto id = identities.allocate(app("app-" + std::to_string(set)), &error);
        if (!id) {
          failures[host] = error;
          return;
        }
        given[host][app("app-" + std::to_string(set))] = *id;
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  for (int host = 0; host < Hosts; ++host) {
    ASSERT_EQ(failures[host], "") << "host " << host;
    EXPECT_EQ(given[host], given[0]) << "host " << host << " disagrees";
  }
  std::set<rules::IdentityId> numbers;
  for (const auto& [labels, id] : given[0]) {
    numbers.insert(id);
  }
  EXPECT_EQ(numbers.size(), static_cast<size_t>(LabelSets)) << "a number for two label sets";
  const EtcdClient store(options());
  std::string error;
  EXPECT_EQ(store.get("/bulkhead/identities/ids/", &error, true)->kvs.size(),
            static_cast<size_t>(LabelSets));
  EXPECT_EQ(store.get("/bulkhead/identities/labels/", &error, true)->kvs.size(),
            static_cast<size_t>(LabelSets));
}

TEST_F(ClusterIdentitiesTest, ANumberGoesWithItsLastHost) {
  const EtcdClient store(options());
  ClusterIdentities hostA(store, "/bulkhead", "host-a", 0);
  ClusterIdentities hostB(store, "/bulkhead", "host-b", 0);
  std::string error;
  const auto web = hostA.allocate(app("web"), &error);
  ASSERT_TRUE(web) << error;
  ASSERT_EQ(hostB.allocate(app("web"), &error), web);

  ASSERT_TRUE(hostA.release(*web, &error)) << error;
  EXPECT_EQ(store.get(hostA.idKey(*web), &error)->kvs.size(), 1u) << "host-b still uses it";
  ASSERT_TRUE(hostB.release(*web, &error)) << error;
  EXPECT_TRUE(store.get(hostA.idKey(*web), &error)->kvs.empty());
  EXPECT_TRUE(store.get(hostA.labelsKey(app("web")), &error)->kvs.empty());
  EXPECT_FALSE(hostB.labelsOf(*web));

  // Numbers are not given twice: the next label set gets a new one, even after a release.
  const auto api = hostA.allocate(app("api"), &error);
  ASSERT_TRUE(api) << error;
  EXPECT_GT(*api, *web);
}

// A host that dies leaves its references under a lease that expires; a sweep by any host then
// removes the numbers nobody uses, and only those.
TEST_F(ClusterIdentitiesTest, ADeadHostsNumbersAreSweptAfterItsLease) {
  const EtcdClient store(options());
  std::string error;
  const auto lease = store.grantLease(60, &error);
  ASSERT_TRUE(lease) << error;
  ClusterIdentities dying(store, "/bulkhead", "host-dying", *lease);
  ClusterIdentities alive(store, "/bulkhead", "host-alive", 0);
  const auto lonely = dying.allocate(app("lonely"), &error);
  const auto shared = dying.allocate(app("shared"), &error);
  ASSERT_TRUE(lonely && shared) << error;
  ASSERT_EQ(alive.allocate(app("shared"), &error), shared);
  EXPECT_EQ(alive.sweep(&error), 0u) << "every number is referred to";

  ASSERT_TRUE(store.revokeLease(*lease, &error)) << error;  // as when its lease expires
  EXPECT_EQ(alive.sweep(&error), 1u) << error;
  EXPECT_TRUE(store.get(alive.idKey(*lonely), &error)->kvs.empty());
  EXPECT_EQ(store.get(alive.idKey(*shared), &error)->kvs.size(), 1u);
}

TEST_F(ClusterIdentitiesTest, AStoreAwayKeepsKnownNumbersAndGivesNoNewOnes) {
  const EtcdClient store(options());
  ClusterIdentities identities(store, "/bulkhead", "host-a", 0);
  std::string error;
  const auto web = identities.allocate(app("web"), &error);
  ASSERT_TRUE(web) << error;

  etcd_->stop(0);
  EXPECT_EQ(identities.allocate(app("web"), &error), web);
  error.clear();
  EXPECT_FALSE(identities.allocate(app("new"), &error));
  EXPECT_NE(error.find("no etcd endpoint answered"), std::string::npos) << error;
  EXPECT_FALSE(identities.refresh(&error));
  EXPECT_EQ(identities.cached().size(), 1u) << "a failed refresh keeps the cache";

  etcd_->start(0);  // back, on its data
  ASSERT_TRUE(etcd_->ready()) << etcd_->log(0);
  const auto fresh = identities.allocate(app("new"), &error);
  ASSERT_TRUE(fresh) << error;
  EXPECT_GT(*fresh, *web);
}

// Whoever can write the prefix can write anything there: what is not a number for a label set is
// refused or passed over, never believed and never a crash.
TEST_F(ClusterIdentitiesTest, UnreadableEntriesAreNeverBelieved) {
  const EtcdClient store(options());
  ClusterIdentities identities(store, "/bulkhead", "host-a", 0);
  std::string error;
  ASSERT_TRUE(store.put(identities.labelsKey(app("web")), "{not json", 0, &error));
  EXPECT_FALSE(identities.allocate(app("web"), &error));
  EXPECT_NE(error.find("is not this label set's identity"), std::string::npos) << error;
  ASSERT_TRUE(store.put(identities.labelsKey(app("api")),
                        R"({"id": 300, "labels": {"app": "other"}})", 0, &error));
  EXPECT_FALSE(identities.allocate(app("api"), &error)) << "another label set's entry";
  ASSERT_TRUE(store.put(identities.nextKey(), "seven", 0, &error));
  EXPECT_FALSE(identities.allocate(app("db"), &error));
  EXPECT_NE(error.find("is not an identity number"), std::string::npos) << error;

  ASSERT_TRUE(store.put(identities.nextKey(), "400", 0, &error));
  ASSERT_TRUE(store.put(identities.idKey(400), R"({"labels": {"app": 7}})", 0, &error));
  const auto db = identities.allocate(app("db"), &error);
  ASSERT_TRUE(db) << error;
  EXPECT_EQ(*db, 401u) << "400 is taken, though by nothing readable";
  ASSERT_TRUE(store.put("/bulkhead/identities/ids/12", R"({"labels": {}})", 0, &error));
  ASSERT_TRUE(identities.refresh(&error)) << error;
  EXPECT_EQ(identities.cached().size(), 1u) << "only db's entry is readable and in range";
}

}  // namespace
}  // namespace bulkhead::kvstore
