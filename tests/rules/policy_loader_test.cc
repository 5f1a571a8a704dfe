#include "rules/policy_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "dpi/protocol_catalog.h"

namespace bulkhead {
namespace {

namespace fs = std::filesystem;
using rules::Direction;
using rules::Entity;
using rules::L4Protocol;
using rules::LabelRequirement;
using rules::Mode;

const rules::ProtocolCatalog& catalog() {
  static const dpi::NdpiProtocolCatalog instance;
  return instance;
}

rules::PolicyLoadResult load(std::string_view text) {
  return rules::loadPolicyText(text, "p.yaml", catalog());
}

std::vector<std::string> errorsOf(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& diagnostic : load(text).errors) {
    out.push_back(rules::format(diagnostic));
  }
  return out;
}

// Lines 1-4 of most documents below; their own text starts at line 5 with "spec:".
std::string withHeader(std::string_view rest) {
  return "apiVersion: bulkhead.io/v1\n"
         "kind: SegmentationPolicy\n"
         "metadata:\n"
         "  name: p\n" +
         std::string(rest);
}

using Errors = std::vector<std::string>;

std::vector<std::string> warningsOf(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& diagnostic : load(text).warnings) {
    out.push_back(rules::format(diagnostic));
  }
  return out;
}

// ---- A valid file ------------------------------------------------------------------------------

constexpr std::string_view ShopPolicies = R"(# Shop policies.
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata:
  name: shop-api
  labels: {team: shop}
spec:
  description: API tier
  mode: monitor
  endpointSelector:
    matchLabels: {app: api}
    matchExpressions:
      - {key: env, operator: In, values: [prod, staging]}
      - {key: legacy, operator: DoesNotExist}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: web}
        - matchExpressions: [{key: team, operator: Exists}]
      toPorts:
        - ports:
            - {port: 8080, protocol: TCP}
            - {port: "8000-8100", protocol: udp}
            - {port: 9000, endPort: 9010}
          l7:
            protocols: [HTTP, tls]
            hosts: ["api.shop.local", "*.shop.local"]
    - fromEntities: [host]
  egress:
    - toCIDR: [10.0.0.0/8, "2001:db8::/32"]
      toEntities: [world, all]
      toPorts:
        - ports: [{port: 0}]
        - ports: [{protocol: ICMP}, {protocol: ICMPv6}]
---
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: shop-db}
spec:
  endpointSelector:
    matchExpressions:
      - {key: app, operator: NotIn, values: [web]}
  ingress: []
)";

