#pragma once

#include <cstdint>
#include <string>

#include "dpi/classification.h"
#include "dpi/ndpi_guess.h"
#include "rules/cidr.h"
#include "rules/protocol_catalog.h"

namespace bulkhead::dpi {

// How every report (simulate, `bulkhead flows`, the violation log) names a flow's protocol:
//  - master/app: nDPI's names for what its dissectors found, as ndpiReader spells them
//    ("IMAPS"/"IMAPS", "TLS"/"YouTube", "Unknown"/"Unknown");
//  - judged: the part the flow's own bytes proved, which is all a policy matched ("TLS",
//    "TLS.YouTube", "Unknown");
//  - guessed: what nDPI would say from the port and addresses alone ("PostgreSQL",
//    "TLS.Google"), "" when nothing: context for people, never for policy.
struct ProtocolReport {
  std::string master;
  std::string app;
  std::string judged;
  std::string guessed;
};

// Not thread-safe (it owns an NdpiGuess): one per reporting thread.
class ProtocolReporter {
 public:
  explicit ProtocolReporter(const rules::ProtocolCatalog& catalog) : catalog_(catalog) {}

  // `classification` null: the verdict came before nDPI named anything.
  ProtocolReport describe(const Classification* classification, uint8_t ipProtocol,
                          const rules::IpAddress& initiator, uint16_t initiatorPort,
                          const rules::IpAddress& responder, uint16_t responderPort) const;

  const rules::ProtocolCatalog& catalog() const { return catalog_; }

 private:
  const rules::ProtocolCatalog& catalog_;
  NdpiGuess guess_;
};

}  // namespace bulkhead::dpi
