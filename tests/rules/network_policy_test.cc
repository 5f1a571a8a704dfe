// Kubernetes' NetworkPolicy as it is: translated into bulkhead's kind, judged the way Kubernetes
// documents it, and refused with a file:line:col error where a container host cannot honour it.
#include "rules/network_policy.h"

#include <gtest/gtest.h>

#include "tests/rules/policy_fixture.h"

namespace bulkhead {
namespace {

using namespace policy_fixture;  // NOLINT: its catalog

constexpr IdentityId ShopWeb = 300;
constexpr IdentityId ShopApi = 301;
constexpr IdentityId OtherWeb = 302;
constexpr IdentityId Monitor = 303;
constexpr IdentityId Loose = 304;  // a container in no compose project

rules::PolicySnapshotPtr compileKubernetes(const std::string& yaml) {
  const auto loaded = rules::loadPolicyText(yaml, "k8s.yaml", catalog());
  for (const auto& error : loaded.errors) {
    ADD_FAILURE() << rules::format(error);
  }
  const auto in = [](const char* ns, const char* app) {
    return rules::Labels{{"app", app}, {"bulkhead.io/namespace", ns}};
  };
  const rules::IdentityList identities = {{ShopWeb, in("shop", "web")},
                                          {ShopApi, in("shop", "api")},
                                          {OtherWeb, in("other", "web")},
                                          {Monitor, in("monitoring", "prometheus")},
                                          {Loose, {{"app", "web"}}}};
  return rules::compilePolicy(loaded.set, identities, catalog(), 1);
}

std::vector<std::string> errorsOf(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& error : rules::loadPolicyText(yaml, "k8s.yaml", catalog()).errors) {
    out.push_back(rules::format(error));
  }
  return out;
}

constexpr const char* ApiAllowWeb = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-allow-web
  namespace: shop
  uid: 0b9e6a4e-2f4c-4c1e-9b1a-0d1e2f3a4b5c
  resourceVersion: "1234"
spec:
  podSelector:
    matchLabels: {app: api}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {app: web}}
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
        - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
      ports:
        - port: 8080
        - protocol: UDP
          port: 5000
          endPort: 5010
)";

TEST(NetworkPolicy, PodsNamespacesAndIpBlocksAreJudgedAsKubernetesDocumentsThem) {
  const auto snapshot = compileKubernetes(ApiAllowWeb);
  const auto decision = [&](IdentityId src, uint16_t port, uint8_t l4 = Tcp,
                            const char* srcIp = nullptr) {
    auto query = flow(src, ShopApi, port, l4);
    if (srcIp != nullptr) {
      query.srcIp = rules::IpAddress::parse(srcIp).value();
    }
    return snapshot->verdict(query).decision;
  };
  EXPECT_EQ(decision(ShopWeb, 8080), Decision::Allow) << "podSelector: the policy's namespace";
  EXPECT_EQ(decision(OtherWeb, 8080), Decision::Deny) << "web of another namespace";
  EXPECT_EQ(decision(Loose, 8080), Decision::Deny) << "web of no namespace";
  EXPECT_EQ(decision(Monitor, 8080), Decision::Allow) << "any pod of the monitoring namespace";
  EXPECT_EQ(decision(ShopWeb, 9090), Decision::Deny);
  EXPECT_EQ(decision(ShopWeb, 5005, Udp), Decision::Allow);
  EXPECT_EQ(decision(ShopWeb, 5011, Udp), Decision::Deny);
  EXPECT_EQ(decision(ShopWeb, 5005), Decision::Deny) << "5000-5010 is UDP";
  EXPECT_EQ(decision(rules::reserved_identity::World, 8080, Tcp, "10.2.0.1"), Decision::Allow);
  EXPECT_EQ(decision(rules::reserved_identity::World, 8080, Tcp, "10.1.0.1"), Decision::Deny);
  // Only ingress is isolated (policyTypes), and only api of shop is selected.
  EXPECT_EQ(snapshot->verdict(flow(ShopApi, OtherWeb, 80)).decision, Decision::Allow);
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, OtherWeb, 80)).decision, Decision::Allow);
  const auto named = snapshot->verdict(flow(ShopWeb, ShopApi, 8080));
  EXPECT_EQ(snapshot->ruleName(named), "shop.api-allow-web/ingress/0");
}

TEST(NetworkPolicy, PolicyTypesFollowKubernetesDefaults) {
  const std::string header =
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n"
      "  podSelector: {matchLabels: {app: web}}\n";
  // No policyTypes and no egress: ingress only, and an empty ingress denies all of it.
  auto snapshot = compileKubernetes(header);
  EXPECT_EQ(snapshot->verdict(flow(ShopApi, ShopWeb, 80)).decision, Decision::Deny);
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, ShopApi, 80)).decision, Decision::Allow);
  // egress rules make Egress a type too; an empty rule allows everything.
  snapshot = compileKubernetes(header + "  egress: [{}]\n  ingress: [{}]\n");
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, ShopApi, 80)).decision, Decision::Allow);
  EXPECT_EQ(snapshot->verdict(flow(ShopApi, ShopWeb, 80)).decision, Decision::Allow);
  // policyTypes [Egress] without egress rules: all egress denied, ingress left alone.
  snapshot = compileKubernetes(header + "  policyTypes: [Egress]\n");
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, ShopApi, 80)).decision, Decision::Deny);
  EXPECT_EQ(snapshot->verdict(flow(ShopApi, ShopWeb, 80)).decision, Decision::Allow);
  // A NetworkPolicy without a namespace selects across namespaces: a container host has none
  // by default.
  EXPECT_EQ(snapshot->verdict(flow(OtherWeb, ShopApi, 80)).decision, Decision::Deny);
  EXPECT_EQ(snapshot->verdict(flow(Loose, ShopApi, 80)).decision, Decision::Deny);
}

