#include "rules/admin_network_policy.h"

#include <charconv>

#include "rules/kubernetes_object.h"
#include "rules/selector_reader.h"

namespace bulkhead::rules {
namespace {

// The API's own bounds: at most 100 rules per direction and a 100-character rule name.
constexpr size_t MaxRules = 100;
constexpr size_t MaxRuleName = 100;

class AdminReader {
 public:
  AdminReader(YamlReader& reader, bool baseline, Policy& policy)
      : reader_(reader), baseline_(baseline), policy_(policy) {}

  void read(const YAML::Node& document) {
    policy_.tier = baseline_ ? Tier::Baseline : Tier::Admin;
    const YamlReader::Fields top = reader_.fields(
        document, {"apiVersion", "kind", "metadata", "spec", "status"}, "a document");
    if (const auto* metadata = reader_.require(top, "metadata", document)) {
      // Cluster-scoped: a namespace here would be ignored by Kubernetes, so it is refused.
      if (metadata->value.IsMap() && metadata->value["namespace"]) {
        reader_.error(metadata->value["namespace"],
                      std::string(kind()) + " is cluster-scoped: it has no namespace");
      }
      readKubernetesMetadata(reader_, metadata->value, policy_);
    }
    if (const auto* spec = reader_.require(top, "spec", document)) {
      readSpec(spec->value);
    }
  }

 private:
  std::string_view kind() const {
    return baseline_ ? BaselineAdminNetworkPolicyKind : AdminNetworkPolicyKind;
  }

  void readSpec(const YAML::Node& node) {
    if (!reader_.expectMap(node, "spec")) {
      return;
    }
    const YamlReader::Fields spec =
        baseline_ ? reader_.fields(node, {"subject", "ingress", "egress"}, "spec")
                  : reader_.fields(node, {"priority", "subject", "ingress", "egress"}, "spec");
    if (!baseline_) {
      if (const auto* priority = reader_.require(spec, "priority", node)) {
        readPriority(priority->value);
      }
    }
    if (const auto* subject = reader_.require(spec, "subject", node)) {
      readSubject(subject->value);
    }
    if (const auto* ingress = YamlReader::optional(spec, "ingress")) {
      policy_.ingress = readRules(ingress->value, Direction::Ingress);
    }
    if (const auto* egress = YamlReader::optional(spec, "egress")) {
      policy_.egress = readRules(egress->value, Direction::Egress);
    }
  }

  void readPriority(const YAML::Node& node) {
    const auto text = reader_.scalar(node, "priority");
    if (!text) {
      return;
    }
    uint32_t value = 0;
    const auto [end, failure] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (failure != std::errc() || end != text->data() + text->size() || value > MaxAdminPriority) {
      reader_.error(node, "priority must be a number 0-" + std::to_string(MaxAdminPriority) +
                              ", got " + quote(*text));
      return;
    }
    policy_.priority = value;
  }

  // subject: exactly one of namespaces (every pod of the namespaces selected) and pods.
  void readSubject(const YAML::Node& node) {
    if (!reader_.expectMap(node, "subject")) {
      return;
    }
    const YamlReader::Fields subject = reader_.fields(node, {"namespaces", "pods"}, "subject");
    const auto selector = oneSelector(node, subject, "subject");
    if (selector) {
      policy_.endpointSelector = *selector;
    }
  }

  // The namespaces or pods of a subject or peer, as one endpoint selector; nullopt after
  // reporting what is wrong.
  std::optional<EndpointSelector> oneSelector(const YAML::Node& node,
                                              const YamlReader::Fields& parts,
                                              const std::string& what) {
    const auto* namespaces = YamlReader::optional(parts, "namespaces");
    const auto* pods = YamlReader::optional(parts, "pods");
    if ((namespaces != nullptr) == (pods != nullptr)) {
      reader_.error(node, what + " needs exactly one of namespaces and pods");
      return std::nullopt;
    }
    EndpointSelector selector;
    if (namespaces != nullptr) {
      addNamespaceSelector(reader_, namespaces->value, "namespaces", selector);
      return selector;
    }
    if (!reader_.expectMap(pods->value, "pods")) {
      return std::nullopt;
    }
    const YamlReader::Fields both =
        reader_.fields(pods->value, {"namespaceSelector", "podSelector"}, "pods");
    const auto* ns = reader_.require(both, "namespaceSelector", pods->value);
    const auto* pod = reader_.require(both, "podSelector", pods->value);
    if (ns == nullptr || pod == nullptr) {
      return std::nullopt;
    }
    selector = readSelector(reader_, pod->value, "podSelector");
    addNamespaceSelector(reader_, ns->value, "namespaceSelector", selector);
    return selector;
  }

