#include "rules/policy.h"

#include <algorithm>

namespace bulkhead::rules {

const char* toString(Mode mode) { return mode == Mode::Enforce ? "enforce" : "monitor"; }

const char* toString(DenyAction action) { return action == DenyAction::Drop ? "drop" : "reject"; }

const char* toString(Direction direction) {
  return direction == Direction::Ingress ? "ingress" : "egress";
}

const char* toString(L4Protocol protocol) {
  switch (protocol) {
    case L4Protocol::Any:
      return "ANY";
    case L4Protocol::ICMP:
      return "ICMP";
    case L4Protocol::TCP:
      return "TCP";
    case L4Protocol::UDP:
      return "UDP";
    case L4Protocol::ICMPv6:
      return "ICMPv6";
    case L4Protocol::SCTP:
      return "SCTP";
  }
  return "?";
}

const char* toString(Entity entity) {
  switch (entity) {
    case Entity::World:
      return "world";
    case Entity::Host:
      return "host";
    case Entity::All:
      return "all";
  }
  return "?";
}

const char* toString(Tier tier) {
  switch (tier) {
    case Tier::Admin:
      return "admin";
    case Tier::Application:
      return "application";
    case Tier::Baseline:
      return "baseline";
  }
  return "?";
}

const char* toString(RuleAction action) {
  switch (action) {
    case RuleAction::Allow:
      return "allow";
    case RuleAction::Deny:
      return "deny";
    case RuleAction::Pass:
      return "pass";
  }
  return "?";
}

bool validPortName(std::string_view name) {
  if (name.empty() || name.size() > 15 || name.front() == '-' || name.back() == '-' ||
      name.find("--") != std::string_view::npos) {
    return false;
  }
  bool letter = false;
  for (const char c : name) {
    letter = letter || (c >= 'a' && c <= 'z');
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return letter;
}

bool validPolicyName(std::string_view name) {
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty() || name.size() > 253 || !alnum(name.front()) || !alnum(name.back())) {
    return false;
  }
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

}  // namespace bulkhead::rules
