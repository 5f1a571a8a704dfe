#include "rules/policy_loader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "rules/admin_network_policy.h"
#include "rules/cilium_network_policy.h"
#include "rules/host_pattern.h"
#include "rules/network_policy.h"
#include "rules/selector_reader.h"
#include "rules/suggest.h"
#include "rules/yaml_reader.h"

namespace bulkhead::rules {
namespace {

namespace fs = std::filesystem;

// Parses one file's documents; errors accumulate so the operator sees all of them at once.
class DocumentParser : private YamlReader {
 public:
  DocumentParser(std::string file, const ProtocolCatalog& catalog, Diagnostics& errors,
                 Diagnostics& warnings)
      : YamlReader(std::move(file), errors), catalog_(catalog), warnings_(warnings) {}
  using YamlReader::setLineOffset;

  std::optional<Policy> parseDocument(const YAML::Node& document) {
    const size_t errorsBefore = errorCount();
    if (!expectMap(document, "a policy document")) {
      return std::nullopt;
    }
    Policy policy;
    policy.where = at(document);
    const auto scalarOf = [&](const char* key) {
      const YAML::Node value = document[key];
      return value && value.IsScalar() ? value.Scalar() : std::string();
    };
    const bool kubernetes =
        scalarOf("apiVersion") == NetworkPolicyApiVersion && scalarOf("kind") == NetworkPolicyKind;
    const bool cilium =
        scalarOf("apiVersion") == CiliumApiVersion && scalarOf("kind") == CiliumNetworkPolicyKind;
    const bool admin = scalarOf("apiVersion") == AdminNetworkPolicyApiVersion &&
                       (scalarOf("kind") == AdminNetworkPolicyKind ||
                        scalarOf("kind") == BaselineAdminNetworkPolicyKind);
    if (kubernetes || cilium || admin) {
      if (kubernetes) {
        readNetworkPolicy(*this, document, policy);
      } else if (cilium) {
        readCiliumNetworkPolicy(*this, document, catalog_, policy);
      } else {
        readAdminNetworkPolicy(*this, document, scalarOf("kind") == BaselineAdminNetworkPolicyKind,
                               policy);
      }
      if (errorCount() != errorsBefore) {
        return std::nullopt;
      }
      return policy;
    }
    const Fields top = fields(document, {"apiVersion", "kind", "metadata", "spec"}, "a document");
    if (const auto* apiVersion = require(top, "apiVersion", document)) {
      const auto text = scalar(apiVersion->value, "apiVersion");
      if (text && *text != PolicyApiVersion) {
        error(apiVersion->value, "unsupported apiVersion " + quote(*text) +
                                     " (supported: " + std::string(PolicyApiVersion) + ", " +
                                     std::string(NetworkPolicyApiVersion) + ", " +
                                     std::string(CiliumApiVersion) + ", " +
                                     std::string(AdminNetworkPolicyApiVersion) + ")");
      }
    }
    if (const auto* kind = require(top, "kind", document)) {
      const auto text = scalar(kind->value, "kind");
      if (text && *text != PolicyKind) {
        error(kind->value,
              "unsupported kind " + quote(*text) + " (supported: " + std::string(PolicyKind) +
                  " of " + std::string(PolicyApiVersion) + ", " + std::string(NetworkPolicyKind) +
                  " of " + std::string(NetworkPolicyApiVersion) + ", " +
                  std::string(CiliumNetworkPolicyKind) + " of " + std::string(CiliumApiVersion) +
                  ", " + std::string(AdminNetworkPolicyKind) + " and " +
                  std::string(BaselineAdminNetworkPolicyKind) + " of " +
                  std::string(AdminNetworkPolicyApiVersion) + ")");
        // A document of another kind altogether has other fields: what it lacks or adds against
        // bulkhead's kind would only be noise. A misspelt kind is still checked through.
        if (!nearest(*text, {std::string(PolicyKind)})) {
          return std::nullopt;
        }
      }
    }
    if (const auto* metadata = require(top, "metadata", document)) {
      parseMetadata(metadata->value, policy);
    }
    if (const auto* spec = require(top, "spec", document)) {
      parseSpec(spec->value, policy);
    }
    if (errorCount() != errorsBefore) {
      return std::nullopt;
    }
    return policy;
  }

