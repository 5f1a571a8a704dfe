// Beyond one host (docs/multihost.md): the agent's side of its membership in the cluster. The
// numbers of its label sets come from etcd, its endpoints are published there, and the other
// hosts' endpoints it believes are identities beyond its uplinks.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "controlplane/agent.h"
#include "controlplane/cluster_policy.h"
#include "controlplane/policy_watcher.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {

bool Agent::openCluster(std::string* error) {
  std::string host = config_.kvstore.host;
  if (host.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) {
      *error = "kvstore: cannot read the host name; set kvstore.host";
      return false;
    }
    host = name;
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!validHostName(host)) {
      *error = "kvstore: the host name " + host +
               " cannot name this host in the cluster; set "
               "kvstore.host";
      return false;
    }
  }
  if (config_.kvstore.subnets.empty()) {
    spdlog::warn(
        "kvstore.subnets is empty: the other hosts believe none of this host's "
        "endpoints (docs/multihost.md, \"What a host believes\")");
  }
  cluster_ = std::make_unique<ClusterMember>(config_.kvstore, host);
  spdlog::info("kvstore: host {} in {} at {}", host, config_.kvstore.prefix,
               fmt::join(config_.kvstore.etcd.endpoints, ", "));
  // The first policy in force has the cluster's documents when the store answers now; when it
  // does not, they apply as soon as it does.
  std::string storeError;
  if (auto documents = cluster_->readPolicies(&storeError)) {
    if (!documents->empty()) {
      policy_->setClusterDocuments(std::move(*documents));
      std::vector<std::string> errors;
      if (!policy_->load(&errors)) {
        *error = "kvstore: the cluster's policy documents do not load with the local files: " +
                 (errors.empty() ? std::string("?") : errors.front());
        return false;
      }
    }
  } else {
    spdlog::warn("kvstore: {}; starting with the local policy files only", storeError);
  }
  return true;
}

void Agent::reloadClusterPolicy() {
  std::vector<rules::PolicyText> previous = policy_->clusterDocuments();
  policy_->setClusterDocuments(cluster_->policies());
  // The trigger names what every host applies: the same revision, the same documents' digest.
  const nlohmann::json reply =
      reloadPolicy("kvstore revision " + std::to_string(cluster_->policyRevision()) +
                   " documents sha256 " + policyDigest({}, policy_->clusterDocuments()));
  if (!reply.value("ok", false)) {
    policy_->setClusterDocuments(std::move(previous));  // what is in force, kept
  }
}

nlohmann::json Agent::applyClusterPolicy(const nlohmann::json& request) {
  if (!cluster_) {
    return {{"ok", false},
            {"error", "this agent has no kvstore (docs/multihost.md): its policy is its files"}};
  }
  const auto* files = text::arrayMember(request, "files");
  if (files == nullptr) {
    return {{"ok", false}, {"error", "policy-apply needs 'files': [{name, text}]"}};
  }
  std::vector<rules::PolicyText> texts;
  for (const auto& file : *files) {
    const std::string name = text::stringMember(file, "name");
    const auto* content = text::member(file, "text");
    if (name.empty() || content == nullptr || !content->is_string()) {
      return {{"ok", false}, {"error", "each of 'files' is {name, text}, both strings"}};
    }
    texts.push_back({name, content->get<std::string>()});
  }
  std::vector<std::string> errors;
  const auto documents = documentsToApply(texts, policy_->paths(), policy_->clusterDocuments(),
                                          config_.kvstore.prefix, *catalog_, &errors);
  if (!documents) {
    return {{"ok", false}, {"error", "policy refused; nothing was applied"}, {"errors", errors}};
  }
  std::string storeError;
  const auto revision = cluster_->putPolicies(*documents, &storeError);
  if (!revision) {
    return {{"ok", false}, {"error", "kvstore: " + storeError}};
  }
  nlohmann::json names = nlohmann::json::array();
  for (const auto& document : *documents) {
    names.push_back(document.name);
  }
  audit_->clusterPolicy("apply", names, *revision);
  return {{"ok", true}, {"policies", names}, {"revision", *revision}};
}

nlohmann::json Agent::deleteClusterPolicy(const nlohmann::json& request) {
  if (!cluster_) {
    return {{"ok", false},
            {"error", "this agent has no kvstore (docs/multihost.md): its policy is its files"}};
  }
  const std::string name = text::stringMember(request, "name");
  if (!rules::validPolicyName(name)) {
    return {{"ok", false}, {"error", "policy-delete needs the 'name' of a policy"}};
  }
  std::string storeError;
  const auto revision = cluster_->deletePolicy(name, &storeError);
  if (!revision) {
    return {{"ok", false}, {"error", storeError}};
  }
  audit_->clusterPolicy("delete", nlohmann::json::array({name}), *revision);
  return {{"ok", true}, {"policies", nlohmann::json::array({name})}, {"revision", *revision}};
}

