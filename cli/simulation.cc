#include "cli/simulation.h"

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "controlplane/identity_allocator.h"
#include "dataplane/address_resolver.h"
#include "dataplane/eal.h"
#include "dataplane/pcap_reader.h"
#include "dataplane/pcap_writer.h"
#include "rules/policy_compiler.h"

namespace bulkhead::cli {
namespace {

// The largest frame one mbuf segment holds (data room is a 16-bit field, headroom included).
constexpr unsigned MaxFrame = UINT16_MAX - RTE_PKTMBUF_HEADROOM;
constexpr unsigned PoolSize = 63;  // one packet in flight at a time; a mempool likes 2^n - 1
constexpr size_t ExpireEvery = 1024;

std::string uniqueName(const char* base) {
  static std::atomic<unsigned> counter{0};
  return std::string(base) + std::to_string(counter++);
}

}  // namespace

Simulation::Simulation(SimulationInput input) : input_(std::move(input)) {
  pool_ = dataplane::createPacketPool(uniqueName("sim_pool"), PoolSize, MaxFrame);
}

Simulation::~Simulation() { rte_mempool_free(pool_); }

SimulationResult Simulation::run(dataplane::PcapReader& capture, dataplane::PcapWriter* allowed) {
  controlplane::IdentityAllocator identities;
  for (auto& endpoint : input_.endpoints) {
    endpoint.identity = identities.allocate(endpoint.labels);
  }
  const dataplane::AddressResolver resolver(input_.endpoints, input_.hostIps, input_.hostMacs);
  dataplane::Pipeline pipeline(input_.pipeline, resolver, uniqueName("sim"));
  const auto snapshot =
      rules::compilePolicy(input_.policies, identities.identities(), pipeline.detector().catalog(), 1);
  pipeline.setPolicy(snapshot.get());

  SimulationResult result;
  const FlowDescriber describer(input_.endpoints, pipeline.detector().catalog());
  pipeline.setFlowEndHandler(
      [&](const dataplane::FlowEntry& flow) { result.flows.push_back(describer.describe(flow)); });

  dataplane::CapturedFrame frame;
  uint64_t nowNs = 0;
  for (;;) {
    const auto status = capture.next(frame);
    if (status == dataplane::PcapReader::Status::End) {
      break;
    }
    if (status == dataplane::PcapReader::Status::Error) {
      result.captureError = capture.error();
      break;
    }
    ++result.framesRead;
    // Captures are not always in time order; the clock never runs backwards.
    nowNs = std::max(nowNs, frame.timestampNs);
    if (frame.frame.size() > MaxFrame) {
      ++result.oversized;
      continue;
    }
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool_);
    if (mbuf == nullptr) {
      throw std::runtime_error("mbuf pool exhausted");  // impossible: one mbuf in flight
    }
    const auto length = static_cast<uint16_t>(frame.frame.size());
    if (length > 0) {
      std::memcpy(rte_pktmbuf_append(mbuf, length), frame.frame.data(), length);
    }
    const auto verdict = pipeline.process(mbuf, nowNs, 0);
    if (verdict.action == dataplane::Action::Forward && allowed != nullptr) {
      allowed->write(rte_pktmbuf_mtod(mbuf, const uint8_t*), length, frame.wireLength,
                     frame.timestampNs);
    }
    rte_pktmbuf_free(mbuf);
    if (result.framesRead % ExpireEvery == 0) {
      pipeline.expire(nowNs, ExpireEvery);
    }
  }

  pipeline.finishDetection();
  pipeline.flows().forEach(
      [&](const dataplane::FlowEntry& flow) { result.flows.push_back(describer.describe(flow)); });
  std::stable_sort(result.flows.begin(), result.flows.end(),
                   [](const FlowRecord& a, const FlowRecord& b) {
                     return a.firstSeenNs < b.firstSeenNs;
                   });
  result.counters = pipeline.counters();
  return result;
}

}  // namespace bulkhead::cli
