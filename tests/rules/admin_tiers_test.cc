// The admin tiers: AdminNetworkPolicy's order (admin by priority, then the application policies,
// then the baseline), in bulkhead's own kind and in the network-policy-api's documents, and the
// errors for what a container host cannot honour.
#include "rules/admin_network_policy.h"
#include "rules/policy_explain.h"

#include <gtest/gtest.h>

#include "tests/rules/policy_fixture.h"

namespace bulkhead {
namespace {

using namespace policy_fixture;  // NOLINT: its catalog
using rules::Decision;
using rules::Direction;

std::vector<std::string> errorsOf(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& error : rules::loadPolicyText(yaml, "p.yaml", catalog()).errors) {
    out.push_back(rules::format(error));
  }
  return out;
}

std::string ruleOf(const rules::PolicySnapshotPtr& snapshot, const rules::FlowQuery& query) {
  return std::string(snapshot->ruleName(snapshot->verdict(query)));
}

// An application policy: api takes web on 8080 only.
const std::string ApiTakesWeb =
    policy("api-takes-web", R"(  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)");

TEST(AdminTiers, AnAdminDenyBeatsAnApplicationAllowAndAnAdminAllowItsDefaultDeny) {
  const auto snapshot = compile(ApiTakesWeb + policy("guard", R"(  tier: admin
  priority: 10
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - action: deny
      fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
    - action: allow
      name: db-may-probe
      fromEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 9100, protocol: TCP}]}]
)"));
  const auto denied = snapshot->verdict(flow(Web, Api, 8080));
  EXPECT_EQ(denied.decision, Decision::Deny);
  EXPECT_TRUE(denied.enforced);
  EXPECT_EQ(snapshot->ruleName(denied), "guard/ingress/0");
  ASSERT_NE(snapshot->rule(denied), nullptr);
  EXPECT_EQ(snapshot->rule(denied)->tier, rules::Tier::Admin);
  EXPECT_EQ(snapshot->rule(denied)->action, rules::RuleAction::Deny);
  // api's own policy denies 9100 from db; the admin tier allows it first.
  const auto allowed = snapshot->verdict(flow(Db, Api, 9100));
  EXPECT_EQ(allowed.decision, Decision::Allow);
  EXPECT_EQ(snapshot->ruleName(allowed), "guard/ingress/1");
  EXPECT_EQ(snapshot->rule(allowed)->ruleName, "db-may-probe");
  // What the admin tier does not match, the application tier decides.
  EXPECT_EQ(ruleOf(snapshot, flow(Db, Api, 8080)), "default-deny");
}

TEST(AdminTiers, PassHandsTheFlowToTheApplicationTierAndLowerPrioritiesComeFirst) {
  // In the file, the priority-20 policy comes first: the order is the priority's.
  const auto snapshot = compile(ApiTakesWeb + policy("later", R"(  tier: admin
  priority: 20
  endpointSelector: {}
  ingress:
    - action: deny
      fromEndpoints: [{}]
)") + policy("first", R"(  tier: admin
  priority: 5
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - action: pass
      fromEndpoints: [{matchLabels: {app: web}}]
)"));
  // web -> api passes the deny-everything at 20 and is judged by api's own policy.
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Api, 8080)), "api-takes-web/ingress/0");
  EXPECT_EQ(snapshot->verdict(flow(Web, Api, 9090)).decision, Decision::Deny);
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Api, 9090)), "default-deny");
  // Nothing passes db -> api or api -> web: the priority-20 deny decides.
  EXPECT_EQ(ruleOf(snapshot, flow(Db, Api, 8080)), "later/ingress/0");
  EXPECT_EQ(ruleOf(snapshot, flow(Api, Web, 80)), "later/ingress/0");
}

