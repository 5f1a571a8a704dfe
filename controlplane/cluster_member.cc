#include "controlplane/cluster_member.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "controlplane/policy_watcher.h"

namespace bulkhead::controlplane {
namespace {

uint64_t monotonicMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

// After a failure the store is asked again this often: soon enough to notice it is back,
// seldom enough not to flood a member that is struggling.
constexpr auto RetryInterval = std::chrono::seconds(1);
// How often a host sweeps the numbers nobody refers to.
constexpr uint64_t SweepIntervalMs = 60000;

}  // namespace

ClusterMember::ClusterMember(const KvstoreConfig& config, std::string host)
    : config_(config),
      host_(std::move(host)),
      store_(config.etcd),
      eventFd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      sinceMs_(monotonicMs()) {
  store_.setObserver([this](double seconds, bool) {
    const std::lock_guard lock(mutex_);
    storeSeconds_.observe(seconds);
  });
  session_ = std::thread([this] { runSession(); });
  directory_ = std::thread([this] { runDirectory(); });
}

ClusterMember::~ClusterMember() {
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  session_.join();
  directory_.join();
  if (eventFd_ >= 0) {
    ::close(eventFd_);
  }
}

void ClusterMember::notify() {
  const uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(eventFd_, &one, sizeof one);
}

void ClusterMember::noteStore(bool ok, const std::string& error) {
  if (ok != connected_) {
    connected_ = ok;
    sinceMs_ = monotonicMs();
    if (ok) {
      spdlog::info("kvstore: connected to {} as host {}", store_.endpoint(), host_);
    } else {
      spdlog::warn("kvstore: {}; enforcing what is known, numbering nothing new until it is back",
                   error);
    }
  }
  if (!ok) {
    ++errors_;
    lastError_ = error;
  }
}

void ClusterMember::request(const rules::Labels& labels) {
  {
    const std::lock_guard lock(mutex_);
    unused_.erase(labels);
    wanted_.insert(labels);
  }
  wake_.notify_all();
}

void ClusterMember::release(const rules::Labels& labels) {
  {
    const std::lock_guard lock(mutex_);
    wanted_.erase(labels);
    unused_.insert(labels);
  }
  wake_.notify_all();
}

metrics::Histogram ClusterMember::storeSeconds() const {
  const std::lock_guard lock(mutex_);
  return storeSeconds_;
}

void ClusterMember::publish(std::vector<kvstore::PublishedEndpoint> endpoints) {
  std::map<std::string, kvstore::PublishedEndpoint> desired;
  for (auto& endpoint : endpoints) {
    desired.emplace(endpoint.name, std::move(endpoint));
  }
  {
    const std::lock_guard lock(mutex_);
    if (desired == desired_) {
      return;
    }
    desired_ = std::move(desired);
    publishDirty_ = true;
  }
  wake_.notify_all();
}

ClusterMember::Update ClusterMember::take() {
  uint64_t ignored = 0;
  [[maybe_unused]] const auto read = ::read(eventFd_, &ignored, sizeof ignored);
  const std::lock_guard lock(mutex_);
  Update update;
  update.identities = std::move(answers_);
  answers_.clear();
  update.remoteChanged = remoteChanged_;
  remoteChanged_ = false;
  update.policiesChanged = policiesChanged_;
  policiesChanged_ = false;
  return update;
}

std::vector<rules::PolicyText> ClusterMember::policies() const {
  const std::lock_guard lock(mutex_);
  return policies_;
}

int64_t ClusterMember::policyRevision() const {
  const std::lock_guard lock(mutex_);
  return policyRevision_;
}

std::optional<std::vector<rules::PolicyText>> ClusterMember::readPolicies(
    std::string* error) const {
  const auto range = store_.get(config_.prefix + "/policies/", error, true);
  if (!range) {
    return std::nullopt;
  }
  kvstore::DirectoryView view(config_.prefix, host_, {});
  for (const auto& kv : range->kvs) {
    view.apply(kv.key, kv.value, false);
  }
  return view.policies();
}

std::optional<int64_t> ClusterMember::putPolicies(const std::vector<rules::PolicyText>& documents,
                                                  std::string* error) {
  std::vector<kvstore::EtcdClient::Operation> puts;
  for (const auto& document : documents) {
    puts.push_back({kvstore::EtcdClient::Operation::Kind::Put,
                    kvstore::policyKey(config_.prefix, document.name), document.text, 0, ""});
  }
  const auto result = store_.txn({}, puts, {}, error);
  return result ? std::optional(result->revision) : std::nullopt;
}

std::optional<int64_t> ClusterMember::deletePolicy(const std::string& name, std::string* error) {
  const std::string key = kvstore::policyKey(config_.prefix, name);
  const auto result =
      store_.txn({{key, kvstore::EtcdClient::Compare::Target::Version, 0, "", ""}}, {},
                 {{kvstore::EtcdClient::Operation::Kind::Delete, key, "", 0, ""}}, error);
  if (!result) {
    return std::nullopt;
  }
  if (result->succeeded) {  // the key had version 0: it was not there
    *error = "the cluster has no policy named " + name;
    return std::nullopt;
  }
  return result->revision;
}

std::vector<kvstore::RemoteEndpoint> ClusterMember::remoteEndpoints() const {
  const std::lock_guard lock(mutex_);
  return remote_;
}

bool ClusterMember::connected() const {
  const std::lock_guard lock(mutex_);
  return connected_;
}

uint64_t ClusterMember::storeErrors() const {
  const std::lock_guard lock(mutex_);
  return errors_;
}

nlohmann::json ClusterMember::status() const {
  const std::lock_guard lock(mutex_);
  const uint64_t now = monotonicMs();
  nlohmann::json out{{"endpoints", config_.etcd.endpoints},
                     {"prefix", config_.prefix},
                     {"host", host_},
                     {"state", connected_ ? "connected" : "unreachable"},
                     {"sinceSeconds", (now - sinceMs_) / 1000},
                     {"hosts", hosts_},
                     {"remoteEndpoints", remote_.size()},
                     {"pendingIdentities", wanted_.size()},
                     {"policies", policies_.size()},
                     {"policyRevision", policyRevision_},
                     // The same on every host that read the same documents.
                     {"policySha256", policyDigest({}, policies_)},
                     {"errors", errors_}};
  // The directory is as old as its last complete read while no watch keeps it current.
  out["cacheAgeSeconds"] =
      watching_ ? nlohmann::json(0)
                : (directoryReadMs_ == 0 ? nlohmann::json(nullptr)
                                         : nlohmann::json((now - directoryReadMs_) / 1000));
  if (!connected_ && !lastError_.empty()) {
    out["error"] = lastError_;
  }
  if (!refused_.empty()) {
    out["refused"] = std::vector<std::string>(
        refused_.begin(), refused_.begin() + std::min<size_t>(refused_.size(), 20));
  }
  return out;
}

void ClusterMember::runSession() {
  kvstore::ClusterIdentities identities(store_, config_.prefix, host_, 0);
  std::map<std::string, kvstore::PublishedEndpoint> published;  // what the store holds of ours
  std::set<rules::Labels> numbered;  // referred to under the current lease
  const uint64_t renewEveryMs = config_.leaseSeconds * 1000ull / 3;
  uint64_t renewAtMs = 0;
  uint64_t sweepAtMs = monotonicMs() + SweepIntervalMs;
  int64_t lease = 0;
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    std::string error;
    bool ok = true;
    const uint64_t now = monotonicMs();
    if (lease == 0) {
      const auto granted = store_.grantLease(config_.leaseSeconds, &error);
      const kvstore::HostEntry self{config_.subnets};
      ok = granted && store_.put(kvstore::hostKey(config_.prefix, host_), kvstore::encodeHost(self),
                                 *granted, &error);
      if (ok) {
        lease = *granted;
        renewAtMs = now + renewEveryMs;
        identities.setLease(lease);
        published.clear();  // what was under an old lease is gone with it
        {
          const std::lock_guard relock(mutex_);
          lease_ = lease;
          // Every number in use is referred to again under the new lease.
          wanted_.insert(numbered.begin(), numbered.end());
          publishDirty_ = true;
        }
        numbered.clear();
      }
    } else if (now >= renewAtMs) {
      const auto left = store_.keepAlive(lease, &error);
      ok = left.has_value();
      if (left && *left == 0) {
        // Its keys went with it: everything is put again under a new one, at once.
        spdlog::warn("kvstore: the lease of host {} expired; taking a new one", host_);
        lease = 0;
      }
      if (ok) {
        renewAtMs = now + renewEveryMs;
      }
    }

    std::vector<rules::Labels> wanted;
    std::vector<rules::Labels> unused;
    std::map<std::string, kvstore::PublishedEndpoint> desired;
    bool publishDirty = false;
    {
      const std::lock_guard relock(mutex_);
      wanted.assign(wanted_.begin(), wanted_.end());
      unused.assign(unused_.begin(), unused_.end());
      publishDirty = publishDirty_;
      if (publishDirty) {
        desired = desired_;
      }
    }
    std::vector<std::pair<rules::Labels, rules::IdentityId>> answers;
    for (const auto& labels : wanted) {
      if (!ok || lease == 0) {
        break;
      }
      if (const auto id = identities.allocate(labels, &error)) {
        answers.emplace_back(labels, *id);
        numbered.insert(labels);
      } else {
        ok = false;
      }
    }
    if (ok && lease != 0 && publishDirty) {
      for (const auto& [name, endpoint] : desired) {
        const auto found = published.find(name);
        if (found != published.end() && found->second == endpoint) {
          continue;
        }
        if (!store_.put(kvstore::endpointKey(config_.prefix, host_, name),
                        kvstore::encodeEndpoint(endpoint), lease, &error)) {
          ok = false;
          break;
        }
        published[name] = endpoint;
      }
      for (auto it = published.begin(); ok && it != published.end();) {
        if (desired.count(it->first)) {
          ++it;
          continue;
        }
        if (!store_.remove(kvstore::endpointKey(config_.prefix, host_, it->first), &error)) {
          ok = false;
          break;
        }
        it = published.erase(it);
      }
    }

    // After the endpoints went from the directory: the numbers they had, when nothing here
    // uses them any more.
    std::vector<rules::Labels> released;
    for (const auto& labels : unused) {
      if (!ok || lease == 0) {
        break;
      }
      const auto id = identities.cachedNumber(labels);
      if (id && !identities.release(*id, &error)) {
        ok = false;
        break;
      }
      numbered.erase(labels);
      released.push_back(labels);
    }
    // Numbers whose hosts died with their references: any host may remove them, and every one
    // tries now and then (a transaction makes two at once harmless).
    if (ok && lease != 0 && now >= sweepAtMs) {
      sweepAtMs = now + SweepIntervalMs;
      if (const auto swept = identities.sweep(&error)) {
        if (*swept > 0) {
          spdlog::info("kvstore: {} identity numbers no host refers to removed", *swept);
        }
      } else {
        ok = false;
      }
    }

    lock.lock();
    for (const auto& labels : released) {
      if (!wanted_.count(labels)) {
        unused_.erase(labels);
      }
    }
    for (const auto& [labels, id] : answers) {
      wanted_.erase(labels);
    }
    answers_.insert(answers_.end(), answers.begin(), answers.end());
    if (ok && publishDirty && desired == desired_) {
      publishDirty_ = false;
    }
    noteStore(ok, error);
    if (!answers.empty()) {
      notify();
    }
    if (!ok) {
      wake_.wait_for(lock, RetryInterval, [&] { return stop_; });
      continue;
    }
    const auto untilRenew =
        std::chrono::milliseconds(renewAtMs > monotonicMs() ? renewAtMs - monotonicMs() : 0);
    wake_.wait_for(lock, untilRenew,
                   [&] { return stop_ || !wanted_.empty() || !unused_.empty() || publishDirty_; });
  }
  lease_ = 0;
  lock.unlock();
  // A clean stop takes this host out of the cluster at once, not after its lease.
  if (std::string error; lease != 0 && !store_.revokeLease(lease, &error)) {
    spdlog::warn("kvstore: revoking the lease of host {}: {} (it expires on its own)", host_,
                 error);
  }
}

