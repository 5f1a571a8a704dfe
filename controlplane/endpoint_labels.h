#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rules/labels.h"

namespace bulkhead::controlplane {

// The one way an endpoint's labels are made, whatever its source (the configuration, the API and
// CNI, Docker, a runtime's API): the labels it was given, less every key under bulkhead.io/ --
// those are bulkhead's to set, and a container must not claim another's name or a network it
// is not on -- plus bulkhead.io/name, bulkhead.io/image (when known) and one
// bulkhead.io/network.<n> per network.
// bulkhead.io/namespace is the value of the container's `namespaceLabel` (its compose project
// by default), when it has that label; that namespace's labels in `namespaces` are
// bulkhead.io/namespace.labels.<key>.
rules::Labels endpointLabels(
    const std::string& name, const rules::Labels& given, const std::string& image,
    const std::vector<std::string>& networks,
    std::string_view namespaceLabel = rules::reserved_labels::DefaultNamespaceLabel,
    const rules::NamespaceLabels& namespaces = {});

// Copies `given` without the keys under bulkhead.io/.
template <typename Map>
rules::Labels withoutReservedLabels(const Map& given) {
  rules::Labels labels;
  for (const auto& [key, value] : given) {
    if (!std::string_view(key).starts_with(rules::reserved_labels::Prefix)) {
      labels[key] = value;
    }
  }
  return labels;
}

}  // namespace bulkhead::controlplane