TEST(PolicyLoaderTest, LoadsMultiDocumentFileIntoModel) {
  const auto result = load(ShopPolicies);
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  EXPECT_FALSE(result.ioFailure);
  ASSERT_EQ(result.set.policies.size(), 2u);
  EXPECT_EQ(result.set.sources, std::vector<std::string>{"p.yaml"});

  const rules::Policy& api = result.set.policies[0];
  EXPECT_EQ(api.name, "shop-api");
  EXPECT_EQ(api.mode, Mode::Monitor);
  EXPECT_EQ(api.where.file, "p.yaml");
  EXPECT_EQ(api.where.line, 2);
  EXPECT_EQ(api.where.column, 1);
  EXPECT_EQ(api.endpointSelector.toString(), "app=api,env in (prod,staging),legacy !exists");
  EXPECT_EQ(api.endpointSelector.where.line, 11);

  ASSERT_TRUE(api.ingress.has_value());
  ASSERT_EQ(api.ingress->size(), 2u);
  const rules::PeerRule& fromWeb = (*api.ingress)[0];
  EXPECT_EQ(fromWeb.where.line, 16);
  EXPECT_EQ(fromWeb.where.column, 7);
  ASSERT_EQ(fromWeb.endpoints.size(), 2u);
  EXPECT_EQ(fromWeb.endpoints[0].toString(), "app=web");
  EXPECT_EQ(fromWeb.endpoints[1].toString(), "team exists");
  EXPECT_TRUE(fromWeb.entities.empty());
  EXPECT_TRUE(fromWeb.cidrs.empty());
  EXPECT_FALSE(fromWeb.selectsAnyPeer());
  ASSERT_EQ(fromWeb.toPorts.size(), 1u);
  const rules::PortRule& webPorts = fromWeb.toPorts[0];
  ASSERT_EQ(webPorts.ports.size(), 3u);
  EXPECT_EQ(webPorts.ports[0].first, 8080);
  EXPECT_EQ(webPorts.ports[0].last, 8080);
  EXPECT_EQ(webPorts.ports[0].protocol, L4Protocol::TCP);
  EXPECT_EQ(webPorts.ports[0].where.line, 21);
  EXPECT_EQ(webPorts.ports[1].first, 8000);
  EXPECT_EQ(webPorts.ports[1].last, 8100);
  EXPECT_EQ(webPorts.ports[1].protocol, L4Protocol::UDP);
  EXPECT_EQ(webPorts.ports[2].first, 9000);
  EXPECT_EQ(webPorts.ports[2].last, 9010);
  EXPECT_EQ(webPorts.ports[2].protocol, L4Protocol::Any);
  ASSERT_TRUE(webPorts.l7.has_value());
  EXPECT_EQ(webPorts.l7->protocols, (std::vector<std::string>{"HTTP", "tls"}));
  EXPECT_EQ(webPorts.l7->hosts, (std::vector<std::string>{"api.shop.local", "*.shop.local"}));
  EXPECT_EQ(webPorts.l7->where.line, 25);

  const rules::PeerRule& fromHost = (*api.ingress)[1];
  EXPECT_EQ(fromHost.entities, std::vector<Entity>{Entity::Host});
  EXPECT_TRUE(fromHost.toPorts.empty());

  ASSERT_TRUE(api.egress.has_value());
  ASSERT_EQ(api.egress->size(), 1u);
  const rules::PeerRule& out = (*api.egress)[0];
  ASSERT_EQ(out.cidrs.size(), 2u);
  EXPECT_EQ(out.cidrs[0].toString(), "10.0.0.0/8");
  EXPECT_EQ(out.cidrs[1].toString(), "2001:db8::/32");
  EXPECT_EQ(out.entities, (std::vector<Entity>{Entity::World, Entity::All}));
  ASSERT_EQ(out.toPorts.size(), 2u);
  ASSERT_EQ(out.toPorts[0].ports.size(), 1u);
  EXPECT_EQ(out.toPorts[0].ports[0].first, 0);  // port 0: any port
  EXPECT_EQ(out.toPorts[0].ports[0].last, 65535);
  EXPECT_EQ(out.toPorts[0].ports[0].protocol, L4Protocol::Any);
  EXPECT_FALSE(out.toPorts[0].l7.has_value());
  ASSERT_EQ(out.toPorts[1].ports.size(), 2u);
  EXPECT_EQ(out.toPorts[1].ports[0].protocol, L4Protocol::ICMP);
  EXPECT_EQ(out.toPorts[1].ports[0].first, 0);
  EXPECT_EQ(out.toPorts[1].ports[0].last, 65535);
  EXPECT_EQ(out.toPorts[1].ports[1].protocol, L4Protocol::ICMPv6);

  const rules::Policy& db = result.set.policies[1];
  EXPECT_EQ(db.name, "shop-db");
  EXPECT_EQ(db.mode, Mode::Enforce);  // the default
  EXPECT_EQ(db.where.line, 35);
  ASSERT_EQ(db.endpointSelector.matchExpressions.size(), 1u);
  EXPECT_EQ(db.endpointSelector.matchExpressions[0].op, LabelRequirement::Operator::NotIn);
  EXPECT_EQ(db.endpointSelector.matchExpressions[0].values, std::vector<std::string>{"web"});
  ASSERT_TRUE(db.ingress.has_value());
  EXPECT_TRUE(db.ingress->empty());
  EXPECT_FALSE(db.egress.has_value());
}

TEST(PolicyLoaderTest, EmptyIngressListIsValidAndDeniesAll) {
  const auto result = load(withHeader(R"(spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress: []
)"));
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  ASSERT_EQ(result.set.policies.size(), 1u);
  ASSERT_TRUE(result.set.policies[0].ingress.has_value());
  EXPECT_TRUE(result.set.policies[0].ingress->empty());
  EXPECT_FALSE(result.set.policies[0].egress.has_value());
}

TEST(PolicyLoaderTest, IngressWithoutValueIsAnEmptyList) {
  const auto result = load(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
  egress: [{toEntities: [world]}]
)"));
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  ASSERT_EQ(result.set.policies.size(), 1u);
  ASSERT_TRUE(result.set.policies[0].ingress.has_value());
  EXPECT_TRUE(result.set.policies[0].ingress->empty());
  ASSERT_TRUE(result.set.policies[0].egress.has_value());
  EXPECT_EQ(result.set.policies[0].egress->size(), 1u);
}

TEST(PolicyLoaderTest, EmptyRuleSelectsAnyPeerOnAnyPort) {
  const auto result = load(withHeader(R"(spec:
  endpointSelector: {}
  ingress: [{}]
)"));
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  const rules::PeerRule& rule = result.set.policies.at(0).ingress->at(0);
  EXPECT_TRUE(rule.selectsAnyPeer());
  EXPECT_TRUE(rule.toPorts.empty());
}

TEST(PolicyLoaderTest, ApplicationProtocolNamesAreCaseInsensitive) {
  const auto result = load(withHeader(R"(spec:
  endpointSelector: {}
  egress:
    - toPorts:
        - l7: {protocols: [http, Dns, postgresql]}
)"));
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  const auto& l7 = result.set.policies.at(0).egress->at(0).toPorts.at(0).l7;
  ASSERT_TRUE(l7.has_value());
  EXPECT_EQ(l7->protocols, (std::vector<std::string>{"http", "Dns", "postgresql"}));
}

TEST(PolicyLoaderTest, CommentOnlyAndEmptyDocumentsAreSkipped) {
  const auto result = load("# nothing yet\n---\n---\n" + withHeader(R"(spec:
  endpointSelector: {}
  ingress: []
)"));
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  EXPECT_EQ(result.set.policies.size(), 1u);
}

TEST(PolicyLoaderTest, EmptyTextLoadsNoPolicies) {
  const auto result = load("");
  EXPECT_TRUE(result.ok());
  EXPECT_TRUE(result.set.policies.empty());
}

// ---- Diagnostics: one kind of mistake per test -------------------------------------------------

TEST(PolicyLoaderTest, UnknownKeyHasDidYouMeanHint) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - fromEndpoint: [{}]
)")),
            Errors{"p.yaml:8:7: unknown key 'fromEndpoint' in an ingress rule (did you mean "
                   "'fromEndpoints'?)"});
}

TEST(PolicyLoaderTest, UnknownKeyWithoutCloseMatchListsValidKeys) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress: []
  colour: red
)")),
            Errors{"p.yaml:8:3: unknown key 'colour' in spec (valid keys: description mode tier "
                   "priority denyAction endpointSelector ingress egress ingressDeny egressDeny "
                   "enableDefaultDeny)"});
}

