#pragma once

#include <map>
#include <string>
#include <vector>

#include "learning/observed_edge.h"
#include "rules/policy.h"
#include "rules/policy_snapshot.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::learning {

// One recorded edge as two policies judge it.
struct EdgeChange {
  ObservedEdge edge;
  rules::Verdict before;  // the policy in force
  std::string beforeRule;
  rules::Verdict after;  // the suggestion
  std::string afterRule;
};

// What applying a suggestion instead of the policy in force changes (`policy suggest --diff`),
// judged on the recorded edges themselves: both policy sets are compiled for the identities the
// edges name and every edge is asked of both.
struct SuggestionDiff {
  // Denied by the policy in force (dropped, or passed only because it is in monitor mode) and
  // allowed by the suggestion.
  std::vector<EdgeChange> opened;
  // Allowed or passed by the policy in force and denied by the suggestion.
  std::vector<EdgeChange> closed;
  // Directions of a workload that the policy in force leaves open (no enforce-mode policy
  // selects them) and the suggestion makes default-deny: what was not seen closes there.
  std::vector<std::string> isolated;
  // Rules of the policy in force that decided none of the recorded flows ("name (file:line)").
  std::vector<std::string> unusedRules;
  size_t unchanged = 0;
};

SuggestionDiff diffSuggestion(const std::vector<ObservedEdge>& edges,
                              const rules::PolicySet& inForce, const rules::PolicySet& suggested,
                              const rules::ProtocolCatalog& catalog);

// The diff for people: "+" what opens, "-" what closes, then what stays.
std::string diffText(const SuggestionDiff& diff);

// Identity numbers for the endpoints recorded edges name (from FirstEndpoint on, one per label
// set), to compile policies for and to judge the edges with: the diff's, and the tests' that
// prove a suggestion exact.
class EdgeIdentities {
 public:
  explicit EdgeIdentities(const std::vector<ObservedEdge>& edges);

  // Host, World, or the endpoint's number.
  rules::IdentityId of(const EdgePeer& peer) const;
  const rules::IdentityList& list() const { return list_; }
  // The flow `key` stands for, classified as it was. Refers to `key`'s host: keep it alive.
  rules::FlowQuery query(const EdgeKey& key, const EdgeStats& stats,
                         const rules::ProtocolCatalog& catalog) const;

 private:
  std::map<rules::Labels, rules::IdentityId> ids_;
  rules::IdentityList list_;
};

// "web (app=web) -> api (app=api) TCP/8080 HTTP host api.test".
std::string edgeText(const EdgeKey& key);

}  // namespace bulkhead::learning
