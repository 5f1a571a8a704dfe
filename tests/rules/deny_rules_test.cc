// Deny rules (ingressDeny/egressDeny): precedence over every allow, monitor mode only reports,
// L7 denials wait for the protocol, enableDefaultDeny for guardrails that deny only.
#include <gtest/gtest.h>

#include "rules/policy_explain.h"
#include "tests/rules/policy_fixture.h"

namespace bulkhead {
namespace {

using namespace policy_fixture;  // NOLINT: its policy, compile and flow

// An allow-everything policy and a deny on top of it: the deny wins, named, and only what it
// names is denied.
TEST(DenyRules, ADenyRuleWinsOverEveryAllowAndIsNamed) {
  const auto snapshot = compile(policy("open", R"(  endpointSelector: {matchLabels: {app: api}}
  ingress: [{}]
)") + policy("guard", R"(  endpointSelector: {matchLabels: {app: api}}
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 22, protocol: TCP}]}]
)"));
  const auto denied = snapshot->verdict(flow(Db, Api, 22));
  EXPECT_EQ(denied.decision, Decision::Deny);
  EXPECT_TRUE(denied.enforced);
  EXPECT_EQ(denied.deniedBy, Direction::Ingress);
  EXPECT_EQ(snapshot->ruleName(denied), "guard/ingressDeny/0");
  EXPECT_EQ(snapshot->verdict(flow(Db, Api, 80)).decision, Decision::Allow);
  EXPECT_EQ(snapshot->verdict(flow(Web, Api, 22)).decision, Decision::Allow);
  const auto why = rules::explainDenial(*snapshot, flow(Db, Api, 22), Direction::Ingress,
                                        [](uint16_t id) { return catalog().name(id); });
  EXPECT_EQ(why.what(), "deny-rule");
  EXPECT_EQ(why.closestRule, "guard/ingressDeny/0");
  EXPECT_EQ(why.text("db"),
            "deny rule guard/ingressDeny/0 denies 22/TCP from or to db, whatever any rule allows");
}

// A policy with only deny rules makes the direction default-deny (as Cilium's does) unless
// enableDefaultDeny says no: then it is a guardrail on otherwise open traffic.
TEST(DenyRules, EnableDefaultDenyFalseMakesAGuardrailThatDeniesOnlyWhatItNames) {
  const std::string deny = R"(  endpointSelector: {}
  egressDeny:
    - toCIDR: [169.254.169.254/32]
)";
  const auto isolating = compile(policy("metadata", deny));
  auto toWorld = flow(Web, rules::reserved_identity::World, 443);
  toWorld.dstIp = rules::IpAddress::parse("203.0.113.1").value();
  EXPECT_EQ(isolating->verdict(toWorld).decision, Decision::Deny);
  EXPECT_EQ(isolating->ruleName(isolating->verdict(toWorld)), "default-deny");

  const auto guardrail =
      compile(policy("metadata", std::string(deny) + "  enableDefaultDeny: {egress: false}\n"));
  EXPECT_EQ(guardrail->verdict(toWorld).decision, Decision::Allow);
  auto toMetadata = toWorld;
  toMetadata.dstIp = rules::IpAddress::parse("169.254.169.254").value();
  const auto verdict = guardrail->verdict(toMetadata);
  EXPECT_EQ(verdict.decision, Decision::Deny);
  EXPECT_EQ(verdict.deniedBy, Direction::Egress);
  EXPECT_EQ(guardrail->ruleName(verdict), "metadata/egressDeny/0");
  // Allow rules elsewhere still isolate: api's ingress is default-deny by its own policy.
  const auto both =
      compile(policy("metadata", std::string(deny) + "  enableDefaultDeny: {egress: false}\n") +
              policy("api",
                     "  endpointSelector: {matchLabels: {app: api}}\n"
                     "  ingress: []\n"));
  EXPECT_EQ(both->verdict(flow(Web, Api, 80)).decision, Decision::Deny);
  EXPECT_EQ(both->verdict(flow(Web, Db, 80)).decision, Decision::Allow);
}

