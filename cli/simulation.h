#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/flow_report.h"
#include "dataplane/endpoint.h"
#include "dataplane/pipeline.h"
#include "rules/policy.h"

struct rte_mempool;

namespace bulkhead::dataplane {
class PcapReader;
class PcapWriter;
}  // namespace bulkhead::dataplane

namespace bulkhead::cli {

struct SimulationInput {
  rules::PolicySet policies;
  std::vector<dataplane::Endpoint> endpoints;  // identities assigned by the simulation
  std::vector<rules::IpAddress> hostIps;
  std::vector<dataplane::MacAddress> hostMacs;
  dataplane::PipelineConfig pipeline;
};

struct SimulationResult {
  std::vector<FlowRecord> flows;  // in order of first packet
  dataplane::PipelineCounters counters;
  uint64_t framesRead = 0;
  uint64_t oversized = 0;  // frames larger than an mbuf can hold: counted, not processed
  std::optional<std::string> captureError;  // set when the capture is truncated or corrupt
};

// Runs a capture through the live pipeline, packet by packet as mbufs, with capture time as the
// clock (so flow timeouts behave as they would have live). Needs the EAL to be initialised.
class Simulation {
 public:
  explicit Simulation(SimulationInput input);
  ~Simulation();

  // Packets the pipeline forwards are written to `allowed` when given.
  SimulationResult run(dataplane::PcapReader& capture, dataplane::PcapWriter* allowed);

 private:
  SimulationInput input_;
  rte_mempool* pool_ = nullptr;
};

}  // namespace bulkhead::cli
