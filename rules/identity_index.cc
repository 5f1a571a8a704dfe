#include "rules/identity_index.h"

#include <algorithm>

namespace bulkhead::rules {
namespace {

std::string labelKey(const std::string& key, const std::string& value) {
  std::string out;
  out.reserve(key.size() + 1 + value.size());
  out.append(key).push_back('\0');
  out.append(value);
  return out;
}

}  // namespace

IdentityIndex::IdentityIndex(const IdentityList& identities) : identities_(identities) {
  for (uint32_t position = 0; position < identities.size(); ++position) {
    for (const auto& [key, value] : identities[position].labels) {
      byKey_[key].push_back(position);
      byLabel_[labelKey(key, value)].push_back(position);
    }
  }
}

const IdentityIndex::Positions* IdentityIndex::withKey(const std::string& key) const {
  static const Positions none;
  const auto found = byKey_.find(key);
  return found == byKey_.end() ? &none : &found->second;
}

const IdentityIndex::Positions* IdentityIndex::withLabel(const std::string& key,
                                                         const std::string& value) const {
  static const Positions none;
  const auto found = byLabel_.find(labelKey(key, value));
  return found == byLabel_.end() ? &none : &found->second;
}

std::vector<IdentityId> IdentityIndex::select(const EndpointSelector& selector) const {
  // The narrowest positive term: every identity the selector matches is among its candidates.
  const Positions* candidates = nullptr;
  Positions unionOfValues;  // an In requirement's candidates, when they are the narrowest
  const auto narrower = [&](const Positions* positions) {
    if (candidates == nullptr || positions->size() < candidates->size()) {
      candidates = positions;
    }
  };
  for (const auto& [key, value] : selector.matchLabels) {
    narrower(withLabel(key, value));
  }
  for (const auto& requirement : selector.matchExpressions) {
    if (requirement.op == LabelRequirement::Operator::Exists) {
      narrower(withKey(requirement.key));
    } else if (requirement.op == LabelRequirement::Operator::In &&
               (candidates == nullptr || candidates->size() > 0)) {
      Positions merged;
      for (const auto& value : requirement.values) {
        const Positions* positions = withLabel(requirement.key, value);
        merged.insert(merged.end(), positions->begin(), positions->end());
      }
      if (candidates == nullptr || merged.size() < candidates->size()) {
        std::sort(merged.begin(), merged.end());
        merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
        unionOfValues = std::move(merged);
        candidates = &unionOfValues;
      }
    }
  }
  std::vector<IdentityId> out;
  const auto consider = [&](uint32_t position) {
    const Identity& identity = identities_[position];
    if (selector.matches(identity.labels)) {
      out.push_back(identity.id);
    }
  };
  if (candidates != nullptr) {
    for (const uint32_t position : *candidates) {
      consider(position);
    }
  } else {
    for (uint32_t position = 0; position < identities_.size(); ++position) {
      consider(position);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bulkhead::rules
