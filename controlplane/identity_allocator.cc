#include "controlplane/identity_allocator.h"

namespace bulkhead::controlplane {

rules::IdentityId IdentityAllocator::allocate(const rules::Labels& labels) {
  const auto [found, inserted] = byLabels_.emplace(labels, next_);
  if (inserted) {
    ++next_;
  }
  return found->second;
}

rules::IdentityList IdentityAllocator::identities() const {
  rules::IdentityList out;
  for (const auto& [labels, id] : byLabels_) {
    out.push_back({id, labels});
  }
  return out;
}

}  // namespace bulkhead::controlplane
