#include "dataplane/anti_spoofing.h"

#include <algorithm>
#include <cstring>

namespace bulkhead::dataplane {
namespace {

constexpr uint16_t EtherTypeArp = 0x0806;

template <typename T>
bool contains(const std::vector<T>& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

bool sourceAllowed(const Attachment& attachment, const PacketMeta& meta, const uint8_t* frame,
                   size_t length) {
  const bool arp = meta.etherType == EtherTypeArp && meta.status == ParseStatus::NotIp;
  if (arp && length < meta.l3Offset + ArpBodyLength) {
    return false;
  }
  if (!attachment.macs.empty() && !contains(attachment.macs, meta.srcMac)) {
    return false;
  }
  if (attachment.ips.empty()) {
    return true;
  }
  if (meta.status == ParseStatus::Ok) {
    const bool v6LinkLocal =
        meta.srcIp.family == 6 &&
        ((meta.srcIp.bytes[0] == 0xFE && (meta.srcIp.bytes[1] & 0xC0) == 0x80) ||
         meta.srcIp == rules::IpAddress{6, {}});
    return v6LinkLocal || contains(attachment.ips, meta.srcIp);
  }
  if (arp) {
    // htype(2) ptype(2) hlen(1) plen(1) op(2) sha(6) spa(4) ...
    const uint8_t* body = frame + meta.l3Offset;
    MacAddress senderMac;
    std::memcpy(senderMac.bytes.data(), body + 8, 6);
    const rules::IpAddress senderIp = rules::IpAddress::fromBytes(4, body + 14);
    const uint8_t unspecified[4] = {0, 0, 0, 0};  // ARP probe (RFC 5227) before an address is used
    const bool probe = senderIp == rules::IpAddress::fromBytes(4, unspecified);
    return (attachment.macs.empty() || contains(attachment.macs, senderMac)) &&
           (probe || contains(attachment.ips, senderIp));
  }
  return true;
}

}  // namespace bulkhead::dataplane
