#include "rules/cilium_network_policy.h"

#include "rules/host_pattern.h"
#include "rules/kubernetes_object.h"
#include "rules/selector_reader.h"

namespace bulkhead::rules {
namespace {

// Cilium's label for a pod's namespace, and the source prefixes its selectors may carry.
constexpr std::string_view PodNamespaceLabel = "io.kubernetes.pod.namespace";
constexpr std::string_view NamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels.";

class CiliumReader {
 public:
  CiliumReader(YamlReader& reader, const ProtocolCatalog& catalog, Policy& policy)
      : reader_(reader), catalog_(catalog), policy_(policy) {}

  void read(const YAML::Node& document) {
    const YamlReader::Fields top = reader_.fields(
        document, {"apiVersion", "kind", "metadata", "spec", "specs", "status"}, "a document");
    if (const auto* metadata = reader_.require(top, "metadata", document)) {
      namespace_ = readKubernetesMetadata(reader_, metadata->value, policy_);
    }
    if (const auto* specs = YamlReader::optional(top, "specs")) {
      reader_.error(specs->key, "several rules in 'specs': write one CiliumNetworkPolicy per rule");
      return;
    }
    if (const auto* spec = reader_.require(top, "spec", document)) {
      readSpec(spec->value);
    }
  }

 private:
  void readSpec(const YAML::Node& node) {
    if (!reader_.expectMap(node, "spec")) {
      return;
    }
    const YamlReader::Fields spec =
        reader_.fields(node,
                       {"description", "labels", "endpointSelector", "nodeSelector", "ingress",
                        "egress", "ingressDeny", "egressDeny", "enableDefaultDeny"},
                       "spec");
    if (const auto* nodes = YamlReader::optional(spec, "nodeSelector")) {
      reader_.error(nodes->key,
                    "nodeSelector (a host policy) is not supported: bulkhead's "
                    "endpoints are containers");
    }
    if (const auto* selector = reader_.require(spec, "endpointSelector", node)) {
      policy_.endpointSelector =
          inNamespace(selectorOf(selector->value, "endpointSelector"), namespace_);
    }
    for (const auto& [key, into, direction] :
         {std::tuple{"ingress", &policy_.ingress, Direction::Ingress},
          std::tuple{"egress", &policy_.egress, Direction::Egress},
          std::tuple{"ingressDeny", &policy_.ingressDeny, Direction::Ingress},
          std::tuple{"egressDeny", &policy_.egressDeny, Direction::Egress}}) {
      if (const auto* rules = YamlReader::optional(spec, key)) {
        *into = readRules(rules->value, key, direction);
      }
    }
    if (const auto* defaults = YamlReader::optional(spec, "enableDefaultDeny")) {
      if (reader_.expectMap(defaults->value, "enableDefaultDeny")) {
        const YamlReader::Fields directions =
            reader_.fields(defaults->value, {"ingress", "egress"}, "enableDefaultDeny");
        for (const auto& [key, into] : {std::pair{"ingress", &policy_.defaultDenyIngress},
                                        std::pair{"egress", &policy_.defaultDenyEgress}}) {
          if (const auto* field = YamlReader::optional(directions, key)) {
            const auto text = reader_.scalar(field->value, key);
            if (text == "true" || text == "false") {
              *into = *text == "true";
            } else if (text) {
              reader_.error(field->value, std::string("enableDefaultDeny.") + key +
                                              " must be true or false, got " + quote(*text));
            }
          }
        }
      }
    }
  }

  // Cilium's selectors may name a label's source (k8s:app); its pods' namespace label is
  // bulkhead.io/namespace here. A reserved: label names Cilium's own identities.
  EndpointSelector selectorOf(const YAML::Node& node, const std::string& what) {
    EndpointSelector selector = readSelector(reader_, node, what);
    const auto keyOf = [&](const std::string& key) -> std::optional<std::string> {
      std::string_view bare = key;
      for (const std::string_view prefix : {"k8s:", "any:"}) {
        if (bare.starts_with(prefix)) {
          bare.remove_prefix(prefix.size());
        }
      }
      if (bare.starts_with("reserved:")) {
        reader_.error(node, "label " + quote(key) + " names a Cilium identity: select the " +
                                "entity (fromEntities/toEntities) instead");
        return std::nullopt;
      }
      if (bare == PodNamespaceLabel) {
        return std::string(reserved_labels::Namespace);
      }
      if (bare.starts_with(NamespaceLabelsPrefix)) {
        bare.remove_prefix(NamespaceLabelsPrefix.size());
        return std::string(reserved_labels::NamespaceLabelPrefix) + std::string(bare);
      }
      return std::string(bare);
    };
    Labels labels;
    for (const auto& [key, value] : selector.matchLabels) {
      if (const auto bare = keyOf(key)) {
        labels[*bare] = value;
      }
    }
    selector.matchLabels = std::move(labels);
    for (auto& requirement : selector.matchExpressions) {
      requirement.key = keyOf(requirement.key).value_or(requirement.key);
    }
    return selector;
  }