  void parseMetadata(const YAML::Node& node, Policy& policy) {
    if (!expectMap(node, "metadata")) {
      return;
    }
    const Fields meta = fields(node, {"name", "labels", "annotations"}, "metadata");
    if (const auto* name = require(meta, "name", node)) {
      if (const auto text = scalar(name->value, "name")) {
        if (!validPolicyName(*text)) {
          error(name->value, "policy name " + quote(*text) +
                                 " must be lower-case letters, digits, '-' or '.', start and end "
                                 "with a letter or digit, at most 253 characters");
        }
        policy.name = *text;
        policy.nameWhere = at(name->value);
      }
    }
    for (const char* key : {"labels", "annotations"}) {
      if (const auto* map = optional(meta, key)) {
        labels(map->value, key);
      }
    }
  }

  void parseSpec(const YAML::Node& node, Policy& policy) {
    if (!expectMap(node, "spec")) {
      return;
    }
    const Fields spec =
        fields(node,
               {"description", "mode", "tier", "priority", "denyAction", "endpointSelector",
                "ingress", "egress", "ingressDeny", "egressDeny", "enableDefaultDeny"},
               "spec");
    parseTier(spec, policy);
    if (const auto* description = optional(spec, "description")) {
      scalar(description->value, "description");
    }
    if (const auto* mode = optional(spec, "mode")) {
      if (const auto text = scalar(mode->value, "mode")) {
        if (*text == "enforce") {
          policy.mode = Mode::Enforce;
        } else if (*text == "monitor") {
          policy.mode = Mode::Monitor;
        } else {
          error(mode->value, "mode must be 'enforce' or 'monitor', got " + quote(*text));
        }
      }
    }
    if (const auto* action = optional(spec, "denyAction")) {
      if (const auto text = scalar(action->value, "denyAction")) {
        if (*text == "drop") {
          policy.denyAction = DenyAction::Drop;
        } else if (*text == "reject") {
          policy.denyAction = DenyAction::Reject;
        } else {
          error(action->value, "denyAction must be 'drop' or 'reject', got " + quote(*text));
        }
      }
    }
    if (const auto* selector = require(spec, "endpointSelector", node)) {
      policy.endpointSelector = readSelector(*this, selector->value, "endpointSelector");
    }
    if (const auto* ingress = optional(spec, "ingress")) {
      policy.ingress = parseRules(ingress->value, Direction::Ingress);
    }
    if (const auto* egress = optional(spec, "egress")) {
      policy.egress = parseRules(egress->value, Direction::Egress);
    }
    if (const auto* deny = optional(spec, "ingressDeny")) {
      policy.ingressDeny = parseRules(deny->value, Direction::Ingress, "ingressDeny");
    }
    if (const auto* deny = optional(spec, "egressDeny")) {
      policy.egressDeny = parseRules(deny->value, Direction::Egress, "egressDeny");
    }
    if (const auto* defaults = optional(spec, "enableDefaultDeny")) {
      if (expectMap(defaults->value, "enableDefaultDeny")) {
        const Fields directions =
            fields(defaults->value, {"ingress", "egress"}, "enableDefaultDeny");
        for (const auto& [key, into] :
             {std::pair<const char*, std::optional<bool>*>{"ingress", &policy.defaultDenyIngress},
              {"egress", &policy.defaultDenyEgress}}) {
          if (const auto* field = optional(directions, key)) {
            const auto text = scalar(field->value, key);
            if (text == "true" || text == "false") {
              *into = *text == "true";
            } else if (text) {
              error(field->value, "enableDefaultDeny." + std::string(key) +
                                      " must be true or false, got " + quote(*text));
            }
          }
        }
      }
    }
    if (policy.tier != Tier::Application) {
      // A tier rule's action says what it does: deny rules and default-deny are the
      // application tier's.
      for (const char* key : {"ingressDeny", "egressDeny", "enableDefaultDeny"}) {
        if (const auto* field = optional(spec, key)) {
          error(field->key, std::string(key) + " is for application policies: in the " +
                                toString(policy.tier) + " tier, give a rule action: deny");
        }
      }
      if (!optional(spec, "ingress") && !optional(spec, "egress")) {
        error(node, std::string("spec needs 'ingress' or 'egress' rules: a policy of the ") +
                        toString(policy.tier) + " tier without rules does nothing");
      }
      return;
    }
    if (!optional(spec, "ingress") && !optional(spec, "egress") && !optional(spec, "ingressDeny") &&
        !optional(spec, "egressDeny")) {
      error(node,
            "spec needs 'ingress' or 'egress' (an empty list denies all traffic in that "
            "direction), or 'ingressDeny' or 'egressDeny'");
    }
  }