TEST(PolicyLoaderTest, ListWhereMappingExpected) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: [app]
  ingress: []
)")),
            Errors{"p.yaml:6:21: endpointSelector must be a mapping, got a list"});
}

TEST(PolicyLoaderTest, MappingWhereListExpected) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress: {fromEndpoints: [{}]}
)")),
            Errors{"p.yaml:7:12: 'ingress' must be a list, got a mapping"});
}

TEST(PolicyLoaderTest, ScalarWhereDocumentExpected) {
  EXPECT_EQ(errorsOf("just a string\n"),
            Errors{"p.yaml:1:1: a policy document must be a mapping, got a scalar"});
}

TEST(PolicyLoaderTest, UnknownApplicationProtocolHasHint) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - l7: {protocols: [HTPP]}
)")),
            Errors{"p.yaml:9:28: unknown application protocol 'HTPP' (did you mean 'HTTP'?)"});
}

TEST(PolicyLoaderTest, PortAbove65535) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 70000, protocol: TCP}]
)")),
            Errors{"p.yaml:9:26: port '70000' must be a number 0-65535 or a range like "
                   "'8000-8100'"});
}

TEST(PolicyLoaderTest, PortThatIsNotANumber) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: Http!}]
)")),
            Errors{"p.yaml:9:26: port 'Http!' must be a number 0-65535 or a range like "
                   "'8000-8100', or a port name (at most 15 lower-case letters, digits and '-')"});
}

TEST(PolicyLoaderTest, ReversedPortRange) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: "8100-8000", protocol: TCP}]
)")),
            Errors{"p.yaml:9:26: port range '8100-8000' ends before it starts"});
}

TEST(PolicyLoaderTest, EndPortBelowPort) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 9000, endPort: 8000}]
)")),
            Errors{"p.yaml:9:41: endPort 8000 is below port 9000"});
}

TEST(PolicyLoaderTest, EndPortWithoutPort) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{endPort: 8000, protocol: TCP}]
)")),
            Errors{"p.yaml:9:20: 'endPort' needs a single 'port' to start the range"});
}

TEST(PolicyLoaderTest, EndPortCannotExtendARange) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 1-2, endPort: 8}]
)")),
            Errors{"p.yaml:9:31: 'endPort' cannot extend a port that is already a range"});
}

TEST(PolicyLoaderTest, IcmpWithAPort) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 80, protocol: ICMP}]
)")),
            Errors{"p.yaml:9:40: ICMP has no ports: drop 'port' or use TCP/UDP"});
}

TEST(PolicyLoaderTest, UnknownL4ProtocolHasHint) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 80, protocol: TPC}]
)")),
            Errors{"p.yaml:9:40: unknown L4 protocol 'TPC' (did you mean 'TCP'?)"});
}

TEST(PolicyLoaderTest, L7OnIcmpPort) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{protocol: ICMP}]
          l7: {protocols: [HTTP]}
)")),
            Errors{"p.yaml:10:11: l7 rules do not apply to ICMP ports"});
}

TEST(PolicyLoaderTest, InvalidHostPatternInL7) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  egress:
    - toPorts:
        - l7: {hosts: ["a.*.b"]}
)")),
            Errors{"p.yaml:9:24: host pattern 'a.*.b' may only use '*' as its whole first "
                   "label, as in '*.example.com'"});
}

