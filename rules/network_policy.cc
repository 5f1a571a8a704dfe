#include "rules/network_policy.h"

#include "rules/kubernetes_object.h"
#include "rules/selector_reader.h"

namespace bulkhead::rules {
namespace {

class NetworkPolicyReader {
 public:
  NetworkPolicyReader(YamlReader& reader, Policy& policy) : reader_(reader), policy_(policy) {}

  void read(const YAML::Node& document) {
    const YamlReader::Fields top = reader_.fields(
        document, {"apiVersion", "kind", "metadata", "spec", "status"}, "a document");
    if (const auto* metadata = reader_.require(top, "metadata", document)) {
      namespace_ = readKubernetesMetadata(reader_, metadata->value, policy_);
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
        reader_.fields(node, {"podSelector", "policyTypes", "ingress", "egress"}, "spec");
    if (const auto* selector = reader_.require(spec, "podSelector", node)) {
      policy_.endpointSelector =
          inNamespace(readSelector(reader_, selector->value, "podSelector"), namespace_);
    }
    // Kubernetes' defaults: Ingress always, Egress when the spec has egress rules.
    bool ingress = true;
    bool egress = YamlReader::optional(spec, "egress") != nullptr;
    if (const auto* types = YamlReader::optional(spec, "policyTypes")) {
      ingress = false;
      egress = false;
      if (reader_.expectList(types->value, "policyTypes")) {
        for (const auto& entry : types->value) {
          const auto text = reader_.scalar(entry, "policyTypes entry");
          if (text == "Ingress") {
            ingress = true;
          } else if (text == "Egress") {
            egress = true;
          } else if (text) {
            reader_.error(entry, "policyTypes entries are Ingress or Egress, got " + quote(*text));
          }
        }
      }
    }
    if (ingress) {
      policy_.ingress = readRules(YamlReader::optional(spec, "ingress"), Direction::Ingress);
    } else if (const auto* rules = YamlReader::optional(spec, "ingress")) {
      reader_.error(rules->key,
                    "ingress rules, but policyTypes has no Ingress: they would do "
                    "nothing");
    }
    if (egress) {
      policy_.egress = readRules(YamlReader::optional(spec, "egress"), Direction::Egress);
    } else if (const auto* rules = YamlReader::optional(spec, "egress")) {
      reader_.error(rules->key,
                    "egress rules, but policyTypes has no Egress: they would do "
                    "nothing");
    }
  }

  std::vector<PeerRule> readRules(const YamlReader::Field* field, Direction direction) {
    std::vector<PeerRule> rules;
    if (field == nullptr || field->value.IsNull()) {
      return rules;  // the direction is isolated, nothing is allowed
    }
    const bool in = direction == Direction::Ingress;
    if (!reader_.expectList(field->value, in ? "ingress" : "egress")) {
      return rules;
    }
    for (const auto& node : field->value) {
      PeerRule rule;
      rule.where = reader_.at(node);
      if (!reader_.expectMap(node, in ? "an ingress rule" : "an egress rule")) {
        continue;
      }
      const char* peersKey = in ? "from" : "to";
      const YamlReader::Fields parts =
          reader_.fields(node, {peersKey, "ports"}, in ? "an ingress rule" : "an egress rule");
      if (const auto* peers = YamlReader::optional(parts, peersKey)) {
        readPeers(peers->value, peersKey, rule);
      }
      if (const auto* ports = YamlReader::optional(parts, "ports")) {
        readPorts(ports->value, rule);
      }
      rules.push_back(std::move(rule));
    }
    return rules;
  }

  // Absent or empty: every peer, as in Kubernetes.
  void readPeers(const YAML::Node& node, const std::string& key, PeerRule& rule) {
    if (node.IsNull() || !reader_.expectList(node, key)) {
      return;
    }
    for (const auto& entry : node) {
      if (!reader_.expectMap(entry, key + " entry")) {
        continue;
      }
      const YamlReader::Fields parts = reader_.fields(
          entry, {"podSelector", "namespaceSelector", "ipBlock"}, "a " + key + " entry");
      const auto* pods = YamlReader::optional(parts, "podSelector");
      const auto* namespaces = YamlReader::optional(parts, "namespaceSelector");
      if (const auto* block = YamlReader::optional(parts, "ipBlock")) {
        if (pods != nullptr || namespaces != nullptr) {
          reader_.error(block->key, "ipBlock goes alone in its " + key +
                                        " entry, without podSelector or namespaceSelector");
        } else if (auto set = readCidrSet(reader_, block->value, "ipBlock")) {
          rule.cidrs.push_back(std::move(*set));
        }
        continue;
      }
      if (pods == nullptr && namespaces == nullptr) {
        reader_.error(entry, "a " + key + " entry needs podSelector, namespaceSelector or ipBlock");
        continue;
      }
      EndpointSelector selector;
      if (pods != nullptr) {
        selector = readSelector(reader_, pods->value, "podSelector");
      }
      if (namespaces != nullptr) {
        addNamespaceSelector(reader_, namespaces->value, "namespaceSelector", selector);
      } else {
        selector =
            inNamespace(std::move(selector), namespace_);  // pods of the policy's own namespace
      }
      rule.endpoints.push_back(std::move(selector));
    }
  }

  void readPorts(const YAML::Node& node, PeerRule& rule) {
    if (node.IsNull() || !reader_.expectList(node, "ports")) {
      return;
    }
    PortRule ports;
    ports.where = reader_.at(node);
    for (const auto& entry : node) {
      if (const auto port = readKubernetesPort(reader_, entry, L4Protocol::TCP, false)) {
        ports.ports.push_back(*port);
      }
    }
    rule.toPorts.push_back(std::move(ports));
  }

  YamlReader& reader_;
  Policy& policy_;
  std::string namespace_;
};

}  // namespace

void readNetworkPolicy(YamlReader& reader, const YAML::Node& document, Policy& policy) {
  NetworkPolicyReader(reader, policy).read(document);
}

}  // namespace bulkhead::rules
