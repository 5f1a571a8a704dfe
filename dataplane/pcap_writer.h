#pragma once

#include <cstdint>
#include <memory>
#include <string>

typedef struct pcap pcap_t;
typedef struct pcap_dumper pcap_dumper_t;

namespace bulkhead::dataplane {

// Writes Ethernet frames to a pcap file (nanosecond timestamps).
class PcapWriter {
 public:
  static std::unique_ptr<PcapWriter> open(const std::string& path, std::string* error);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  void write(const uint8_t* frame, uint32_t length, uint32_t wireLength, uint64_t timestampNs);
  // False with the reason when the data could not all be written (disk full, ...).
  bool close(std::string* error);

 private:
  PcapWriter(pcap_t* handle, pcap_dumper_t* dumper) : handle_(handle), dumper_(dumper) {}

  pcap_t* handle_;
  pcap_dumper_t* dumper_;
};

}  // namespace bulkhead::dataplane
