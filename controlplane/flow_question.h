#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "rules/cidr.h"
#include "rules/labels.h"
#include "rules/policy.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::controlplane {

// An endpoint a question may name: its name, its labels, an address of it.
struct KnownEndpoint {
  std::string name;
  rules::Labels labels;
  std::optional<rules::IpAddress> ip;
};

// `bulkhead policy explain`: a flow described in words (the API's explain request: from, to,
// toIp, l4, port, protocol, host), judged by `policies` without traffic -- the verdict, the
// deciding rule and, for a denial, the rule that came closest and what it did not match. A side
// is an endpoint's name, the entity world or host, or labels ("app=web,tier=front"), which
// select as an endpoint with exactly those labels would. The agent asks it of the policy in
// force and its endpoints; the CLI, given --policy, of files. `generation` is only reported.
nlohmann::json answerFlowQuestion(const nlohmann::json& request, const rules::PolicySet& policies,
                                  const std::vector<KnownEndpoint>& endpoints,
                                  const rules::ProtocolCatalog& catalog, uint64_t generation);

}  // namespace bulkhead::controlplane
