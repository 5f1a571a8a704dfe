#include "kvstore/endpoint_directory.h"

#include <nlohmann/json.hpp>

#include "kvstore/store_values.h"
#include "text/untrusted_json.h"

namespace bulkhead::kvstore {
namespace {

using nlohmann::json;

bool within(const std::vector<rules::Cidr>& subnets, const rules::IpAddress& ip) {
  for (const auto& subnet : subnets) {
    if (subnet.contains(ip)) {
      return true;
    }
  }
  return false;
}

// A key's last part after `start`, when it has no '/' of its own.
std::optional<std::string> leaf(const std::string& key, const std::string& start) {
  if (key.rfind(start, 0) != 0 || key.size() == start.size() ||
      key.find('/', start.size()) != std::string::npos) {
    return std::nullopt;
  }
  return key.substr(start.size());
}

}  // namespace

bool PublishedEndpoint::operator==(const PublishedEndpoint&) const = default;

std::string hostKey(const std::string& prefix, const std::string& host) {
  return prefix + "/hosts/" + host;
}

std::string endpointKey(const std::string& prefix, const std::string& host,
                        const std::string& name) {
  return prefix + "/endpoints/" + host + "/" + name;
}

std::string encodeHost(const HostEntry& entry) {
  json subnets = json::array();
  for (const auto& subnet : entry.subnets) {
    subnets.push_back(subnet.toString());
  }
  return json{{"subnets", subnets}}.dump();
}

std::string encodeEndpoint(const PublishedEndpoint& endpoint) {
  json labels = labelsJson(endpoint.labels);
  json ips = json::array();
  for (const auto& ip : endpoint.ips) {
    ips.push_back(ip.toString());
  }
  return json{{"identity", endpoint.identity}, {"labels", labels}, {"ips", ips}}.dump();
}

std::optional<HostEntry> decodeHost(const std::string& value) {
  const auto object = parseObject(value);
  const json* subnets = object ? text::arrayMember(*object, "subnets") : nullptr;
  if (!subnets) {
    return std::nullopt;
  }
  HostEntry entry;
  for (const json& item : *subnets) {
    std::string ignored;
    const auto cidr =
        item.is_string() ? rules::Cidr::parse(item.get<std::string>(), &ignored) : std::nullopt;
    if (!cidr) {
      return std::nullopt;
    }
    entry.subnets.push_back(*cidr);
  }
  return entry;
}

std::optional<PublishedEndpoint> decodeEndpoint(const std::string& name, const std::string& value) {
  const auto object = parseObject(value);
  if (!object) {
    return std::nullopt;
  }
  PublishedEndpoint endpoint;
  endpoint.name = name;
  const auto number = readIdentityNumber(*object, "identity");
  auto labels = readLabels(*object);
  const json* ips = text::arrayMember(*object, "ips");
  if (!number || !labels || !ips) {
    return std::nullopt;
  }
  endpoint.identity = *number;
  endpoint.labels = std::move(*labels);
  for (const json& item : *ips) {
    const auto ip =
        item.is_string() ? rules::IpAddress::parse(item.get<std::string>()) : std::nullopt;
    if (!ip) {
      return std::nullopt;
    }
    endpoint.ips.push_back(*ip);
  }
  return endpoint;
}

DirectoryView::DirectoryView(std::string prefix, std::string self,
                             std::vector<rules::Cidr> ownSubnets)
    : prefix_(std::move(prefix)), self_(std::move(self)), ownSubnets_(std::move(ownSubnets)) {}

std::string policyKey(const std::string& prefix, const std::string& name) {
  return prefix + "/policies/" + name;
}

void DirectoryView::clear() {
  hosts_.clear();
  endpoints_.clear();
  identities_.clear();
  policies_.clear();
}

std::vector<rules::PolicyText> DirectoryView::policies() const {
  std::vector<rules::PolicyText> out;
  for (const auto& [key, text] : policies_) {
    out.push_back({"etcd:" + key, text});
  }
  return out;
}

void DirectoryView::apply(const std::string& key, const std::string& value, bool deleted) {
  if (const auto host = leaf(key, prefix_ + "/hosts/")) {
    if (deleted) {
      hosts_.erase(*host);
    } else {
      hosts_[*host] = decodeHost(value);
    }
    return;
  }
  if (const auto digits = leaf(key, prefix_ + "/identities/ids/")) {
    const auto id = readIdentityNumber(*digits);
    if (!id) {
      return;
    }
    if (deleted) {
      identities_.erase(*id);
    } else {
      const auto object = parseObject(value);
      identities_[*id] = object ? readLabels(*object) : std::nullopt;
    }
    return;
  }
  if (leaf(key, prefix_ + "/policies/")) {
    if (deleted) {
      policies_.erase(key);
    } else {
      policies_[key] = value;
    }
    return;
  }
  const std::string endpoints = prefix_ + "/endpoints/";
  if (key.rfind(endpoints, 0) != 0) {
    return;
  }
  const size_t slash = key.find('/', endpoints.size());
  if (slash == std::string::npos || slash == endpoints.size()) {
    return;
  }
  const std::string host = key.substr(endpoints.size(), slash - endpoints.size());
  const auto name = leaf(key, endpoints + host + "/");
  if (!name) {
    return;
  }
  if (deleted) {
    auto found = endpoints_.find(host);
    if (found != endpoints_.end()) {
      found->second.erase(*name);
      if (found->second.empty()) {
        endpoints_.erase(found);
      }
    }
  } else {
    endpoints_[host][*name] = decodeEndpoint(*name, value);
  }
}

DirectoryView::Accepted DirectoryView::accepted() const {
  Accepted out;
  std::map<rules::IpAddress, std::vector<std::string>> claims;  // address -> hosts
  std::vector<RemoteEndpoint> candidates;
  for (const auto& [host, named] : endpoints_) {
    if (host == self_) {
      continue;
    }
    const auto live = hosts_.find(host);
    for (const auto& [name, endpoint] : named) {
      const std::string who = host + "/" + name;
      if (live == hosts_.end() || !live->second) {
        out.refused.push_back(who + ": its host published no readable hosts/ entry");
        continue;
      }
      if (!endpoint) {
        out.refused.push_back(who + ": unreadable");
        continue;
      }
      const auto identity = identities_.find(endpoint->identity);
      if (identity == identities_.end() || !identity->second ||
          *identity->second != endpoint->labels) {
        out.refused.push_back(who + ": identity " + std::to_string(endpoint->identity) +
                              " is not the cluster's number for its labels");
        continue;
      }
      RemoteEndpoint remote{host, *endpoint};
      remote.endpoint.ips.clear();
      for (const auto& ip : endpoint->ips) {
        if (!within(live->second->subnets, ip)) {
          out.refused.push_back(who + ": " + ip.toString() + " is outside " + host + "'s subnets");
        } else if (within(ownSubnets_, ip)) {
          out.refused.push_back(who + ": " + ip.toString() + " is inside this host's subnets");
        } else {
          remote.endpoint.ips.push_back(ip);
          claims[ip].push_back(host);
        }
      }
      candidates.push_back(std::move(remote));
    }
  }
  for (auto& remote : candidates) {
    std::vector<rules::IpAddress> kept;
    for (const auto& ip : remote.endpoint.ips) {
      const auto& hosts = claims[ip];
      if (hosts.size() > 1) {
        out.refused.push_back(remote.host + "/" + remote.endpoint.name + ": " + ip.toString() +
                              " is claimed by more than one endpoint");
      } else {
        kept.push_back(ip);
      }
    }
    if (!kept.empty()) {
      remote.endpoint.ips = std::move(kept);
      out.endpoints.push_back(std::move(remote));
    }
  }
  return out;
}

std::vector<std::string> DirectoryView::hosts() const {
  std::vector<std::string> out;
  for (const auto& [host, entry] : hosts_) {
    out.push_back(host);
  }
  return out;
}

}  // namespace bulkhead::kvstore
