#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct pcap pcap_t;

namespace bulkhead::dataplane {

// One captured packet as an Ethernet frame (the pipeline's input): frames of other link types
// (Linux cooked, raw IP, BSD loopback) get a synthesised Ethernet header with zero MACs.
struct CapturedFrame {
  uint64_t index = 0;  // 1-based position in the capture
  uint64_t timestampNs = 0;
  uint32_t wireLength = 0;  // length on the wire; the frame may be shorter (snap length)
  std::vector<uint8_t> frame;
};

// Reads pcap and pcapng files through libpcap.
class PcapReader {
 public:
  // nullptr with the reason in `error` when the file cannot be opened or its link type is not
  // one bulkhead understands.
  static std::unique_ptr<PcapReader> open(const std::string& path, std::string* error);
  ~PcapReader();
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;

  enum class Status { Frame, End, Error };
  // Frame: `out` holds the next packet. End: the capture is over. Error: the file is truncated
  // or corrupt at packet `out.index`; error() says how. Packets before it were valid.
  Status next(CapturedFrame& out);

  const std::string& error() const { return error_; }
  int linkType() const { return linkType_; }

 private:
  PcapReader(pcap_t* handle, int linkType) : handle_(handle), linkType_(linkType) {}

  pcap_t* handle_;
  int linkType_;
  uint64_t index_ = 0;
  std::string error_;
};

}  // namespace bulkhead::dataplane
