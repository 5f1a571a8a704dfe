#include "controlplane/docker_reconciler.h"

#include <algorithm>

#include "controlplane/endpoint_labels.h"

namespace bulkhead::controlplane {

bool DockerScope::follows(const std::string& network) const {
  return networks.empty() || std::find(networks.begin(), networks.end(), network) != networks.end();
}

std::optional<DesiredEndpoint> desiredEndpoint(const DockerContainer& container,
                                               const DockerScope& scope) {
  DesiredEndpoint desired;
  desired.containerId = container.id;
  desired.name = container.name;
  desired.netns = container.netnsPath;
  std::vector<std::string> joined;
  for (const auto& network : container.networks) {
    joined.push_back(network.name);
    if (network.bridge.empty() || network.mac.empty() || !scope.follows(network.name)) {
      continue;
    }
    DesiredAttachment attachment{network.name, network.bridge, network.mac, {}};
    for (const auto& ip : {network.ip, network.ipv6}) {
      if (!ip.empty()) {
        attachment.ips.push_back(ip);
      }
    }
    desired.attachments.push_back(std::move(attachment));
  }
  if (desired.attachments.empty() || desired.netns.empty()) {
    return std::nullopt;
  }
  desired.labels = endpointLabels(container.name, withoutReservedLabels(container.labels),
                                  container.image, joined, scope.namespaceLabel, scope.namespaces);
  return desired;
}

std::vector<DesiredEndpoint> desiredEndpoints(const std::vector<DockerContainer>& containers,
                                              const DockerScope& scope) {
  std::vector<DesiredEndpoint> out;
  for (const auto& container : containers) {
    if (auto desired = desiredEndpoint(container, scope)) {
      out.push_back(std::move(*desired));
    }
  }
  return out;
}

std::vector<std::string> protectedBridges(const std::vector<DockerNetwork>& networks,
                                          const DockerScope& scope) {
  std::vector<std::string> out;
  for (const auto& network : networks) {
    if (!network.bridge.empty() && scope.follows(network.name)) {
      out.push_back(network.bridge);
    }
  }
  return out;
}

std::vector<std::string> unprotectedBridges(const std::vector<DockerNetwork>& networks,
                                            const DockerScope& scope) {
  std::vector<std::string> out;
  for (const auto& network : networks) {
    if (!network.bridge.empty() && !scope.follows(network.name)) {
      out.push_back(network.bridge);
    }
  }
  return out;
}

}  // namespace bulkhead::controlplane
