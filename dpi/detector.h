#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "dpi/classification.h"
#include "dpi/protocol_catalog.h"

struct ndpi_detection_module_struct;
struct ndpi_flow_struct;

namespace bulkhead::dpi {

struct DetectorConfig {
  // Packets (both directions) nDPI may see per flow before it must give up and guess.
  uint16_t packetBudget = 32;
  // Flows under classification at once; past it, new flows are classified Unknown at once.
  uint32_t maxClassifyingFlows = 65536;
};

// The per-flow handle kept in the flow entry while detection runs.
struct DpiFlowState {
  ndpi_flow_struct* ndpi = nullptr;
  uint16_t packets = 0;
  bool done = false;
};

// One nDPI detection module. Not thread-safe: each worker owns one. nDPI's per-flow state comes
// from a pool owned here and goes back to it the moment a flow is classified or gives up.
class Detector {
 public:
  explicit Detector(const DetectorConfig& config = {});
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Feeds the flow's next packet, from its IP header on. True when classification is final; then
  // `out` holds it and the flow's nDPI state is released. nDPI never guesses from the port or
  // the addresses here: `out.protocol` is what its dissectors found. The caller must not feed a
  // TCP SYN without ACK after a flow's first packet: nDPI starts the flow over on one, and
  // guesses again.
  bool process(DpiFlowState& state, const uint8_t* l3, uint16_t length, uint64_t timeMs,
               Classification& out);
  // Ends detection with nDPI's guess (budget spent, flow expired, capture ended).
  void giveUp(DpiFlowState& state, Classification& out);
  // Drops a flow's state without a result (flow evicted).
  void release(DpiFlowState& state);

  const NdpiProtocolCatalog& catalog() const { return *catalog_; }
  const DetectorConfig& config() const { return config_; }

  struct Stats {
    uint64_t classified = 0;
    uint64_t gaveUp = 0;
    uint64_t poolExhausted = 0;
    size_t inUse = 0;
    size_t pooled = 0;  // structs of the pool used so far (in use + free)
  };
  const Stats& stats() const { return stats_; }

 private:
  ndpi_flow_struct* acquire();
  void recycle(ndpi_flow_struct* flow);
  void finish(DpiFlowState& state, uint16_t master, uint16_t app, Classification& out);

  DetectorConfig config_;
  ndpi_detection_module_struct* module_ = nullptr;
  std::unique_ptr<NdpiProtocolCatalog> catalog_;
  size_t flowSize_ = 0;
  // Room for maxClassifyingFlows structs, allocated once at construction and so large that the
  // C library maps it: its pages cost memory once a flow uses them, and acquire() never
  // allocates. Free structs are a list threaded through their first bytes; the never-used tail
  // is handed out from `fresh_`.
  struct FreePool {
    void operator()(std::byte* pool) const { std::free(pool); }
  };
  std::unique_ptr<std::byte, FreePool> pool_;
  static constexpr uint32_t NoFree = UINT32_MAX;
  uint32_t freeHead_ = NoFree;
  uint32_t fresh_ = 0;
  Stats stats_;
};

}  // namespace bulkhead::dpi