  std::vector<PeerRule> readRules(const YAML::Node& node, const std::string& key,
                                  Direction direction) {
    std::vector<PeerRule> rules;
    if (node.IsNull() || !reader_.expectList(node, key)) {
      return rules;
    }
    const bool in = direction == Direction::Ingress;
    const std::string from = in ? "from" : "to";
    for (const auto& entry : node) {
      PeerRule rule;
      rule.where = reader_.at(entry);
      if (!reader_.expectMap(entry, "a " + key + " rule")) {
        continue;
      }
      // Cilium's peers that have no counterpart on a container host are refused by name.
      const std::string endpoints = from + "Endpoints";
      const std::string entities = from + "Entities";
      const std::string cidr = from + "CIDR";
      const std::string cidrSet = from + "CIDRSet";
      const YamlReader::Fields parts = reader_.fields(
          entry,
          {endpoints, entities, cidr, cidrSet, "toPorts", "toFQDNs", "icmps", "fromRequires",
           "toRequires", "toServices", "toGroups", "fromNodes", "toNodes", "authentication"},
          "a " + key + " rule");
      for (const char* unsupported : {"icmps", "fromRequires", "toRequires", "toServices",
                                      "toGroups", "fromNodes", "toNodes", "authentication"}) {
        if (const auto* field = YamlReader::optional(parts, unsupported)) {
          reader_.error(field->key, std::string(unsupported) +
                                        " is not supported: bulkhead cannot enforce it as written");
        }
      }
      if (const auto* field = YamlReader::optional(parts, endpoints)) {
        if (reader_.expectList(field->value, endpoints)) {
          for (const auto& selector : field->value) {
            rule.endpoints.push_back(
                inNamespace(selectorOf(selector, endpoints + " entry"), namespace_));
          }
        }
      }
      if (const auto* field = YamlReader::optional(parts, entities)) {
        readEntities(field->value, entities, rule);
      }
      if (const auto* field = YamlReader::optional(parts, cidr)) {
        if (reader_.expectList(field->value, cidr)) {
          for (const auto& prefix : field->value) {
            const auto text = reader_.scalar(prefix, cidr + " entry");
            std::string reason;
            if (const auto parsed = text ? Cidr::parse(*text, &reason) : std::nullopt) {
              rule.cidrs.push_back({*parsed, {}});
            } else if (text) {
              reader_.error(prefix, reason);
            }
          }
        }
      }
      if (const auto* field = YamlReader::optional(parts, cidrSet)) {
        if (reader_.expectList(field->value, cidrSet)) {
          for (const auto& set : field->value) {
            if (set.IsMap() && set["cidrGroupRef"]) {
              reader_.error(set, "cidrGroupRef is not supported: write the prefixes");
              continue;
            }
            if (auto parsed = readCidrSet(reader_, set, cidrSet)) {
              rule.cidrs.push_back(std::move(*parsed));
            }
          }
        }
      }
      std::vector<std::string> fqdns;
      if (const auto* field = YamlReader::optional(parts, "toFQDNs")) {
        if (in) {
          reader_.error(field->key, "toFQDNs is an egress rule's");
        } else {
          fqdns = readNames(field->value, "toFQDNs");
          rule.entities.push_back(Entity::World);
        }
      }
      if (const auto* field = YamlReader::optional(parts, "toPorts")) {
        readPorts(field->value, rule);
      }
      if (!fqdns.empty()) {
        // Cilium allows what DNS resolved those names to; bulkhead judges the name the flow
        // itself carries (TLS SNI, HTTP Host, DNS query): every port entry asks for it.
        if (rule.toPorts.empty()) {
          rule.toPorts.push_back({});
        }
        for (auto& ports : rule.toPorts) {
          if (!ports.l7) {
            ports.l7 = L7Rule{};
          }
          ports.l7->hosts.insert(ports.l7->hosts.end(), fqdns.begin(), fqdns.end());
        }
      }
      rules.push_back(std::move(rule));
    }
    return rules;
  }

  void readEntities(const YAML::Node& node, const std::string& key, PeerRule& rule) {
    if (!reader_.expectList(node, key)) {
      return;
    }
    for (const auto& entry : node) {
      const auto text = reader_.scalar(entry, key + " entry");
      if (!text) {
        continue;
      }
      if (*text == "world") {
        rule.entities.push_back(Entity::World);
      } else if (*text == "host") {
        rule.entities.push_back(Entity::Host);
      } else if (*text == "all") {
        rule.entities.push_back(Entity::All);
      } else if (*text == "cluster") {
        // Every endpoint of this host and the host itself: what a container host's cluster is.
        rule.endpoints.push_back({});
        rule.entities.push_back(Entity::Host);
      } else {
        reader_.error(entry, "entity " + quote(*text) +
                                 " has no counterpart on a container host (world, host, all, "
                                 "cluster)");
      }
    }
  }

