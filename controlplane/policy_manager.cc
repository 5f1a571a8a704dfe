#include "controlplane/policy_manager.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "controlplane/policy_watcher.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead::controlplane {

bool PolicyManager::load(std::vector<std::string>* errors) {
  if (paths_.empty() && cluster_.empty()) {
    errors->push_back("no policy configured (set 'policy' in the configuration or --policy)");
    ++loadsRejected_;
    return false;
  }
  auto loaded = rules::loadPolicies(paths_, cluster_, catalog_);
  for (const auto& error : loaded.errors) {
    errors->push_back(rules::format(error));
  }
  if (!loaded.ok()) {
    ++loadsRejected_;
    return false;
  }
  for (const auto& warning : loaded.warnings) {
    spdlog::warn("policy: {}", rules::format(warning));
  }
  policies_ = std::move(loaded.set);
  sha256_ = policyDigest(policies_.sources, cluster_);
  stale_ = true;
  ++loadsApplied_;
  return true;
}

rules::PolicySnapshotPtr PolicyManager::snapshot(const rules::IdentityList& identities,
                                                 bool identitiesChanged) {
  if (!stale_ && !identitiesChanged && snapshot_) {
    ++compilesSaved_;
    return snapshot_;
  }
  ++generation_;
  const auto start = std::chrono::steady_clock::now();
  snapshot_ = rules::compilePolicy(policies_, identities, catalog_, generation_);
  compileSeconds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  stale_ = false;
  return snapshot_;
}

}  // namespace bulkhead::controlplane
