#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rules/cidr.h"
#include "rules/selector.h"
#include "rules/yaml_reader.h"

namespace bulkhead::rules {

// The parts every kind of policy document writes alike, read with their file:line:col
// diagnostics through `reader`: bulkhead's SegmentationPolicy and Kubernetes' NetworkPolicy
// share them.

// A label selector: {matchLabels: {...}, matchExpressions: [{key, operator, values}]}.
EndpointSelector readSelector(YamlReader& reader, const YAML::Node& node, std::string_view what);

// {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}, under `key` (for the messages); nullopt after
// reporting what is wrong.
std::optional<CidrSet> readCidrSet(YamlReader& reader, const YAML::Node& node,
                                   const std::string& key);

}  // namespace bulkhead::rules
