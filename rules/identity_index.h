#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "rules/identity.h"
#include "rules/selector.h"

namespace bulkhead::rules {

// Which identities a selector picks, without testing every identity against every selector: an
// inverted index from label key, and from key and value, to identities. A selector is tested only
// against the identities of its narrowest positive term (a matchLabels entry, an In or an Exists
// requirement); one with none (empty, or only NotIn and DoesNotExist) is tested against all.
// Built once per compilation over a list that must outlive it.
class IdentityIndex {
 public:
  explicit IdentityIndex(const IdentityList& identities);

  // The ids of the identities `selector` matches (EndpointSelector::matches), sorted.
  std::vector<IdentityId> select(const EndpointSelector& selector) const;

 private:
  using Positions = std::vector<uint32_t>;  // into the list, ascending
  const Positions* withKey(const std::string& key) const;
  const Positions* withLabel(const std::string& key, const std::string& value) const;

  const IdentityList& identities_;
  std::unordered_map<std::string, Positions> byKey_;
  std::unordered_map<std::string, Positions> byLabel_;  // key, '\0', value
};

}  // namespace bulkhead::rules
