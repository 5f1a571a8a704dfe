#include "dpi/detector.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dpi/ndpi.h"
#include "dpi/protocol_evidence.h"

namespace bulkhead::dpi {
namespace {

Confidence fromNdpi(ndpi_confidence_t confidence) {
  switch (confidence) {
    case NDPI_CONFIDENCE_MATCH_BY_PORT:
      return Confidence::MatchByPort;
    case NDPI_CONFIDENCE_MATCH_BY_IP:
      return Confidence::MatchByIp;
    case NDPI_CONFIDENCE_DPI_CACHE:
      return Confidence::DpiCache;
    case NDPI_CONFIDENCE_DPI:
      return Confidence::Dpi;
    default:
      return Confidence::Unknown;
  }
}

}  // namespace

const char* toString(Confidence confidence) {
  switch (confidence) {
    case Confidence::Unknown:
      return "Unknown";
    case Confidence::MatchByPort:
      return "Match by port";
    case Confidence::MatchByIp:
      return "Match by IP";
    case Confidence::DpiCache:
      return "DPI (cache)";
    case Confidence::Dpi:
      return "DPI";
  }
  return "Unknown";
}

Detector::Detector(const DetectorConfig& config) : config_(config) {
  module_ = ndpi_init_detection_module(ndpi_no_prefs);
  if (module_ == nullptr) {
    throw std::runtime_error("nDPI: cannot initialise a detection module");
  }
  NDPI_PROTOCOL_BITMASK all;
  NDPI_BITMASK_SET_ALL(all);
  ndpi_set_protocol_detection_bitmask2(module_, &all);
  ndpi_finalize_initialization(module_);
  catalog_ = std::make_unique<NdpiProtocolCatalog>(module_);
  // Round up so every struct in the pool stays suitably aligned.
  flowSize_ = (ndpi_detection_get_sizeof_ndpi_flow_struct() + 63) & ~size_t{63};
  if (config_.maxClassifyingFlows >= NoFree) {
    throw std::invalid_argument("nDPI: at most 2^32 - 2 flows can be classified at once");
  }
  if (config_.maxClassifyingFlows > 0) {
    pool_.reset(static_cast<std::byte*>(
        std::aligned_alloc(64, size_t{config_.maxClassifyingFlows} * flowSize_)));
    if (!pool_) {
      throw std::runtime_error("nDPI: no memory for " +
                               std::to_string(config_.maxClassifyingFlows) + " flows' state");
    }
  }
}

Detector::~Detector() {
  ndpi_exit_detection_module(module_);
}

ndpi_flow_struct* Detector::acquire() {
  uint32_t index;
  if (freeHead_ != NoFree) {
    index = freeHead_;
    std::memcpy(&freeHead_, pool_.get() + size_t{index} * flowSize_, sizeof(freeHead_));
  } else if (fresh_ < config_.maxClassifyingFlows) {
    index = fresh_++;
    stats_.pooled = fresh_;
  } else {
    return nullptr;
  }
  auto* flow = reinterpret_cast<ndpi_flow_struct*>(pool_.get() + size_t{index} * flowSize_);
  std::memset(static_cast<void*>(flow), 0, flowSize_);
  // nDPI guesses a protocol from the port and the addresses on a flow's first packet, then lets
  // those guesses run its dissectors (the port's dissector goes first), fill the half of the
  // answer that no dissector found ("PostgreSQL.HTTP" for HTTP sent to 5432, "DNS.Google" for a
  // Google address) and name a flow it gave up on. A client picks its port and its server, so
  // none of that may reach a policy. Marking the guess as made, with nothing guessed, leaves
  // only what the dissectors read in the flow's own bytes (docs/policy.md, "What a protocol
  // rule matches").
  flow->protocol_id_already_guessed = 1;
  ++stats_.inUse;
  return flow;
}

void Detector::recycle(ndpi_flow_struct* flow) {
  // nDPI may hang allocations off the flow (TLS certificates, HTTP fields); free those, keep ours.
  ndpi_free_flow_data(flow);
  auto* bytes = reinterpret_cast<std::byte*>(flow);
  std::memcpy(bytes, &freeHead_, sizeof(freeHead_));
  freeHead_ = static_cast<uint32_t>((bytes - pool_.get()) / flowSize_);
  --stats_.inUse;
}

void Detector::finish(DpiFlowState& state, uint16_t master, uint16_t app, Classification& out) {
  out.protocol = {master, app};
  out.packets = state.packets;
  out.confidence = state.ndpi != nullptr ? fromNdpi(state.ndpi->confidence) : Confidence::Unknown;
  out.malformed =
      state.ndpi != nullptr && (state.ndpi->risk & (ndpi_risk{1} << NDPI_MALFORMED_PACKET)) != 0;
  out.inspected = inspectedProtocol(out.protocol, out.confidence, out.malformed,
                                    state.ndpi != nullptr ? state.ndpi->l4_proto : 0);
  out.host.fill('\0');
  if (state.ndpi != nullptr) {
    const char* host = state.ndpi->host_server_name;
    const size_t length = strnlen(host, sizeof(state.ndpi->host_server_name));
    std::memcpy(out.host.data(), host, std::min(length, MaxHostLength));
    recycle(state.ndpi);
    state.ndpi = nullptr;
  }
  state.done = true;
}

bool Detector::process(DpiFlowState& state, const uint8_t* l3, uint16_t length, uint64_t timeMs,
                       Classification& out) {
  if (state.done) {
    return true;
  }
  if (state.ndpi == nullptr) {
    state.ndpi = acquire();
    if (state.ndpi == nullptr) {
      ++stats_.poolExhausted;
      finish(state, NDPI_PROTOCOL_UNKNOWN, NDPI_PROTOCOL_UNKNOWN, out);
      return true;
    }
  }
  const ndpi_protocol detected =
      ndpi_detection_process_packet(module_, state.ndpi, l3, length, timeMs);
  ++state.packets;
  if (detected.app_protocol != NDPI_PROTOCOL_UNKNOWN) {
    ++stats_.classified;
    finish(state, detected.master_protocol, detected.app_protocol, out);
    return true;
  }
  if (state.packets >= config_.packetBudget) {
    giveUp(state, out);
    return true;
  }
  return false;
}

void Detector::giveUp(DpiFlowState& state, Classification& out) {
  if (state.done) {
    return;
  }
  ++stats_.gaveUp;
  if (state.ndpi == nullptr) {
    finish(state, NDPI_PROTOCOL_UNKNOWN, NDPI_PROTOCOL_UNKNOWN, out);
    return;
  }
  u_int8_t guessed = 0;
  const ndpi_protocol detected = ndpi_detection_giveup(module_, state.ndpi, 1, &guessed);
  finish(state, detected.master_protocol, detected.app_protocol, out);
}

void Detector::release(DpiFlowState& state) {
  if (state.ndpi != nullptr) {
    recycle(state.ndpi);
    state.ndpi = nullptr;
  }
  state.done = true;
}

}  // namespace bulkhead::dpi
