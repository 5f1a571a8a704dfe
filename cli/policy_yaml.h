#pragma once

#include <string>

#include "rules/policy.h"

namespace bulkhead::cli {

// `policy` as one SegmentationPolicy document that loads back as the same policy: what
// `bulkhead policy convert` prints for a document of another kind. Every string is quoted so
// that it reads back as the same bytes.
std::string segmentationPolicyYaml(const rules::Policy& policy);

}  // namespace bulkhead::cli
