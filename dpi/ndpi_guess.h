#pragma once

#include <cstdint>

#include "rules/cidr.h"
#include "rules/policy_snapshot.h"

struct ndpi_detection_module_struct;

namespace bulkhead::dpi {

// What nDPI says of a flow from its port and its addresses alone, without reading a byte of it:
// the default port's protocol and the owner of a known address range. nDPI's own reader folds
// this into its labels ("PostgreSQL.HTTP" for HTTP sent to 5432, "TLS.Google" for a Google
// address); bulkhead reports it beside the inspected protocol and never lets a policy see it.
//
// Owns a detection module of its own (about 7 MB), so it can sit on the control side; not
// thread-safe (one per thread that reports).
class NdpiGuess {
 public:
  NdpiGuess();
  ~NdpiGuess();
  NdpiGuess(const NdpiGuess&) = delete;
  NdpiGuess& operator=(const NdpiGuess&) = delete;

  // {0, 0} when neither the port nor an address suggests anything. nDPI 4.2 knows address
  // ranges for IPv4 only.
  rules::AppProtocol guess(uint8_t ipProtocol, const rules::IpAddress& initiator,
                           uint16_t initiatorPort, const rules::IpAddress& responder,
                           uint16_t responderPort) const;

 private:
  ndpi_detection_module_struct* module_ = nullptr;
};

}  // namespace bulkhead::dpi