TEST(AdminTiers, TheBaselineDecidesOnlyWhereNoApplicationPolicySelectsTheEndpoint) {
  const auto snapshot = compile(ApiTakesWeb + policy("baseline", R"(  tier: baseline
  endpointSelector: {}
  ingress:
    - action: allow
      fromEndpoints: [{matchLabels: {app: api}}]
    - action: deny
      fromEndpoints: [{}]
)"));
  // api is selected by an application policy: the baseline is not asked for its ingress.
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Api, 8080)), "api-takes-web/ingress/0");
  EXPECT_EQ(ruleOf(snapshot, flow(Db, Api, 5432)), "default-deny");
  // web and db are selected by nothing else: the baseline's first match decides.
  EXPECT_EQ(ruleOf(snapshot, flow(Api, Db, 5432)), "baseline/ingress/0");
  EXPECT_EQ(snapshot->verdict(flow(Api, Db, 5432)).decision, Decision::Allow);
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Db, 5432)), "baseline/ingress/1");
  EXPECT_EQ(snapshot->verdict(flow(Web, Db, 5432)).decision, Decision::Deny);
}

TEST(AdminTiers, TheExplanationNamesTheTierRuleThatDenied) {
  const auto snapshot = compile(ApiTakesWeb + policy("guard", R"(  tier: admin
  priority: 1
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - action: deny
      fromEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)") + policy("baseline", R"(  tier: baseline
  endpointSelector: {}
  ingress:
    - action: deny
      fromEndpoints: [{matchLabels: {app: api}}]
)"));
  const auto name = [](uint16_t id) { return std::to_string(id); };
  const auto admin = rules::explainDenial(*snapshot, flow(Db, Api, 8080), Direction::Ingress, name);
  EXPECT_EQ(admin.what(), "admin-deny");
  EXPECT_EQ(admin.closestRule, "guard/ingress/0");
  EXPECT_EQ(admin.text("db"),
            "admin rule guard/ingress/0 denies 8080/TCP from or to db, before any application "
            "policy");
  const auto baseline =
      rules::explainDenial(*snapshot, flow(Api, Web, 80), Direction::Ingress, name);
  EXPECT_EQ(baseline.what(), "baseline-deny");
  EXPECT_EQ(baseline.closestRule, "baseline/ingress/0");
  // Below the admin tier, api's own policy explains its default-deny as before.
  const auto application =
      rules::explainDenial(*snapshot, flow(Web, Api, 9090), Direction::Ingress, name);
  EXPECT_EQ(application.what(), "port");
  EXPECT_EQ(application.closestRule, "api-takes-web/ingress/0");
}

TEST(AdminTiers, AnApplicationDenyRuleHasItsSayBeforeTheBaseline) {
  const auto snapshot = compile(policy("no-ssh", R"(  endpointSelector: {}
  ingressDeny:
    - toPorts: [{ports: [{port: 22, protocol: TCP}]}]
  enableDefaultDeny: {ingress: false}
)") + policy("baseline", R"(  tier: baseline
  endpointSelector: {}
  ingress:
    - action: allow
      fromEndpoints: [{}]
)"));
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Db, 22)), "no-ssh/ingressDeny/0");
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Db, 5432)), "baseline/ingress/0");
}

TEST(AdminTiers, AMonitorModeAdminPolicyReportsWhatItWouldDenyAndOpensNothing) {
  const auto snapshot = compile(ApiTakesWeb + policy("trial", R"(  tier: admin
  priority: 1
  mode: monitor
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - action: deny
      fromEndpoints: [{matchLabels: {app: web}}]
    - action: allow
      fromEndpoints: [{matchLabels: {app: db}}]
)"));
  const auto reported = snapshot->verdict(flow(Web, Api, 8080));
  EXPECT_EQ(reported.decision, Decision::Deny);
  EXPECT_FALSE(reported.enforced) << "monitor mode only reports";
  EXPECT_EQ(snapshot->ruleName(reported), "trial/ingress/0");
  // Its allow does not open what api's enforce-mode policy denies.
  const auto closed = snapshot->verdict(flow(Db, Api, 8080));
  EXPECT_EQ(closed.decision, Decision::Deny);
  EXPECT_TRUE(closed.enforced);
}

TEST(AdminTiers, EgressIsJudgedOnTheSourceAndBothSidesMustAllow) {
  const auto snapshot = compile(policy("egress-guard", R"(  tier: admin
  priority: 0
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - action: deny
      toEndpoints: [{matchLabels: {app: db}}]
    - action: allow
      toEndpoints: [{}]
)") + ApiTakesWeb);
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Db, 5432)), "egress-guard/egress/0");
  EXPECT_EQ(snapshot->verdict(flow(Web, Db, 5432)).deniedBy, Direction::Egress);
  // The admin allow on web's egress does not decide api's ingress.
  EXPECT_EQ(snapshot->verdict(flow(Web, Api, 9090)).decision, Decision::Deny);
  EXPECT_EQ(snapshot->verdict(flow(Web, Api, 9090)).deniedBy, Direction::Ingress);
}