TEST(PolicyLoaderTest, EmptyToPortsEntryAndEmptyL7) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  egress:
    - toPorts:
        - {}
        - l7: {}
)")),
            (Errors{"p.yaml:9:11: a toPorts entry needs 'ports' or 'l7'",
                    "p.yaml:10:15: l7 needs 'protocols' or 'hosts'"}));
}

// An empty list would silently turn the rule into a plain L4 rule: as wrong as `l7: {}`.
TEST(PolicyLoaderTest, EmptyProtocolAndHostListsAreErrors) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 6379}]
          l7: {protocols: []}
        - ports: [{port: 443}]
          l7: {hosts: []}
        - ports: [{port: 80}]
          l7: {protocols: [], hosts: []}
)")),
            (Errors{"p.yaml:10:27: 'protocols' is empty: list at least one protocol, or leave "
                    "the key out",
                    "p.yaml:12:23: 'hosts' is empty: list at least one host name, or leave the "
                    "key out",
                    "p.yaml:14:27: 'protocols' is empty: list at least one protocol, or leave "
                    "the key out",
                    "p.yaml:14:38: 'hosts' is empty: list at least one host name, or leave the "
                    "key out"}));
}

// A name the port picks, or a protocol nDPI decides by port, is never what a flow is judged as:
// a rule naming one could not mean what it says (docs/policy.md).
TEST(PolicyLoaderTest, ProtocolsThePortDecidesAreRefusedWithTheWayOut) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 993, protocol: TCP}]
          l7: {protocols: [IMAPS]}
        - ports: [{port: 5353, protocol: UDP}]
          l7: {protocols: [mdns]}
        - ports: [{port: 123, protocol: UDP}]
          l7: {protocols: [NTP]}
        - ports: [{port: 5201}]
          l7: {protocols: [TargusDataspeed]}
)")),
            (Errors{"p.yaml:10:28: 'IMAPS' is nDPI's name for TLS on TCP port 993: the port "
                    "picks the name, the bytes prove TLS; write 'TLS' with that port",
                    "p.yaml:12:28: 'MDNS' is nDPI's name for DNS sent to or from port 5353: the "
                    "port picks the name, the bytes prove DNS; write 'DNS' with that port",
                    "p.yaml:14:28: nDPI 4.2 decides 'NTP' by UDP port 123 and 3 bits of one "
                    "byte: a client picks that, so no flow is ever judged as NTP; allow the port "
                    "without 'l7' instead",
                    "p.yaml:16:28: nDPI 4.2 decides 'TargusDataspeed' by port 5001/5201 alone, "
                    "from the SYN on: a client picks that, so no flow is ever judged as "
                    "TargusDataspeed; allow the port without 'l7' instead"}));
}

TEST(PolicyLoaderTest, ProtocolsThatOnlyAHostNameOrOneTransportProvesAreWarnedAbout) {
  const std::string text = withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 443, protocol: TCP}]
          l7: {protocols: [Zoom]}
        - ports: [{port: 3389}]
          l7: {protocols: [RDP]}
        - ports: [{port: 3389, protocol: TCP}]
          l7: {protocols: [RDP]}
)");
  EXPECT_EQ(errorsOf(text), Errors{});
  const auto warnings = warningsOf(text);
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_EQ(warnings[0].substr(0, 40), "p.yaml:10:28: nDPI 4.2 decides 'Zoom' by");
  EXPECT_NE(warnings[0].find("only where nDPI read it from a host name"), std::string::npos);
  EXPECT_EQ(warnings[1],
            "p.yaml:12:28: nDPI 4.2 decides 'RDP' by UDP port 3389 and repeated bytes over UDP: "
            "this rule matches RDP over TCP only");
  // Over TCP alone RDP is read from its bytes; it is only not proven against a real server.
  EXPECT_EQ(warnings[2].substr(0, 40), "p.yaml:14:28: no real RDP session has be");
}

TEST(PolicyLoaderTest, ProtocolsProvenAgainstRealServersNeedNoWarningButTheirLimitsDo) {
  EXPECT_EQ(warningsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 443}]
          l7: {protocols: [HTTP, TLS, DNS, SSH, Unknown]}
)")),
            Errors{});
  const auto warnings = warningsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts:
        - ports: [{port: 6379}]
          l7: {protocols: [Redis]}
)"));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].substr(0, 70),
            "p.yaml:10:28: Redis sessions that nDPI 4.2 cannot classify pass while ");
}

TEST(PolicyLoaderTest, BadCidr) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  egress:
    - toCIDR: [10.0.0.0/33, 10.0.0.300/24]
)")),
            (Errors{"p.yaml:8:16: prefix length in '10.0.0.0/33' must be 0..32",
                    "p.yaml:8:29: '10.0.0.300/24' is not an IPv4 or IPv6 address or prefix"}));
}

TEST(PolicyLoaderTest, UnknownEntityHasHint) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - fromEntities: [wrold]
)")),
            Errors{"p.yaml:8:22: unknown entity 'wrold' (did you mean 'world'?)"});
}

