#include "rules/policy_snapshot.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead {
namespace {

using rules::AppProtocol;
using rules::Decision;
using rules::Direction;
using rules::FlowQuery;
using rules::IdentityId;
using rules::IpAddress;
using rules::Verdict;
namespace reserved = rules::reserved_identity;

constexpr uint8_t Icmp = 1;
constexpr uint8_t Tcp = 6;
constexpr uint8_t Udp = 17;
constexpr uint8_t Icmpv6 = 58;
constexpr uint8_t Sctp = 132;

constexpr IdentityId Web = 256;
constexpr IdentityId Api = 257;
constexpr IdentityId Db = 258;
constexpr IdentityId Other = 259;

const rules::ProtocolCatalog& catalog() {
  static const dpi::NdpiProtocolCatalog instance;
  return instance;
}

uint16_t protocolId(const char* name) {
  const auto id = catalog().find(name);
  EXPECT_TRUE(id.has_value()) << name;
  return id.value_or(0);
}

IpAddress ip(const char* text) {
  const auto parsed = IpAddress::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(IpAddress{});
}

// One policy document; `spec` is the indented body of `spec:`.
std::string policy(std::string_view name, std::string_view spec) {
  return "apiVersion: bulkhead.io/v1\n"
         "kind: SegmentationPolicy\n"
         "metadata: {name: " +
         std::string(name) + "}\nspec:\n" + std::string(spec) + "---\n";
}

FlowQuery flow(IdentityId src, IdentityId dst, uint8_t ipProtocol = Tcp, uint16_t dstPort = 80) {
  FlowQuery query;
  query.src = src;
  query.dst = dst;
  query.ipProtocol = ipProtocol;
  query.dstPort = dstPort;
  return query;
}

FlowQuery withApp(FlowQuery query, uint16_t master, uint16_t app, std::string_view host = {}) {
  query.app = AppProtocol{master, app};
  query.host = host;
  return query;
}

class PolicySnapshotTest : public ::testing::Test {
 protected:
  rules::PolicySnapshotPtr compile(const std::string& yaml, uint64_t generation = 1) {
    const auto loaded = rules::loadPolicyText(yaml, "p.yaml", catalog());
    for (const auto& error : loaded.errors) {
      ADD_FAILURE() << rules::format(error);
    }
    return rules::compilePolicy(loaded.set, identities_, catalog(), generation);
  }

  Verdict verdict(const FlowQuery& query) const { return snapshot_->verdict(query); }

  void expectAllowed(const FlowQuery& query, std::string_view ruleName) const {
    const Verdict result = verdict(query);
    EXPECT_EQ(result.decision, Decision::Allow)
        << query.src << " -> " << query.dst << " proto " << int(query.ipProtocol) << " port "
        << query.dstPort;
    EXPECT_EQ(snapshot_->ruleName(result), ruleName);
  }

  void expectDenied(const FlowQuery& query, Direction deniedBy, bool enforced = true) const {
    const Verdict result = verdict(query);
    EXPECT_EQ(result.decision, Decision::Deny)
        << query.src << " -> " << query.dst << " proto " << int(query.ipProtocol) << " port "
        << query.dstPort;
    EXPECT_EQ(result.rule, Verdict::NoRule);
    EXPECT_EQ(snapshot_->ruleName(result), "default-deny");
    EXPECT_EQ(result.deniedBy, deniedBy);
    EXPECT_EQ(result.enforced, enforced);
  }

  rules::IdentityList identities_ = {
      {Web, {{"app", "web"}, {"tier", "frontend"}}},
      {Api, {{"app", "api"}, {"tier", "backend"}}},
      {Db, {{"app", "db"}, {"tier", "backend"}}},
      {Other, {{"app", "other"}}},
  };
  rules::PolicySnapshotPtr snapshot_;
};

const std::string DbFromApi = policy("db-in", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]
)");

TEST_F(PolicySnapshotTest, WithoutPoliciesEverythingIsAllowed) {
  snapshot_ = compile("");
  expectAllowed(flow(Web, Db), "default-allow");
  expectAllowed(flow(reserved::World, Api, Udp, 53), "default-allow");
  EXPECT_EQ(snapshot_->policyCount(), 0u);
  EXPECT_EQ(snapshot_->ruleCount(), 0u);
}

