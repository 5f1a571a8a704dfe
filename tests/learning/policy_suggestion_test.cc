#include "learning/policy_suggestion.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "dpi/protocol_catalog.h"
#include "learning/suggestion_diff.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead::learning {
namespace {

const rules::ProtocolCatalog& catalog() {
  static const dpi::NdpiProtocolCatalog instance;
  return instance;
}

EdgePeer endpoint(const std::string& name, rules::Labels labels) {
  labels[std::string(rules::reserved_labels::Name)] = name;
  return {EdgePeer::Kind::Endpoint, std::move(labels), ""};
}

EdgePeer world(const std::string& address = "") {
  return {EdgePeer::Kind::World, {}, address};
}

ObservedEdge edge(EdgePeer src, EdgePeer dst, uint8_t ipProtocol, uint16_t port,
                  std::string protocol, std::string host = "", uint64_t allowed = 1,
                  uint64_t monitored = 0, uint64_t denied = 0) {
  ObservedEdge out;
  out.key = {std::move(src), std::move(dst),      ipProtocol,
             port,           std::move(protocol), std::move(host)};
  out.stats.flows = allowed + monitored + denied;
  out.stats.allowed = allowed;
  out.stats.monitored = monitored;
  out.stats.denied = denied;
  out.stats.firstSeenNs = 1700000000000000000ull;
  out.stats.lastSeenNs = 1700000060000000000ull;
  out.stats.srcAddress = "10.0.0.1";
  out.stats.dstAddress = out.key.dst.address.empty() ? "203.0.113.9" : out.key.dst.address;
  return out;
}

// The suggestion, loaded as `bulkhead policy check` loads it: it must be valid as it is.
rules::PolicySet load(const Suggestion& suggestion) {
  const auto loaded =
      rules::loadPolicyText(suggestionYaml(suggestion), "suggested.yaml", catalog());
  std::string errors;
  for (const auto& error : loaded.errors) {
    errors += rules::format(error) + "\n";
  }
  EXPECT_TRUE(loaded.ok()) << errors << suggestionYaml(suggestion);
  return loaded.set;
}

// Applied in enforce mode: what it allows of `query`.
rules::Decision judge(const rules::PolicySet& policies, const EdgeIdentities& identities,
                      const rules::FlowQuery& query) {
  const auto snapshot = rules::compilePolicy(policies, identities.list(), catalog(), 1);
  return snapshot->verdict(query).decision;
}

TEST(PolicySuggestion, AShopLearnedInMonitorModeBecomesOneExactPolicyPerWorkload) {
  const EdgePeer web1 = endpoint("shop-web-1", {{"app", "web"}, {"tier", "front"}});
  const EdgePeer web2 = endpoint("shop-web-2", {{"app", "web"}, {"tier", "front"}});
  const EdgePeer api = endpoint("shop-api-1", {{"com.docker.compose.service", "api"},
                                               {"com.docker.compose.project", "shop"}});
  const EdgePeer db = endpoint("db", {});
  const std::vector<ObservedEdge> edges = {
      edge(web1, api, 6, 8080, "HTTP", "api.shop", 0, 12),
      edge(web2, api, 6, 8080, "HTTP", "api.shop", 0, 3),
      edge(api, db, 6, 5432, "PostgreSQL", "", 0, 4),
      edge(web1, world(), 17, 53, "DNS", "cdn.example.com", 0, 2),
      edge(web1, world(), 6, 443, "TLS.Google", "fonts.example.com", 0, 2),
      edge(web1, world("198.51.100.7"), 17, 9999, "Unknown", "", 0, 1),
      edge(world(), web2, 6, 80, "HTTP", "shop.example", 0, 5),
      // Dropped by the policy in force: evidence of a refusal, left out.
      edge(db, world(), 6, 25, "SMTP", "", 0, 0, 3),
  };
  const Suggestion suggestion = suggestPolicies(edges, {});
  ASSERT_EQ(suggestion.policies.size(), 3u);
  EXPECT_EQ(suggestion.policies[0].name, "api");
  EXPECT_EQ(suggestion.policies[1].name, "db");
  EXPECT_EQ(suggestion.policies[2].name, "web");
  // Selected by what tells the workloads apart, not by container names where a label does.
  EXPECT_EQ(suggestion.policies[2].workload.selector, (rules::Labels{{"app", "web"}}));
  EXPECT_EQ(suggestion.policies[0].workload.selector,
            (rules::Labels{{"com.docker.compose.project", "shop"},
                           {"com.docker.compose.service", "api"}}));
  EXPECT_EQ(suggestion.policies[1].workload.selector, (rules::Labels{{"bulkhead.io/name", "db"}}));
  ASSERT_EQ(suggestion.leftOut.size(), 1u);
  EXPECT_EQ(suggestion.leftOut[0].key.port, 25);

  const std::string& web = suggestion.policies[2].yaml;
  EXPECT_NE(web.find("l7: {protocols: [\"TLS\"], hosts: [\"fonts.example.com\"]}"),
            std::string::npos)
      << web;
  EXPECT_NE(web.find("toCIDR: [\"198.51.100.7\"]"), std::string::npos) << web;
  EXPECT_NE(web.find("nDPI named no protocol for 1: allowed by port alone"), std::string::npos)
      << web;
  EXPECT_NE(web.find("# 15 flows (15 passed in monitor mode), 2023-11-14T22:13:20Z to "
                     "2023-11-14T22:14:20Z"),
            std::string::npos)
      << web;
  EXPECT_NE(suggestion.policies[1].yaml.find("egress: []  # nothing was seen leaving"),
            std::string::npos);

  const rules::PolicySet policies = load(suggestion);
  const EdgeIdentities identities(edges);
  for (const auto& recorded : suggestion.allowed) {
    EXPECT_EQ(
        judge(policies, identities, identities.query(recorded.key, recorded.stats, catalog())),
        rules::Decision::Allow)
        << edgeText(recorded.key);
  }
  // What nobody did is denied: another port, another protocol, another name, another direction.
  const auto denied = [&](ObservedEdge unseen) {
    EXPECT_EQ(judge(policies, identities, identities.query(unseen.key, unseen.stats, catalog())),
              rules::Decision::Deny)
        << edgeText(unseen.key);
  };
  denied(edges.back());
  denied(edge(web1, api, 6, 8081, "HTTP"));
  denied(edge(web1, api, 6, 8080, "SSH"));
  denied(edge(api, web1, 6, 8080, "HTTP"));
  denied(edge(web1, db, 6, 5432, "PostgreSQL"));
  denied(edge(web1, world(), 6, 443, "TLS", "evil.example.com"));
  denied(edge(web1, world("198.51.100.8"), 17, 9999, "Unknown"));
  denied(edge(world(), web1, 6, 22, "SSH"));
}

TEST(PolicySuggestion, WildcardsOnlyWhenAskedAndNeverForATopLevelDomain) {
  const EdgePeer web = endpoint("web", {{"app", "web"}});
  const std::vector<ObservedEdge> edges = {
      edge(web, world(), 6, 443, "TLS", "a.cdn.example"),
      edge(web, world(), 6, 443, "TLS", "b.cdn.example"),
      edge(web, world(), 6, 443, "TLS", "example.com"),
      edge(web, world(), 6, 443, "TLS", "other.com"),
  };
  const std::string exact = suggestPolicies(edges, {}).policies.at(0).yaml;
  EXPECT_NE(exact.find("hosts: [\"a.cdn.example\", \"b.cdn.example\", \"example.com\", "
                       "\"other.com\"]"),
            std::string::npos)
      << exact;
  SuggestOptions wide;
  wide.hostWildcards = true;
  const Suggestion widened = suggestPolicies(edges, wide);
  EXPECT_NE(widened.policies.at(0).yaml.find(
                "hosts: [\"*.cdn.example\", \"example.com\", \"other.com\"]"),
            std::string::npos)
      << widened.policies.at(0).yaml;
  const rules::PolicySet policies = load(widened);
  const EdgeIdentities identities(edges);
  EXPECT_EQ(judge(policies, identities,
                  identities.query(edge(web, world(), 6, 443, "TLS", "c.cdn.example").key,
                                   edges[0].stats, catalog())),
            rules::Decision::Allow);
}

TEST(PolicySuggestion, OneEndpointsWorkloadOnlyAndItsName) {
  const EdgePeer web = endpoint("web-1", {{"app", "web"}});
  const EdgePeer api = endpoint("api-1", {{"app", "api"}});
  const std::vector<ObservedEdge> edges = {edge(web, api, 6, 8080, "HTTP")};
  SuggestOptions options;
  options.endpoint = "api-1";
  const Suggestion suggestion = suggestPolicies(edges, options);
  ASSERT_EQ(suggestion.policies.size(), 1u);
  EXPECT_EQ(suggestion.policies[0].name, "api");
  EXPECT_TRUE(suggestion.endpointFound);
  options.endpoint = "nobody";
  EXPECT_FALSE(suggestPolicies(edges, options).endpointFound);
  EXPECT_TRUE(suggestPolicies(edges, options).policies.empty());
}

TEST(PolicySuggestion, HostileLabelsAndNamesStayInsideTheirStrings) {
  const EdgePeer evil = endpoint("evil", {{"app", "x\"}\n  ingress: []\n#"}, {"bad", "\xff\xfe"}});
  const EdgePeer api = endpoint("api", {{"app", "api: {}"}});
  const std::vector<ObservedEdge> edges = {
      edge(evil, api, 6, 8080, "HTTP"),
      // An SNI no host pattern can spell: allowed by the address it went to.
      edge(evil, world(), 6, 443, "TLS", "bad host\n.example"),
  };
  const Suggestion suggestion = suggestPolicies(edges, {});
  const rules::PolicySet policies = load(suggestion);
  ASSERT_EQ(policies.policies.size(), 2u);
  const EdgeIdentities identities(edges);
  for (const auto& recorded : edges) {
    EXPECT_EQ(
        judge(policies, identities, identities.query(recorded.key, recorded.stats, catalog())),
        rules::Decision::Allow)
        << edgeText(recorded.key);
  }
  EXPECT_EQ(
      judge(policies, identities,
            identities.query(edge(api, evil, 6, 8080, "HTTP").key, edges[0].stats, catalog())),
      rules::Decision::Deny);
}

// The property: over generated traffic, the suggestion applied in enforce mode allows every
// recorded flow and denies a flow nobody made.
TEST(PolicySuggestion, PropertyEveryRecordedFlowIsAllowedAndAnUnrecordedOneDenied) {
  const std::vector<std::string> protocols = {"HTTP",  "TLS",  "DNS",   "SSH",     "PostgreSQL",
                                              "Redis", "MQTT", "MySQL", "Unknown", "HTTP.Google"};
  const std::vector<std::string> labelKeys = {"app", "com.docker.compose.service", "tier", "env"};
  const std::vector<std::string> values = {"web",     "api",       "db",         "cache",
                                           "q\"uote", "new\nline", "caf\xc3\xa9"};
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    std::mt19937 random(seed);
    const auto pick = [&](const auto& from) { return from[random() % from.size()]; };
    std::vector<EdgePeer> endpoints;
    const size_t count = 2 + random() % 6;
    for (size_t i = 0; i < count; ++i) {
      rules::Labels labels;
      for (size_t l = random() % 3; l > 0; --l) {
        labels[pick(labelKeys)] = pick(values);
      }
      endpoints.push_back(endpoint("c" + std::to_string(i), labels));
    }
    const auto peer = [&]() {
      const unsigned kind = random() % 10;
      if (kind == 0) {
        return EdgePeer{EdgePeer::Kind::Host, {}, ""};
      }
      if (kind == 1) {
        return world();
      }
      return pick(endpoints);
    };
    std::vector<ObservedEdge> edges;
    std::set<uint16_t> usedPorts;
    for (size_t e = 3 + random() % 20; e > 0; --e) {
      EdgePeer src = peer();
      EdgePeer dst = peer();
      if (src.kind != EdgePeer::Kind::Endpoint && dst.kind != EdgePeer::Kind::Endpoint) {
        dst = pick(endpoints);
      }
      const uint8_t l4 = random() % 4 == 0 ? 17 : 6;
      const uint16_t port = static_cast<uint16_t>(1 + random() % 30);
      usedPorts.insert(port);
      std::string host;
      if (dst.kind == EdgePeer::Kind::World) {
        if (random() % 3 == 0) {
          dst.address = "198.51.100." + std::to_string(random() % 250);
        } else {
          host = "h" + std::to_string(random() % 5) + ".example.test";
        }
      }
      const std::string protocol = dst.address.empty() ? pick(protocols) : "Unknown";
      edges.push_back(edge(src, dst, l4, port, protocol, host, random() % 2, random() % 2,
                           random() % 4 == 0 ? 1 : 0));
      if (edges.back().stats.flows == 0) {
        edges.back().stats.allowed = edges.back().stats.flows = 1;
      }
    }
    const Suggestion suggestion = suggestPolicies(edges, {});
    const rules::PolicySet policies = load(suggestion);
    if (HasFailure()) {
      FAIL() << "seed " << seed;
    }
    const EdgeIdentities identities(edges);
    const auto snapshot = rules::compilePolicy(policies, identities.list(), catalog(), 1);
    std::set<EdgeKey> refused;
    for (const auto& left : suggestion.leftOut) {
      refused.insert(left.key);
    }
    for (const auto& recorded : edges) {
      const auto verdict =
          snapshot->verdict(identities.query(recorded.key, recorded.stats, catalog()));
      if (refused.contains(recorded.key)) {
        continue;  // dropped in enforce mode: not evidence of a need
      }
      ASSERT_EQ(verdict.decision, rules::Decision::Allow)
          << "seed " << seed << ": " << edgeText(recorded.key) << "\n"
          << suggestionYaml(suggestion);
    }
    // A port no recorded flow used, between any peer and an endpoint that was seen (one never
    // seen has no policy: unrestricted, as before).
    std::vector<EdgePeer> seen;
    for (const auto& recorded : edges) {
      for (const EdgePeer* side : {&recorded.key.src, &recorded.key.dst}) {
        if (side->kind == EdgePeer::Kind::Endpoint) {
          seen.push_back(*side);
        }
      }
    }
    for (int n = 0; n < 10; ++n) {
      ObservedEdge unseen = edge(peer(), pick(seen), random() % 2 ? 6 : 17,
                                 static_cast<uint16_t>(40000 + random() % 1000), pick(protocols));
      if (random() % 2 != 0) {
        std::swap(unseen.key.src, unseen.key.dst);
      }
      ASSERT_EQ(snapshot->verdict(identities.query(unseen.key, unseen.stats, catalog())).decision,
                rules::Decision::Deny)
          << "seed " << seed << ": " << edgeText(unseen.key) << "\n"
          << suggestionYaml(suggestion);
    }
  }
}

