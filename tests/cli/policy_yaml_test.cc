// bulkhead policy convert's writer: every policy, written as a SegmentationPolicy, loads back
// as a policy that judges every flow alike.
#include "cli/policy_yaml.h"

#include <gtest/gtest.h>

#include "tests/rules/policy_fixture.h"

namespace bulkhead {
namespace {

using namespace policy_fixture;  // NOLINT: its catalog and flow

constexpr const char* EveryFeature = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: "api"}
spec:
  mode: monitor
  denyAction: reject
  endpointSelector:
    matchLabels: {app: api}
    matchExpressions: [{key: tier, operator: NotIn, values: ["a\"b", "c"]}, {key: x, operator: DoesNotExist}]
  enableDefaultDeny: {egress: false}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts:
        - ports: [{port: 8080, protocol: TCP}]
          l7: {protocols: [HTTP], hosts: ["*.shop.test"]}
        - ports: [{port: 5000, endPort: 5010, protocol: UDP}, {protocol: ICMP}]
    - fromEntities: [world, host]
    - {}
  ingressDeny:
    - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
      toPorts: [{l7: {protocols: [SSH]}}]
  egressDeny:
    - toCIDR: [169.254.169.254]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [shop]}]}}]
      ports: [{port: 5432}]
  egress: []
)";

TEST(PolicyYaml, EveryPolicyReadsBackAsOneThatJudgesEveryFlowAlike) {
  const auto original = rules::loadPolicyText(EveryFeature, "original.yaml", catalog());
  ASSERT_TRUE(original.ok());
  std::string converted;
  for (const auto& policy : original.set.policies) {
    converted += (converted.empty() ? "" : "---\n") + cli::segmentationPolicyYaml(policy);
  }
  const auto reloaded = rules::loadPolicyText(converted, "converted.yaml", catalog());
  std::string errors;
  for (const auto& error : reloaded.errors) {
    errors += rules::format(error) + "\n";
  }
  ASSERT_TRUE(reloaded.ok()) << errors << converted;
  ASSERT_EQ(reloaded.set.policies.size(), 2u);
  EXPECT_EQ(reloaded.set.policies[1].name, "shop.db");

  const rules::IdentityList identities = {
      {256, {{"app", "web"}}},
      {257, {{"app", "api"}}},
      {258, {{"app", "api"}, {"tier", "a\"b"}}},
      {259, {{"app", "db"}, {"bulkhead.io/namespace", "shop"}}},
      {260, {{"app", "web"}, {"bulkhead.io/namespace", "shop"}}},
      {261, {{"app", "web"}, {"bulkhead.io/namespace", "other"}}}};
  const auto before = rules::compilePolicy(original.set, identities, catalog(), 1);
  const auto after = rules::compilePolicy(reloaded.set, identities, catalog(), 1);
  size_t asked = 0;
  std::vector<IdentityId> peers = {rules::reserved_identity::World, rules::reserved_identity::Host};
  for (const auto& identity : identities) {
    peers.push_back(identity.id);
  }
  for (const IdentityId src : peers) {
    for (const IdentityId dst : peers) {
      for (const uint8_t l4 : {uint8_t{6}, uint8_t{17}, uint8_t{1}}) {
        for (const uint16_t port : {22, 5005, 5432, 8080, 9999}) {
          for (const char* app : {"", "HTTP", "SSH"}) {
            for (const char* address : {"10.2.0.1", "10.1.0.1", "169.254.169.254"}) {
              auto query = flow(src, dst, port, l4);
              query.srcIp = rules::IpAddress::parse(address).value();
              query.dstIp = query.srcIp;
              if (*app != '\0') {
                query = classified(query, app, "api.shop.test");
              }
              const auto a = before->verdict(query);
              const auto b = after->verdict(query);
              ++asked;
              ASSERT_EQ(a.decision, b.decision) << src << "->" << dst << " " << int(l4) << "/"
                                                << port << " " << app << " " << address;
              ASSERT_EQ(a.enforced, b.enforced);
              ASSERT_EQ(a.reject, b.reject);
              ASSERT_EQ(before->ruleName(a), after->ruleName(b));
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(asked, 8u * 8u * 3u * 5u * 3u * 3u);
}

}  // namespace
}  // namespace bulkhead