// Deny by protocol or host: undecided until nDPI names it (and held back when enforced), then
// denied only when it matches.
TEST(DenyRules, AnL7DenyWaitsForTheProtocolAndDeniesOnlyWhatItNames) {
  const auto snapshot = compile(policy("open", R"(  endpointSelector: {matchLabels: {app: api}}
  ingress: [{}]
  ingressDeny:
    - toPorts:
        - ports: [{port: 8080, protocol: TCP}]
          l7: {protocols: [SSH]}
        - ports: [{port: 8080, protocol: TCP}]
          l7: {protocols: [HTTP], hosts: ["*.evil.test"]}
)"));
  const auto pending = snapshot->verdict(flow(Web, Api, 8080));
  EXPECT_EQ(pending.decision, Decision::NeedL7);
  EXPECT_TRUE(pending.enforced) << "held back: an enforced deny may still match";
  EXPECT_EQ(snapshot->verdict(flow(Web, Api, 9090)).decision, Decision::Allow);
  EXPECT_EQ(snapshot->verdict(classified(flow(Web, Api, 8080), "HTTP", "api.test")).decision,
            Decision::Allow);
  const auto evil = snapshot->verdict(classified(flow(Web, Api, 8080), "HTTP", "x.evil.test"));
  EXPECT_EQ(evil.decision, Decision::Deny);
  EXPECT_EQ(snapshot->ruleName(evil), "open/ingressDeny/0");
  EXPECT_EQ(snapshot->verdict(classified(flow(Web, Api, 8080), "SSH")).decision, Decision::Deny);
}

// In monitor mode a deny rule reports, never drops; an enforced allow-list's denial is still
// enforced, and an enforced deny still wins over a monitor-mode allow.
TEST(DenyRules, MonitorModeDenyRulesOnlyReport) {
  const auto snapshot = compile(policy("open", R"(  endpointSelector: {matchLabels: {app: api}}
  ingress: [{toPorts: [{ports: [{port: 80, protocol: TCP}]}]}]
)") + policy("trial", R"(  mode: monitor
  endpointSelector: {matchLabels: {app: api}}
  ingressDeny: [{fromEndpoints: [{matchLabels: {app: web}}]}]
)"));
  const auto reported = snapshot->verdict(flow(Web, Api, 80));
  EXPECT_EQ(reported.decision, Decision::Deny);
  EXPECT_FALSE(reported.enforced);
  EXPECT_EQ(snapshot->ruleName(reported), "trial/ingressDeny/0");
  const auto dropped = snapshot->verdict(flow(Web, Api, 81));
  EXPECT_EQ(dropped.decision, Decision::Deny);
  EXPECT_TRUE(dropped.enforced);
  EXPECT_EQ(snapshot->ruleName(dropped), "default-deny");
  EXPECT_EQ(snapshot->verdict(flow(Db, Api, 80)).decision, Decision::Allow);

  const auto enforcedDeny = compile(policy("trial", R"(  mode: monitor
  endpointSelector: {matchLabels: {app: api}}
  ingress: [{}]
)") + policy("guard", R"(  endpointSelector: {matchLabels: {app: api}}
  ingressDeny: [{fromEndpoints: [{matchLabels: {app: db}}], toPorts: [{ports: [{port: 53, protocol: UDP}]}]}]
)"));
  const auto verdict = enforcedDeny->verdict(flow(Db, Api, 53, Udp));
  EXPECT_EQ(verdict.decision, Decision::Deny);
  EXPECT_TRUE(verdict.enforced);
  EXPECT_EQ(enforcedDeny->ruleName(verdict), "guard/ingressDeny/0");
}

TEST(DenyRules, TheLoaderValidatesThemLikeAllowRules) {
  const auto loaded = rules::loadPolicyText(policy("bad", R"(  endpointSelector: {}
  egressDeny:
    - toPorts: [{ports: [{port: 99999, protocol: TCP}]}]
  enableDefaultDeny: {egress: maybe, sideways: true}
)"),
                                            "p.yaml", catalog());
  std::vector<std::string> errors;
  for (const auto& error : loaded.errors) {
    errors.push_back(rules::format(error));
  }
  ASSERT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("p.yaml:7:33: port '99999' must be a number"), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("p.yaml:8:31: enableDefaultDeny.egress must be true or false, got "
                           "'maybe'"),
            std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("unknown key 'sideways' in enableDefaultDeny"), std::string::npos)
      << errors[2];
  // Deny rules alone are a policy.
  EXPECT_TRUE(rules::loadPolicyText(policy("ok", "  endpointSelector: {}\n  ingressDeny: []\n"),
                                    "p.yaml", catalog())
                  .ok());
}

}  // namespace
}  // namespace bulkhead
