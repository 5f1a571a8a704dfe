#include "dpi/ndpi_guess.h"

#include <stdexcept>

#include "dpi/ndpi.h"

namespace bulkhead::dpi {
namespace {

uint32_t hostOrderV4(const rules::IpAddress& address) {
  if (address.family != 4) {
    return 0;
  }
  return (uint32_t(address.bytes[0]) << 24) | (uint32_t(address.bytes[1]) << 16) |
         (uint32_t(address.bytes[2]) << 8) | uint32_t(address.bytes[3]);
}

}  // namespace

NdpiGuess::NdpiGuess() {
  module_ = ndpi_init_detection_module(ndpi_no_prefs);
  if (module_ == nullptr) {
    throw std::runtime_error("nDPI: cannot initialise a detection module");
  }
  ndpi_finalize_initialization(module_);
}

NdpiGuess::~NdpiGuess() {
  ndpi_exit_detection_module(module_);
}

rules::AppProtocol NdpiGuess::guess(uint8_t ipProtocol, const rules::IpAddress& initiator,
                                    uint16_t initiatorPort, const rules::IpAddress& responder,
                                    uint16_t responderPort) const {
  // Without a flow nDPI guesses from nothing but these arguments (its address lookup is the
  // IPv4 range table; an IPv6 flow gets the port's guess only).
  const ndpi_protocol guessed =
      ndpi_guess_undetected_protocol(module_, nullptr, ipProtocol, hostOrderV4(initiator),
                                     initiatorPort, hostOrderV4(responder), responderPort);
  return {guessed.master_protocol, guessed.app_protocol};
}

}  // namespace bulkhead::dpi