TEST_F(PolicySnapshotTest, UnselectedEndpointsAreAllowedByDefault) {
  snapshot_ = compile(DbFromApi);
  const Verdict result = verdict(flow(Web, Api, Tcp, 8080));
  EXPECT_EQ(result.decision, Decision::Allow);
  EXPECT_EQ(result.rule, Verdict::NoRule);
  EXPECT_EQ(snapshot_->ruleName(result), "default-allow");
  EXPECT_EQ(snapshot_->endpointPolicy(Web), nullptr);
  EXPECT_EQ(snapshot_->endpointPolicy(Api), nullptr);
  ASSERT_NE(snapshot_->endpointPolicy(Db), nullptr);
}

TEST_F(PolicySnapshotTest, IngressPolicyMakesOnlyIngressDefaultDeny) {
  snapshot_ = compile(DbFromApi);
  expectAllowed(flow(Api, Db, Tcp, 5432), "db-in/ingress/0");
  expectDenied(flow(Web, Db, Tcp, 5432), Direction::Ingress);
  expectDenied(flow(Api, Db, Tcp, 80), Direction::Ingress);
  // The policy has no egress section: the database may still open connections.
  expectAllowed(flow(Db, Web, Tcp, 80), "default-allow");
  expectAllowed(flow(Db, reserved::World, Udp, 53), "default-allow");
  const auto* db = snapshot_->endpointPolicy(Db);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->ingress.isolated);
  EXPECT_FALSE(db->egress.isolated);
}

TEST_F(PolicySnapshotTest, EgressPolicyMakesOnlyEgressDefaultDeny) {
  snapshot_ = compile(policy("api-out", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress:
    - toEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]
)"));
  expectAllowed(flow(Api, Db, Tcp, 5432), "api-out/egress/0");
  expectDenied(flow(Api, Web, Tcp, 80), Direction::Egress);
  expectDenied(flow(Api, reserved::World, Tcp, 443), Direction::Egress);
  expectAllowed(flow(Web, Api, Tcp, 8080), "default-allow");
}

