#include "controlplane/wire_names.h"

#include <algorithm>

namespace bulkhead::controlplane {

std::string validateInstanceName(const std::string& instance) {
  const bool valid = !instance.empty() && instance.size() <= 8 &&
                     std::all_of(instance.begin(), instance.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                     });
  return valid ? ""
               : "instance must be 1 to 8 lower-case letters or digits, got '" + instance + "'";
}

}  // namespace bulkhead::controlplane
