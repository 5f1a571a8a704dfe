#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "learning/observed_edge.h"
#include "learning/workload.h"
#include "rules/policy.h"

namespace bulkhead::learning {

struct SuggestOptions {
  // Only the workloads of the endpoint of this name (bulkhead.io/name); empty: every workload.
  std::string endpoint;
  // Flows an enforce-mode policy dropped are evidence of what was refused, not of what the
  // workload needs: left out unless asked for.
  bool includeDenied = false;
  // Host names under one parent domain become one `*.parent` pattern, when two or more were
  // seen there. Off by default: a wildcard allows names nobody saw.
  bool hostWildcards = false;
  rules::Mode mode = rules::Mode::Enforce;
  std::vector<std::string> groupLabels = WorkloadLabels;
};

struct SuggestedPolicy {
  std::string name;  // metadata.name; the file is name + ".yaml"
  Workload workload;
  std::string yaml;  // one SegmentationPolicy document, its evidence in comments
};

struct Suggestion {
  std::vector<SuggestedPolicy> policies;
  std::vector<ObservedEdge> allowed;  // the edges the suggestion allows
  // Edges of the workloads suggested for that it does not allow: dropped by enforce-mode
  // policies (without includeDenied), or with a peer no rule can name.
  std::vector<ObservedEdge> leftOut;
  bool endpointFound = true;  // options.endpoint names an endpoint of some edge
};

// The minimal allow-list of `edges` (docs/operations.md, "Learning a policy"): one policy per
// workload seen as an endpoint, selecting it by the labels that tell workloads apart, with both
// directions default-deny and one rule per peer that allows exactly the ports and the protocols
// inspection proved on them. World destinations are allowed by the host names their flows named
// (TLS SNI, DNS query, HTTP Host), by address only where none was named; world sources as the
// entity. A protocol nDPI could not name is allowed by port alone, said in a comment.
Suggestion suggestPolicies(const std::vector<ObservedEdge>& edges, const SuggestOptions& options);

// Every policy of `suggestion` as one YAML text, documents separated by "---".
std::string suggestionYaml(const Suggestion& suggestion);

}  // namespace bulkhead::learning
