#include "learning/policy_suggestion.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "rules/host_pattern.h"
#include "text/time_text.h"
#include "text/utf8_escape.h"
#include "text/yaml_quote.h"

namespace bulkhead::learning {
namespace {

constexpr uint8_t Icmp = 1;
constexpr uint8_t Tcp = 6;
constexpr uint8_t Udp = 17;
constexpr uint8_t Icmpv6 = 58;

// What a group of flows adds up to, for the comments that say why a rule is there.
struct Evidence {
  uint64_t flows = 0;
  uint64_t allowed = 0;
  uint64_t monitored = 0;
  uint64_t denied = 0;
  uint64_t firstNs = std::numeric_limits<uint64_t>::max();
  uint64_t lastNs = 0;

  void add(const EdgeStats& stats) {
    flows += stats.flows;
    allowed += stats.allowed;
    monitored += stats.monitored;
    denied += stats.denied;
    firstNs = std::min(firstNs, stats.firstSeenNs);
    lastNs = std::max(lastNs, stats.lastSeenNs);
  }

  std::string text() const {
    std::string out = std::to_string(flows) + (flows == 1 ? " flow" : " flows");
    std::vector<std::string> parts;
    if (allowed != 0) {
      parts.push_back(std::to_string(allowed) + " allowed");
    }
    if (monitored != 0) {
      parts.push_back(std::to_string(monitored) + " passed in monitor mode");
    }
    if (denied != 0) {
      parts.push_back(std::to_string(denied) + " dropped");
    }
    if (!parts.empty()) {
      out += " (";
      for (size_t i = 0; i < parts.size(); ++i) {
        out += (i == 0 ? "" : ", ") + parts[i];
      }
      out += ")";
    }
    if (lastNs != 0) {
      const std::string first = text::formatTimeSeconds(firstNs);
      const std::string last = text::formatTimeSeconds(lastNs);
      out += first == last ? ", at " + first : ", " + first + " to " + last;
    }
    return out;
  }
};

// Who a rule names on the other side.
struct PeerSpec {
  enum class Kind : uint8_t { Endpoints, Host, World, Cidr };
  Kind kind = Kind::World;
  rules::Labels selector;  // Endpoints
  std::string address;     // Cidr
  std::string shown;       // for comments

  auto operator<=>(const PeerSpec&) const = default;
};

struct PortSlot {
  uint8_t ipProtocol = 0;
  uint16_t port = 0;

  auto operator<=>(const PortSlot&) const = default;
};

struct ProtocolUse {
  std::set<std::string> hosts;  // world destinations only
  Evidence evidence;
};

struct PeerUse {
  // By port, then by the protocol a rule names ("" where nDPI named none).
  std::map<PortSlot, std::map<std::string, ProtocolUse>> ports;
  Evidence evidence;
};

struct WorkloadRules {
  Workload workload;
  std::map<PeerSpec, PeerUse> ingress;
  std::map<PeerSpec, PeerUse> egress;
  Evidence evidence;
};

// The labels a policy can name: YAML has no way to write bytes that are not UTF-8.
rules::Labels selectable(const rules::Labels& labels) {
  rules::Labels out;
  for (const auto& [key, value] : labels) {
    if (text::isValidUtf8(key) && text::isValidUtf8(value)) {
      out.emplace(key, value);
    }
  }
  return out;
}

// The name a rule's `protocols:` uses for what inspection proved: the master of "HTTP.Google"
// (a rule naming HTTP matches it, and the app part only repeats the Host), "" for Unknown.
std::string ruleProtocol(const std::string& label) {
  if (label.empty() || label == "Unknown") {
    return "";
  }
  const size_t dot = label.find('.');
  return dot == std::string::npos ? label : label.substr(0, dot);
}

std::string quoted(std::string_view value) {
  // Only strings that passed selectable() or came from bulkhead itself get here.
  return text::yamlQuoted(value).value_or("\"\"");
}

std::string comment(std::string_view value) {
  return text::escapeBytes(value, text::Escape::InvalidUtf8AndControls);
}

std::string selectorText(const rules::Labels& labels) {
  std::string out = "{";
  for (const auto& [key, value] : labels) {
    out += (out.size() == 1 ? "" : ", ") + quoted(key) + ": " + quoted(value);
  }
  return out + "}";
}

std::string shownSelector(const rules::Labels& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    out += (out.empty() ? "" : ",") + key + "=" + value;
  }
  return out;
}

// "*.parent" for names under one parent when two or more were seen there.
std::set<std::string> withWildcards(const std::set<std::string>& hosts) {
  std::map<std::string, std::vector<std::string>> byParent;
  for (const auto& host : hosts) {
    const size_t dot = host.find('.');
    // A parent of one label ("com") is a top-level domain: never widened to.
    if (dot != std::string::npos && host.find('.', dot + 1) != std::string::npos) {
      byParent[host.substr(dot + 1)].push_back(host);
    }
  }
  std::set<std::string> out = hosts;
  for (const auto& [parent, names] : byParent) {
    if (names.size() >= 2) {
      for (const auto& name : names) {
        out.erase(name);
      }
      out.insert("*." + parent);
    }
  }
  return out;
}

std::string policyName(const std::string& workload, std::set<std::string>& taken) {
  std::string base;
  for (const char c : workload) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') ||
                    lower == '.' || lower == '-';
    base += ok ? lower : '-';
  }
  while (!base.empty() && (base.front() == '-' || base.front() == '.')) {
    base.erase(base.begin());
  }
  base = base.substr(0, 56);
  while (!base.empty() && (base.back() == '-' || base.back() == '.')) {
    base.pop_back();
  }
  if (base.empty()) {
    base = "workload";
  }
  std::string name = base;
  for (int n = 2; taken.contains(name); ++n) {
    name = base + "-" + std::to_string(n);
  }
  taken.insert(name);
  return name;
}

