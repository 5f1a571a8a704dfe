#pragma once

#include <map>

#include "rules/identity.h"

namespace bulkhead::controlplane {

// Gives every distinct label set one numeric identity; the same labels always get the same id
// from one allocator. Ids start at reserved_identity::FirstEndpoint.
class IdentityAllocator {
 public:
  rules::IdentityId allocate(const rules::Labels& labels);
  rules::IdentityList identities() const;

 private:
  std::map<rules::Labels, rules::IdentityId> byLabels_;
  rules::IdentityId next_ = rules::reserved_identity::FirstEndpoint;
};

}  // namespace bulkhead::controlplane
