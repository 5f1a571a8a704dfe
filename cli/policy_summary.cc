#include "cli/policy_summary.h"

#include <ostream>
#include <string_view>

namespace bulkhead::cli {

namespace {

std::string describePorts(const rules::PortRule& rule) {
  std::string out;
  for (const auto& port : rule.ports) {
    out += out.empty() ? "" : ",";
    if (!port.name.empty()) {
      out += port.name;
    } else if (port.first == 0 && port.last == 65535) {
      out += "any";
    } else if (port.first == port.last) {
      out += std::to_string(port.first);
    } else {
      out += std::to_string(port.first) + "-" + std::to_string(port.last);
    }
    out += std::string("/") + rules::toString(port.protocol);
  }
  if (rule.l7) {
    for (const auto& protocol : rule.l7->protocols) {
      out += (out.empty() ? "" : " ") + protocol;
    }
    for (const auto& host : rule.l7->hosts) {
      out += " host=" + host;
    }
  }
  return out.empty() ? "any" : out;
}

}  // namespace

void summarisePolicy(const rules::Policy& policy, std::ostream& out) {
  std::string tier;
  if (policy.tier == rules::Tier::Admin) {
    tier = ", admin tier, priority " + std::to_string(policy.priority);
  } else if (policy.tier == rules::Tier::Baseline) {
    tier = ", baseline tier";
  }
  out << "  " << policy.name << " (" << rules::toString(policy.mode) << tier
      << (policy.denyAction == rules::DenyAction::Reject ? ", rejects" : "") << "): selects "
      << (policy.endpointSelector.toString() == "{}"
              ? std::string("every endpoint")
              : "{" + policy.endpointSelector.toString() + "}")
      << "\n";
  const auto directions = {
      std::pair{"ingress", &policy.ingress}, std::pair{"egress", &policy.egress},
      std::pair{"ingressDeny", &policy.ingressDeny}, std::pair{"egressDeny", &policy.egressDeny}};
  for (const auto& [name, rulesOf] : directions) {
    if (!*rulesOf) {
      continue;
    }
    const bool deny = std::string_view(name).ends_with("Deny");
    const bool tiered = policy.tier != rules::Tier::Application;
    if ((*rulesOf)->empty()) {
      out << "    " << name << (deny || tiered ? ": none\n" : ": deny all\n");
    }
    for (size_t index = 0; index < (*rulesOf)->size(); ++index) {
      const auto& rule = (**rulesOf)[index];
      std::string peers;
      for (const auto& selector : rule.endpoints) {
        const std::string text = selector.toString();
        peers += (peers.empty() ? "" : " ") +
                 (text == "{}" ? std::string("every endpoint") : "{" + text + "}");
      }
      for (const auto entity : rule.entities) {
        peers += (peers.empty() ? "" : " ") + std::string(rules::toString(entity));
      }
      for (const auto& cidr : rule.cidrs) {
        peers += (peers.empty() ? "" : " ") + cidr.toString();
      }
      std::string ports;
      for (const auto& portRule : rule.toPorts) {
        ports += (ports.empty() ? "" : "; ") + describePorts(portRule);
      }
      std::string verb = deny ? "denies " : "";
      if (tiered) {
        verb = rule.action == rules::RuleAction::Allow  ? "allows "
               : rule.action == rules::RuleAction::Deny ? "denies "
                                                        : "passes ";
        if (!rule.name.empty()) {
          verb = "(" + rule.name + ") " + verb;
        }
      }
      out << "    " << name << "[" << index << "]: " << verb << (peers.empty() ? "any peer" : peers)
          << " on " << (ports.empty() ? "any port" : ports) << "\n";
    }
  }
  for (const auto& [name, value] : {std::pair{"ingress", policy.defaultDenyIngress},
                                    std::pair{"egress", policy.defaultDenyEgress}}) {
    if (value == false) {
      out << "    " << name << ": not made default-deny by this policy (enableDefaultDeny)\n";
    }
  }
}

}  // namespace bulkhead::cli
