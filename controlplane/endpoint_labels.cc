#include "controlplane/endpoint_labels.h"

namespace bulkhead::controlplane {

rules::Labels endpointLabels(const std::string& name, const rules::Labels& given,
                             const std::string& image, const std::vector<std::string>& networks,
                             std::string_view namespaceLabel,
                             const rules::NamespaceLabels& namespaces) {
  rules::Labels labels = withoutReservedLabels(given);
  if (const auto found = labels.find(namespaceLabel); found != labels.end()) {
    labels[std::string(rules::reserved_labels::Namespace)] = found->second;
    rules::addNamespaceLabels(labels, namespaces);
  }
  labels[std::string(rules::reserved_labels::Name)] = name;
  if (!image.empty()) {
    labels[std::string(rules::reserved_labels::Image)] = image;
  }
  for (const auto& network : networks) {
    labels[std::string(rules::reserved_labels::NetworkPrefix) + network] = "true";
  }
  return labels;
}

}  // namespace bulkhead::controlplane