TEST(NetworkPolicy, WhatAContainerHostCannotHonourIsAnErrorThatSaysSo) {
  const auto errors = errorsOf(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  ingress: [{}]
  egress:
    - to:
        - podSelector: {}
          ipBlock: {cidr: 10.0.0.0/8}
      ports:
        - port: http-
        - port: 90
          endPort: 80
)");
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("k8s.yaml:7:3: ingress rules, but policyTypes has no Ingress"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("k8s.yaml:11:11: ipBlock goes alone"), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("k8s.yaml:13:17: port 'http-' is neither a number nor a port name"),
            std::string::npos)
      << errors[2];
  EXPECT_NE(errors[3].find("k8s.yaml:15:20: endPort 80 is below port 90"), std::string::npos)
      << errors[3];
  // Fields Kubernetes does not have are refused as in any document.
  const auto typo = errorsOf(
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n"
      "  podSelectr: {}\n");
  ASSERT_EQ(typo.size(), 1u) << ::testing::PrintToString(typo);
  EXPECT_NE(typo[0].find("unknown key 'podSelectr' in spec (did you mean 'podSelector'?)"),
            std::string::npos)
      << typo[0];
}

// Beside bulkhead's own kind in one file: names must not collide, and both are in force.
TEST(NetworkPolicy, LoadsBesideSegmentationPoliciesInOneFile) {
  const auto loaded = rules::loadPolicyText(
      std::string(ApiAllowWeb) + "---\n" +
          policy("web", "  endpointSelector: {matchLabels: {app: web}}\n  egress: []\n"),
      "mixed.yaml", catalog());
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded.set.policies.size(), 2u);
  EXPECT_EQ(loaded.set.policies[0].name, "shop.api-allow-web");
  EXPECT_EQ(loaded.set.policies[1].name, "web");
}

}  // namespace
}  // namespace bulkhead

namespace bulkhead {
namespace {

// Named ports: the destination's port.bulkhead.io/<name> label gives the number, for that
// destination only, and of the rule's protocol only; a destination without it has no such port.
TEST(NetworkPolicy, ANamedPortIsTheNumberTheDestinationsLabelGivesIt) {
  const auto loaded = rules::loadPolicyText(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress:
    - ports: [{port: http}, {protocol: UDP, port: dns}]
)",
                                            "k8s.yaml", catalog());
  ASSERT_TRUE(loaded.ok()) << rules::format(loaded.errors.front());
  const rules::IdentityList identities = {
      {ShopWeb, {{"app", "web"}, {"port.bulkhead.io/http", "8080"}}},
      {ShopApi,
       {{"app", "api"}, {"port.bulkhead.io/http", "9090/TCP"}, {"port.bulkhead.io/dns", "53/UDP"}}},
      {OtherWeb, {{"app", "web"}, {"port.bulkhead.io/http", "8080/UDP"}}},
      {Monitor, {{"app", "prometheus"}, {"port.bulkhead.io/http", "not-a-port"}}}};
  const auto snapshot = rules::compilePolicy(loaded.set, identities, catalog(), 1);
  const auto decide = [&](IdentityId dst, uint16_t port, uint8_t l4 = Tcp) {
    return snapshot->verdict(flow(Monitor, dst, port, l4)).decision;
  };
  EXPECT_EQ(decide(ShopWeb, 8080), Decision::Allow);
  EXPECT_EQ(decide(ShopWeb, 9090), Decision::Deny) << "api's http is not web's";
  EXPECT_EQ(decide(ShopApi, 9090), Decision::Allow);
  EXPECT_EQ(decide(ShopApi, 8080), Decision::Deny);
  EXPECT_EQ(decide(ShopApi, 53, Udp), Decision::Allow);
  EXPECT_EQ(decide(ShopApi, 53), Decision::Deny) << "dns is named for UDP";
  EXPECT_EQ(decide(OtherWeb, 8080), Decision::Deny) << "its http is UDP, the rule's TCP";
  EXPECT_EQ(decide(ShopWeb, 8080, Udp), Decision::Deny);
  // A label that names no port names nothing: never every port.
  EXPECT_EQ(decide(Monitor, 80), Decision::Deny);
  EXPECT_EQ(snapshot->verdict(flow(ShopWeb, Monitor, 8080)).decision, Decision::Deny);
}

}  // namespace
}  // namespace bulkhead
