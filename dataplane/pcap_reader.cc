#include "dataplane/pcap_reader.h"

#include <pcap/pcap.h>

#include <cstring>

namespace bulkhead::dataplane {
namespace {

constexpr uint8_t Ipv4Type[2] = {0x08, 0x00};
constexpr uint8_t Ipv6Type[2] = {0x86, 0xDD};

bool supported(int linkType) {
  switch (linkType) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

void synthesiseEthernet(const uint8_t* etherType, const uint8_t* payload, size_t length,
                        std::vector<uint8_t>& frame) {
  frame.assign(14, 0);
  frame[12] = etherType[0];
  frame[13] = etherType[1];
  frame.insert(frame.end(), payload, payload + length);
}

// False when the packet is too short for its link-layer header.
bool toEthernet(int linkType, const uint8_t* data, size_t length, std::vector<uint8_t>& frame) {
  switch (linkType) {
    case DLT_EN10MB:
      frame.assign(data, data + length);
      return true;
    case DLT_LINUX_SLL:
      if (length < 16) {
        return false;
      }
      synthesiseEthernet(data + 14, data + 16, length - 16, frame);
      return true;
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
      if (length < 1) {
        return false;
      }
      synthesiseEthernet((data[0] >> 4) == 6 ? Ipv6Type : Ipv4Type, data, length, frame);
      return true;
    case DLT_NULL:
    case DLT_LOOP: {
      if (length < 4) {
        return false;
      }
      // The address family is in host order of the capturing machine; AF_INET is 2 everywhere,
      // AF_INET6 differs by OS, so look at the IP version instead.
      const bool v6 = length > 4 && (data[4] >> 4) == 6;
      synthesiseEthernet(v6 ? Ipv6Type : Ipv4Type, data + 4, length - 4, frame);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

std::unique_ptr<PcapReader> PcapReader::open(const std::string& path, std::string* error) {
  char message[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle = pcap_open_offline_with_tstamp_precision(path.c_str(),
                                                           PCAP_TSTAMP_PRECISION_NANO, message);
  if (handle == nullptr) {
    *error = path + ": " + message;
    return nullptr;
  }
  const int linkType = pcap_datalink(handle);
  if (!supported(linkType)) {
    const char* name = pcap_datalink_val_to_name(linkType);
    *error = path + ": unsupported link type " + std::to_string(linkType) + " (" +
             (name ? name : "unknown") + "); supported: Ethernet, Linux cooked, raw IP, loopback";
    pcap_close(handle);
    return nullptr;
  }
  return std::unique_ptr<PcapReader>(new PcapReader(handle, linkType));
}

PcapReader::~PcapReader() { pcap_close(handle_); }

PcapReader::Status PcapReader::next(CapturedFrame& out) {
  for (;;) {
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    const int result = pcap_next_ex(handle_, &header, &data);
    if (result == PCAP_ERROR_BREAK) {
      return Status::End;
    }
    ++index_;
    out.index = index_;
    if (result != 1) {
      error_ = "packet " + std::to_string(index_) + ": " + pcap_geterr(handle_);
      return Status::Error;
    }
    out.timestampNs = uint64_t(header->ts.tv_sec) * 1000000000ull + uint64_t(header->ts.tv_usec);
    out.wireLength = header->len;
    if (!toEthernet(linkType_, data, header->caplen, out.frame)) {
      out.frame.clear();  // too short for its own link header: the pipeline counts it malformed
    }
    return Status::Frame;
  }
}

}  // namespace bulkhead::dataplane