const char* AnpHeader = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\n";

TEST(AdminNetworkPolicy, LoadsAsItIsAndIsJudgedInItsTier) {
  const auto loaded = rules::loadPolicyText(std::string(AnpHeader) + R"(metadata: {name: guard}
spec:
  priority: 3
  subject:
    pods:
      namespaceSelector: {}
      podSelector: {matchLabels: {app: api}}
  ingress:
    - name: deny-web-on-8080
      action: Deny
      from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]
      ports: [{portNumber: {protocol: TCP, port: 8080}}]
    - name: everything-else-to-the-app
      action: Pass
      from: [{namespaces: {}}]
  egress:
    - name: metadata
      action: Deny
      to: [{networks: [169.254.169.254/32]}]
    - name: range
      action: Allow
      to: [{nodes: {}}]
      ports: [{portRange: {start: 9000, end: 9100}}, {portNumber: {protocol: UDP, port: 53}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}
  ingress:
    - action: Deny
      from: [{namespaces: {}}]
)",
                                            "anp.yaml", catalog());
  ASSERT_TRUE(loaded.ok()) << rules::format(loaded.errors.front());
  ASSERT_EQ(loaded.set.policies.size(), 2u);
  const auto& guard = loaded.set.policies[0];
  EXPECT_EQ(guard.tier, rules::Tier::Admin);
  EXPECT_EQ(guard.priority, 3u);
  ASSERT_TRUE(guard.egress);
  EXPECT_TRUE((*guard.egress)[0].cidrsMatchEndpoints);
  EXPECT_EQ((*guard.egress)[1].entities, std::vector<rules::Entity>{rules::Entity::Host});
  ASSERT_EQ((*guard.egress)[1].toPorts.size(), 1u);
  const auto& ports = (*guard.egress)[1].toPorts[0].ports;
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0].first, 9000);
  EXPECT_EQ(ports[0].last, 9100);
  EXPECT_EQ(ports[0].protocol, rules::L4Protocol::TCP);
  EXPECT_EQ(ports[1].protocol, rules::L4Protocol::UDP);
  EXPECT_EQ(loaded.set.policies[1].tier, rules::Tier::Baseline);

  const rules::IdentityList identities = {
      {Web, {{"app", "web"}}}, {Api, {{"app", "api"}}}, {Db, {{"app", "db"}}}};
  const auto snapshot = rules::compilePolicy(loaded.set, identities, catalog(), 1);
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Api, 8080)), "guard/ingress/0");
  // Passed by the admin tier, api is in no application policy: the baseline denies.
  EXPECT_EQ(ruleOf(snapshot, flow(Db, Api, 8080)), "default/ingress/0");
  // networks match every address, a container's too (as the API defines).
  auto toMetadata = flow(Api, Web, 80);
  toMetadata.dstIp = *rules::IpAddress::parse("169.254.169.254");
  EXPECT_EQ(ruleOf(snapshot, toMetadata), "guard/egress/0");
}

