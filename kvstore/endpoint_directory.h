#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rules/cidr.h"
#include "rules/identity.h"
#include "rules/policy_loader.h"

namespace bulkhead::kvstore {

// What each host publishes under its lease, and how a host decides which other hosts' endpoints
// to believe (docs/multihost.md, "The data model"):
//
//   <prefix>/hosts/<host>              {"subnets": ["10.1.0.0/24"]}
//   <prefix>/endpoints/<host>/<name>   {"identity": 300, "labels": {...}, "ips": ["10.1.0.5"]}
//   <prefix>/policies/<name>           one policy document (YAML), for every host
//
// A remote endpoint is believed only while its host is (its hosts/ key, under its lease, is
// there), only for addresses inside the subnets that host published and outside this host's
// own, only with the cluster's number for its labels, and only for an address no other host
// claims too: traffic from an address gets a remote identity only if one host alone could have
// put it there.

struct HostEntry {
  std::vector<rules::Cidr> subnets;
};

struct PublishedEndpoint {
  std::string name;
  rules::IdentityId identity = rules::reserved_identity::Unknown;
  rules::Labels labels;
  std::vector<rules::IpAddress> ips;
  bool operator==(const PublishedEndpoint&) const;
};

struct RemoteEndpoint {
  std::string host;
  PublishedEndpoint endpoint;
  bool operator==(const RemoteEndpoint&) const = default;
};

std::string hostKey(const std::string& prefix, const std::string& host);
std::string endpointKey(const std::string& prefix, const std::string& host,
                        const std::string& name);
std::string policyKey(const std::string& prefix, const std::string& name);
std::string encodeHost(const HostEntry& entry);
std::string encodeEndpoint(const PublishedEndpoint& endpoint);
// nullopt when the value is not such an entry (store values are hostile like any input).
std::optional<HostEntry> decodeHost(const std::string& value);
std::optional<PublishedEndpoint> decodeEndpoint(const std::string& name, const std::string& value);

// The store's view, as read and watched: every key under <prefix>/ that matters here.
class DirectoryView {
 public:
  DirectoryView(std::string prefix, std::string self, std::vector<rules::Cidr> ownSubnets);

  // A key that changed (value empty and `deleted` for a delete). Keys it does not know are
  // ignored.
  void apply(const std::string& key, const std::string& value, bool deleted);
  void clear();

  // The other hosts' endpoints this host believes, and why it believes no more (one line per
  // entry refused, for `bulkhead status` and the log).
  struct Accepted {
    std::vector<RemoteEndpoint> endpoints;
    std::vector<std::string> refused;
  };
  Accepted accepted() const;
  std::vector<std::string> hosts() const;  // the live hosts, this one included
  // The cluster's policy documents (<prefix>/policies/<name>, put by `bulkhead policy apply`),
  // by name, each named "etcd:<key>" for diagnostics and the policy's sources.
  std::vector<rules::PolicyText> policies() const;

 private:
  std::string prefix_;
  std::string self_;
  std::vector<rules::Cidr> ownSubnets_;
  std::map<std::string, std::optional<HostEntry>> hosts_;  // nullopt: unreadable
  // by host, then name; nullopt: unreadable
  std::map<std::string, std::map<std::string, std::optional<PublishedEndpoint>>> endpoints_;
  std::map<rules::IdentityId, std::optional<rules::Labels>> identities_;
  std::map<std::string, std::string> policies_;  // by key
};

}  // namespace bulkhead::kvstore
