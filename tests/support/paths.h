#pragma once

#include <filesystem>
#include <string>

namespace bulkhead::testing {

// The project's real captures live beside the project (../shared/pcaps), never inside it.
inline std::string pcapDir() { return BULKHEAD_PCAP_DIR; }
inline bool havePcaps() { return std::filesystem::is_directory(BULKHEAD_PCAP_DIR); }
inline std::string sourceDir() { return BULKHEAD_SOURCE_DIR; }
inline std::string binaryDir() { return BULKHEAD_BINARY_DIR; }

}  // namespace bulkhead::testing
