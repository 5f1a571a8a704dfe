// Cilium's CiliumNetworkPolicy as it is: translated into bulkhead's kind (whose fields are
// Cilium's), judged as Cilium documents it where a container host can, refused with a
// file:line:col error where it cannot.
#include "rules/cilium_network_policy.h"

#include <gtest/gtest.h>

#include "tests/rules/policy_fixture.h"

namespace bulkhead {
namespace {

using namespace policy_fixture;  // NOLINT: its catalog, flow and classified

constexpr IdentityId ShopWeb = 300;
constexpr IdentityId ShopApi = 301;
constexpr IdentityId OtherWeb = 302;

rules::PolicySnapshotPtr compileCilium(const std::string& yaml) {
  const auto loaded = rules::loadPolicyText(yaml, "cnp.yaml", catalog());
  for (const auto& error : loaded.errors) {
    ADD_FAILURE() << rules::format(error);
  }
  const auto in = [](const char* ns, const char* app) {
    return rules::Labels{{"app", app}, {"bulkhead.io/namespace", ns}};
  };
  return rules::compilePolicy(
      loaded.set,
      {{ShopWeb, in("shop", "web")}, {ShopApi, in("shop", "api")}, {OtherWeb, in("other", "web")}},
      catalog(), 1);
}

std::vector<std::string> errorsOf(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& error : rules::loadPolicyText(yaml, "cnp.yaml", catalog()).errors) {
    out.push_back(rules::format(error));
  }
  return out;
}

TEST(CiliumNetworkPolicy, PeersPortsDnsAndFqdnsAreJudgedAsTheirSegmentationPolicy) {
  const auto snapshot = compileCilium(R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {k8s:app: web}}
  egress:
    - toEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: other}}]
    - toEntities: [world]
      toPorts:
        - ports: [{port: "53", protocol: UDP}]
          rules: {dns: [{matchPattern: "*.example.com"}]}
    - toFQDNs: [{matchName: api.github.test}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
)");
  const auto to = [&](IdentityId dst, uint16_t port, uint8_t l4 = Tcp) {
    return snapshot->verdict(flow(ShopWeb, dst, port, l4)).decision;
  };
  EXPECT_EQ(to(ShopApi, 8080), Decision::Allow) << "api of the policy's namespace";
  EXPECT_EQ(to(ShopApi, 9090), Decision::Deny);
  EXPECT_EQ(to(OtherWeb, 22), Decision::Allow) << "every pod of namespace other";
  const auto world = rules::reserved_identity::World;
  EXPECT_EQ(
      snapshot->verdict(classified(flow(ShopWeb, world, 53, Udp), "DNS", "a.example.com")).decision,
      Decision::Allow);
  EXPECT_EQ(
      snapshot->verdict(classified(flow(ShopWeb, world, 53, Udp), "DNS", "exfil.test")).decision,
      Decision::Deny);
  EXPECT_EQ(
      snapshot->verdict(classified(flow(ShopWeb, world, 443), "TLS", "api.github.test")).decision,
      Decision::Allow);
  EXPECT_EQ(snapshot->verdict(classified(flow(ShopWeb, world, 443), "TLS", "evil.test")).decision,
            Decision::Deny);
  // web of another namespace is not selected: its egress is open.
  EXPECT_EQ(snapshot->verdict(flow(OtherWeb, ShopApi, 9090)).decision, Decision::Allow);
}

TEST(CiliumNetworkPolicy, DenyRulesAndEntitiesKeepTheirMeaning) {
  const auto snapshot = compileCilium(R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: guard}
spec:
  endpointSelector: {}
  ingressDeny:
    - fromEntities: [cluster]
      toPorts: [{ports: [{port: "22", protocol: TCP}]}]
  enableDefaultDeny: {ingress: false}
)");
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, ShopApi, 22)).decision, Decision::Deny);
  EXPECT_EQ(snapshot->ruleName(snapshot->verdict(flow(ShopWeb, ShopApi, 22))),
            "guard/ingressDeny/0");
  EXPECT_EQ(snapshot->verdict(flow(rules::reserved_identity::Host, ShopApi, 22)).decision,
            Decision::Deny);
  EXPECT_EQ(snapshot->verdict(flow(rules::reserved_identity::World, ShopApi, 22)).decision,
            Decision::Allow);
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, ShopApi, 80)).decision, Decision::Allow);
}

TEST(CiliumNetworkPolicy, WhatBulkheadCannotEnforceIsRefusedNeverWidened) {
  const auto errors = errorsOf(R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p}
spec:
  endpointSelector: {}
  ingress:
    - fromEntities: [kube-apiserver]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET, path: /}]}
    - fromRequires: [{matchLabels: {env: prod}}]
  egress:
    - toPorts: [{ports: [{port: Web_Port}]}]
)");
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("cnp.yaml:7:22: entity 'kube-apiserver' has no counterpart"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("cnp.yaml:10:19: http rules are not supported"), std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("cnp.yaml:11:7: fromRequires is not supported"), std::string::npos)
      << errors[2];
  EXPECT_NE(errors[3].find("cnp.yaml:13:33: port 'Web_Port' is neither a number nor a port name"),
            std::string::npos)
      << errors[3];
  const auto specs = errorsOf(
      "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspecs: []\n");
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_NE(specs[0].find("several rules in 'specs'"), std::string::npos) << specs[0];
}

}  // namespace
}  // namespace bulkhead
