#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataplane/endpoint.h"
#include "dataplane/flow_table.h"
#include "dpi/protocol_report.h"
#include "rules/policy_snapshot.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::cli {

// One flow as `simulate` reports it (and, later, `bulkhead flows`). Source is the initiator.
struct FlowRecord {
  std::string l4;
  uint8_t ipProtocol = 0;
  std::string srcIp;
  uint16_t srcPort = 0;
  std::string dstIp;
  uint16_t dstPort = 0;
  std::string srcEndpoint;
  std::string dstEndpoint;
  rules::IdentityId srcIdentity = 0;
  rules::IdentityId dstIdentity = 0;
  std::string masterProtocol;  // nDPI's names for what its dissectors found
  std::string appProtocol;
  std::string protocol;  // the part the flow's bytes proved: what the policy judged
  std::string guessed;   // what nDPI guesses from the port and addresses alone, "" for nothing
  std::string confidence;
  uint16_t dpiPackets = 0;  // packets nDPI had seen when it decided
  std::string host;
  std::string verdict;  // allow | deny
  bool enforced = true;
  std::string deniedBy;  // for deny: "ingress" (destination's policy) or "egress" (source's)
  std::string rule;
  std::string state;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t packetsDropped = 0;
  uint64_t firstSeenNs = 0;
};

// Names for flows: endpoints by index, protocols by nDPI id.
class FlowDescriber {
 public:
  // `policy`: the snapshot whose verdicts the flows carry; nullptr when there is none.
  FlowDescriber(const std::vector<dataplane::Endpoint>& endpoints,
                const rules::ProtocolCatalog& catalog, const rules::PolicySnapshot* policy)
      : endpoints_(endpoints), protocols_(catalog), policy_(policy) {}

  FlowRecord describe(dataplane::Flow flow) const;

 private:
  std::string endpointName(uint32_t index, rules::IdentityId identity) const;

  const std::vector<dataplane::Endpoint>& endpoints_;
  dpi::ProtocolReporter protocols_;
  const rules::PolicySnapshot* policy_;
};

nlohmann::json toJson(const FlowRecord& record);
std::string toText(const FlowRecord& record);

}  // namespace bulkhead::cli
