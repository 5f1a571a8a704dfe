#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rules/policy_loader.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::controlplane {

// `bulkhead policy apply` (docs/multihost.md, "Cluster policy"): the documents of the operator's
// files one by one, each under its policy's name, as the store keeps them. nullopt with every
// problem (`file:line:col: message`, of the files as written) when any document is invalid, or
// when the documents together with `otherDocuments` (the cluster's, those of the same names
// replaced) and `localFiles` would not load as one policy.
std::optional<std::vector<rules::PolicyText>> documentsToApply(
    const std::vector<rules::PolicyText>& files, const std::vector<std::string>& localFiles,
    const std::vector<rules::PolicyText>& otherDocuments, const std::string& keyPrefix,
    const rules::ProtocolCatalog& catalog, std::vector<std::string>* errors);

}  // namespace bulkhead::controlplane