std::string portText(const PortSlot& slot) {
  switch (slot.ipProtocol) {
    case Tcp:
    case Udp: {
      const std::string l4 = slot.ipProtocol == Tcp ? "TCP" : "UDP";
      return slot.port == 0 ? "{protocol: " + l4 + "}"
                            : "{port: " + std::to_string(slot.port) + ", protocol: " + l4 + "}";
    }
    case Icmp:
      return "{protocol: ICMP}";
    case Icmpv6:
      return "{protocol: ICMPv6}";
    default:
      return slot.port == 0 ? "{protocol: ANY}"
                            : "{port: " + std::to_string(slot.port) + ", protocol: ANY}";
  }
}

void writeRules(std::string& out, const char* direction, const std::map<PeerSpec, PeerUse>& peers,
                const SuggestOptions& options) {
  const bool ingress = std::string_view(direction) == "ingress";
  if (peers.empty()) {
    out += "  " + std::string(direction) + ": []  # nothing was seen " +
           (ingress ? "arriving: all ingress is denied\n" : "leaving: all egress is denied\n");
    return;
  }
  out += "  " + std::string(direction) + ":\n";
  const std::string from = ingress ? "from" : "to";
  for (const auto& [peer, use] : peers) {
    out += "    # " + std::string(ingress ? "from " : "to ") + comment(peer.shown) + ": " +
           use.evidence.text() + "\n";
    switch (peer.kind) {
      case PeerSpec::Kind::Endpoints:
        out += "    - " + from +
               "Endpoints:\n        - matchLabels: " + selectorText(peer.selector) + "\n";
        break;
      case PeerSpec::Kind::Host:
        out += "    - " + from + "Entities: [host]\n";
        break;
      case PeerSpec::Kind::World:
        out += "    - " + from + "Entities: [world]\n";
        break;
      case PeerSpec::Kind::Cidr:
        out += "    - " + from + "CIDR: [" + quoted(peer.address) + "]\n";
        break;
    }
    out += "      toPorts:\n";
    for (const auto& [slot, protocols] : use.ports) {
      const bool hostRules = peer.kind == PeerSpec::Kind::World && !ingress;
      const bool unnamed = protocols.contains("");
      if (slot.ipProtocol != Tcp && slot.ipProtocol != Udp && slot.ipProtocol != Icmp &&
          slot.ipProtocol != Icmpv6) {
        out += "        # IP protocol " + std::to_string(slot.ipProtocol) +
               ": a rule cannot name it, so this allows every protocol" +
               (slot.port != 0 ? " on this port\n" : " to this peer\n");
      }
      if (unnamed && !hostRules) {
        // A rule naming Unknown would hold every such flow's first packets while nDPI tries;
        // the port is all the evidence there is.
        Evidence all;
        std::string alsoSeen;
        for (const auto& [name, protocol] : protocols) {
          all.flows += protocol.evidence.flows;
          all.allowed += protocol.evidence.allowed;
          all.monitored += protocol.evidence.monitored;
          all.denied += protocol.evidence.denied;
          all.firstNs = std::min(all.firstNs, protocol.evidence.firstNs);
          all.lastNs = std::max(all.lastNs, protocol.evidence.lastNs);
          if (!name.empty()) {
            alsoSeen += (alsoSeen.empty() ? "" : ", ") + name;
          }
        }
        out += "        # " + all.text() + "; nDPI named no protocol for " +
               std::to_string(protocols.at("").evidence.flows) + ": allowed by port alone" +
               (alsoSeen.empty() ? "" : " (also seen: " + comment(alsoSeen) + ")") + "\n";
        out += "        - ports: [" + portText(slot) + "]\n";
        continue;
      }
      for (const auto& [name, protocol] : protocols) {
        out += "        # " + protocol.evidence.text() + "\n";
        out += "        - ports: [" + portText(slot) + "]\n";
        std::vector<std::string> l7;
        if (!name.empty()) {
          l7.push_back("protocols: [" + quoted(name) + "]");
        }
        if (hostRules && !protocol.hosts.empty()) {
          std::string hosts;
          for (const auto& host :
               options.hostWildcards ? withWildcards(protocol.hosts) : protocol.hosts) {
            hosts += (hosts.empty() ? "" : ", ") + quoted(host);
          }
          l7.push_back("hosts: [" + hosts + "]");
        }
        if (!l7.empty()) {
          out += "          l7: {" + l7[0] + (l7.size() > 1 ? ", " + l7[1] : "") + "}\n";
        }
      }
    }
  }
}

}  // namespace