  // tier: application (default), admin (with priority 0-1000) or baseline.
  void parseTier(const Fields& spec, Policy& policy) {
    if (const auto* tier = optional(spec, "tier")) {
      if (const auto text = scalar(tier->value, "tier")) {
        if (*text == "admin") {
          policy.tier = Tier::Admin;
        } else if (*text == "baseline") {
          policy.tier = Tier::Baseline;
        } else if (*text != "application") {
          error(tier->value,
                "tier must be 'admin', 'application' or 'baseline', got " + quote(*text));
        }
      }
    }
    tier_ = policy.tier;
    const auto* priority = optional(spec, "priority");
    if (policy.tier != Tier::Admin) {
      if (priority != nullptr) {
        error(priority->key, "priority orders admin-tier policies: add tier: admin, or drop it");
      }
      return;
    }
    if (priority == nullptr) {
      error(optional(spec, "tier")->key,
            "an admin-tier policy needs a priority, 0 (asked first) to " +
                std::to_string(MaxAdminPriority));
      return;
    }
    if (const auto text = scalar(priority->value, "priority")) {
      const auto value = number(*text);
      if (!value || *value > MaxAdminPriority) {
        error(priority->value, "priority must be a number 0-" + std::to_string(MaxAdminPriority) +
                                   ", got " + quote(*text));
      } else {
        policy.priority = *value;
      }
    }
  }

  // A tier rule's action and name.
  void parseAction(const Fields& parts, const YAML::Node& node, PeerRule& rule) {
    const auto* action = optional(parts, "action");
    if (tier_ == Tier::Application) {
      if (action != nullptr) {
        error(action->key,
              "action is for admin and baseline tiers' rules; an application policy denies "
              "with ingressDeny/egressDeny");
      }
      return;
    }
    if (const auto* name = optional(parts, "name")) {
      if (const auto text = scalar(name->value, "name")) {
        if (text->size() > 100) {
          error(name->value, "a rule name is at most 100 characters");
        }
        rule.name = *text;
      }
    }
    if (action == nullptr) {
      error(node, std::string("a rule of the ") + toString(tier_) +
                      " tier needs an action: allow, deny" +
                      (tier_ == Tier::Admin ? " or pass" : ""));
      return;
    }
    if (const auto text = scalar(action->value, "action")) {
      if (*text == "allow") {
        rule.action = RuleAction::Allow;
      } else if (*text == "deny") {
        rule.action = RuleAction::Deny;
      } else if (*text == "pass" && tier_ == Tier::Admin) {
        rule.action = RuleAction::Pass;
      } else if (*text == "pass") {
        error(action->value, "pass hands a flow down to the baseline tier: there is none below it");
      } else {
        error(action->value, "action must be allow, deny" +
                                 std::string(tier_ == Tier::Admin ? " or pass" : "") + ", got " +
                                 quote(*text));
      }
    }
  }

