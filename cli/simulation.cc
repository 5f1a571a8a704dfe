#include "cli/simulation.h"

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "controlplane/identity_allocator.h"
#include "dataplane/address_resolver.h"
#include "dataplane/eal.h"
#include "dataplane/packet_parser.h"
#include "dataplane/pcap_reader.h"
#include "dataplane/pcap_writer.h"
#include "rules/policy_compiler.h"

namespace bulkhead::cli {
namespace {

// The largest frame one mbuf segment holds (data room is a 16-bit field, headroom included).
constexpr unsigned MaxFrame = UINT16_MAX - RTE_PKTMBUF_HEADROOM;
// One packet in flight, plus what the pipeline may hold back; a mempool likes 2^n - 1.
constexpr unsigned SpareMbufs = 63;
constexpr size_t ExpireEvery = 1024;

std::string uniqueName(const char* base) {
  static std::atomic<unsigned> counter{0};
  return std::string(base) + std::to_string(counter++);
}

// A held packet's place in the capture, for writing it out when it is let go.
struct HeldFrame {
  uint64_t timestampNs;
  uint32_t wireLength;
};

}  // namespace

Simulation::Simulation(SimulationInput input) : input_(std::move(input)) {
  unsigned size = SpareMbufs + input_.pipeline.hold.packets;
  size |= size >> 1;
  size |= size >> 2;
  size |= size >> 4;
  size |= size >> 8;
  size |= size >> 16;
  pool_ = dataplane::createPacketPool(uniqueName("sim_pool"), size, MaxFrame);
}

Simulation::~Simulation() {
  rte_mempool_free(pool_);
}

SimulationResult Simulation::run(dataplane::PcapReader& capture, dataplane::PcapWriter* allowed) {
  controlplane::IdentityAllocator identities;
  for (auto& endpoint : input_.endpoints) {
    endpoint.identity = identities.allocate(endpoint.labels);
  }
  const dataplane::AddressResolver resolver(input_.endpoints, input_.hostIps, input_.hostMacs);
  dataplane::Pipeline pipeline(input_.pipeline, resolver);
  const auto snapshot = rules::compilePolicy(input_.policies, identities.identities(),
                                             pipeline.detector().catalog(), 1);
  pipeline.setPolicy(snapshot.get());

  SimulationResult result;
  const FlowDescriber describer(input_.endpoints, pipeline.detector().catalog(), snapshot.get());
  pipeline.setFlowEndHandler(
      [&](dataplane::Flow flow) { result.flows.push_back(describer.describe(flow)); });

  // Held packets leave in their own order, with their own timestamps.
  std::unordered_map<rte_mbuf*, HeldFrame> held;
  const auto writeReleased = [&](dataplane::Pipeline& from, dataplane::PcapWriter* to) {
    auto& released = from.released();
    for (const auto& packet : released) {
      const auto found = held.find(packet.mbuf);
      if (to != nullptr && found != held.end()) {
        to->write(rte_pktmbuf_mtod(packet.mbuf, const uint8_t*), packet.mbuf->data_len,
                  found->second.wireLength, found->second.timestampNs);
      }
      if (found != held.end()) {
        held.erase(found);
      }
      rte_pktmbuf_free(packet.mbuf);
    }
    released.clear();
  };

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
    // Held packets whose time ran out by this frame's timestamp go first, as they would live.
    pipeline.releaseDue(nowNs);
    writeReleased(pipeline, allowed);
    rte_mbuf* mbuf = rte_pktmbuf_alloc(pool_);
    if (mbuf == nullptr) {
      throw std::runtime_error("mbuf pool exhausted");  // impossible: the pool covers holds
    }
    const auto length = static_cast<uint16_t>(frame.frame.size());
    if (length > 0) {
      std::memcpy(rte_pktmbuf_append(mbuf, length), frame.frame.data(), length);
    }
    const auto meta = dataplane::parsePacket(frame.frame.data(), length);
    const auto verdict = pipeline.process(mbuf, meta, nowNs, 0, 0);
    writeReleased(pipeline, allowed);
    if (verdict.action == dataplane::Action::Hold) {
      held[mbuf] = {frame.timestampNs, frame.wireLength};
      continue;
    }
    if (verdict.action == dataplane::Action::Forward && allowed != nullptr) {
      allowed->write(rte_pktmbuf_mtod(mbuf, const uint8_t*), length, frame.wireLength,
                     frame.timestampNs);
    }
    rte_pktmbuf_free(mbuf);
    if (result.framesRead % ExpireEvery == 0) {
      pipeline.expire(nowNs, ExpireEvery);
      writeReleased(pipeline, allowed);
    }
  }

  pipeline.finishDetection();
  writeReleased(pipeline, allowed);
  pipeline.flows().forEach(
      [&](dataplane::Flow flow) { result.flows.push_back(describer.describe(flow)); });
  std::stable_sort(
      result.flows.begin(), result.flows.end(),
      [](const FlowRecord& a, const FlowRecord& b) { return a.firstSeenNs < b.firstSeenNs; });
  result.counters = pipeline.counters();
  return result;
}

}  // namespace bulkhead::cli