  std::vector<PeerRule> readRules(const YAML::Node& node, Direction direction) {
    std::vector<PeerRule> rules;
    const bool in = direction == Direction::Ingress;
    const char* key = in ? "ingress" : "egress";
    if (node.IsNull() || !reader_.expectList(node, key)) {
      return rules;
    }
    if (node.size() > MaxRules) {
      reader_.error(node, std::string(kind()) + " allows at most " + std::to_string(MaxRules) +
                              " " + key + " rules");
    }
    for (const auto& entry : node) {
      PeerRule rule;
      rule.where = reader_.at(entry);
      const char* context = in ? "an ingress rule" : "an egress rule";
      if (!reader_.expectMap(entry, context)) {
        continue;
      }
      const char* peersKey = in ? "from" : "to";
      const YamlReader::Fields parts =
          reader_.fields(entry, {"name", "action", peersKey, "ports"}, context);
      if (const auto* name = YamlReader::optional(parts, "name")) {
        if (const auto text = reader_.scalar(name->value, "name")) {
          if (text->size() > MaxRuleName) {
            reader_.error(name->value, "a rule name is at most 100 characters");
          }
          rule.name = *text;
        }
      }
      if (const auto* action = reader_.require(parts, "action", entry)) {
        readAction(action->value, rule);
      }
      if (const auto* peers = reader_.require(parts, peersKey, entry)) {
        readPeers(peers->value, peersKey, in, rule);
      }
      if (const auto* ports = YamlReader::optional(parts, "ports")) {
        readPorts(ports->value, rule);
      }
      rules.push_back(std::move(rule));
    }
    return rules;
  }

  void readAction(const YAML::Node& node, PeerRule& rule) {
    const auto text = reader_.scalar(node, "action");
    if (text == "Allow") {
      rule.action = RuleAction::Allow;
    } else if (text == "Deny") {
      rule.action = RuleAction::Deny;
    } else if (text == "Pass" && !baseline_) {
      rule.action = RuleAction::Pass;
    } else if (text) {
      reader_.error(node, std::string("action must be Allow") +
                              (baseline_ ? " or Deny" : ", Deny or Pass") + ", got " +
                              quote(*text));
    }
  }

  void readPeers(const YAML::Node& node, const std::string& key, bool in, PeerRule& rule) {
    if (!reader_.expectList(node, key)) {
      return;
    }
    if (node.size() == 0) {
      reader_.error(node, quote(key) + " needs at least one peer");
    }
    for (const auto& entry : node) {
      if (!reader_.expectMap(entry, key + " entry")) {
        continue;
      }
      const YamlReader::Fields parts =
          in ? reader_.fields(entry, {"namespaces", "pods"}, "a from entry")
             : reader_.fields(entry, {"namespaces", "pods", "nodes", "networks", "domainNames"},
                              "a to entry");
      if (parts.size() != 1) {
        reader_.error(entry, "a " + key + " entry sets exactly one kind of peer");
        continue;
      }
      const auto& [name, field] = *parts.begin();
      if (name == "nodes") {
        readNodes(field, rule);
      } else if (name == "networks") {
        readNetworks(field.value, rule);
      } else if (name == "domainNames") {
        reader_.error(field.key,
                      "domainNames: the admin tiers judge addresses and ports, not the names a "
                      "flow carries; allow names in an application policy's l7 hosts");
      } else if (auto selector = oneSelector(entry, parts, "a " + key + " entry")) {
        rule.endpoints.push_back(std::move(*selector));
      }
    }
    if (!rule.cidrs.empty()) {
      rule.cidrsMatchEndpoints = true;
    }
  }

  // A container host is one node: `nodes: {}` is it; labels of other nodes cannot be known.
  void readNodes(const YamlReader::Field& field, PeerRule& rule) {
    const EndpointSelector nodes = readSelector(reader_, field.value, "nodes");
    if (!nodes.matchLabels.empty() || !nodes.matchExpressions.empty()) {
      reader_.error(field.value,
                    "nodes with labels: a container host is one node and has no node labels; "
                    "nodes: {} is the host");
      return;
    }
    rule.entities.push_back(Entity::Host);
  }

