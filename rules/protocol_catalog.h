#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::rules {

// What a policy can rely on when a rule names a protocol: the linked nDPI's facts, supplied by
// the dpi module (dpi/protocol_evidence.h, dpi/proven_protocols.h).
struct ProtocolStanding {
  enum class Kind {
    Inspected,    // nDPI reads the protocol's own bytes
    NamedByPort,  // nDPI's name for `provenAs` on some ports: judged as `provenAs`, never this
    DecidedByPort,  // nDPI decides it by port or address: never judged as this name ...
  };
  Kind kind = Kind::Inspected;
  bool namedByHost = false;  // ... except as the app of a host name (TLS.Zoom from an SNI)
  std::string how;           // "UDP port 123 and 3 bits of one byte"
  std::string provenAs;      // for NamedByPort
  // Sessions of real servers and clients were classified as this protocol by bulkhead's live
  // test matrix (docs/policy.md lists them and their limits).
  bool proven = false;
  std::string provenWith;
  std::string limits;  // real sessions nDPI 4.2 leaves Unknown, "" when none are known
};

// Application protocols policies may name. rules/ only needs names and ids; the dpi module
// provides the catalogue of the linked nDPI, so validation always matches what detection reports.
class ProtocolCatalog {
 public:
  virtual ~ProtocolCatalog() = default;

  // Case-insensitive lookup of a protocol name; id 0 is "Unknown".
  virtual std::optional<uint16_t> find(std::string_view name) const = 0;
  virtual std::string name(uint16_t id) const = 0;
  virtual std::vector<std::string> names() const = 0;
  // On a flow of IANA protocol `ipProtocol` (6, 17, or 0 for both).
  virtual ProtocolStanding standing(uint16_t id, uint8_t ipProtocol) const {
    (void)id;
    (void)ipProtocol;
    return {};
  }
};

}  // namespace bulkhead::rules
