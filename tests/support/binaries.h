#pragma once

#include <string>

namespace bulkhead::testing {

// A program this build made (bulkheadd, bulkhead, bulkhead-cni), by its path in the build tree.
inline std::string builtBinary(const std::string& name) {
  return std::string(BULKHEAD_BINARY_DIR) + "/" + name;
}

}  // namespace bulkhead::testing
