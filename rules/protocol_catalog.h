#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulkhead::rules {

// Application protocols policies may name. rules/ only needs names and ids; the dpi module
// provides the catalogue of the linked nDPI, so validation always matches what detection reports.
class ProtocolCatalog {
 public:
  virtual ~ProtocolCatalog() = default;

  // Case-insensitive lookup of a protocol name; id 0 is "Unknown".
  virtual std::optional<uint16_t> find(std::string_view name) const = 0;
  virtual std::string name(uint16_t id) const = 0;
  virtual std::vector<std::string> names() const = 0;
};

}  // namespace bulkhead::rules
