#pragma once

#include <iosfwd>

#include "rules/policy.h"

namespace bulkhead::cli {

// One policy as operators read it: mode, what it selects, each rule's peers and ports.
void summarisePolicy(const rules::Policy& policy, std::ostream& out);

}  // namespace bulkhead::cli