TEST_F(PolicySnapshotTest, EmptyIngressListDeniesAllIngress) {
  snapshot_ = compile(policy("db-closed", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress: []
)"));
  expectDenied(flow(Api, Db, Tcp, 5432), Direction::Ingress);
  expectDenied(flow(reserved::Host, Db, Icmp, 0), Direction::Ingress);
  expectAllowed(flow(Db, Api, Tcp, 8080), "default-allow");
}

TEST_F(PolicySnapshotTest, EmptySelectorSelectsEveryEndpoint) {
  snapshot_ = compile(policy("lockdown", R"(
  endpointSelector: {}
  ingress: []
)"));
  for (const IdentityId endpoint : {Web, Api, Db, Other}) {
    expectDenied(flow(reserved::World, endpoint), Direction::Ingress);
  }
}

TEST_F(PolicySnapshotTest, SelectorExpressionsPickTheEndpoints) {
  snapshot_ = compile(policy("backend", R"(
  endpointSelector:
    matchExpressions: [{key: tier, operator: In, values: [backend]}]
  ingress: []
)"));
  expectDenied(flow(Web, Api), Direction::Ingress);
  expectDenied(flow(Web, Db), Direction::Ingress);
  expectAllowed(flow(Api, Web), "default-allow");
  expectAllowed(flow(Api, Other), "default-allow");
}

TEST_F(PolicySnapshotTest, TrafficBetweenSelectedEndpointsNeedsEgressAndIngress) {
  const std::string apiOut = policy("api-out", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress:
    - toEndpoints: [{matchLabels: {app: db}}]
      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]
)");
  const std::string dbFromWeb = policy("db-from-web", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
)");
  snapshot_ = compile(apiOut + dbFromWeb);
  // The api's egress allows it, the db's ingress does not.
  expectDenied(flow(Api, Db, Tcp, 5432), Direction::Ingress);
  expectAllowed(flow(Web, Db, Tcp, 5432), "db-from-web/ingress/0");

  snapshot_ = compile(apiOut + dbFromWeb + DbFromApi);
  // Both sides allow it; the ingress rule is the one reported.
  expectAllowed(flow(Api, Db, Tcp, 5432), "db-in/ingress/0");
  // The db's ingress allows any port from web, but the api's egress only 5432.
  snapshot_ = compile(apiOut + policy("db-from-api-any", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]
)"));
  expectAllowed(flow(Api, Db, Tcp, 5432), "db-from-api-any/ingress/0");
  expectDenied(flow(Api, Db, Tcp, 6432), Direction::Egress);
}

TEST_F(PolicySnapshotTest, WhenBothSidesDenyIngressIsReported) {
  snapshot_ = compile(policy("api-out", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress: []
)") + DbFromApi);
  expectDenied(flow(Api, Db, Tcp, 80), Direction::Ingress);
  expectDenied(flow(Api, Db, Tcp, 5432), Direction::Egress);
  expectDenied(flow(Api, Web, Tcp, 80), Direction::Egress);
}

TEST_F(PolicySnapshotTest, RulesOfSeveralPoliciesAreAUnion) {
  snapshot_ = compile(DbFromApi + policy("db-from-web", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 80, protocol: TCP}]}]
)"));
  expectAllowed(flow(Api, Db, Tcp, 5432), "db-in/ingress/0");
  expectAllowed(flow(Web, Db, Tcp, 80), "db-from-web/ingress/0");
  expectDenied(flow(Api, Db, Tcp, 80), Direction::Ingress);
  expectDenied(flow(Web, Db, Tcp, 5432), Direction::Ingress);
  expectDenied(flow(Other, Db, Tcp, 80), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, PortRangesAreInclusive) {
  snapshot_ = compile(policy("ranges", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - toPorts:
        - ports:
            - {port: "8000-8100", protocol: TCP}
            - {port: 9000, endPort: 9010, protocol: TCP}
)"));
  expectDenied(flow(Api, Db, Tcp, 7999), Direction::Ingress);
  expectAllowed(flow(Api, Db, Tcp, 8000), "ranges/ingress/0");
  expectAllowed(flow(Api, Db, Tcp, 8050), "ranges/ingress/0");
  expectAllowed(flow(Api, Db, Tcp, 8100), "ranges/ingress/0");
  expectDenied(flow(Api, Db, Tcp, 8101), Direction::Ingress);
  expectDenied(flow(Api, Db, Tcp, 8999), Direction::Ingress);
  expectAllowed(flow(Api, Db, Tcp, 9000), "ranges/ingress/0");
  expectAllowed(flow(Api, Db, Tcp, 9010), "ranges/ingress/0");
  expectDenied(flow(Api, Db, Tcp, 9011), Direction::Ingress);
  expectDenied(flow(Api, Db, Udp, 8050), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, PortProtocolAnyTcpAndUdp) {
  snapshot_ = compile(policy("l4", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - toPorts:
        - ports: [{port: 53, protocol: UDP}, {port: 443, protocol: TCP}, {port: 80}]
)"));
  expectAllowed(flow(Api, Db, Udp, 53), "l4/ingress/0");
  expectDenied(flow(Api, Db, Tcp, 53), Direction::Ingress);
  expectAllowed(flow(Api, Db, Tcp, 443), "l4/ingress/0");
  expectDenied(flow(Api, Db, Udp, 443), Direction::Ingress);
  // No protocol means any protocol with ports.
  expectAllowed(flow(Api, Db, Tcp, 80), "l4/ingress/0");
  expectAllowed(flow(Api, Db, Udp, 80), "l4/ingress/0");
  expectAllowed(flow(Api, Db, Sctp, 80), "l4/ingress/0");
  // ICMP has no ports, whatever the query carries in dstPort.
  expectDenied(flow(Api, Db, Icmp, 80), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, IcmpMatchesIcmpAndAnyPortRules) {
  snapshot_ = compile(policy("icmp", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{protocol: ICMP}]}]
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 0}]}]
    - fromEndpoints: [{matchLabels: {app: other}}]
      toPorts: [{ports: [{port: 80}, {protocol: ICMPv6}]}]
    - fromEntities: [host]
)"));
  expectAllowed(flow(Api, Db, Icmp, 0), "icmp/ingress/0");
  expectDenied(flow(Api, Db, Icmpv6, 0), Direction::Ingress);
  expectDenied(flow(Api, Db, Tcp, 80), Direction::Ingress);
  // Port 0 is any port of any protocol, ICMP included.
  expectAllowed(flow(Web, Db, Icmp, 0), "icmp/ingress/1");
  expectAllowed(flow(Web, Db, Tcp, 12345), "icmp/ingress/1");
  expectAllowed(flow(Web, Db, Icmpv6, 0), "icmp/ingress/1");
  // A numbered port never matches ICMP.
  expectDenied(flow(Other, Db, Icmp, 0), Direction::Ingress);
  expectAllowed(flow(Other, Db, Icmpv6, 0), "icmp/ingress/2");
  expectAllowed(flow(Other, Db, Tcp, 80), "icmp/ingress/2");
  // A rule without toPorts allows every protocol.
  expectAllowed(flow(reserved::Host, Db, Icmp, 0), "icmp/ingress/3");
}