TEST(SuggestionDiff, SaysWhatOpensAndWhatCloses) {
  const EdgePeer web = endpoint("web", {{"app", "web"}});
  const EdgePeer api = endpoint("api", {{"app", "api"}});
  const std::vector<ObservedEdge> edges = {edge(web, api, 6, 8080, "HTTP", "", 0, 4),
                                           edge(web, api, 6, 9090, "HTTP", "", 2)};
  const auto inForce = rules::loadPolicyText(R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 9090, protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 22, protocol: TCP}]}]
---
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: watch}
spec:
  mode: monitor
  endpointSelector: {matchLabels: {app: api}}
  ingress: []
)",
                                             "in-force.yaml", catalog());
  ASSERT_TRUE(inForce.ok());
  const Suggestion suggestion = suggestPolicies(edges, {});
  const SuggestionDiff diff = diffSuggestion(edges, inForce.set, load(suggestion), catalog());
  ASSERT_EQ(diff.opened.size(), 1u);
  EXPECT_EQ(diff.opened[0].edge.key.port, 8080);
  EXPECT_EQ(diff.unchanged, 1u);
  EXPECT_TRUE(diff.closed.empty());
  // web had no policy at all, api only for ingress.
  EXPECT_EQ(diff.isolated, (std::vector<std::string>{"web ingress", "web egress", "api egress"}));
  EXPECT_EQ(diff.unusedRules, (std::vector<std::string>{"api/ingress/1 (in-force.yaml:9)"}));
  const std::string text = diffText(diff);
  EXPECT_NE(text.find("+ web -> api TCP/8080 HTTP: 4 flows; in force: deny by default-deny; "
                      "suggested: allow by api/ingress/0"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace bulkhead::learning