  std::vector<PeerRule> parseRules(const YAML::Node& node, Direction direction,
                                   const char* key = nullptr) {
    std::vector<PeerRule> rules;
    const std::string what = key != nullptr                    ? key
                             : direction == Direction::Ingress ? "ingress"
                                                               : "egress";
    if (node.IsNull()) {
      return rules;  // "ingress:" with nothing: default-deny, same as an empty list
    }
    if (!expectList(node, what)) {
      return rules;
    }
    for (const auto& entry : node) {
      rules.push_back(parsePeerRule(entry, direction));
    }
    return rules;
  }

  PeerRule parsePeerRule(const YAML::Node& node, Direction direction) {
    PeerRule rule;
    rule.where = at(node);
    const bool in = direction == Direction::Ingress;
    const std::string endpointsKey = in ? "fromEndpoints" : "toEndpoints";
    const std::string entitiesKey = in ? "fromEntities" : "toEntities";
    const std::string cidrKey = in ? "fromCIDR" : "toCIDR";
    const std::string cidrSetKey = in ? "fromCIDRSet" : "toCIDRSet";
    const std::string context = in ? "an ingress rule" : "an egress rule";
    if (!expectMap(node, context)) {
      return rule;
    }
    std::vector<std::string_view> keys = {endpointsKey, entitiesKey, cidrKey, cidrSetKey,
                                          "toPorts"};
    // An action in an application policy gets its own error, not "unknown key".
    keys.insert(keys.begin(), "action");
    if (tier_ != Tier::Application) {
      keys.insert(keys.begin(), "name");
    }
    const Fields parts = fields(node, keys, context);
    parseAction(parts, node, rule);
    if (const auto* endpoints = optional(parts, endpointsKey)) {
      if (expectList(endpoints->value, endpointsKey)) {
        for (const auto& selector : endpoints->value) {
          rule.endpoints.push_back(readSelector(*this, selector, endpointsKey + " entry"));
        }
        if (endpoints->value.size() == 0) {
          error(endpoints->value,
                quote(endpointsKey) + " is empty: list selectors, or use [{}] for all endpoints");
        }
      }
    }
    if (const auto* entities = optional(parts, entitiesKey)) {
      if (expectList(entities->value, entitiesKey)) {
        for (const auto& entity : entities->value) {
          if (const auto parsed = parseEntity(entity)) {
            rule.entities.push_back(*parsed);
          }
        }
        if (entities->value.size() == 0) {
          error(entities->value,
                quote(entitiesKey) + " is empty: list entities (world, host, all)");
        }
      }
    }
    if (const auto* cidrs = optional(parts, cidrKey)) {
      if (expectList(cidrs->value, cidrKey)) {
        for (const auto& cidr : cidrs->value) {
          if (const auto text = scalar(cidr, cidrKey + " entry")) {
            std::string reason;
            if (const auto parsed = Cidr::parse(*text, &reason)) {
              rule.cidrs.push_back({*parsed, {}});
            } else {
              error(cidr, reason);
            }
          }
        }
        if (cidrs->value.size() == 0) {
          error(cidrs->value, quote(cidrKey) +
                                  " is empty: list prefixes, or use 0.0.0.0/0 and ::/0 for every "
                                  "address");
        }
      }
    }
    if (const auto* sets = optional(parts, cidrSetKey)) {
      if (expectList(sets->value, cidrSetKey)) {
        for (const auto& entry : sets->value) {
          if (auto set = readCidrSet(*this, entry, cidrSetKey)) {
            rule.cidrs.push_back(std::move(*set));
          }
        }
        if (sets->value.size() == 0) {
          error(sets->value, quote(cidrSetKey) + " is empty: list {cidr: ..., except: [...]}");
        }
      }
    }
    if (const auto* ports = optional(parts, "toPorts")) {
      if (expectList(ports->value, "toPorts")) {
        for (const auto& portRule : ports->value) {
          rule.toPorts.push_back(parsePortRule(portRule));
        }
      }
    }
    // In the admin and baseline tiers a CIDR matches every address, a container's too, as
    // AdminNetworkPolicy's networks do.
    rule.cidrsMatchEndpoints = tier_ != Tier::Application && !rule.cidrs.empty();
    return rule;
  }

