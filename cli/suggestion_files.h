#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace bulkhead::cli {

struct NamedPolicy {
  std::string name;  // metadata.name: the file is name + ".yaml"
  std::string yaml;
};

// Writes each policy to DIR/<name>.yaml (creating DIR; each file replaced whole, never half
// written), or to `out` as one YAML stream when `directory` is empty. A name that is not a
// policy name ([a-z0-9.-], no leading dot) is refused: it could name a path elsewhere. False
// with the reason on `err`.
bool writePolicies(const std::vector<NamedPolicy>& policies, const std::string& directory,
                   std::ostream& out, std::ostream& err, const std::string& command);

}  // namespace bulkhead::cli