const std::string DbHttpFromApi = policy("db-http", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts:
        - ports: [{port: 8080, protocol: TCP}]
          l7: {protocols: [HTTP]}
)");

TEST_F(PolicySnapshotTest, L7RuleNeedsTheApplicationProtocolBeforeDeciding) {
  snapshot_ = compile(DbHttpFromApi);
  const Verdict pending = verdict(flow(Api, Db, Tcp, 8080));
  EXPECT_EQ(pending.decision, Decision::NeedL7);
  EXPECT_EQ(pending.rule, Verdict::NoRule);
  // Nothing but an l7 rule could allow: traffic it cannot match is denied at once.
  expectDenied(flow(Api, Db, Tcp, 9090), Direction::Ingress);
  expectDenied(flow(Web, Db, Tcp, 8080), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, L7RuleMatchesMasterOrAppProtocol) {
  snapshot_ = compile(DbHttpFromApi);
  const uint16_t http = protocolId("HTTP");
  const uint16_t tls = protocolId("TLS");
  const uint16_t google = protocolId("Google");
  const uint16_t dns = protocolId("DNS");
  expectAllowed(withApp(flow(Api, Db, Tcp, 8080), http, 0), "db-http/ingress/0");
  expectAllowed(withApp(flow(Api, Db, Tcp, 8080), 0, http), "db-http/ingress/0");
  expectAllowed(withApp(flow(Api, Db, Tcp, 8080), http, google), "db-http/ingress/0");
  expectDenied(withApp(flow(Api, Db, Tcp, 8080), tls, google), Direction::Ingress);
  expectDenied(withApp(flow(Api, Db, Tcp, 8080), dns, 0), Direction::Ingress);
  expectDenied(withApp(flow(Api, Db, Tcp, 8080), 0, 0), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, RuleWithoutL7AllowsBeforeClassification) {
  snapshot_ = compile(DbHttpFromApi + policy("db-plain", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)"));
  expectAllowed(flow(Api, Db, Tcp, 8080), "db-plain/ingress/0");
}

TEST_F(PolicySnapshotTest, L7OnEitherSideDelaysTheVerdict) {
  snapshot_ = compile(policy("api-out", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress:
    - toPorts:
        - ports: [{port: 8080, protocol: TCP}]
          l7: {protocols: [HTTP]}
)") + policy("db-open", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{}]
)"));
  EXPECT_EQ(verdict(flow(Api, Db, Tcp, 8080)).decision, Decision::NeedL7);
  expectAllowed(withApp(flow(Api, Db, Tcp, 8080), protocolId("HTTP"), 0), "db-open/ingress/0");
  expectDenied(withApp(flow(Api, Db, Tcp, 8080), protocolId("SSH"), 0), Direction::Egress);
}

TEST_F(PolicySnapshotTest, L7HostPatternsConstrainTheHost) {
  snapshot_ = compile(policy("db-hosts", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - toPorts:
        - ports: [{port: 80, protocol: TCP}]
          l7: {protocols: [HTTP], hosts: ["api.shop.local", "*.shop.local"]}
)"));
  const uint16_t http = protocolId("HTTP");
  EXPECT_EQ(verdict(flow(Api, Db)).decision, Decision::NeedL7);
  expectAllowed(withApp(flow(Api, Db), http, 0, "api.shop.local"), "db-hosts/ingress/0");
  expectAllowed(withApp(flow(Api, Db), http, 0, "WEB.Shop.Local."), "db-hosts/ingress/0");
  expectDenied(withApp(flow(Api, Db), http, 0, "shop.local"), Direction::Ingress);
  expectDenied(withApp(flow(Api, Db), http, 0, "evil.example"), Direction::Ingress);
  expectDenied(withApp(flow(Api, Db), http, 0, ""), Direction::Ingress);
  // The host matches but the protocol does not.
  expectDenied(withApp(flow(Api, Db), protocolId("TLS"), 0, "api.shop.local"), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, L7HostsWithoutProtocolsAllowAnyProtocol) {
  snapshot_ = compile(policy("api-dns", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress:
    - toEntities: [world]
      toPorts:
        - l7: {hosts: ["*.example.com"]}
)"));
  expectAllowed(
      withApp(flow(Api, reserved::World, Udp, 53), protocolId("DNS"), 0, "www.example.com"),
      "api-dns/egress/0");
  expectAllowed(
      withApp(flow(Api, reserved::World, Tcp, 443), protocolId("TLS"), 0, "cdn.example.com"),
      "api-dns/egress/0");
  expectDenied(withApp(flow(Api, reserved::World, Udp, 53), protocolId("DNS"), 0, "example.com"),
               Direction::Egress);
}

TEST_F(PolicySnapshotTest, CidrMatchesOnlyWorldPeersByAddress) {
  snapshot_ = compile(policy("api-out", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress:
    - toCIDR: [203.0.113.0/24, "2001:db8::/32"]
)") + policy("db-in", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromCIDR: [198.51.100.0/24]
)"));
  FlowQuery out = flow(Api, reserved::World, Tcp, 443);
  out.dstIp = ip("203.0.113.7");
  expectAllowed(out, "api-out/egress/0");
  out.dstIp = ip("2001:db8::1");
  expectAllowed(out, "api-out/egress/0");
  out.dstIp = ip("203.0.114.7");
  expectDenied(out, Direction::Egress);
  out.dstIp = ip("2001:db9::1");
  expectDenied(out, Direction::Egress);

  // A container or the host whose address happens to be inside the prefix is not the world.
  FlowQuery toContainer = flow(Api, Web, Tcp, 443);
  toContainer.dstIp = ip("203.0.113.7");
  expectDenied(toContainer, Direction::Egress);
  FlowQuery toHost = flow(Api, reserved::Host, Tcp, 443);
  toHost.dstIp = ip("203.0.113.1");
  expectDenied(toHost, Direction::Egress);

  // Ingress CIDRs look at the source address.
  FlowQuery in = flow(reserved::World, Db, Tcp, 5432);
  in.srcIp = ip("198.51.100.9");
  in.dstIp = ip("203.0.113.7");
  expectAllowed(in, "db-in/ingress/0");
  in.srcIp = ip("203.0.113.7");
  in.dstIp = ip("198.51.100.9");
  expectDenied(in, Direction::Ingress);
  FlowQuery fromContainer = flow(Web, Db, Tcp, 5432);
  fromContainer.srcIp = ip("198.51.100.9");
  expectDenied(fromContainer, Direction::Ingress);
}

TEST_F(PolicySnapshotTest, EntitiesWorldHostAndAll) {
  snapshot_ = compile(policy("from-world", R"(
  endpointSelector: {matchLabels: {app: web}}
  ingress: [{fromEntities: [world]}]
)") + policy("from-host", R"(
  endpointSelector: {matchLabels: {app: api}}
  ingress: [{fromEntities: [host]}]
)") + policy("from-all", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEntities: [all]}]
)") + policy("from-endpoints", R"(
  endpointSelector: {matchLabels: {app: other}}
  ingress: [{fromEndpoints: [{}]}]
)"));
  expectAllowed(flow(reserved::World, Web), "from-world/ingress/0");
  expectDenied(flow(reserved::Host, Web), Direction::Ingress);
  expectDenied(flow(Api, Web), Direction::Ingress);

  expectAllowed(flow(reserved::Host, Api), "from-host/ingress/0");
  expectDenied(flow(reserved::World, Api), Direction::Ingress);
  expectDenied(flow(Web, Api), Direction::Ingress);

  expectAllowed(flow(reserved::World, Db), "from-all/ingress/0");
  expectAllowed(flow(reserved::Host, Db), "from-all/ingress/0");
  expectAllowed(flow(Web, Db), "from-all/ingress/0");

  // An empty endpoint selector is every endpoint, but neither the world nor the host.
  expectAllowed(flow(Web, Other), "from-endpoints/ingress/0");
  expectAllowed(flow(Db, Other), "from-endpoints/ingress/0");
  expectDenied(flow(reserved::World, Other), Direction::Ingress);
  expectDenied(flow(reserved::Host, Other), Direction::Ingress);
}

TEST_F(PolicySnapshotTest, MonitorOnlyDenialIsNotEnforced) {
  snapshot_ = compile(policy("db-watch", R"(
  mode: monitor
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]
)"));
  expectAllowed(flow(Api, Db), "db-watch/ingress/0");
  expectDenied(flow(Web, Db), Direction::Ingress, /*enforced=*/false);
}

TEST_F(PolicySnapshotTest, EnforceDenialIsEnforced) {
  snapshot_ = compile(DbFromApi);
  const Verdict result = verdict(flow(Web, Db, Tcp, 5432));
  EXPECT_EQ(result.decision, Decision::Deny);
  EXPECT_TRUE(result.enforced);
}

TEST_F(PolicySnapshotTest, EnforcedIfEitherDenyingSideEnforces) {
  const std::string webOutMonitor = policy("web-out", R"(
  mode: monitor
  endpointSelector: {matchLabels: {app: web}}
  egress: [{toEndpoints: [{matchLabels: {app: api}}]}]
)");
  const std::string webOutEnforce = policy("web-out", R"(
  endpointSelector: {matchLabels: {app: web}}
  egress: [{toEndpoints: [{matchLabels: {app: api}}]}]
)");
  const std::string dbInMonitor = policy("db-in", R"(
  mode: monitor
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]
)");
  const std::string dbInEnforce = policy("db-in", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]
)");
  // Only the monitored egress denies; the destination is not selected.
  snapshot_ = compile(webOutMonitor);
  expectDenied(flow(Web, Db), Direction::Egress, /*enforced=*/false);
  // Both sides deny, only one enforces: the enforcing side is the one that drops it.
  snapshot_ = compile(webOutMonitor + dbInEnforce);
  expectDenied(flow(Web, Db), Direction::Ingress, /*enforced=*/true);
  snapshot_ = compile(webOutEnforce + dbInMonitor);
  expectDenied(flow(Web, Db), Direction::Egress, /*enforced=*/true);
  snapshot_ = compile(webOutEnforce + dbInEnforce);
  expectDenied(flow(Web, Db), Direction::Ingress, /*enforced=*/true);
  snapshot_ = compile(webOutMonitor + dbInMonitor);
  expectDenied(flow(Web, Db), Direction::Ingress, /*enforced=*/false);
}

TEST_F(PolicySnapshotTest, MonitorOnOneSideDoesNotEnforceWhenTheOtherSideAllows) {
  snapshot_ = compile(policy("web-out", R"(
  endpointSelector: {matchLabels: {app: web}}
  egress: [{toEndpoints: [{matchLabels: {app: db}}]}]
)") + policy("db-in", R"(
  mode: monitor
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]
)"));
  expectDenied(flow(Web, Db), Direction::Ingress, /*enforced=*/false);
}

TEST_F(PolicySnapshotTest, MonitorRuleDoesNotOpenWhatAnEnforcePolicyDenies) {
  snapshot_ = compile(DbFromApi + policy("db-trial", R"(
  mode: monitor
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]
)"));
  // Allowed only by the monitor policy: the enforce policy still drops it.
  expectDenied(flow(Web, Db, Tcp, 5432), Direction::Ingress, /*enforced=*/true);
  expectDenied(flow(Other, Db, Tcp, 5432), Direction::Ingress, /*enforced=*/true);
  expectAllowed(flow(Api, Db, Tcp, 5432), "db-in/ingress/0");
}

TEST_F(PolicySnapshotTest, EnforcedL7DecisionWaitsForTheProtocolEvenIfMonitorAllows) {
  snapshot_ = compile(DbHttpFromApi + policy("db-trial", R"(
  mode: monitor
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEndpoints: [{matchLabels: {app: api}}]}]
)"));
  EXPECT_EQ(verdict(flow(Api, Db, Tcp, 8080)).decision, Decision::NeedL7);
  expectAllowed(withApp(flow(Api, Db, Tcp, 8080), protocolId("HTTP"), 0), "db-http/ingress/0");
  expectDenied(withApp(flow(Api, Db, Tcp, 8080), protocolId("TLS"), 0), Direction::Ingress,
               /*enforced=*/true);
  // Ports the enforce policy never allows are denied without waiting.
  expectDenied(flow(Api, Db, Tcp, 5432), Direction::Ingress, /*enforced=*/true);
}

TEST_F(PolicySnapshotTest, RuleNameIsPolicyDirectionAndIndexOfTheWrittenRule) {
  const std::string text = policy("db", R"(
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 80, protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: other}}]
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts:
        - ports: [{port: 5432, protocol: TCP}]
        - ports: [{port: 6432, protocol: TCP}]
)") + policy("api", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress:
    - toEntities: [world]
    - toEndpoints: [{matchLabels: {app: web}}]
)");
  snapshot_ = compile(text);
  const Verdict result = verdict(flow(Api, Db, Tcp, 6432));
  ASSERT_EQ(result.decision, Decision::Deny);  // api's egress does not reach db
  snapshot_ = compile(text + policy("api-db", R"(
  endpointSelector: {matchLabels: {app: api}}
  egress: [{toEndpoints: [{matchLabels: {app: db}}]}]
)"));
  const Verdict allowed = verdict(flow(Api, Db, Tcp, 6432));
  ASSERT_EQ(allowed.decision, Decision::Allow);
  const rules::RuleRef* rule = snapshot_->rule(allowed);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(snapshot_->ruleName(allowed), "db/ingress/2");
  EXPECT_EQ(rule->policy, "db");
  EXPECT_EQ(rule->direction, Direction::Ingress);
  EXPECT_EQ(rule->index, 2u);
  EXPECT_EQ(rule->where.file, "p.yaml");
  EXPECT_EQ(rule->where.line, 11);
  EXPECT_EQ(rule->where.column, 7);
  expectAllowed(flow(Other, Db, Udp, 9999), "db/ingress/1");
  // Only the egress side is selected: its rule is reported.
  expectAllowed(flow(Api, Web, Tcp, 80), "api/egress/1");
  expectAllowed(flow(Api, reserved::World, Tcp, 443), "api/egress/0");
}