TEST(AdminNetworkPolicy, WhatAContainerHostCannotHonourIsAnErrorThatSaysSo) {
  const auto errors = errorsOf(std::string(AnpHeader) + R"(metadata: {name: g, namespace: x}
spec:
  priority: 1001
  subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}
  egress:
    - action: Allow
      to: [{domainNames: ["*.example.com"]}]
    - action: Deny
      to: [{nodes: {matchLabels: {kubernetes.io/os: linux}}}]
    - action: Pass
      to: [{namespaces: {}}]
      ports: [{namedPort: HTTP}, {portNumber: {protocol: QUIC, port: 9}}]
    - action: Drop
      to: [{namespaces: {}}]
)");
  ASSERT_EQ(errors.size(), 8u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("p.yaml:3:32: AdminNetworkPolicy is cluster-scoped"), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("p.yaml:5:13: priority must be a number 0-1000"), std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("p.yaml:6:12: subject needs exactly one of namespaces and pods"),
            std::string::npos)
      << errors[2];
  EXPECT_NE(errors[3].find("p.yaml:9:13: domainNames"), std::string::npos) << errors[3];
  EXPECT_NE(errors[4].find("p.yaml:11:20: nodes with labels"), std::string::npos) << errors[4];
  EXPECT_NE(errors[5].find("p.yaml:14:27: namedPort 'HTTP' must be"), std::string::npos)
      << errors[5];
  EXPECT_NE(errors[6].find("p.yaml:14:58: protocol must be TCP, UDP or SCTP"), std::string::npos)
      << errors[6];
  EXPECT_NE(errors[7].find("p.yaml:15:15: action must be Allow, Deny or Pass, got 'Drop'"),
            std::string::npos)
      << errors[7];
}

TEST(AdminTiers, NativeTierErrorsSayWhatToWriteInstead) {
  const auto errors = errorsOf(policy("a", R"(  tier: admin
  endpointSelector: {}
  ingressDeny: []
  ingress:
    - fromEndpoints: [{}]
    - action: allow
      toPorts: [{ports: [{port: 80}], l7: {protocols: [HTTP]}}]
)") + policy("b", R"(  tier: baseline
  priority: 3
  endpointSelector: {}
  egress:
    - action: pass
)") + policy("c", R"(  endpointSelector: {}
  ingress:
    - action: deny
)"));
  ASSERT_EQ(errors.size(), 7u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("p.yaml:5:3: an admin-tier policy needs a priority"), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("p.yaml:7:3: ingressDeny is for application policies"),
            std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("p.yaml:9:7: a rule of the admin tier needs an action"),
            std::string::npos)
      << errors[2];
  EXPECT_NE(errors[3].find("p.yaml:11:39: the admin tier matches addresses and ports"),
            std::string::npos)
      << errors[3];
  EXPECT_NE(errors[4].find("p.yaml:18:3: priority orders admin-tier policies"), std::string::npos)
      << errors[4];
  EXPECT_NE(errors[5].find("p.yaml:21:15: pass hands a flow down"), std::string::npos) << errors[5];
  EXPECT_NE(errors[6].find("p.yaml:29:7: action is for admin and baseline"), std::string::npos)
      << errors[6];
}

// namespaceSelector on a namespace's labels other than its name selects on the labels the
// agent's `namespaces` configuration gives it (bulkhead.io/namespace.labels.<key>).
TEST(AdminNetworkPolicy, NamespaceLabelsSelectThroughTheNamespaceLabelsOfEndpoints) {
  const auto loaded = rules::loadPolicyText(std::string(AnpHeader) + R"(metadata: {name: houses}
spec:
  priority: 1
  subject: {namespaces: {matchLabels: {house: gryffindor}}}
  ingress:
    - action: Deny
      from: [{namespaces: {matchExpressions: [{key: house, operator: In, values: [slytherin]}]}}]
)",
                                            "anp.yaml", catalog());
  ASSERT_TRUE(loaded.ok()) << rules::format(loaded.errors.front());
  rules::Labels harry = {{"bulkhead.io/namespace", "g"}};
  rules::addNamespaceLabels(harry, {{"g", {{"house", "gryffindor"}}}});
  rules::Labels draco = {{"bulkhead.io/namespace", "s"}};
  rules::addNamespaceLabels(draco, {{"s", {{"house", "slytherin"}}}});
  EXPECT_EQ(draco.at("bulkhead.io/namespace.labels.house"), "slytherin");
  const rules::IdentityList identities = {{Web, harry}, {Api, draco}, {Db, {{"app", "db"}}}};
  const auto snapshot = rules::compilePolicy(loaded.set, identities, catalog(), 1);
  EXPECT_EQ(ruleOf(snapshot, flow(Api, Web, 80)), "houses/ingress/0");
  EXPECT_EQ(ruleOf(snapshot, flow(Db, Web, 80)), "default-allow");
  EXPECT_EQ(ruleOf(snapshot, flow(Web, Api, 80)), "default-allow");
}

}  // namespace
}  // namespace bulkhead
