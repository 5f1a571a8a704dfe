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

  rules::IdentityId allocate(const rules::Labels& labels);
  rules::IdentityList identities() const;

  // Writes the state file (atomically: temporary file, then rename) if anything changed since
  // the last save. False with the reason when it could not.
  bool save(std::string* error);

 private:
  std::map<rules::Labels, rules::IdentityId> byLabels_;
  rules::IdentityId next_ = rules::reserved_identity::FirstEndpoint;
  std::string stateFile_;
  bool dirty_ = false;
};

}  // namespace bulkhead::controlplane
