#include "rules/policy_explain.h"

#include <gtest/gtest.h>

#include <string>

#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead {
namespace {

using rules::Direction;
using rules::Explanation;
using rules::FlowQuery;
using rules::IdentityId;

constexpr IdentityId Web = 256;
constexpr IdentityId Api = 257;
constexpr IdentityId Db = 258;
constexpr uint8_t Tcp = 6;

const rules::ProtocolCatalog& catalog() {
  static const dpi::NdpiProtocolCatalog instance;
  return instance;
}

uint16_t protocolId(const char* name) {
  const auto id = catalog().find(name);
  EXPECT_TRUE(id.has_value()) << name;
  return id.value_or(0);
}

// api takes HTTP from web on 8080 for *.shop.local, and PostgreSQL from db on 5432.
constexpr const char* ApiPolicy = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}], l7: {protocols: [HTTP], hosts: ["*.shop.local"]}}]
)";

class PolicyExplainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto loaded = rules::loadPolicyText(ApiPolicy, "p.yaml", catalog());
    ASSERT_TRUE(loaded.ok());
    snapshot_ = rules::compilePolicy(loaded.set, identities_, catalog(), 1);
  }

  Explanation explain(FlowQuery query) const {
    EXPECT_EQ(snapshot_->verdict(query).decision, rules::Decision::Deny) << "not a denial";
    return rules::explainDenial(*snapshot_, query, Direction::Ingress,
                                [](uint16_t id) { return catalog().name(id); });
  }

  static FlowQuery flow(IdentityId src, uint16_t port) {
    FlowQuery query;
    query.src = src;
    query.dst = Api;
    query.ipProtocol = Tcp;
    query.dstPort = port;
    return query;
  }

  rules::IdentityList identities_ = {
      {Web, {{"app", "web"}}}, {Api, {{"app", "api"}}}, {Db, {{"app", "db"}}}};
  rules::PolicySnapshotPtr snapshot_;
};

// The rule that got furthest is named, with the first thing it did not match: not the first
// rule of the policy, and not "default-deny" alone.
TEST_F(PolicyExplainTest, AWrongPortNamesTheRuleForThatPeer) {
  const Explanation why = explain(flow(Web, 9090));
  EXPECT_EQ(why.closestRule, "api/ingress/1");
  EXPECT_EQ(why.what(), "port");
  EXPECT_EQ(why.expected, "8080/TCP");
  EXPECT_EQ(why.found, "9090/TCP");
  EXPECT_EQ(why.text("web"),
            "api/ingress/1 allows HTTP on 8080/TCP for *.shop.local; this flow's port is 9090/TCP");
}

TEST_F(PolicyExplainTest, AnAllowedPortWithTheWrongProtocolNamesTheProtocol) {
  FlowQuery query = flow(Web, 8080);
  query.app = rules::AppProtocol{0, protocolId("SSH")};
  const Explanation why = explain(query);
  EXPECT_EQ(why.closestRule, "api/ingress/1");
  EXPECT_EQ(why.what(), "protocol");
  EXPECT_EQ(why.expected, "HTTP");
  EXPECT_EQ(why.found, "SSH");
  EXPECT_EQ(why.text("web"),
            "api/ingress/1 allows HTTP on 8080/TCP for *.shop.local; this flow is SSH");
}

TEST_F(PolicyExplainTest, TheRightProtocolForAnotherHostNamesTheHost) {
  FlowQuery query = flow(Web, 8080);
  query.app = rules::AppProtocol{0, protocolId("HTTP")};
  query.host = "evil.example";
  const Explanation why = explain(query);
  EXPECT_EQ(why.what(), "host");
  EXPECT_EQ(why.expected, "*.shop.local");
  EXPECT_EQ(why.found, "evil.example");
  EXPECT_EQ(why.text("web"),
            "api/ingress/1 allows HTTP on 8080/TCP for *.shop.local; this flow's host is "
            "evil.example");
}

TEST_F(PolicyExplainTest, APeerNoRuleAdmitsNamesTheFirstRuleAndThePeer) {
  FlowQuery query = flow(Web, 5432);
  query.src = 300;  // no rule's peer
  const Explanation why = explain(query);
  EXPECT_EQ(why.what(), "peer");
  EXPECT_EQ(why.closestRule, "api/ingress/0");
  EXPECT_EQ(why.text("stranger"), "api/ingress/0 allows 5432/TCP, but not from or to stranger");
}

TEST_F(PolicyExplainTest, ADirectionWithoutRulesSaysSo) {
  // web is selected by no policy here: ask about api's egress, which has no rules either.
  FlowQuery query = flow(Web, 80);
  const Explanation why = rules::explainDenial(*snapshot_, query, Direction::Egress,
                                               [](uint16_t id) { return catalog().name(id); });
  EXPECT_EQ(why.what(), "no-rule");
  EXPECT_EQ(why.closestRule, "");
}

}  // namespace
}  // namespace bulkhead