  std::optional<Entity> parseEntity(const YAML::Node& node) {
    const auto text = scalar(node, "entity");
    if (!text) {
      return std::nullopt;
    }
    if (*text == "world") {
      return Entity::World;
    }
    if (*text == "host") {
      return Entity::Host;
    }
    if (*text == "all") {
      return Entity::All;
    }
    std::string message = "unknown entity " + quote(*text);
    if (const auto hint = nearest(*text, {"world", "host", "all"})) {
      message += " (did you mean " + quote(*hint) + "?)";
    } else {
      message += " (valid: world, host, all)";
    }
    error(node, std::move(message));
    return std::nullopt;
  }

  PortRule parsePortRule(const YAML::Node& node) {
    PortRule rule;
    rule.where = at(node);
    if (!expectMap(node, "a toPorts entry")) {
      return rule;
    }
    const Fields parts = fields(node, {"ports", "l7"}, "a toPorts entry");
    if (const auto* ports = optional(parts, "ports")) {
      if (expectList(ports->value, "ports")) {
        for (const auto& port : ports->value) {
          if (auto parsed = parsePort(port)) {
            rule.ports.push_back(*parsed);
          }
        }
      }
    }
    if (const auto* l7 = optional(parts, "l7"); l7 != nullptr && tier_ != Tier::Application) {
      error(l7->key, std::string("the ") + toString(tier_) +
                         " tier matches addresses and ports, not protocols: judge l7 in an "
                         "application policy (ingressDeny/egressDeny for a guardrail)");
    } else if (l7 != nullptr) {
      rule.l7 = parseL7(l7->value, transports(rule.ports));
      for (const auto& port : rule.ports) {
        if (port.protocol == L4Protocol::ICMP || port.protocol == L4Protocol::ICMPv6) {
          error(l7->key, "l7 rules do not apply to ICMP ports");
          break;
        }
      }
    }
    if (!optional(parts, "ports") && !optional(parts, "l7")) {
      error(node, "a toPorts entry needs 'ports' or 'l7'");
    }
    return rule;
  }

  std::optional<uint32_t> number(std::string_view text) {
    uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
      return std::nullopt;
    }
    return value;
  }

