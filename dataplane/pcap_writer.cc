#include "dataplane/pcap_writer.h"

#include <pcap/pcap.h>

#include <cerrno>
#include <cstring>

namespace bulkhead::dataplane {

std::unique_ptr<PcapWriter> PcapWriter::open(const std::string& path, std::string* error) {
  pcap_t* handle = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 262144,
                                                        PCAP_TSTAMP_PRECISION_NANO);
  if (handle == nullptr) {
    *error = "cannot create a pcap handle";
    return nullptr;
  }
  pcap_dumper_t* dumper = pcap_dump_open(handle, path.c_str());
  if (dumper == nullptr) {
    *error = path + ": " + pcap_geterr(handle);
    pcap_close(handle);
    return nullptr;
  }
  return std::unique_ptr<PcapWriter>(new PcapWriter(handle, dumper));
}

PcapWriter::~PcapWriter() {
  if (dumper_ != nullptr) {
    pcap_dump_close(dumper_);
  }
  pcap_close(handle_);
}

void PcapWriter::write(const uint8_t* frame, uint32_t length, uint32_t wireLength,
                       uint64_t timestampNs) {
  pcap_pkthdr header = {};
  header.ts.tv_sec = static_cast<time_t>(timestampNs / 1000000000ull);
  // With nanosecond precision libpcap reads tv_usec as nanoseconds.
  header.ts.tv_usec = static_cast<suseconds_t>(timestampNs % 1000000000ull);
  header.caplen = length;
  header.len = wireLength < length ? length : wireLength;
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, frame);
}

bool PcapWriter::close(std::string* error) {
  const bool flushed = pcap_dump_flush(dumper_) == 0;
  const int savedErrno = errno;
  pcap_dump_close(dumper_);
  dumper_ = nullptr;
  if (!flushed) {
    *error = std::string("cannot write capture: ") + std::strerror(savedErrno);
  }
  return flushed;
}

}  // namespace bulkhead::dataplane
