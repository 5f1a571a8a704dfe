#pragma once

#include <string>
#include <vector>

#include "rules/labels.h"

namespace bulkhead::learning {

// The labels that say which workload a container belongs to, most telling first. Containers of
// one workload share them while their names (bulkhead.io/name) differ: the service map groups by
// them and suggested policies select by them.
inline const std::vector<std::string> WorkloadLabels = {"app", "app.kubernetes.io/name", "k8s-app",
                                                        "com.docker.compose.service",
                                                        "io.kubernetes.container.name"};

struct Workload {
  std::string name;        // for people and policy names: the deciding label's value
  rules::Labels selector;  // matchLabels that select the workload's endpoints and no others'
};

// The workload of an endpoint with `labels`: the first of `groupLabels` it has (a compose
// service with its project, so two projects' "web" stay apart), else its own name, else all its
// labels.
Workload workloadOf(const rules::Labels& labels,
                    const std::vector<std::string>& groupLabels = WorkloadLabels);

}  // namespace bulkhead::learning