  // matchName / matchPattern entries (toFQDNs, DNS rules) as host patterns.
  std::vector<std::string> readNames(const YAML::Node& node, const std::string& key) {
    std::vector<std::string> names;
    if (!reader_.expectList(node, key)) {
      return names;
    }
    for (const auto& entry : node) {
      if (!reader_.expectMap(entry, key + " entry")) {
        continue;
      }
      const YamlReader::Fields parts =
          reader_.fields(entry, {"matchName", "matchPattern"}, "a " + key + " entry");
      for (const char* field : {"matchName", "matchPattern"}) {
        if (const auto* value = YamlReader::optional(parts, field)) {
          const auto text = reader_.scalar(value->value, field);
          std::string reason;
          if (!text) {
            continue;
          }
          if (!HostPattern::validate(*text, &reason)) {
            reader_.error(value->value, reason + " (bulkhead's patterns: a name, *.suffix or *)");
            continue;
          }
          names.push_back(*text);
        }
      }
    }
    return names;
  }

  void readPorts(const YAML::Node& node, PeerRule& rule) {
    if (!reader_.expectList(node, "toPorts")) {
      return;
    }
    for (const auto& entry : node) {
      if (!reader_.expectMap(entry, "a toPorts entry")) {
        continue;
      }
      PortRule ports;
      ports.where = reader_.at(entry);
      const YamlReader::Fields parts = reader_.fields(
          entry, {"ports", "rules", "originatingTLS", "terminatingTLS", "serverNames", "listener"},
          "a toPorts entry");
      for (const char* unsupported : {"originatingTLS", "terminatingTLS", "listener"}) {
        if (const auto* field = YamlReader::optional(parts, unsupported)) {
          reader_.error(field->key, std::string(unsupported) + " is not supported");
        }
      }
      if (const auto* field = YamlReader::optional(parts, "ports")) {
        if (reader_.expectList(field->value, "ports")) {
          for (const auto& port : field->value) {
            if (auto parsed = readPort(port)) {
              ports.ports.push_back(*parsed);
            }
          }
        }
      }
      if (const auto* field = YamlReader::optional(parts, "serverNames")) {
        // TLS SNI names: what bulkhead's host rules judge.
        ports.l7 = L7Rule{};
        ports.l7->where = reader_.at(field->value);
        if (reader_.expectList(field->value, "serverNames")) {
          for (const auto& name : field->value) {
            const auto text = reader_.scalar(name, "serverNames entry");
            std::string reason;
            if (text && HostPattern::validate(*text, &reason)) {
              ports.l7->protocols = {"TLS"};
              ports.l7->hosts.push_back(*text);
            } else if (text) {
              reader_.error(name, reason);
            }
          }
        }
      }
      if (const auto* field = YamlReader::optional(parts, "rules")) {
        readL7(field->value, ports);
      }
      rule.toPorts.push_back(std::move(ports));
    }
  }

  void readL7(const YAML::Node& node, PortRule& ports) {
    if (!reader_.expectMap(node, "rules")) {
      return;
    }
    const YamlReader::Fields parts =
        reader_.fields(node, {"dns", "http", "kafka", "l7proto", "l7"}, "rules");
    for (const char* unsupported : {"http", "kafka", "l7proto", "l7"}) {
      if (const auto* field = YamlReader::optional(parts, unsupported)) {
        reader_.error(field->key, std::string(unsupported) +
                                      " rules are not supported: bulkhead judges a flow's "
                                      "protocol and host name, not its requests; refused rather "
                                      "than widened");
      }
    }
    if (const auto* dns = YamlReader::optional(parts, "dns")) {
      const std::vector<std::string> names = readNames(dns->value, "dns");
      L7Rule l7;
      l7.where = reader_.at(dns->value);
      l7.protocols.push_back("DNS");
      l7.hosts = names;
      if (!catalog_.find("DNS")) {
        reader_.error(dns->key, "the linked nDPI has no DNS protocol");
      }
      ports.l7 = std::move(l7);
    }
  }

  // Cilium's default protocol is ANY, and its port 0 every port.
  std::optional<PortProtocol> readPort(const YAML::Node& node) {
    return readKubernetesPort(reader_, node, L4Protocol::Any, true);
  }

  YamlReader& reader_;
  const ProtocolCatalog& catalog_;
  Policy& policy_;
  std::string namespace_;
};

}  // namespace

void readCiliumNetworkPolicy(YamlReader& reader, const YAML::Node& document,
                             const ProtocolCatalog& catalog, Policy& policy) {
  CiliumReader(reader, catalog, policy).read(document);
}

}  // namespace bulkhead::rules
