#pragma once

#include <optional>
#include <string>
#include <vector>

#include "controlplane/docker_watcher.h"
#include "rules/labels.h"

namespace bulkhead::controlplane {

// Which of the engine's networks the agent protects: every bridge network, or the ones named.
struct DockerScope {
  std::vector<std::string> networks;  // empty: all of them
  std::string namespaceLabel = std::string(rules::reserved_labels::DefaultNamespaceLabel);
  rules::NamespaceLabels namespaces;

  bool follows(const std::string& network) const;
};

// One interface of a container on one protected network.
struct DesiredAttachment {
  std::string network;
  std::string bridge;
  std::string mac;               // the container's end; finds the host end of the veth
  std::vector<std::string> ips;  // IPv4 and IPv6, as the engine reports them

  bool operator==(const DesiredAttachment&) const = default;
};

// What a running container should be as an endpoint. Its labels are made the one way
// (endpointLabels): its own, less bulkhead.io/*, plus its name, image and every network it
// joined (protected or not: a network is a fact about the container, not a port).
struct DesiredEndpoint {
  std::string containerId;
  std::string name;
  std::string netns;
  rules::Labels labels;
  std::vector<DesiredAttachment> attachments;  // in the engine's order of networks

  bool operator==(const DesiredEndpoint&) const = default;
};

// The endpoint a container should be, or nullopt when it is on no protected bridge network
// with an address (host networking, a macvlan network, an unprotected network).
std::optional<DesiredEndpoint> desiredEndpoint(const DockerContainer& container,
                                               const DockerScope& scope);
std::vector<DesiredEndpoint> desiredEndpoints(const std::vector<DockerContainer>& containers,
                                              const DockerScope& scope);

// The bridges of the networks in scope: each gets an uplink and the quarantine. The others'
// bridges are left to themselves.
std::vector<std::string> protectedBridges(const std::vector<DockerNetwork>& networks,
                                          const DockerScope& scope);
std::vector<std::string> unprotectedBridges(const std::vector<DockerNetwork>& networks,
                                            const DockerScope& scope);

}  // namespace bulkhead::controlplane
