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

}  // namespace bulkhead::rules