void ClusterMember::runDirectory() {
  kvstore::DirectoryView view(config_.prefix, host_, config_.subnets);
  const auto share = [&](int64_t revision) {
    auto accepted = view.accepted();
    auto policies = view.policies();
    const std::lock_guard lock(mutex_);
    if (policies != policies_) {
      policies_ = std::move(policies);
      policyRevision_ = revision;
      policiesChanged_ = true;
      notify();
    }
    if (accepted.endpoints != remote_) {
      remote_ = std::move(accepted.endpoints);
      remoteChanged_ = true;
      notify();
    }
    if (accepted.refused != refused_) {
      for (const auto& line : accepted.refused) {
        if (std::find(refused_.begin(), refused_.end(), line) == refused_.end()) {
          spdlog::warn("kvstore: not believed: {}", line);
        }
      }
      refused_ = std::move(accepted.refused);
    }
    hosts_ = view.hosts();
  };
  const auto stopRequested = [&] {
    const std::lock_guard lock(mutex_);
    return stop_;
  };
  while (!stopRequested()) {
    std::string error;
    const auto everything = store_.get(config_.prefix + "/", &error, true);
    if (everything) {
      view.clear();
      for (const auto& kv : everything->kvs) {
        view.apply(kv.key, kv.value, false);
      }
      share(everything->revision);
      {
        const std::lock_guard lock(mutex_);
        directoryReadMs_ = monotonicMs();
        watching_ = true;
      }
      store_.watch(
          config_.prefix + "/", everything->revision + 1,
          [&](const std::vector<kvstore::EtcdClient::WatchEvent>& events, int64_t revision) {
            for (const auto& event : events) {
              view.apply(event.kv.key, event.kv.value, event.deleted);
            }
            share(revision);
          },
          stopRequested, &error);
    }
    std::unique_lock lock(mutex_);
    if (watching_) {
      directoryReadMs_ = monotonicMs();  // it was current until now
    }
    watching_ = false;
    if (stop_) {
      break;
    }
    noteStore(false, error.empty() ? "the directory's watch ended" : error);
    wake_.wait_for(lock, RetryInterval, [&] { return stop_; });
  }
}

}  // namespace bulkhead::controlplane