TEST(PolicyLoaderTest, UnknownEntityWithoutCloseMatchListsValidOnes) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - fromEntities: [cluster]
)")),
            Errors{"p.yaml:8:22: unknown entity 'cluster' (valid: world, host, all)"});
}

TEST(PolicyLoaderTest, EmptyPeerListsAreRejectedRatherThanSelectingEveryPeer) {
  // An empty list must not silently become "any peer", which is what a rule with no peer means.
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - fromEndpoints: []
    - fromEntities: []
    - fromCIDR: []
)")),
            (Errors{"p.yaml:8:22: 'fromEndpoints' is empty: list selectors, or use [{}] for all "
                    "endpoints",
                    "p.yaml:9:21: 'fromEntities' is empty: list entities (world, host, all)",
                    "p.yaml:10:17: 'fromCIDR' is empty: list prefixes, or use 0.0.0.0/0 and ::/0 "
                    "for every address"}));
}

TEST(PolicyLoaderTest, DuplicatePolicyNameReportsFirstDefinition) {
  const std::string text = withHeader(R"(spec:
  endpointSelector: {}
  ingress: []
---
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata:
  name: p
spec:
  endpointSelector: {}
  egress: []
)");
  // At the name itself, both times: where the operator has to look.
  EXPECT_EQ(errorsOf(text),
            Errors{"p.yaml:12:9: duplicate policy name 'p' (first defined at p.yaml:4:9)"});
  EXPECT_FALSE(load(text).ok());
}

TEST(PolicyLoaderTest, UnsupportedApiVersion) {
  EXPECT_EQ(errorsOf(R"(apiVersion: bulkhead.io/v2
kind: SegmentationPolicy
metadata: {name: p}
spec: {endpointSelector: {}, ingress: []}
)"),
            Errors{"p.yaml:1:13: unsupported apiVersion 'bulkhead.io/v2' (supported: "
                   "bulkhead.io/v1, networking.k8s.io/v1, cilium.io/v2, "
                   "policy.networking.k8s.io/v1alpha1)"});
}

TEST(PolicyLoaderTest, UnsupportedKind) {
  EXPECT_EQ(errorsOf(R"(apiVersion: bulkhead.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec: {endpointSelector: {}, ingress: []}
)"),
            Errors{"p.yaml:2:7: unsupported kind 'NetworkPolicy' (supported: SegmentationPolicy"
                   " of bulkhead.io/v1, NetworkPolicy of networking.k8s.io/v1, "
                   "CiliumNetworkPolicy of cilium.io/v2, AdminNetworkPolicy and "
                   "BaselineAdminNetworkPolicy of policy.networking.k8s.io/v1alpha1)"});
}

TEST(PolicyLoaderTest, MissingTopLevelKeys) {
  EXPECT_EQ(errorsOf("apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\n"),
            (Errors{"p.yaml:1:1: missing required key 'metadata'",
                    "p.yaml:1:1: missing required key 'spec'"}));
}

TEST(PolicyLoaderTest, MissingEndpointSelector) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  mode: enforce
  ingress: []
)")),
            Errors{"p.yaml:6:3: missing required key 'endpointSelector'"});
}

TEST(PolicyLoaderTest, SpecWithoutIngressOrEgress) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
)")),
            Errors{"p.yaml:6:3: spec needs 'ingress' or 'egress' (an empty list denies all "
                   "traffic in that direction), or 'ingressDeny' or 'egressDeny'"});
}

TEST(PolicyLoaderTest, InvalidMode) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  mode: enforcing
  endpointSelector: {}
  ingress: []
)")),
            Errors{"p.yaml:6:9: mode must be 'enforce' or 'monitor', got 'enforcing'"});
}

TEST(PolicyLoaderTest, DenyActionIsDropOrReject) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  denyAction: refuse
  endpointSelector: {}
  ingress: []
)")),
            Errors{"p.yaml:6:15: denyAction must be 'drop' or 'reject', got 'refuse'"});
  const auto rejecting = load(withHeader(R"(spec:
  denyAction: reject
  endpointSelector: {}
  ingress: []
)"));
  ASSERT_TRUE(rejecting.errors.empty());
  EXPECT_EQ(rejecting.set.policies.at(0).denyAction, rules::DenyAction::Reject);
  const auto dropping = load(withHeader(R"(spec:
  endpointSelector: {}
  ingress: []
)"));
  ASSERT_TRUE(dropping.errors.empty());
  EXPECT_EQ(dropping.set.policies.at(0).denyAction, rules::DenyAction::Drop);
}

TEST(PolicyLoaderTest, InvalidPolicyName) {
  EXPECT_EQ(errorsOf(R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: Shop_API}
spec: {endpointSelector: {}, ingress: []}
)"),
            Errors{"p.yaml:3:18: policy name 'Shop_API' must be lower-case letters, digits, '-' "
                   "or '.', start and end with a letter or digit, at most 253 characters"});
}

