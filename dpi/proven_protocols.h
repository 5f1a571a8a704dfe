#pragma once

#include <span>
#include <string_view>

namespace bulkhead::dpi {

// Protocols whose real sessions bulkhead's live test matrix (tests/integration/
// protocol_matrix_test.cc) runs through the agent between real servers and clients, each
// allowed by a rule naming exactly it: the session completes and is judged as the protocol, and
// the same session under another protocol's rule is cut. The matrix test checks that it covers
// exactly this list, so the list cannot claim more than was shown.
struct ProvenProtocol {
  std::string_view name;    // as nDPI names it (and a rule writes it)
  std::string_view server;  // the Debian package(s) that served it
  std::string_view client;
  std::string_view limits;  // what nDPI 4.2 cannot classify of it, "" when nothing is known
};

std::span<const ProvenProtocol> provenProtocols();
const ProvenProtocol* findProven(std::string_view name);  // case-insensitive; null if not proven

}  // namespace bulkhead::dpi
