#pragma once

#include <cstdint>

#include "rules/identity.h"
#include "rules/policy.h"
#include "rules/policy_snapshot.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::rules {

// Resolves a validated policy set against the identities that exist now: which identities each
// selector picks, protocol names to ids. The result is immutable; recompile when either changes.
PolicySnapshotPtr compilePolicy(const PolicySet& policies, const IdentityList& identities,
                                const ProtocolCatalog& catalog, uint64_t generation);

}  // namespace bulkhead::rules
