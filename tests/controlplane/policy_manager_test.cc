#include "controlplane/policy_manager.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dpi/protocol_catalog.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using controlplane::PolicyManager;

constexpr const char* ApiPolicy = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: PORT, protocol: TCP}]}]
)";

std::string apiPolicy(const std::string& port) {
  std::string text = ApiPolicy;
  text.replace(text.find("PORT"), 4, port);
  return text;
}

const rules::IdentityList Identities{{256, {{"app", "web"}}}, {257, {{"app", "api"}}}};

rules::FlowQuery webToApi(uint16_t port) {
  rules::FlowQuery query;
  query.src = 256;
  query.dst = 257;
  query.ipProtocol = 6;
  query.dstPort = port;
  return query;
}

// #11 item 5: an endpoint that joins with an identity that exists already (a second replica,
// a restart) changes nothing the snapshot depends on, so nothing is compiled; new identities and
// a new policy are.
TEST(PolicyManager, CompilesOnlyWhenThePolicyOrTheIdentitiesChange) {
  testing::TempDir dir;
  const std::string path = dir.write("api.yaml", apiPolicy("8080"));
  const dpi::NdpiProtocolCatalog catalog;
  PolicyManager manager({path}, catalog);
  std::vector<std::string> errors;
  ASSERT_TRUE(manager.load(&errors)) << (errors.empty() ? "" : errors.front());

  const rules::PolicySnapshotPtr first = manager.snapshot(Identities, true);
  ASSERT_TRUE(first);
  EXPECT_EQ(manager.generation(), 1u);
  EXPECT_EQ(first->verdict(webToApi(8080)).decision, rules::Decision::Allow);

  for (int attach = 0; attach < 5; ++attach) {  // endpoints of identities that exist
    EXPECT_EQ(manager.snapshot(Identities, false), first) << attach;
  }
  EXPECT_EQ(manager.generation(), 1u);
  EXPECT_EQ(manager.compilesSaved(), 5u);

  rules::IdentityList more = Identities;
  more.push_back({258, {{"app", "web"}, {"tier", "canary"}}});
  const rules::PolicySnapshotPtr second = manager.snapshot(more, true);
  EXPECT_NE(second, first);
  EXPECT_EQ(manager.generation(), 2u);
  rules::FlowQuery canary = webToApi(8080);
  canary.src = 258;
  EXPECT_EQ(second->verdict(canary).decision, rules::Decision::Allow) << "the new identity";

  // A policy that fails validation changes nothing: the last snapshot stays, uncompiled.
  dir.write("api.yaml", apiPolicy("Eighty_Port"));  // no port and no port name
  errors.clear();
  EXPECT_FALSE(manager.load(&errors));
  EXPECT_FALSE(errors.empty());
  EXPECT_EQ(manager.snapshot(more, false), second);
  EXPECT_EQ(manager.generation(), 2u);

  // A valid edit is compiled at the next snapshot, even with the same identities.
  const std::string digest = manager.sha256();
  dir.write("api.yaml", apiPolicy("9090"));
  errors.clear();
  ASSERT_TRUE(manager.load(&errors));
  EXPECT_NE(manager.sha256(), digest);
  const rules::PolicySnapshotPtr third = manager.snapshot(more, false);
  EXPECT_NE(third, second);
  EXPECT_EQ(manager.generation(), 3u);
  EXPECT_EQ(third->verdict(webToApi(9090)).decision, rules::Decision::Allow);
  EXPECT_EQ(third->verdict(webToApi(8080)).decision, rules::Decision::Deny);
  EXPECT_EQ(manager.compilesSaved(), 6u);
}

// What the metrics report of the policy: loads applied and refused, one compile time each.
TEST(PolicyManager, CountsLoadsByResultAndTimesEachCompilation) {
  testing::TempDir dir;
  const std::string path = dir.write("api.yaml", apiPolicy("8080"));
  const dpi::NdpiProtocolCatalog catalog;
  PolicyManager manager({path}, catalog);
  std::vector<std::string> errors;
  ASSERT_TRUE(manager.load(&errors));
  manager.snapshot(Identities, true);
  manager.snapshot(Identities, false);  // nothing changed: not compiled, not timed
  dir.write("api.yaml", apiPolicy("not-a-port"));
  EXPECT_FALSE(manager.load(&errors));
  dir.write("api.yaml", apiPolicy("8081"));
  ASSERT_TRUE(manager.load(&errors));
  manager.snapshot(Identities, false);
  EXPECT_EQ(manager.loadsApplied(), 2u);
  EXPECT_EQ(manager.loadsRejected(), 1u);
  EXPECT_EQ(manager.compileSeconds().count(), 2u);
  EXPECT_GT(manager.compileSeconds().sum(), 0.0);
  EXPECT_EQ(manager.compileSeconds().cumulativeCounts().back(), 2u) << "well under 10 s";
}

}  // namespace
}  // namespace bulkhead