TEST_F(PolicySnapshotTest, AVerdictOutlivesItsSnapshotSafely) {
  // A flow keeps its verdict across reloads. It held a pointer into the snapshot that made it,
  // valid by convention only; now it holds an index and the generation, and a newer snapshot
  // refuses to resolve it.
  snapshot_ = compile(DbFromApi, 1);
  Verdict kept = verdict(flow(Api, Db, Tcp, 5432));
  ASSERT_EQ(kept.decision, Decision::Allow);
  EXPECT_EQ(kept.generation, 1u);
  EXPECT_NE(snapshot_->rule(kept), nullptr);
  snapshot_ = compile(DbFromApi, 2);  // the first snapshot is freed here
  EXPECT_EQ(snapshot_->rule(kept), nullptr);
  EXPECT_EQ(snapshot_->ruleName(kept), rules::PolicySnapshot::SupersededRule);
  kept.rule = 1000000;  // and an index out of range is never followed
  kept.generation = 2;
  EXPECT_EQ(snapshot_->rule(kept), nullptr);
}

TEST_F(PolicySnapshotTest, GenerationAndCountsAreKept) {
  snapshot_ = compile(DbFromApi + policy("api", R"(
  endpointSelector: {matchLabels: {app: nothing-has-this}}
  ingress: [{}, {}]
  egress: [{}]
)"),
                      42);
  EXPECT_EQ(snapshot_->generation(), 42u);
  EXPECT_EQ(snapshot_->policyCount(), 2u);
  EXPECT_EQ(snapshot_->ruleCount(), 4u);
  EXPECT_EQ(compile(DbFromApi, 7)->generation(), 7u);
}

