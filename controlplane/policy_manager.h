#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/histogram.h"
#include "rules/identity.h"
#include "rules/policy.h"
#include "rules/policy_loader.h"
#include "rules/policy_snapshot.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::controlplane {

// The policy in force: the files it came from, their digest, and the snapshot compiled from it
// for the identities that exist. A load that fails validation changes nothing; a snapshot is
// compiled again only when the policy or the set of identities changed since the last one.
// Owned by the control thread.
class PolicyManager {
 public:
  PolicyManager(std::vector<std::string> paths, const rules::ProtocolCatalog& catalog)
      : paths_(std::move(paths)), catalog_(catalog) {}

  // Validates the files (and the cluster's documents); on success they are the policy in force
  // and the next snapshot() is compiled from them. Errors are `file:line:col: message` lines;
  // warnings are logged.
  bool load(std::vector<std::string>* errors);
  // The cluster's documents (docs/multihost.md), loaded with the files from the next load().
  void setClusterDocuments(std::vector<rules::PolicyText> documents) {
    cluster_ = std::move(documents);
  }
  const std::vector<rules::PolicyText>& clusterDocuments() const { return cluster_; }

  // The snapshot for `identities`; `identitiesChanged` says the list differs from the last call.
  rules::PolicySnapshotPtr snapshot(const rules::IdentityList& identities, bool identitiesChanged);

  const rules::PolicySet& policies() const { return policies_; }
  // The snapshot compiled last (what the workers have once it is published); null before.
  const rules::PolicySnapshotPtr& current() const { return snapshot_; }
  const std::vector<std::string>& paths() const { return paths_; }
  const std::string& sha256() const { return sha256_; }
  // Counts compilations: what the API and the audit log call the policy generation.
  uint64_t generation() const { return generation_; }
  // Compilations skipped because nothing the snapshot depends on changed.
  uint64_t compilesSaved() const { return compilesSaved_; }
  // Loads (the start's, reloads) that were applied, and those refused by validation.
  uint64_t loadsApplied() const { return loadsApplied_; }
  uint64_t loadsRejected() const { return loadsRejected_; }
  // How long each compilation took, in seconds.
  const metrics::Histogram& compileSeconds() const { return compileSeconds_; }

 private:
  std::vector<std::string> paths_;
  std::vector<rules::PolicyText> cluster_;
  const rules::ProtocolCatalog& catalog_;
  rules::PolicySet policies_;
  std::string sha256_;
  rules::PolicySnapshotPtr snapshot_;
  bool stale_ = true;
  uint64_t generation_ = 0;
  uint64_t compilesSaved_ = 0;
  uint64_t loadsApplied_ = 0;
  uint64_t loadsRejected_ = 0;
  // From 100 µs (a handful of rules) to 10 s (thousands of identities times thousands of rules).
  metrics::Histogram compileSeconds_{{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
};

}  // namespace bulkhead::controlplane