TEST(PolicyLoaderTest, DuplicateKeyReportsFirstLine) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress: []
  ingress:
    - fromEntities: [world]
)")),
            Errors{"p.yaml:8:3: duplicate key 'ingress' (first at line 7)"});
}

TEST(PolicyLoaderTest, DuplicateLabelKey) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector:
    matchLabels:
      app: api
      app: web
  ingress: []
)")),
            Errors{"p.yaml:9:7: duplicate label key 'app'"});
}

TEST(PolicyLoaderTest, InOperatorWithoutValues) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector:
    matchExpressions:
      - {key: app, operator: In}
      - key: env
        operator: NotIn
        values: []
  ingress: []
)")),
            (Errors{"p.yaml:8:9: operator In/NotIn needs a non-empty 'values' list",
                    "p.yaml:9:9: operator In/NotIn needs a non-empty 'values' list"}));
}

TEST(PolicyLoaderTest, ExistsOperatorWithValues) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector:
    matchExpressions: [{key: app, operator: Exists, values: [api]}]
  ingress: []
)")),
            Errors{"p.yaml:7:53: operator Exists/DoesNotExist takes no 'values'"});
}

TEST(PolicyLoaderTest, UnknownSelectorOperatorHasHint) {
  EXPECT_EQ(errorsOf(withHeader(R"(spec:
  endpointSelector:
    matchExpressions: [{key: app, operator: Exist}]
  ingress: []
)")),
            Errors{"p.yaml:7:45: unknown operator 'Exist' (did you mean 'Exists'?)"});
}

TEST(PolicyLoaderTest, YamlSyntaxErrorHasLineAndColumn) {
  const std::string text = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata:
  name: p
    team: shop
spec: {endpointSelector: {}, ingress: []}
)";
  EXPECT_EQ(errorsOf(text),
            Errors{"p.yaml:5:9: YAML syntax error: illegal map value (is this line indented like "
                   "the keys of the mapping it belongs to? every key of one mapping starts in the "
                   "same column)"});
  EXPECT_TRUE(load(text).set.policies.empty());
}

// A document of another kind altogether (a Deployment in the policy directory) is reported as
// such, without what it lacks against bulkhead's kind.
TEST(PolicyLoaderTest, ADocumentOfAnotherKindIsOneErrorNotItsFields) {
  EXPECT_EQ(errorsOf("apiVersion: bulkhead.io/v1\nkind: Deployment\nmetadata: {name: x}\n"
                     "spec: {replicas: 1}\n"),
            Errors{"p.yaml:2:7: unsupported kind 'Deployment' (supported: SegmentationPolicy"
                   " of bulkhead.io/v1, NetworkPolicy of networking.k8s.io/v1, "
                   "CiliumNetworkPolicy of cilium.io/v2, AdminNetworkPolicy and "
                   "BaselineAdminNetworkPolicy of policy.networking.k8s.io/v1alpha1)"});
}

TEST(PolicyLoaderTest, ATabInTheIndentationIsNamedWhereItIs) {
  const std::string text =
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata:\n"
      "  name: p\nspec:\n  endpointSelector: {}\n  ingress:\n  \t- {}\n";
  EXPECT_EQ(errorsOf(text),
            Errors{"p.yaml:8:3: a tab in the indentation: YAML indents with spaces only"});
  // A tab inside a value is no indentation, and fine.
  EXPECT_TRUE(load(withHeader("  annotations: {note: \"a\tb\"}\nspec:\n  endpointSelector: {}\n"
                              "  ingress: []\n"))
                  .ok());
}

TEST(PolicyLoaderTest, AnApplicationProtocolWhereTheL4OneGoesPointsAtL7Protocols) {
  const auto errors = errorsOf(withHeader(R"(spec:
  endpointSelector: {}
  ingress:
    - toPorts: [{ports: [{port: 80, protocol: HTTP}]}]
)"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("unknown L4 protocol 'HTTP': 'HTTP' is an application protocol; name "
                           "it in l7.protocols"),
            std::string::npos)
      << errors[0];
}