  void readNetworks(const YAML::Node& node, PeerRule& rule) {
    if (!reader_.expectList(node, "networks")) {
      return;
    }
    for (const auto& entry : node) {
      if (const auto text = reader_.scalar(entry, "networks entry")) {
        std::string reason;
        if (const auto cidr = Cidr::parse(*text, &reason)) {
          rule.cidrs.push_back({*cidr, {}});
        } else {
          reader_.error(entry, reason);
        }
      }
    }
  }

  // ports: each {portNumber: {protocol, port}}, {portRange: {protocol, start, end}} or
  // {namedPort}.
  void readPorts(const YAML::Node& node, PeerRule& rule) {
    if (!reader_.expectList(node, "ports")) {
      return;
    }
    PortRule ports;
    ports.where = reader_.at(node);
    for (const auto& entry : node) {
      if (!reader_.expectMap(entry, "a ports entry")) {
        continue;
      }
      const YamlReader::Fields parts =
          reader_.fields(entry, {"portNumber", "portRange", "namedPort"}, "a ports entry");
      if (parts.size() != 1) {
        reader_.error(entry, "a ports entry sets exactly one of portNumber, portRange, namedPort");
        continue;
      }
      const auto& [name, field] = *parts.begin();
      if (name == "namedPort") {
        const auto text = reader_.scalar(field.value, "namedPort");
        if (text && validPortName(*text)) {
          PortProtocol named;  // of whatever protocol the destination's label names
          named.name = *text;
          named.where = reader_.at(field.value);
          ports.ports.push_back(std::move(named));
        } else if (text) {
          reader_.error(field.value, "namedPort " + quote(*text) +
                                         " must be at most 15 lower-case letters, digits and '-'");
        }
      } else if (const auto port = readPort(field.value, name == "portRange")) {
        ports.ports.push_back(*port);
      }
    }
    rule.toPorts.push_back(std::move(ports));
  }

  std::optional<PortProtocol> readPort(const YAML::Node& node, bool range) {
    if (!reader_.expectMap(node, range ? "portRange" : "portNumber")) {
      return std::nullopt;
    }
    const YamlReader::Fields parts =
        range ? reader_.fields(node, {"protocol", "start", "end"}, "portRange")
              : reader_.fields(node, {"protocol", "port"}, "portNumber");
    PortProtocol port;
    port.where = reader_.at(node);
    port.protocol = L4Protocol::TCP;  // portRange's default; portNumber requires one
    const auto* protocol =
        range ? YamlReader::optional(parts, "protocol") : reader_.require(parts, "protocol", node);
    if (protocol != nullptr) {
      const auto text = reader_.scalar(protocol->value, "protocol");
      if (text == "UDP") {
        port.protocol = L4Protocol::UDP;
      } else if (text == "SCTP") {
        port.protocol = L4Protocol::SCTP;
      } else if (text && text != "TCP") {
        reader_.error(protocol->value, "protocol must be TCP, UDP or SCTP, got " + quote(*text));
        return std::nullopt;
      }
    }
    const auto number = [&](const char* key) -> std::optional<uint16_t> {
      const auto* field = reader_.require(parts, key, node);
      const auto text = field ? reader_.scalar(field->value, key) : std::nullopt;
      if (!text) {
        return std::nullopt;
      }
      unsigned value = 0;
      const auto [end, failure] = std::from_chars(text->data(), text->data() + text->size(), value);
      if (failure != std::errc() || end != text->data() + text->size() || value == 0 ||
          value > 65535) {
        reader_.error(field->value,
                      std::string(key) + " must be a number 1-65535, got " + quote(*text));
        return std::nullopt;
      }
      return static_cast<uint16_t>(value);
    };
    if (!range) {
      const auto value = number("port");
      if (!value) {
        return std::nullopt;
      }
      port.first = port.last = *value;
      return port;
    }
    const auto start = number("start");
    const auto end = number("end");
    if (!start || !end) {
      return std::nullopt;
    }
    if (*end < *start) {
      reader_.error(node, "portRange ends (" + std::to_string(*end) + ") before it starts (" +
                              std::to_string(*start) + ")");
      return std::nullopt;
    }
    port.first = *start;
    port.last = *end;
    return port;
  }

  YamlReader& reader_;
  bool baseline_;
  Policy& policy_;
};

}  // namespace

void readAdminNetworkPolicy(YamlReader& reader, const YAML::Node& document, bool baseline,
                            Policy& policy) {
  AdminReader(reader, baseline, policy).read(document);
}

}  // namespace bulkhead::rules