Suggestion suggestPolicies(const std::vector<ObservedEdge>& edges, const SuggestOptions& options) {
  Suggestion suggestion;
  // nullopt for an endpoint no selector can name (none of its labels is UTF-8): an empty
  // selector would name every endpoint instead.
  const auto workloadOfPeer = [&](const EdgePeer& peer) -> std::optional<Workload> {
    if (peer.kind != EdgePeer::Kind::Endpoint) {
      return std::nullopt;
    }
    Workload workload = workloadOf(selectable(peer.labels), options.groupLabels);
    if (workload.selector.empty()) {
      return std::nullopt;
    }
    return workload;
  };
  // Which workloads get a policy: every one seen, or those of the named endpoint.
  std::set<rules::Labels> wanted;
  if (!options.endpoint.empty()) {
    for (const auto& edge : edges) {
      for (const EdgePeer* peer : {&edge.key.src, &edge.key.dst}) {
        const auto name = peer->labels.find(rules::reserved_labels::Name);
        if (name != peer->labels.end() && name->second == options.endpoint) {
          if (const auto workload = workloadOfPeer(*peer)) {
            wanted.insert(workload->selector);
          }
        }
      }
    }
    suggestion.endpointFound = !wanted.empty();
  }
  const auto isWanted = [&](const Workload& workload) {
    return options.endpoint.empty() || wanted.contains(workload.selector);
  };

  std::map<rules::Labels, WorkloadRules> workloads;
  const auto rulesOf = [&](const Workload& workload) -> WorkloadRules& {
    WorkloadRules& rules = workloads[workload.selector];
    rules.workload = workload;
    return rules;
  };
  for (const auto& edge : edges) {
    const EdgeKey& key = edge.key;
    const bool srcEndpoint = key.src.kind == EdgePeer::Kind::Endpoint;
    const bool dstEndpoint = key.dst.kind == EdgePeer::Kind::Endpoint;
    if (!srcEndpoint && !dstEndpoint) {
      continue;
    }
    const std::optional<Workload> source = workloadOfPeer(key.src);
    const std::optional<Workload> destination = workloadOfPeer(key.dst);
    std::string why;
    const bool nameable = key.host.empty() || rules::HostPattern::validate(key.host, &why);
    // A world destination is allowed by its name, else by its address; without either, not.
    const std::string& worldAddress = key.host.empty() ? key.dst.address : edge.stats.dstAddress;
    const bool worldNamed = key.dst.kind != EdgePeer::Kind::World ||
                            (!key.host.empty() && nameable) || !worldAddress.empty();
    const bool egress = source && isWanted(*source) && (!dstEndpoint || destination) && worldNamed;
    const bool ingress = destination && isWanted(*destination) && (!srcEndpoint || source);
    // Every workload seen has its policy, whether or not this edge counts.
    if (source && isWanted(*source)) {
      rulesOf(*source);
    }
    if (destination && isWanted(*destination)) {
      rulesOf(*destination);
    }
    const bool refused =
        edge.stats.allowed == 0 && edge.stats.monitored == 0 && edge.stats.denied != 0;
    if ((refused && !options.includeDenied) || (!egress && !ingress)) {
      if ((source && isWanted(*source)) || (destination && isWanted(*destination))) {
        suggestion.leftOut.push_back(edge);
      }
      continue;
    }
    const PortSlot slot{key.ipProtocol, key.port};
    const std::string protocol = ruleProtocol(key.protocol);
    bool used = false;
    // The other side of a rule, as one names an endpoint's workload or the host.
    const auto named = [](const EdgePeer& side, const std::optional<Workload>& workload) {
      PeerSpec peer;
      if (side.kind == EdgePeer::Kind::Endpoint) {
        peer.kind = PeerSpec::Kind::Endpoints;
        peer.selector = workload->selector;
        peer.shown = workload->name + " (" + shownSelector(peer.selector) + ")";
      } else {
        peer.kind = PeerSpec::Kind::Host;
        peer.shown = "the host";
      }
      return peer;
    };
    if (egress) {
      PeerSpec peer;
      if (key.dst.kind != EdgePeer::Kind::World) {
        peer = named(key.dst, destination);
      } else if (!key.host.empty() && !nameable) {
        // A name no host pattern can spell (a client writes its own SNI): only the address it
        // went to can be allowed.
        peer.kind = PeerSpec::Kind::Cidr;
        peer.address = edge.stats.dstAddress;
        peer.shown = edge.stats.dstAddress + " (its host name cannot be written as a rule)";
      } else if (key.host.empty()) {
        peer.kind = PeerSpec::Kind::Cidr;
        peer.address = key.dst.address;
        peer.shown = key.dst.address + " (no host name was seen)";
      } else {
        peer.kind = PeerSpec::Kind::World;
        peer.shown = "world";
      }
      WorkloadRules& rules = rulesOf(*source);
      PeerUse& use = rules.egress[peer];
      ProtocolUse& protocolUse = use.ports[slot][protocol];
      if (peer.kind == PeerSpec::Kind::World && !key.host.empty()) {
        protocolUse.hosts.insert(key.host);
      }
      protocolUse.evidence.add(edge.stats);
      use.evidence.add(edge.stats);
      rules.evidence.add(edge.stats);
      used = true;
    }
    if (ingress) {
      PeerSpec peer;
      if (key.src.kind != EdgePeer::Kind::World) {
        peer = named(key.src, source);
      } else {
        peer.kind = PeerSpec::Kind::World;
        peer.shown = "world";
      }
      WorkloadRules& rules = rulesOf(*destination);
      PeerUse& use = rules.ingress[peer];
      use.ports[slot][protocol].evidence.add(edge.stats);
      use.evidence.add(edge.stats);
      if (!egress || source->selector != destination->selector) {
        rules.evidence.add(edge.stats);  // a workload talking to itself is counted once
      }
      used = true;
    }
    if (used) {
      suggestion.allowed.push_back(edge);
    }
  }

  std::vector<const WorkloadRules*> ordered;
  for (const auto& [selector, rules] : workloads) {
    ordered.push_back(&rules);
  }
  std::sort(ordered.begin(), ordered.end(), [](const WorkloadRules* a, const WorkloadRules* b) {
    return std::tie(a->workload.name, a->workload.selector) <
           std::tie(b->workload.name, b->workload.selector);
  });
  std::set<std::string> taken;
  for (const WorkloadRules* rules : ordered) {
    SuggestedPolicy policy;
    policy.workload = rules->workload;
    policy.name = policyName(rules->workload.name, taken);
    const std::string selector = shownSelector(rules->workload.selector);
    std::string& out = policy.yaml;
    out += "# Suggested by `bulkhead policy suggest` for " + comment(selector) + " from " +
           rules->evidence.text() + ".\n";
    out += "# It allows what those flows needed and denies the rest: review it before applying.\n";
    out +=
        "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata:\n  name: " + policy.name +
        "\nspec:\n";
    out +=
        "  description: " +
        quoted("learned from " + std::to_string(rules->evidence.flows) +
               (rules->evidence.flows == 1 ? " flow" : " flows") + " of " + selector) +
        "\n";
    out += std::string("  mode: ") +
           (options.mode == rules::Mode::Monitor ? "monitor" : "enforce") + "\n";
    out += "  endpointSelector:\n    matchLabels: " + selectorText(rules->workload.selector) + "\n";
    writeRules(out, "ingress", rules->ingress, options);
    writeRules(out, "egress", rules->egress, options);
    suggestion.policies.push_back(std::move(policy));
  }
  return suggestion;
}

std::string suggestionYaml(const Suggestion& suggestion) {
  std::string out;
  for (const auto& policy : suggestion.policies) {
    out += (out.empty() ? "" : "---\n") + policy.yaml;
  }
  return out;
}

}  // namespace bulkhead::learning
