#pragma once

#include <string>
#include <vector>

#include "dataplane/endpoint.h"
#include "rules/diagnostic.h"
#include "rules/labels.h"

namespace YAML {
class Node;
}
namespace bulkhead::rules {
class YamlReader;
}

namespace bulkhead::controlplane {

// A static endpoints file: named workloads, their labels and the addresses they own. Used by
// `bulkhead simulate` (a capture has no ports to tell who sent what) and, later, by the agent's
// static configuration. Format in docs/cli.md.
struct EndpointFile {
  std::vector<dataplane::Endpoint> endpoints;  // identity not yet assigned
  std::vector<std::string> interfaces;         // per endpoint, when parsed with interfaces
  std::vector<rules::IpAddress> hostIps;       // addresses of the host itself
  std::vector<dataplane::MacAddress> hostMacs;
  rules::NamespaceLabels namespaces;  // simulate's file: what namespaceSelector sees
  rules::Diagnostics errors;
  bool ioFailure = false;
  bool ok() const { return errors.empty(); }
};

EndpointFile loadEndpoints(const std::string& path);
// Parses an `endpoints:` list and an optional `host:` mapping into `out`, reporting through
// `reader`. With `withInterfaces` every endpoint must name the kernel interface that carries its
// traffic (the agent's static endpoints); the endpoints file of `simulate` has none.
void parseEndpoints(rules::YamlReader& reader, const YAML::Node* endpoints, const YAML::Node* host,
                    bool withInterfaces, EndpointFile& out);
// `namespaces: {shop: {team: shop}}`: each namespace's labels (a namespace is what
// bulkhead.io/namespace says: a compose project, or the label namespaceLabel names).
rules::NamespaceLabels parseNamespaceLabels(rules::YamlReader& reader, const YAML::Node& node);
EndpointFile loadEndpointText(const std::string& text, const std::string& fileName);

}  // namespace bulkhead::controlplane
