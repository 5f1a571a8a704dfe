// Seeds the fuzz corpora from real captures (scripts/fuzz.sh): every frame becomes one input of
// packet_parser_fuzz, and every run of up to 32 consecutive frames one input of pipeline_fuzz
// (each frame a 2-byte big-endian length and its bytes, as pipeline_fuzz reads them).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "dataplane/pcap_reader.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: seed_corpus FRAMES_DIR SEQUENCES_DIR CAPTURE...\n";
    return 2;
  }
  const std::filesystem::path frames = argv[1];
  const std::filesystem::path sequences = argv[2];
  std::filesystem::create_directories(frames);
  std::filesystem::create_directories(sequences);
  size_t frameCount = 0;
  size_t sequenceCount = 0;
  for (int i = 3; i < argc; ++i) {
    std::string error;
    auto capture = bulkhead::dataplane::PcapReader::open(argv[i], &error);
    if (!capture) {
      std::cerr << "seed_corpus: " << error << "\n";
      continue;
    }
    const std::string base = std::filesystem::path(argv[i]).filename().string();
    bulkhead::dataplane::CapturedFrame frame;
    std::string sequence;
    size_t inSequence = 0;
    const auto flush = [&] {
      if (!sequence.empty()) {
        std::ofstream(sequences / (base + "-" + std::to_string(sequenceCount++))) << sequence;
      }
      sequence.clear();
      inSequence = 0;
    };
    while (capture->next(frame) == bulkhead::dataplane::PcapReader::Status::Frame) {
      if (frame.frame.size() > 0xFFFF) {
        continue;
      }
      const std::string bytes(frame.frame.begin(), frame.frame.end());
      std::ofstream(frames / (base + "-" + std::to_string(frameCount++))) << bytes;
      sequence += static_cast<char>(bytes.size() >> 8);
      sequence += static_cast<char>(bytes.size() & 0xFF);
      sequence += bytes;
      if (++inSequence == 32) {
        flush();
      }
    }
    flush();
  }
  std::cout << "seed_corpus: " << frameCount << " frames, " << sequenceCount << " sequences\n";
  return 0;
}