// The side that denies decides what the sender sees: the destination's ingress policies, or
// the source's egress policies; only an enforce-mode policy's reject counts.
TEST_F(PolicySnapshotTest, AnEnforcedDenialRejectsWhereTheDecidingSidesPolicySaysReject) {
  snapshot_ = compile(policy("db-in", R"(
  denyAction: reject
  endpointSelector: {matchLabels: {app: db}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]
)") + policy("web-out", R"(
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toEndpoints: [{matchLabels: {app: api}}]
)") + policy("other-watch", R"(
  mode: monitor
  denyAction: reject
  endpointSelector: {matchLabels: {app: other}}
  ingress: []
)"));
  EXPECT_TRUE(verdict(flow(Api, Db, Tcp, 80)).reject) << "db's ingress rejects";
  EXPECT_TRUE(verdict(flow(Api, Db, Udp, 5432)).reject);
  EXPECT_FALSE(verdict(flow(Api, Db, Tcp, 5432)).reject) << "allowed";
  // Only web's egress denies: its policy drops.
  const Verdict fromWeb = verdict(flow(Web, reserved::World, Tcp, 443));
  EXPECT_EQ(fromWeb.decision, Decision::Deny);
  EXPECT_EQ(fromWeb.deniedBy, Direction::Egress);
  EXPECT_FALSE(fromWeb.reject);
  // Both deny, both enforced: the side `deniedBy` names, ingress, decides -- db's reject.
  const Verdict both = verdict(flow(Web, Db, Tcp, 5432));
  EXPECT_EQ(both.deniedBy, Direction::Ingress);
  EXPECT_TRUE(both.reject);
  // A monitor-mode policy never drops, so it rejects nothing either.
  const Verdict watched = verdict(flow(Api, Other, Tcp, 80));
  EXPECT_EQ(watched.decision, Decision::Deny);
  EXPECT_FALSE(watched.enforced);
  EXPECT_FALSE(watched.reject);
}

// docs/multihost.md: an identity only other hosts' endpoints have is a peer here -- rules that
// select it as a peer match it -- but never a subject: its ingress and egress are its own host's
// to enforce, so this host neither isolates it nor reports its flows as its violations.
TEST_F(PolicySnapshotTest, ARemoteIdentityIsAPeerNeverASubject) {
  const std::string yaml = policy("api", R"(  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
  egress:
    - toEndpoints: [{matchLabels: {app: db}}]
)") + policy("web", R"(  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toEndpoints: [{matchLabels: {app: api}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)");
  snapshot_ = compile(yaml);
  expectDenied(flow(Web, Api, Tcp, 9090), Direction::Ingress);  // api's own ingress, here
  ASSERT_NE(snapshot_->endpointPolicy(Api), nullptr);

  for (auto& identity : identities_) {
    identity.remote = identity.id == Api;  // api runs on another host only
  }
  snapshot_ = compile(yaml);
  EXPECT_EQ(snapshot_->endpointPolicy(Api), nullptr) << "no policy of this host's selects it";
  expectAllowed(flow(Web, Api, Tcp, 8080), "web/egress/0");
  expectDenied(flow(Web, Api, Tcp, 9090), Direction::Egress);  // web is here: its egress holds
  expectAllowed(flow(Api, Web, Tcp, 22), "default-allow");     // api's egress is not ours
}

}  // namespace
}  // namespace bulkhead
