#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "rules/protocol_catalog.h"

struct ndpi_detection_module_struct;

namespace bulkhead::dpi {

// The application protocols of the linked nDPI, by name and id. Built once from a detection
// module; immutable and thread-safe to read afterwards.
class NdpiProtocolCatalog final : public rules::ProtocolCatalog {
 public:
  explicit NdpiProtocolCatalog(ndpi_detection_module_struct* module);
  // Builds its own short-lived detection module; for tools that only validate policies.
  NdpiProtocolCatalog();

  std::optional<uint16_t> find(std::string_view name) const override;
  std::string name(uint16_t id) const override;
  std::vector<std::string> names() const override { return names_; }
  rules::ProtocolStanding standing(uint16_t id, uint8_t ipProtocol) const override;

  // The ports nDPI associates with a protocol (what it would guess from; never what it
  // inspects). Empty for an unknown id.
  struct DefaultPorts {
    std::vector<uint16_t> tcp;
    std::vector<uint16_t> udp;
  };
  const DefaultPorts& defaultPorts(uint16_t id) const;
  // Ids 1 .. count-1 are protocols (0 is Unknown).
  uint16_t count() const { return static_cast<uint16_t>(byId_.size()); }

 private:
  void load(ndpi_detection_module_struct* module);

  std::unordered_map<std::string, uint16_t> byLowerName_;
  std::vector<std::string> byId_;
  std::vector<std::string> names_;
  std::vector<DefaultPorts> ports_;
};

}  // namespace bulkhead::dpi
