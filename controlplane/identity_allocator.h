#pragma once

#include <map>
#include <string>

#include "rules/identity.h"

namespace bulkhead::controlplane {

// Gives every distinct label set one numeric identity; the same labels always get the same id.
// With a state file the mapping survives restarts, so logs and metrics keep meaning the same
// workload by the same number. Ids start at reserved_identity::FirstEndpoint.
class IdentityAllocator {
 public:
  IdentityAllocator() = default;
  // Reads `stateFile` if it exists. An unreadable or corrupt file is moved aside to
  // `<stateFile>.corrupt` and reported in `warning`: identities are numbering, not policy,
  // so starting a fresh numbering is safe.
  IdentityAllocator(std::string stateFile, std::string* warning);

  // The label set's number: the one it had, else the next one. Shared, a new label set gets
  // Unknown instead, until assign() gives it the cluster's.
  rules::IdentityId allocate(const rules::Labels& labels);
  rules::IdentityList identities() const;

  // Beyond one host (docs/multihost.md) the numbers are the cluster's and this allocator only
  // their cache, kept in the state file so that a restart without the store keeps them.
  void setShared(bool shared) { shared_ = shared; }
  bool shared() const { return shared_; }
  // The cluster's number for `labels`; a number it moved away from another label set leaves
  // that one. True when it changed anything.
  bool assign(const rules::Labels& labels, rules::IdentityId id);
  // Shared: no endpoint here has `labels` any more, and the cluster may give its number to
  // another label set once no host refers to it; the next endpoint with them asks again.
  bool forget(const rules::Labels& labels);

  // Writes the state file (atomically: temporary file, then rename) if anything changed since
  // the last save. False with the reason when it could not.
  bool save(std::string* error);

 private:
  std::map<rules::Labels, rules::IdentityId> byLabels_;
  rules::IdentityId next_ = rules::reserved_identity::FirstEndpoint;
  std::string stateFile_;
  bool dirty_ = false;
  bool shared_ = false;
};

}  // namespace bulkhead::controlplane
