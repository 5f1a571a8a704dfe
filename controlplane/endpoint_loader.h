#pragma once

#include <string>
#include <vector>

#include "dataplane/endpoint.h"
#include "rules/diagnostic.h"

namespace bulkhead::controlplane {

// A static endpoints file: named workloads, their labels and the addresses they own. Used by
// `bulkhead simulate` (a capture has no ports to tell who sent what) and, later, by the agent's
// static configuration. Format in docs/simulate.md.
struct EndpointFile {
  std::vector<dataplane::Endpoint> endpoints;  // identity not yet assigned
  std::vector<rules::IpAddress> hostIps;       // addresses of the host itself
  std::vector<dataplane::MacAddress> hostMacs;
  rules::Diagnostics errors;
  bool ioFailure = false;
  bool ok() const { return errors.empty(); }
};

EndpointFile loadEndpoints(const std::string& path);
EndpointFile loadEndpointText(const std::string& text, const std::string& fileName);

}  // namespace bulkhead::controlplane
