#include "rules/selector.h"

#include <algorithm>

namespace bulkhead::rules {
namespace {

bool holds(const LabelRequirement& requirement, const Labels& labels) {
  const auto found = labels.find(requirement.key);
  const bool present = found != labels.end();
  const auto listed = [&] {
    return present && std::find(requirement.values.begin(), requirement.values.end(),
                                found->second) != requirement.values.end();
  };
  switch (requirement.op) {
    case LabelRequirement::Operator::In:
      return listed();
    case LabelRequirement::Operator::NotIn:
      return !listed();
    case LabelRequirement::Operator::Exists:
      return present;
    case LabelRequirement::Operator::DoesNotExist:
      return !present;
  }
  return false;
}

const char* operatorName(LabelRequirement::Operator op) {
  switch (op) {
    case LabelRequirement::Operator::In:
      return "in";
    case LabelRequirement::Operator::NotIn:
      return "notin";
    case LabelRequirement::Operator::Exists:
      return "exists";
    case LabelRequirement::Operator::DoesNotExist:
      return "!exists";
  }
  return "?";
}

}  // namespace

bool EndpointSelector::matches(const Labels& labels) const {
  for (const auto& [key, value] : matchLabels) {
    const auto found = labels.find(key);
    if (found == labels.end() || found->second != value) {
      return false;
    }
  }
  return std::all_of(matchExpressions.begin(), matchExpressions.end(),
                     [&](const LabelRequirement& r) { return holds(r, labels); });
}

std::string EndpointSelector::toString() const {
  std::string out;
  for (const auto& [key, value] : matchLabels) {
    out += (out.empty() ? "" : ",") + key + "=" + value;
  }
  for (const auto& requirement : matchExpressions) {
    out += (out.empty() ? "" : ",") + requirement.key + " " + operatorName(requirement.op);
    if (!requirement.values.empty()) {
      out += " (";
      for (size_t i = 0; i < requirement.values.size(); ++i) {
        out += (i ? "," : "") + requirement.values[i];
      }
      out += ")";
    }
  }
  return out.empty() ? "{}" : out;
}

}  // namespace bulkhead::rules
