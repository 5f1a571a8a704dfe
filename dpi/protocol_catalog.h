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

 private:
  void load(ndpi_detection_module_struct* module);

  std::unordered_map<std::string, uint16_t> byLowerName_;
  std::vector<std::string> byId_;
  std::vector<std::string> names_;
};

}  // namespace bulkhead::dpi
