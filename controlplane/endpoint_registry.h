#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/identity_allocator.h"
#include "controlplane/violation_log.h"
#include "dataplane/forwarding_state.h"
#include "rules/cidr.h"
#include "rules/labels.h"

namespace bulkhead::controlplane {

// Gives out the trunk's 802.1Q tags, 1..4094, round robin: a tag that was just given back is
// the last to be given again, so a frame still in flight with it is not taken for someone else's.
class TagAllocator {
 public:
  std::optional<uint16_t> allocate();
  void release(uint16_t tag);
  size_t used() const { return used_; }

 private:
  std::vector<bool> taken_ = std::vector<bool>(dataplane::MaxTags, false);
  uint16_t next_ = 1;
  size_t used_ = 0;
};

// Every endpoint the agent protects, wherever it came from (configuration, API and CNI, Docker),
// with its attachments (one per interface, on one segment, with one tag each) and the segments
// themselves (one per bridge the agent protects, plus the segment of interfaces on no bridge).
// Plain data owned by the control thread: the kernel side is the Wire's, the fast path's view is
// built from here (fill).
class EndpointRegistry {
 public:
  struct Attachment {
    std::string interface;  // the host end of the endpoint's veth
    int ifindex = 0;
    uint16_t tag = 0;
    uint16_t segment = 0;
    std::vector<dataplane::MacAddress> macs;
    std::vector<rules::IpAddress> ips;
    std::string netns;               // the container's namespace, when known
    std::string containerInterface;  // its end of the veth ("eth0")
    nlohmann::json request;          // for API endpoints: the attach request, replayed at start
  };

  struct Endpoint {
    uint32_t slot = 0;
    std::string name;
    rules::Labels labels;
    rules::IdentityId identity = 0;
    std::string source;  // "config", "api" (CLI and CNI) or "docker"
    std::string containerId;
    // Its labels are still to come from the runtime: until then it is cut off.
    bool labelsPending = false;
    std::vector<Attachment> attachments;
  };

  struct Segment {
    uint16_t id = 0;
    std::string bridge;  // "" for the segment of interfaces on no bridge
    // The way from the fast path into the bridge: our end of the uplink pair (plugged with
    // `uplinkTag`) and the bridge's end. For segment 0, the configured uplink, if any.
    std::string uplinkInterface;
    std::string uplinkPeer;
    int uplinkIfindex = 0;
    uint16_t uplinkTag = 0;
    std::vector<rules::IpAddress> hostIps;  // the bridge's own addresses: the entity `host`
  };

  explicit EndpointRegistry(IdentityAllocator identities) : identities_(std::move(identities)) {}

  Endpoint* find(const std::string& name);
  Endpoint* findByContainer(const std::string& containerId);
  // The endpoint and attachment carrying `interface`, if any.
  std::pair<Endpoint*, Attachment*> findInterface(const std::string& interface);
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }

  // A new endpoint without attachments: a slot, and its labels' identity. `newIdentity` says
  // whether the label set had none before (the policy then has to be compiled again).
  Endpoint& add(const std::string& name, rules::Labels labels, const std::string& source,
                const std::string& containerId, bool* newIdentity);
  void remove(const std::string& name);
  // New labels for an endpoint (a container that joined one more network): its identity follows.
  void relabel(Endpoint& endpoint, rules::Labels labels, bool* newIdentity);
  // The cluster's number for a label set (shared identities): every endpoint with those labels
  // takes it. True when any identity changed.
  bool applyIdentity(const rules::Labels& labels, rules::IdentityId id);

  // The segment of `bridge` ("" for none), made on first use with the next id.
  Segment& segment(const std::string& bridge);
  Segment* findSegment(const std::string& bridge);
  Segment* segmentById(uint16_t id);
  const std::vector<Segment>& segments() const { return segments_; }

  TagAllocator& tags() { return tags_; }
  IdentityAllocator& identities() { return identities_; }

  // What the violation log knows of a slot: kept after an endpoint goes, for events still queued.
  std::optional<EndpointInfo> infoForSlot(uint32_t slot) const;

  // The fast path's view: every attachment and uplink, the host's addresses.
  void fill(dataplane::ForwardingState& state) const;

 private:
  IdentityAllocator identities_;
  std::vector<Endpoint> endpoints_;
  std::vector<Segment> segments_;
  TagAllocator tags_;
  std::map<uint32_t, EndpointInfo> slotInfo_;
  uint32_t nextSlot_ = 0;
};

}  // namespace bulkhead::controlplane
