#include "rules/policy_explain.h"

#include <algorithm>

#include "rules/rule_match.h"

namespace bulkhead::rules {
namespace {

using CompiledRule = PolicySnapshot::CompiledRule;

std::string l4Name(uint8_t ipProtocol) {
  switch (ipProtocol) {
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 132:
      return "SCTP";
    case 1:
      return "ICMP";
    case 58:
      return "ICMPv6";
    default:
      return "IP protocol " + std::to_string(ipProtocol);
  }
}

std::string portText(const PortProtocol& port) {
  std::string out;
  if (!port.name.empty()) {
    out = port.name;
  } else if (port.first == 0 && port.last == 65535) {
    out = "any port";
  } else if (port.first == port.last) {
    out = std::to_string(port.first);
  } else {
    out = std::to_string(port.first) + "-" + std::to_string(port.last);
  }
  return port.protocol == L4Protocol::Any ? out : out + "/" + toString(port.protocol);
}

template <typename List, typename Text>
std::string joined(const List& list, Text&& text) {
  std::string out;
  for (const auto& item : list) {
    out += (out.empty() ? "" : ", ") + text(item);
  }
  return out;
}

// How far the rule gets: 0 not the peer, 1 not the port, 2 not the protocol (or unclassified),
// 3 not the host, 4 all of it (it would have allowed the flow).
int depth(const CompiledRule& rule, IdentityId peer, const IpAddress& peerIp,
          const FlowQuery& query) {
  if (!peerMatches(rule, peer, peerIp)) {
    return 0;
  }
  if (!portMatches(rule, query.ipProtocol, query.dstPort, query.dst)) {
    return 1;
  }
  if (!rule.hasL7) {
    return 4;
  }
  if (!query.app || !protocolMatches(rule, *query.app)) {
    return 2;
  }
  return hostMatches(rule, query.host) ? 4 : 3;
}

std::string allowsText(const CompiledRule& rule, const ProtocolName& protocolName) {
  std::string out = rule.protocols.empty()
                        ? std::string()
                        : joined(rule.protocols, [&](uint16_t id) { return protocolName(id); });
  const std::string ports = rule.ports.empty()
                                ? "any port"
                                : joined(rule.ports, [](const auto& p) { return portText(p); });
  out += (out.empty() ? "" : " on ") + ports;
  if (!rule.hosts.empty()) {
    out += " for " + joined(rule.hosts, [](const HostPattern& pattern) { return pattern.text(); });
  }
  return out;
}

std::string appName(const AppProtocol& app, const ProtocolName& protocolName) {
  if (app.master != 0 && app.app != 0 && app.master != app.app) {
    return protocolName(app.master) + "." + protocolName(app.app);
  }
  return protocolName(app.master != 0 ? app.master : app.app);
}

}  // namespace

std::string_view Explanation::what() const {
  switch (mismatch) {
    case Mismatch::NoRule:
      return "no-rule";
    case Mismatch::Peer:
      return "peer";
    case Mismatch::Port:
      return "port";
    case Mismatch::Protocol:
      return "protocol";
    case Mismatch::Unclassified:
      return "unclassified";
    case Mismatch::Host:
      return "host";
    case Mismatch::DenyRule:
      return "deny-rule";
    case Mismatch::AdminDeny:
      return "admin-deny";
    case Mismatch::BaselineDeny:
      return "baseline-deny";
  }
  return "no-rule";
}

std::string Explanation::text(std::string_view peerName) const {
  if (mismatch == Mismatch::DenyRule) {
    return "deny rule " + closestRule + " denies " + allows + " from or to " +
           std::string(peerName) + ", whatever any rule allows";
  }
  if (mismatch == Mismatch::AdminDeny) {
    return "admin rule " + closestRule + " denies " + allows + " from or to " +
           std::string(peerName) + ", before any application policy";
  }
  if (mismatch == Mismatch::BaselineDeny) {
    return "baseline rule " + closestRule + " denies " + allows + " from or to " +
           std::string(peerName) + ": no application policy decides this direction";
  }
  const std::string rule = closestRule + " allows " + allows;
  switch (mismatch) {
    case Mismatch::NoRule:
      return "no rule of the policies selecting it allows anything in this direction";
    case Mismatch::Peer:
      return rule + ", but not from or to " + std::string(peerName);
    case Mismatch::Port:
      return rule + "; this flow's port is " + found;
    case Mismatch::Protocol:
      return rule + "; this flow is " + found;
    case Mismatch::Unclassified:
      return rule + "; this flow's protocol was not identified (" + found + ")";
    case Mismatch::Host:
      return rule + "; this flow's host is " + (found.empty() ? "not known" : found);
    case Mismatch::DenyRule:
    case Mismatch::AdminDeny:
    case Mismatch::BaselineDeny:
      break;  // said above
  }
  return rule;
}

Explanation explainDenial(const PolicySnapshot& snapshot, const FlowQuery& query, Direction side,
                          const ProtocolName& protocolName) {
  Explanation out;
  const bool egress = side == Direction::Egress;
  const PolicySnapshot::EndpointPolicy* selected =
      snapshot.endpointPolicy(egress ? query.src : query.dst);
  if (selected == nullptr) {
    return out;
  }
  const PolicySnapshot::DirectionalPolicy& policy = egress ? selected->egress : selected->ingress;
  const IdentityId peer = egress ? query.dst : query.src;
  const IpAddress& peerIp = egress ? query.dstIp : query.srcIp;
  const auto decidedBy = [&](const CompiledRule& rule, Explanation::Mismatch why) {
    Verdict verdict;
    verdict.rule = rule.ref;
    verdict.generation = snapshot.generation();
    verdict.decision = Decision::Deny;
    out.mismatch = why;
    out.closestRule = std::string(snapshot.ruleName(verdict));
    out.allows = allowsText(rule, protocolName);
    return out;
  };
  // The tiers, as the verdict walks them: the first admin rule that matches (an enforce-mode
  // policy's before a monitor-mode one's) decides unless it passes; the baseline's only where the
  // application tier has no say.
  const auto firstMatch = [&](const std::vector<uint32_t>& rules) -> const CompiledRule* {
    const CompiledRule* first = nullptr;
    for (const uint32_t index : rules) {
      const CompiledRule& rule = snapshot.compiledRule(index);
      if (depth(rule, peer, peerIp, query) == 4) {
        if (rule.enforce) {
          return &rule;
        }
        first = first != nullptr ? first : &rule;
      }
    }
    return first;
  };
  if (const CompiledRule* admin = firstMatch(policy.adminRules)) {
    if (admin->action == RuleAction::Deny) {
      return decidedBy(*admin, Explanation::Mismatch::AdminDeny);
    }
  }
  const bool applicationHasSay = policy.isolated || !policy.denyRules.empty();
  if (!applicationHasSay) {
    if (const CompiledRule* baseline = firstMatch(policy.baselineRules)) {
      if (baseline->action == RuleAction::Deny) {
        return decidedBy(*baseline, Explanation::Mismatch::BaselineDeny);
      }
    }
  }
  // A deny rule that matches decided it (an enforce-mode one before a monitor-mode one), as the
  // verdict does.
  const CompiledRule* denying = nullptr;
  for (const uint32_t index : policy.denyRules) {
    const CompiledRule& rule = snapshot.compiledRule(index);
    if (depth(rule, peer, peerIp, query) == 4 &&
        (denying == nullptr || (rule.enforce && !denying->enforce))) {
      denying = &rule;
    }
  }
  if (denying != nullptr) {
    out.found = std::string(query.host);
    return decidedBy(*denying, Explanation::Mismatch::DenyRule);
  }
  int best = -1;
  const CompiledRule* closest = nullptr;
  for (const uint32_t index : policy.rules) {
    const CompiledRule& rule = snapshot.compiledRule(index);
    const int reached = depth(rule, peer, peerIp, query);
    if (reached > best && reached < 4) {
      best = reached;
      closest = &rule;
    }
  }
  if (closest == nullptr) {
    return out;
  }
  Verdict named;
  named.rule = closest->ref;
  named.generation = snapshot.generation();
  named.decision = Decision::Allow;
  out.closestRule = std::string(snapshot.ruleName(named));
  out.allows = allowsText(*closest, protocolName);
  const std::string flowPort = hasPorts(query.ipProtocol)
                                   ? std::to_string(query.dstPort) + "/" + l4Name(query.ipProtocol)
                                   : l4Name(query.ipProtocol);
  switch (best) {
    case 0:
      out.mismatch = Explanation::Mismatch::Peer;
      break;
    case 1:
      out.mismatch = Explanation::Mismatch::Port;
      out.expected = closest->ports.empty()
                         ? "any port"
                         : joined(closest->ports, [](const auto& p) { return portText(p); });
      out.found = flowPort;
      break;
    case 2:
      out.expected = joined(closest->protocols, [&](uint16_t id) { return protocolName(id); });
      if (query.app) {
        out.mismatch = Explanation::Mismatch::Protocol;
        out.found = appName(*query.app, protocolName);
      } else {
        out.mismatch = Explanation::Mismatch::Unclassified;
        out.found = "not classified yet";
      }
      break;
    default:
      out.mismatch = Explanation::Mismatch::Host;
      out.expected =
          joined(closest->hosts, [](const HostPattern& pattern) { return pattern.text(); });
      out.found = std::string(query.host);
      break;
  }
  return out;
}

}  // namespace bulkhead::rules
