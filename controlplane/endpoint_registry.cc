#include "controlplane/endpoint_registry.h"

#include <algorithm>

namespace bulkhead::controlplane {

std::optional<uint16_t> TagAllocator::allocate() {
  constexpr uint16_t First = 1;
  constexpr uint16_t Last = dataplane::MaxTags - 2;  // 4094; 0 and 4095 are 802.1Q's own
  for (uint16_t tried = 0; tried <= Last - First; ++tried) {
    const uint16_t tag = next_;
    next_ = next_ == Last ? First : static_cast<uint16_t>(next_ + 1);
    if (!taken_[tag]) {
      taken_[tag] = true;
      ++used_;
      return tag;
    }
  }
  return std::nullopt;
}

void TagAllocator::release(uint16_t tag) {
  if (tag < taken_.size() && taken_[tag]) {
    taken_[tag] = false;
    --used_;
  }
}

EndpointRegistry::Endpoint* EndpointRegistry::find(const std::string& name) {
  const auto found = std::find_if(endpoints_.begin(), endpoints_.end(),
                                  [&](const Endpoint& e) { return e.name == name; });
  return found == endpoints_.end() ? nullptr : &*found;
}

EndpointRegistry::Endpoint* EndpointRegistry::findByContainer(const std::string& containerId) {
  if (containerId.empty()) {
    return nullptr;
  }
  const auto found = std::find_if(endpoints_.begin(), endpoints_.end(),
                                  [&](const Endpoint& e) { return e.containerId == containerId; });
  return found == endpoints_.end() ? nullptr : &*found;
}

std::pair<EndpointRegistry::Endpoint*, EndpointRegistry::Attachment*>
EndpointRegistry::findInterface(const std::string& interface) {
  for (auto& endpoint : endpoints_) {
    for (auto& attachment : endpoint.attachments) {
      if (attachment.interface == interface) {
        return {&endpoint, &attachment};
      }
    }
  }
  return {nullptr, nullptr};
}

EndpointRegistry::Endpoint& EndpointRegistry::add(const std::string& name, rules::Labels labels,
                                                  const std::string& source,
                                                  const std::string& containerId,
                                                  bool* newIdentity) {
  const size_t identitiesBefore = identities_.identities().size();
  Endpoint endpoint;
  endpoint.slot = nextSlot_++;
  endpoint.name = name;
  endpoint.identity = identities_.allocate(labels);
  endpoint.labels = std::move(labels);
  endpoint.source = source;
  endpoint.containerId = containerId;
  *newIdentity = identities_.identities().size() != identitiesBefore;
  slotInfo_[endpoint.slot] = {endpoint.name, endpoint.labels};
  endpoints_.push_back(std::move(endpoint));
  return endpoints_.back();
}

void EndpointRegistry::remove(const std::string& name) {
  const auto found = std::find_if(endpoints_.begin(), endpoints_.end(),
                                  [&](const Endpoint& e) { return e.name == name; });
  if (found == endpoints_.end()) {
    return;
  }
  for (const auto& attachment : found->attachments) {
    tags_.release(attachment.tag);
  }
  endpoints_.erase(found);
}

void EndpointRegistry::relabel(Endpoint& endpoint, rules::Labels labels, bool* newIdentity) {
  const size_t identitiesBefore = identities_.identities().size();
  endpoint.identity = identities_.allocate(labels);
  endpoint.labels = std::move(labels);
  *newIdentity = identities_.identities().size() != identitiesBefore;
  slotInfo_[endpoint.slot] = {endpoint.name, endpoint.labels};
}

bool EndpointRegistry::applyIdentity(const rules::Labels& labels, rules::IdentityId id) {
  bool changed = identities_.assign(labels, id);
  for (auto& endpoint : endpoints_) {
    if (endpoint.labels == labels && endpoint.identity != id) {
      endpoint.identity = id;
      changed = true;
    }
  }
  return changed;
}

EndpointRegistry::Segment& EndpointRegistry::segment(const std::string& bridge) {
  if (Segment* existing = findSegment(bridge)) {
    return *existing;
  }
  Segment made;
  made.id = static_cast<uint16_t>(segments_.size());
  made.bridge = bridge;
  segments_.push_back(std::move(made));
  return segments_.back();
}

EndpointRegistry::Segment* EndpointRegistry::findSegment(const std::string& bridge) {
  const auto found = std::find_if(segments_.begin(), segments_.end(),
                                  [&](const Segment& s) { return s.bridge == bridge; });
  return found == segments_.end() ? nullptr : &*found;
}

EndpointRegistry::Segment* EndpointRegistry::segmentById(uint16_t id) {
  return id < segments_.size() ? &segments_[id] : nullptr;
}

std::optional<EndpointInfo> EndpointRegistry::infoForSlot(uint32_t slot) const {
  const auto found = slotInfo_.find(slot);
  if (found == slotInfo_.end()) {
    return std::nullopt;
  }
  return found->second;
}

void EndpointRegistry::fill(dataplane::ForwardingState& state) const {
  state.attachments.clear();
  for (const auto& endpoint : endpoints_) {
    for (const auto& attachment : endpoint.attachments) {
      dataplane::Attachment out;
      out.tag = attachment.tag;
      out.segment = attachment.segment;
      out.endpointSlot = endpoint.slot;
      // Labels still to come, or (shared identities) no number yet: nothing to judge it by.
      out.blocked =
          endpoint.labelsPending || endpoint.identity == rules::reserved_identity::Unknown;
      out.identity = endpoint.identity;
      out.macs = attachment.macs;
      out.ips = attachment.ips;
      state.attachments.push_back(std::move(out));
    }
  }
  for (const auto& segment : segments_) {
    if (segment.uplinkTag != 0) {
      dataplane::Attachment uplink;
      uplink.tag = segment.uplinkTag;
      uplink.segment = segment.id;
      uplink.uplink = true;
      state.attachments.push_back(std::move(uplink));
    }
    state.hostIps.insert(state.hostIps.end(), segment.hostIps.begin(), segment.hostIps.end());
  }
  state.index();
}

}  // namespace bulkhead::controlplane
