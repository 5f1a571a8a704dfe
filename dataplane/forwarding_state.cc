#include "dataplane/forwarding_state.h"

#include <algorithm>

namespace bulkhead::dataplane {

void ForwardingState::index() {
  byTag.fill(NoAttachment);
  endpointByMac.clear();
  endpointByIp.clear();
  byEndpoint.clear();
  uint16_t highest = 0;
  for (const auto& attachment : attachments) {
    highest = std::max(highest, attachment.segment);
  }
  segments.assign(attachments.empty() ? 0 : size_t{highest} + 1, Segment{});
  for (size_t i = 0; i < attachments.size(); ++i) {
    const auto index = static_cast<int16_t>(i);
    const Attachment& attachment = attachments[i];
    if (attachment.tag < MaxTags) {
      byTag[attachment.tag] = index;
    }
    Segment& segment = segments[attachment.segment];
    if (attachment.uplink) {
      segment.uplink = index;
      continue;
    }
    segment.members.push_back(index);
    byEndpoint[endpointSegmentKey(attachment.segment, attachment.endpointSlot)] = index;
    for (const auto& mac : attachment.macs) {
      endpointByMac[segmentMacKey(attachment.segment, mac)] = index;
    }
    for (const auto& ip : attachment.ips) {
      endpointByIp[{attachment.segment, ip}] = index;
    }
  }
}

const Attachment* ForwardingState::sideOf(uint16_t segment, uint32_t endpointSlot) const {
  int16_t index = NoAttachment;
  if (endpointSlot != UINT32_MAX) {
    if (const auto found = byEndpoint.find(endpointSegmentKey(segment, endpointSlot));
        found != byEndpoint.end()) {
      index = found->second;
    }
  } else if (segment < segments.size()) {
    index = segments[segment].uplink;
  }
  return index == NoAttachment ? nullptr : &attachments[static_cast<size_t>(index)];
}

}  // namespace bulkhead::dataplane
