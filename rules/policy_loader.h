#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "rules/diagnostic.h"
#include "rules/policy.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::rules {

inline constexpr std::string_view PolicyApiVersion = "bulkhead.io/v1";
inline constexpr std::string_view PolicyKind = "SegmentationPolicy";

// What loading found: the policies that were valid and every problem, in file order. A set with
// any diagnostic must not be enforced: the caller keeps the policy it had.
struct PolicyLoadResult {
  PolicySet set;
  Diagnostics errors;
  // Valid, but worth a look (a protocol no real server has been seen to be classified as, say).
  Diagnostics warnings;
  bool ioFailure = false;  // a path could not be read at all (as opposed to invalid content)
  bool ok() const { return errors.empty(); }
};

// A directory's *.yaml and *.yml files, in name order: what a directory contributes to a policy.
std::vector<std::string> policyFilesIn(const std::string& directory, std::error_code& ec);

// Loads every document of every file; a directory contributes its *.yaml and *.yml files in
// name order. I/O problems (missing file, unreadable directory) are diagnostics at line 0.
PolicyLoadResult loadPolicies(const std::vector<std::string>& paths, const ProtocolCatalog& catalog);

// Documents kept elsewhere than in files (the cluster's, in etcd: docs/multihost.md), each with
// the name diagnostics and the policy's sources give it ("etcd:/bulkhead/policies/web").
struct PolicyText {
  std::string name;
  std::string text;
  bool operator==(const PolicyText&) const = default;
};

// The files' documents and then `texts`', as one set: a name given twice is an error wherever
// the two are.
PolicyLoadResult loadPolicies(const std::vector<std::string>& paths,
                              const std::vector<PolicyText>& texts, const ProtocolCatalog& catalog);

// Loads documents from text; `fileName` is only used in diagnostics.
PolicyLoadResult loadPolicyText(std::string_view text, const std::string& fileName,
                                const ProtocolCatalog& catalog);

}  // namespace bulkhead::rules