  std::optional<PortProtocol> parsePort(const YAML::Node& node) {
    if (!expectMap(node, "a ports entry")) {
      return std::nullopt;
    }
    const Fields parts = fields(node, {"port", "endPort", "protocol"}, "a ports entry");
    PortProtocol port;
    port.where = at(node);
    bool ok = true;
    bool hasPort = false;
    bool hasName = false;
    if (const auto* field = optional(parts, "port")) {
      const auto text = scalar(field->value, "port");
      if (!text) {
        ok = false;
      } else {
        const size_t dash = text->find('-');
        const auto first = number(std::string_view(*text).substr(0, dash));
        const auto last =
            dash == std::string::npos ? first : number(std::string_view(*text).substr(dash + 1));
        if (!first && dash == std::string::npos && validPortName(*text)) {
          port.name = *text;  // a named port: the destination's port.bulkhead.io/<name> label
          hasName = true;
        } else if (!first || !last || *first > 65535 || *last > 65535) {
          error(field->value,
                "port " + quote(*text) + " must be a number 0-65535 or a range like '8000-8100'" +
                    (!text->empty() && std::isdigit(static_cast<unsigned char>(text->front()))
                         ? ""
                         : ", or a port name (at most 15 lower-case letters, digits and '-')"));
          ok = false;
        } else if (*last < *first) {
          error(field->value, "port range " + quote(*text) + " ends before it starts");
          ok = false;
        } else if (*first == 0 && dash == std::string::npos) {
          port.first = 0;
          port.last = 65535;  // Cilium and Kubernetes: port 0 means any port
        } else {
          port.first = static_cast<uint16_t>(*first);
          port.last = static_cast<uint16_t>(*last);
          hasPort = true;
        }
      }
    }
    if (const auto* field = optional(parts, "endPort")) {
      const auto text = scalar(field->value, "endPort");
      const uint32_t last = text ? number(*text).value_or(UINT32_MAX) : UINT32_MAX;
      if (hasName) {
        error(field->key,
              "'endPort' extends a port number, not the named port " + quote(port.name));
        ok = false;
      } else if (!hasPort) {
        error(field->key, "'endPort' needs a single 'port' to start the range");
        ok = false;
      } else if (last > 65535) {
        error(field->value, "endPort must be a number 0-65535");
        ok = false;
      } else if (port.first != port.last) {
        error(field->key, "'endPort' cannot extend a port that is already a range");
        ok = false;
      } else if (last < port.first) {
        error(field->value,
              "endPort " + std::to_string(last) + " is below port " + std::to_string(port.first));
        ok = false;
      } else {
        port.last = static_cast<uint16_t>(last);
      }
    }
    if (const auto* field = optional(parts, "protocol")) {
      if (const auto text = scalar(field->value, "protocol")) {
        const std::string name = lowerCase(*text);
        if (name == "tcp") {
          port.protocol = L4Protocol::TCP;
        } else if (name == "udp") {
          port.protocol = L4Protocol::UDP;
        } else if (name == "icmp") {
          port.protocol = L4Protocol::ICMP;
        } else if (name == "icmpv6") {
          port.protocol = L4Protocol::ICMPv6;
        } else if (name == "sctp") {
          port.protocol = L4Protocol::SCTP;
        } else if (name == "any") {
          port.protocol = L4Protocol::Any;
        } else {
          std::string message = "unknown L4 protocol " + quote(*text);
          if (catalog_.find(*text).value_or(0) != 0) {
            // The commonest slip: the application protocol where the transport goes.
            message += ": " + quote(*text) +
                       " is an application protocol; name it in l7.protocols (as in l7: "
                       "{protocols: [" +
                       *text + "]}) and give TCP or UDP here";
          } else if (const auto hint =
                         nearest(*text, {"TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "ANY"})) {
            message += " (did you mean " + quote(*hint) + "?)";
          } else {
            message += " (valid: TCP, UDP, SCTP, ICMP, ICMPv6, ANY)";
          }
          error(field->value, std::move(message));
          ok = false;
        }
        if ((port.protocol == L4Protocol::ICMP || port.protocol == L4Protocol::ICMPv6) && hasPort) {
          error(field->value, "ICMP has no ports: drop 'port' or use TCP/UDP");
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    return ok ? std::optional(port) : std::nullopt;
  }

  // The IANA transports a rule's ports cover: TCP, UDP, SCTP, or all (0 stands for any).
  static std::vector<uint8_t> transports(const std::vector<PortProtocol>& ports) {
    std::vector<uint8_t> out;
    for (const auto& port : ports) {
      if (port.protocol == L4Protocol::Any) {
        return {0};
      }
      out.push_back(static_cast<uint8_t>(port.protocol));
    }
    return out.empty() ? std::vector<uint8_t>{0} : out;
  }

  // A protocol nDPI names by port, or decides by port or address, cannot be what a rule means:
  // the policy never judges a flow as it (docs/policy.md, "What a protocol rule matches").
  void checkStanding(const YAML::Node& node, const std::string& name, uint16_t id,
                     const std::vector<uint8_t>& transports) {
    std::vector<std::pair<uint8_t, ProtocolStanding>> standings;
    for (uint8_t transport : transports) {
      if (transport == 0) {
        standings.emplace_back(6, catalog_.standing(id, 6));
        standings.emplace_back(17, catalog_.standing(id, 17));
      } else {
        standings.emplace_back(transport, catalog_.standing(id, transport));
      }
    }
    const auto weak = [](const ProtocolStanding& standing) {
      return standing.kind != ProtocolStanding::Kind::Inspected;
    };
    const size_t weakCount = static_cast<size_t>(std::count_if(
        standings.begin(), standings.end(), [&](const auto& s) { return weak(s.second); }));
    if (weakCount == 0) {
      if (!standings.front().second.limits.empty()) {
        warnings_.push_back({at(node), name +
                                           " sessions that nDPI 4.2 cannot classify pass while "
                                           "it tries and are then denied: " +
                                           standings.front().second.limits});
      }
      if (id != 0 && !standings.front().second.proven) {
        warnings_.push_back(
            {at(node), "no real " + name +
                           " session has been seen classified by nDPI 4.2 in "
                           "bulkhead's tests: check that yours are (bulkhead "
                           "simulate on a capture, or monitor mode) before "
                           "enforcing; `bulkhead protocols` lists the proven ones"});
      }
      return;
    }
    const auto& [transport, standing] = *std::find_if(
        standings.begin(), standings.end(), [&](const auto& s) { return weak(s.second); });
    const std::string over = transport == 6 ? "TCP" : "UDP";
    const std::string other = transport == 6 ? "UDP" : "TCP";
    if (standing.kind == ProtocolStanding::Kind::NamedByPort) {
      error(node, quote(name) + " is nDPI's name for " + standing.how +
                      ": the port picks the name, the bytes prove " + standing.provenAs +
                      "; write " + quote(standing.provenAs) + " with that port");
      return;
    }
    std::string what = "nDPI 4.2 decides " + quote(name) + " by " + standing.how;
    if (weakCount < standings.size()) {
      warnings_.push_back({at(node), what + " over " + over + ": this rule matches " + name +
                                         " over " + other + " only"});
      return;
    }
    if (standing.namedByHost) {
      warnings_.push_back({at(node), what + ": this rule matches " + name +
                                         " only where nDPI read it from a host name (TLS SNI, "
                                         "HTTP Host, DNS query), as in TLS." +
                                         name});
      return;
    }
    error(node, what + ": a client picks that, so no flow is ever judged as " + name +
                    "; allow the port without 'l7' instead");
  }

  L7Rule parseL7(const YAML::Node& node, const std::vector<uint8_t>& overTransports) {
    L7Rule rule;
    rule.where = at(node);
    if (!expectMap(node, "l7")) {
      return rule;
    }
    const Fields parts = fields(node, {"protocols", "hosts"}, "l7");
    if (const auto* protocols = optional(parts, "protocols")) {
      if (expectList(protocols->value, "protocols")) {
        if (protocols->value.size() == 0) {
          error(protocols->value,
                "'protocols' is empty: list at least one protocol, or leave the key out");
        }
        for (const auto& protocol : protocols->value) {
          const auto text = scalar(protocol, "protocols entry");
          if (!text) {
            continue;
          }
          if (const auto id = catalog_.find(*text)) {
            rule.protocols.push_back(*text);
            checkStanding(protocol, catalog_.name(*id), *id, overTransports);
            continue;
          }
          std::string message = "unknown application protocol " + quote(*text);
          if (const auto hint = nearest(*text, catalog_.names())) {
            message += " (did you mean " + quote(*hint) + "?)";
          }
          error(protocol, std::move(message));
        }
      }
    }
    if (const auto* hosts = optional(parts, "hosts")) {
      if (expectList(hosts->value, "hosts")) {
        if (hosts->value.size() == 0) {
          error(hosts->value,
                "'hosts' is empty: list at least one host name, or leave the key out");
        }
        for (const auto& host : hosts->value) {
          const auto text = scalar(host, "hosts entry");
          std::string reason;
          if (!text) {
            continue;
          }
          if (HostPattern::validate(*text, &reason)) {
            rule.hosts.push_back(*text);
          } else {
            error(host, reason);
          }
        }
      }
    }
    if (!optional(parts, "protocols") && !optional(parts, "hosts")) {
      error(node, "l7 needs 'protocols' or 'hosts'");
    }
    return rule;
  }

  const ProtocolCatalog& catalog_;
  Tier tier_ = Tier::Application;  // of the document being read
  Diagnostics& warnings_;
};

struct NameRegistry {
  std::map<std::string, SourceLocation> seen;

  void add(const Policy& policy, Diagnostics& errors) {
    const auto [found, inserted] = seen.emplace(policy.name, policy.nameWhere);
    if (!inserted) {
      const SourceLocation& first = found->second;
      errors.push_back({policy.nameWhere, "duplicate policy name " + quote(policy.name) +
                                              " (first defined at " + first.file + ":" +
                                              std::to_string(first.line) + ":" +
                                              std::to_string(first.column) + ")"});
    }
  }
};

void loadText(std::string_view text, const std::string& fileName, const ProtocolCatalog& catalog,
              NameRegistry& names, PolicyLoadResult& result) {
  const size_t firstError = result.errors.size();
  const size_t firstWarning = result.warnings.size();
  const std::vector<YamlDocument> documents =
      parseYamlDocuments(std::string(text), fileName, result.errors);
  DocumentParser parser(fileName, catalog, result.errors, result.warnings);
  for (const auto& document : documents) {
    parser.setLineOffset(document.lineOffset);
    if (auto policy = parser.parseDocument(document.node)) {
      names.add(*policy, result.errors);
      result.set.policies.push_back(std::move(*policy));
    }
  }
  sortByLocation(result.errors, firstError);
  sortByLocation(result.warnings, firstWarning);
  result.set.sources.push_back(fileName);
}

void loadFile(const std::string& path, const ProtocolCatalog& catalog, NameRegistry& names,
              PolicyLoadResult& result) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    result.errors.push_back({{path, 0, 0}, "cannot read file"});
    result.ioFailure = true;
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  loadText(text.str(), path, catalog, names, result);
}

}  // namespace

std::vector<std::string> policyFilesIn(const std::string& directory, std::error_code& ec) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const auto extension = entry.path().extension();
    if (entry.is_regular_file() && (extension == ".yaml" || extension == ".yml")) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

PolicyLoadResult loadPolicies(const std::vector<std::string>& paths,
                              const ProtocolCatalog& catalog) {
  return loadPolicies(paths, {}, catalog);
}

PolicyLoadResult loadPolicies(const std::vector<std::string>& paths,
                              const std::vector<PolicyText>& texts,
                              const ProtocolCatalog& catalog) {
  PolicyLoadResult result;
  NameRegistry names;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      const std::vector<std::string> files = policyFilesIn(path, ec);
      if (ec) {
        result.errors.push_back({{path, 0, 0}, "cannot list directory: " + ec.message()});
        result.ioFailure = true;
        continue;
      }
      if (files.empty()) {
        result.errors.push_back({{path, 0, 0}, "directory has no *.yaml or *.yml files"});
      }
      for (const auto& file : files) {
        loadFile(file, catalog, names, result);
      }
    } else if (fs::exists(path, ec)) {
      loadFile(path, catalog, names, result);
    } else {
      result.errors.push_back({{path, 0, 0}, "no such file or directory"});
      result.ioFailure = true;
    }
  }
  for (const auto& text : texts) {
    loadText(text.text, text.name, catalog, names, result);
  }
  return result;
}

PolicyLoadResult loadPolicyText(std::string_view text, const std::string& fileName,
                                const ProtocolCatalog& catalog) {
  PolicyLoadResult result;
  NameRegistry names;
  loadText(text, fileName, catalog, names, result);
  return result;
}

}  // namespace bulkhead::rules
