#include "cli/policy_yaml.h"

#include "text/yaml_quote.h"

namespace bulkhead::cli {
namespace {

std::string quoted(const std::string& value) {
  // Policies come from YAML: their strings are UTF-8 (yaml-cpp would have refused otherwise).
  return text::yamlQuoted(value).value_or("\"\"");
}

std::string list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "" : ", ") + quoted(items[i]);
  }
  return out + "]";
}

std::string selector(const rules::EndpointSelector& selector) {
  std::string out = "{";
  if (!selector.matchLabels.empty()) {
    out += "matchLabels: {";
    bool first = true;
    for (const auto& [key, value] : selector.matchLabels) {
      out += (first ? "" : ", ") + quoted(key) + ": " + quoted(value);
      first = false;
    }
    out += "}";
  }
  if (!selector.matchExpressions.empty()) {
    out += std::string(selector.matchLabels.empty() ? "" : ", ") + "matchExpressions: [";
    for (size_t i = 0; i < selector.matchExpressions.size(); ++i) {
      const auto& requirement = selector.matchExpressions[i];
      static const char* const Operators[] = {"In", "NotIn", "Exists", "DoesNotExist"};
      out += std::string(i == 0 ? "" : ", ") + "{key: " + quoted(requirement.key) +
             ", operator: " + Operators[static_cast<int>(requirement.op)];
      if (!requirement.values.empty()) {
        out += ", values: " + list(requirement.values);
      }
      out += "}";
    }
    out += "]";
  }
  return out + "}";
}

std::string port(const rules::PortProtocol& port) {
  std::string out = "{";
  if (!port.name.empty()) {
    out += "port: " + quoted(port.name) + ", ";
  } else if (!(port.first == 0 && port.last == 65535)) {
    out += "port: " + std::to_string(port.first) + ", ";
    if (port.last != port.first) {
      out += "endPort: " + std::to_string(port.last) + ", ";
    }
  }
  return out + "protocol: " + rules::toString(port.protocol) + "}";
}

void rules(std::string& out, const char* key,
           const std::optional<std::vector<rules::PeerRule>>& list, bool ingress, bool tiered) {
  if (!list) {
    return;
  }
  if (list->empty()) {
    out += std::string("  ") + key + ": []\n";
    return;
  }
  out += std::string("  ") + key + ":\n";
  const std::string from = ingress ? "from" : "to";
  for (const auto& rule : *list) {
    std::string lines;
    if (tiered) {
      lines += std::string("      action: ") + rules::toString(rule.action) + "\n";
      if (!rule.name.empty()) {
        lines += "      name: " + quoted(rule.name) + "\n";
      }
    }
    if (!rule.endpoints.empty()) {
      lines += "      " + from + "Endpoints:\n";
      for (const auto& entry : rule.endpoints) {
        lines += "        - " + selector(entry) + "\n";
      }
    }
    if (!rule.entities.empty()) {
      std::vector<std::string> names;
      for (const auto entity : rule.entities) {
        names.push_back(rules::toString(entity));
      }
      lines += "      " + from + "Entities: " + ::bulkhead::cli::list(names) + "\n";
    }
    if (!rule.cidrs.empty()) {
      lines += "      " + from + "CIDRSet:\n";
      for (const auto& set : rule.cidrs) {
        std::vector<std::string> except;
        for (const auto& hole : set.except) {
          except.push_back(hole.toString());
        }
        lines += "        - {cidr: " + quoted(set.cidr.toString()) +
                 (except.empty() ? "" : ", except: " + ::bulkhead::cli::list(except)) + "}\n";
      }
    }
    if (!rule.toPorts.empty()) {
      lines += "      toPorts:\n";
      for (const auto& entry : rule.toPorts) {
        std::string item = "        - ";
        if (!entry.ports.empty()) {
          item += "ports: [";
          for (size_t i = 0; i < entry.ports.size(); ++i) {
            item += (i == 0 ? "" : ", ") + port(entry.ports[i]);
          }
          item += "]";
        }
        if (entry.l7) {
          item += std::string(entry.ports.empty() ? "" : "\n          ") + "l7: {";
          if (!entry.l7->protocols.empty()) {
            item += "protocols: " + ::bulkhead::cli::list(entry.l7->protocols);
          }
          if (!entry.l7->hosts.empty()) {
            item += std::string(entry.l7->protocols.empty() ? "" : ", ") +
                    "hosts: " + ::bulkhead::cli::list(entry.l7->hosts);
          }
          item += "}";
        }
        lines += item + "\n";
      }
    }
    // A rule with no peer and no port selects everything: written as an empty mapping.
    out += lines.empty() ? "    - {}\n" : "    -" + lines.substr(5);
  }
}

}  // namespace

std::string segmentationPolicyYaml(const rules::Policy& policy) {
  std::string out = "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata:\n  name: " +
                    quoted(policy.name) + "\nspec:\n";
  out += std::string("  mode: ") + rules::toString(policy.mode) + "\n";
  const bool tiered = policy.tier != rules::Tier::Application;
  if (tiered) {
    out += std::string("  tier: ") + rules::toString(policy.tier) + "\n";
  }
  if (policy.tier == rules::Tier::Admin) {
    out += "  priority: " + std::to_string(policy.priority) + "\n";
  }
  if (policy.denyAction == rules::DenyAction::Reject) {
    out += "  denyAction: reject\n";
  }
  out += "  endpointSelector: " + selector(policy.endpointSelector) + "\n";
  if (policy.defaultDenyIngress || policy.defaultDenyEgress) {
    out += "  enableDefaultDeny: {";
    if (policy.defaultDenyIngress) {
      out += std::string("ingress: ") + (*policy.defaultDenyIngress ? "true" : "false");
    }
    if (policy.defaultDenyEgress) {
      out += std::string(policy.defaultDenyIngress ? ", " : "") +
             "egress: " + (*policy.defaultDenyEgress ? "true" : "false");
    }
    out += "}\n";
  }
  rules(out, "ingress", policy.ingress, true, tiered);
  rules(out, "egress", policy.egress, false, tiered);
  rules(out, "ingressDeny", policy.ingressDeny, true, false);
  rules(out, "egressDeny", policy.egressDeny, false, false);
  return out;
}

}  // namespace bulkhead::cli
