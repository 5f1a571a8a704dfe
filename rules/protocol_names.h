#pragma once

#include <string>

#include "rules/policy_snapshot.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::rules {

struct ProtocolNames {
  std::string master;
  std::string app;
};

// nDPI's own naming, as ndpiReader prints "master.app": a missing master repeats the app
// ("Git.Git"), and a flow not classified ({0, 0}) is "Unknown.Unknown". simulate, the flow dump
// and the violation log all name protocols this way, so their outputs can be compared.
inline ProtocolNames protocolNames(const AppProtocol& protocol, const ProtocolCatalog& catalog) {
  std::string app = catalog.name(protocol.app);
  std::string master = protocol.master != 0 ? catalog.name(protocol.master) : app;
  return {std::move(master), std::move(app)};
}

// One label for people and for `protocols:` lists: "HTTP", "HTTP.Google", "Unknown". This is
// how bulkhead names the protocol a policy judged (the inspected part of nDPI's answer).
inline std::string protocolLabel(const AppProtocol& protocol, const ProtocolCatalog& catalog) {
  if (protocol.app == 0 && protocol.master == 0) {
    return "Unknown";
  }
  if (protocol.master == 0 || protocol.master == protocol.app) {
    return catalog.name(protocol.app);
  }
  if (protocol.app == 0) {
    return catalog.name(protocol.master);
  }
  return catalog.name(protocol.master) + "." + catalog.name(protocol.app);
}

}  // namespace bulkhead::rules
