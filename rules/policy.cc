#include "rules/policy.h"

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

}  // namespace bulkhead::rules
