#include "learning/workload.h"

namespace bulkhead::learning {
namespace {

constexpr std::string_view ComposeService = "com.docker.compose.service";
constexpr std::string_view ComposeProject = "com.docker.compose.project";

}  // namespace

Workload workloadOf(const rules::Labels& labels, const std::vector<std::string>& groupLabels) {
  for (const auto& key : groupLabels) {
    const auto found = labels.find(key);
    if (found == labels.end()) {
      continue;
    }
    Workload workload{found->second, {{found->first, found->second}}};
    if (key == ComposeService) {
      if (const auto project = labels.find(ComposeProject); project != labels.end()) {
        workload.selector.emplace(project->first, project->second);
      }
    }
    return workload;
  }
  if (const auto name = labels.find(rules::reserved_labels::Name); name != labels.end()) {
    return {name->second, {{name->first, name->second}}};
  }
  return {"workload", labels};
}

}  // namespace bulkhead::learning