TEST(PolicyLoaderTest, AMisspeltRequiredKeyIsOneErrorNotTwo) {
  EXPECT_EQ(errorsOf(withHeader("spec:\n  endpointSelectr: {}\n  ingress: []\n")),
            Errors{"p.yaml:6:3: unknown key 'endpointSelectr' in spec (did you mean "
                   "'endpointSelector'?)"});
  // Its value is still read as what it was meant to be, and judged.
  const auto errors =
      errorsOf(withHeader("spec:\n  endpointSelectr: {matchLabel: {}}\n  ingress: []\n"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[1].find("unknown key 'matchLabel'"), std::string::npos) << errors[1];
}

TEST(PolicyLoaderTest, UnclosedFlowMappingIsASyntaxError) {
  const auto result = load(withHeader(R"(spec:
  endpointSelector: {matchLabels: {app: api}
  ingress: []
)"));
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].message, "YAML syntax error: end of map flow not found");
  EXPECT_GT(result.errors[0].where.line, 0);
  EXPECT_GT(result.errors[0].where.column, 0);
  EXPECT_TRUE(result.set.policies.empty());
}

TEST(PolicyLoaderTest, ReportsEveryErrorInTheFileInOrder) {
  const std::string text = R"(apiVersion: bulkhead.io/v2
kind: SegmentationPolicy
metadata: {name: broken}
spec:
  mode: enforce
  endpointSelector: {}
  ingress:
    - fromEntities: [wrold]
      toPorts:
        - ports: [{port: 70000}]
  egress:
    - toCIDR: [10.0.0.0/33]
---
apiVersion: bulkhead.io/v1
kind: SegmentationPolicie
metadata: {name: fine-otherwise}
spec: {endpointSelector: {}, egress: []}
---
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: good}
spec: {endpointSelector: {}, ingress: []}
)";
  const auto result = load(text);
  std::vector<std::string> errors;
  for (const auto& diagnostic : result.errors) {
    errors.push_back(rules::format(diagnostic));
  }
  EXPECT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors,
            (Errors{
                "p.yaml:1:13: unsupported apiVersion 'bulkhead.io/v2' (supported: bulkhead.io/v1, "
                "networking.k8s.io/v1, cilium.io/v2, policy.networking.k8s.io/v1alpha1)",
                "p.yaml:8:22: unknown entity 'wrold' (did you mean 'world'?)",
                "p.yaml:10:26: port '70000' must be a number 0-65535 or a range like '8000-8100'",
                "p.yaml:12:16: prefix length in '10.0.0.0/33' must be 0..32",
                "p.yaml:15:7: unsupported kind 'SegmentationPolicie' (supported: "
                "SegmentationPolicy of bulkhead.io/v1, NetworkPolicy of networking.k8s.io/v1, "
                "CiliumNetworkPolicy of cilium.io/v2, AdminNetworkPolicy and "
                "BaselineAdminNetworkPolicy of policy.networking.k8s.io/v1alpha1)",
            }));
  // Only the valid document becomes a policy; the caller must still not enforce the set.
  ASSERT_EQ(result.set.policies.size(), 1u);
  EXPECT_EQ(result.set.policies[0].name, "good");
  EXPECT_FALSE(result.ok());
}

// ---- Loading files and directories -------------------------------------------------------------

// A fresh directory under the system temp dir, removed with everything in it when the test ends,
// whether it passed or not.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("bulkhead-rules-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string write(const std::string& name, std::string_view text) const {
    const fs::path file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out << text;
    EXPECT_TRUE(out.good()) << file;
    return file.string();
  }

 private:
  fs::path path_;
};

std::string namedPolicy(std::string_view name) {
  return "apiVersion: bulkhead.io/v1\n"
         "kind: SegmentationPolicy\n"
         "metadata: {name: " +
         std::string(name) +
         "}\n"
         "spec: {endpointSelector: {}, ingress: []}\n";
}

TEST(PolicyLoaderFilesTest, DirectoryLoadsYamlAndYmlInNameOrderAndIgnoresOtherFiles) {
  const TempDir dir;
  const std::string c = dir.write("c.yaml", namedPolicy("c"));
  const std::string a = dir.write("a.yml", namedPolicy("a"));
  const std::string b = dir.write("b.yaml", namedPolicy("b") + "---\n" + namedPolicy("b2"));
  dir.write("README.md", "not: [a policy");
  dir.write("d.yaml.bak", "not: [a policy");
  dir.write("e.txt", namedPolicy("e"));
  fs::create_directory(dir.path() / "nested.yaml");

  const auto result = rules::loadPolicies({dir.path().string()}, catalog());
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  EXPECT_FALSE(result.ioFailure);
  std::vector<std::string> names;
  for (const auto& policy : result.set.policies) {
    names.push_back(policy.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "b2", "c"}));
  EXPECT_EQ(result.set.sources, (std::vector<std::string>{a, b, c}));
  EXPECT_EQ(result.set.policies[1].where.file, b);
}

TEST(PolicyLoaderFilesTest, DiagnosticsNameTheFileTheyAreIn) {
  const TempDir dir;
  dir.write("a.yaml", namedPolicy("same"));
  const std::string b = dir.write("b.yaml", namedPolicy("same") + "---\nkind: [\n");

  const auto result = rules::loadPolicies({dir.path().string()}, catalog());
  std::vector<std::string> errors;
  for (const auto& diagnostic : result.errors) {
    errors.push_back(rules::format(diagnostic));
  }
  // A syntax error discards the whole file it is in, so the duplicate is never seen.
  EXPECT_EQ(errors, Errors{b + ":7:1: YAML syntax error: end of sequence flow not found"});
  EXPECT_FALSE(result.ioFailure);
}

