#include "dpi/protocol_report.h"

#include "rules/protocol_names.h"

namespace bulkhead::dpi {

ProtocolReport ProtocolReporter::describe(const Classification* classification, uint8_t ipProtocol,
                                          const rules::IpAddress& initiator, uint16_t initiatorPort,
                                          const rules::IpAddress& responder,
                                          uint16_t responderPort) const {
  ProtocolReport report;
  auto names = rules::protocolNames(
      classification != nullptr ? classification->protocol : rules::AppProtocol{}, catalog_);
  report.master = std::move(names.master);
  report.app = std::move(names.app);
  report.judged = rules::protocolLabel(
      classification != nullptr ? classification->policyProtocol() : rules::AppProtocol{},
      catalog_);
  const rules::AppProtocol guessed =
      guess_.guess(ipProtocol, initiator, initiatorPort, responder, responderPort);
  if (guessed.app != 0 || guessed.master != 0) {
    report.guessed = rules::protocolLabel(guessed, catalog_);
  }
  return report;
}

}  // namespace bulkhead::dpi
