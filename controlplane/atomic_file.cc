#include "controlplane/atomic_file.h"

#include <filesystem>
#include <fstream>

namespace bulkhead::controlplane {

bool writeFileAtomically(const std::string& path, const std::string& content, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << content;
    if (!out.flush()) {
      *error = "cannot write " + temporary;
      return false;
    }
  }
  fs::rename(temporary, path, ec);
  if (ec) {
    *error = "cannot replace " + path + ": " + ec.message();
    return false;
  }
  return true;
}

}  // namespace bulkhead::controlplane