TEST(PolicyLoaderFilesTest, DuplicateNamesAcrossFilesPointAtTheFirstFile) {
  const TempDir dir;
  const std::string a = dir.write("a.yaml", namedPolicy("same"));
  const std::string b = dir.write("b.yml", "# second\n" + namedPolicy("same"));

  const auto result = rules::loadPolicies({dir.path().string()}, catalog());
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(rules::format(result.errors[0]),
            b + ":4:18: duplicate policy name 'same' (first defined at " + a + ":3:18)");
}

TEST(PolicyLoaderFilesTest, SingleFilePathIsLoadedWhateverItsExtension) {
  const TempDir dir;
  const std::string file = dir.write("policy.txt", namedPolicy("single"));
  const auto result = rules::loadPolicies({file}, catalog());
  ASSERT_TRUE(result.ok()) << rules::format(result.errors.front());
  ASSERT_EQ(result.set.policies.size(), 1u);
  EXPECT_EQ(result.set.policies[0].name, "single");
  EXPECT_EQ(result.set.sources, std::vector<std::string>{file});
}

TEST(PolicyLoaderFilesTest, MissingPathIsAnIoFailure) {
  const TempDir dir;
  const std::string missing = (dir.path() / "does-not-exist.yaml").string();
  const std::string present = dir.write("present.yaml", namedPolicy("present"));
  const auto result = rules::loadPolicies({missing, present}, catalog());
  EXPECT_TRUE(result.ioFailure);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(rules::format(result.errors[0]), missing + ":0:0: no such file or directory");
  // The other path is still read, so its own problems would be reported too.
  ASSERT_EQ(result.set.policies.size(), 1u);
  EXPECT_EQ(result.set.policies[0].name, "present");
}

TEST(PolicyLoaderFilesTest, DirectoryWithoutPolicyFilesIsAnErrorButNotAnIoFailure) {
  const TempDir dir;
  dir.write("notes.txt", "nothing here");
  const auto result = rules::loadPolicies({dir.path().string()}, catalog());
  EXPECT_FALSE(result.ioFailure);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(rules::format(result.errors[0]),
            dir.path().string() + ":0:0: directory has no *.yaml or *.yml files");
}

}  // namespace
}  // namespace bulkhead

namespace bulkhead {
namespace {

TEST(PolicyLoaderLimits, DeepNestingIsRefusedWhereItGoesTooDeep) {
  // 200,000 levels reported "YAML syntax error: bad file".
  const auto deep = rules::loadPolicyText(
      "a: " + std::string(200000, '[') + std::string(200000, ']') + "\n", "p.yaml", catalog());
  ASSERT_EQ(deep.errors.size(), 1u);
  EXPECT_EQ(rules::format(deep.errors[0]),
            "p.yaml:1:68: lists and mappings are nested deeper than 64 levels");
  // Brackets inside quotes and comments are text.
  const auto quoted = rules::loadPolicyText(
      "# " + std::string(100, '[') + "\nkey: '" + std::string(100, '{') + "'\n", "p.yaml",
      catalog());
  for (const auto& error : quoted.errors) {
    EXPECT_EQ(error.message.find("nested deeper"), std::string::npos) << error.message;
  }
}

TEST(PolicyLoaderLimits, AStrayCommaEndsInsteadOfLoopingForever) {
  // Found by policy_loader_fuzz: yaml-cpp 0.7's LoadAll never returned on a lone ',' and ate
  // all memory -- `bulkhead policy check` hung, and so would the agent's reload. Each of these
  // must return (the test's own timeout is the failure).
  for (const std::string text : {",", "a: 1\n---\n,\n", ",\n---\n,", "--- ,\n"}) {
    (void)rules::loadPolicyText(text, "p.yaml", catalog());
  }
}

TEST(PolicyLoaderLimits, LinesCountFromTheFileInEveryDocument) {
  const auto result = rules::loadPolicyText(
      "# first\napiVersion: bulkhead.io/v1\n---\n\n---   \nkind: [\n", "p.yaml", catalog());
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(rules::format(result.errors[0]),
            "p.yaml:7:1: YAML syntax error: end of sequence flow not found");
  const auto unknown =
      rules::loadPolicyText("a: 1\n--- \nb: 2\n...\nc: 3\n", "p.yaml", catalog());
  std::vector<int> lines;
  for (const auto& error : unknown.errors) {
    if (error.message.starts_with("unknown key")) {
      lines.push_back(error.where.line);
    }
  }
  EXPECT_EQ(lines, (std::vector<int>{1, 3, 5}));
}

TEST(PolicyLoaderLimits, AFileTooLargeIsRefused) {
  const auto large = rules::loadPolicyText(std::string(17u << 20, '#'), "p.yaml", catalog());
  ASSERT_EQ(large.errors.size(), 1u);
  EXPECT_NE(large.errors[0].message.find("larger than 16 MiB"), std::string::npos);
}

}  // namespace
}  // namespace bulkhead