void Agent::syncCluster() {
  if (!cluster_) {
    return;
  }
  std::vector<kvstore::PublishedEndpoint> published;
  std::set<rules::Labels> inUse;
  for (const auto& endpoint : registry_->endpoints()) {
    if (!endpoint.labelsPending) {
      inUse.insert(endpoint.labels);
    }
    // Asked once per label set; a new lease asks again by itself (ClusterMember).
    if (!endpoint.labelsPending && clusterAsked_.insert(endpoint.labels).second) {
      cluster_->request(endpoint.labels);
    }
    if (endpoint.identity == rules::reserved_identity::Unknown || endpoint.labelsPending) {
      continue;
    }
    kvstore::PublishedEndpoint entry{endpoint.name, endpoint.identity, endpoint.labels, {}};
    for (const auto& attachment : endpoint.attachments) {
      for (const auto& ip : attachment.ips) {
        if (std::find(entry.ips.begin(), entry.ips.end(), ip) == entry.ips.end()) {
          entry.ips.push_back(ip);
        }
      }
    }
    if (!entry.ips.empty()) {
      published.push_back(std::move(entry));
    }
  }
  cluster_->publish(std::move(published));
  // Label sets no endpoint here has any more: this host's reference to their numbers goes.
  for (auto it = clusterAsked_.begin(); it != clusterAsked_.end();) {
    if (inUse.count(*it)) {
      ++it;
      continue;
    }
    cluster_->release(*it);
    if (registry_->identities().forget(*it)) {
      identitiesChanged_ = true;
    }
    it = clusterAsked_.erase(it);
  }
}

void Agent::applyCluster() {
  const ClusterMember::Update update = cluster_->take();
  for (const auto& [labels, id] : update.identities) {
    if (registry_->applyIdentity(labels, id)) {
      identitiesChanged_ = true;
      dirty_ = true;
    }
  }
  if (update.policiesChanged) {
    reloadClusterPolicy();
  }
  if (update.remoteChanged) {
    remote_ = cluster_->remoteEndpoints();
    remoteByIp_.clear();
    for (size_t i = 0; i < remote_.size(); ++i) {
      for (const auto& ip : remote_[i].endpoint.ips) {
        remoteByIp_[ip] = i;
      }
    }
    identitiesChanged_ = true;
    dirty_ = true;
    spdlog::info("kvstore: {} endpoints of other hosts believed", remote_.size());
  }
}

void Agent::addRemote(rules::IdentityList& identities, dataplane::ForwardingState& state) {
  std::vector<rules::IdentityId> remoteOnly;
  // An identity some endpoint here has is this host's to enforce, wherever else it runs too.
  std::set<rules::IdentityId> local;
  for (const auto& endpoint : registry_->endpoints()) {
    local.insert(endpoint.identity);
  }
  for (const auto& remote : remote_) {
    const auto& endpoint = remote.endpoint;
    const auto known =
        std::find_if(identities.begin(), identities.end(),
                     [&](const rules::Identity& i) { return i.id == endpoint.identity; });
    if (known == identities.end()) {
      identities.push_back({endpoint.identity, endpoint.labels, true});
      remoteOnly.push_back(endpoint.identity);
    } else if (!local.count(endpoint.identity)) {
      known->remote = true;
      remoteOnly.push_back(endpoint.identity);
    }
    for (const auto& ip : endpoint.ips) {
      state.remoteIdentities[ip] = endpoint.identity;
    }
  }
  // The last local endpoint of an identity that runs elsewhere too went (or the first came):
  // the policy is compiled again, since which identities are subjects here changed.
  std::sort(remoteOnly.begin(), remoteOnly.end());
  if (remoteOnly != remoteOnly_) {
    remoteOnly_ = std::move(remoteOnly);
    identitiesChanged_ = true;
  }
}

std::optional<EndpointInfo> Agent::remoteInfo(const rules::IpAddress& ip) const {
  const auto found = remoteByIp_.find(ip);
  if (found == remoteByIp_.end()) {
    return std::nullopt;
  }
  const auto& remote = remote_[found->second];
  return EndpointInfo{remote.host + "/" + remote.endpoint.name, remote.endpoint.labels};
}

}  // namespace bulkhead::controlplane
