#pragma once

#include <string>
#include <vector>

#include "rules/diagnostic.h"
#include "rules/labels.h"

namespace bulkhead::rules {

// One matchExpressions entry, with Kubernetes' operators.
struct LabelRequirement {
  enum class Operator { In, NotIn, Exists, DoesNotExist };
  std::string key;
  Operator op = Operator::Exists;
  std::vector<std::string> values;
};

// Selects endpoints by their labels. All matchLabels and all requirements must hold; an empty
// selector selects every endpoint (as in Kubernetes).
struct EndpointSelector {
  Labels matchLabels;
  std::vector<LabelRequirement> matchExpressions;
  SourceLocation where;

  bool matches(const Labels& labels) const;
  std::string toString() const;
};

}  // namespace bulkhead::rules
