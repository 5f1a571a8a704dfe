#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/cidr.h"

struct nl_sock;

namespace bulkhead::controlplane {

// The host's network links as the agent sees and makes them, through rtnetlink (libnl): the
// trunk's veth pair and the uplink pairs into the bridges it protects, the bridges' ports, a
// container's veth. Every call reports failure as false/nullopt with a sentence in `error`; none
// throws.
class HostLinks {
 public:
  static std::unique_ptr<HostLinks> open(std::string* error);
  ~HostLinks();
  HostLinks(const HostLinks&) = delete;
  HostLinks& operator=(const HostLinks&) = delete;

  bool exists(const std::string& name);
  std::string nameOf(int ifindex);         // "" when there is no such link
  int ifindexOf(const std::string& name);  // 0 when there is no such link
  // The bridge (or other master) the link is enslaved to; "" when it has none.
  std::string masterOf(const std::string& name);
  bool isBridge(const std::string& name);
  // Enslaves `name` to `bridge`, or frees it from any master when `bridge` is empty.
  bool setMaster(const std::string& name, const std::string& bridge, std::string* error);
  // A veth pair, both ends up; `peer` enslaved to `bridge` unless it is empty.
  bool createVethPair(const std::string& name, const std::string& peer, const std::string& bridge,
                      std::string* error);
  bool remove(const std::string& name, std::string* error);
  // The addresses configured on the link (a bridge's gateway addresses: the host's own).
  std::vector<rules::IpAddress> addressesOf(const std::string& name);

  struct Link {
    std::string name;
    std::string mac;    // lower case; "" when the link has no Ethernet address
    int peerIndex = 0;  // IFLA_LINK: a veth's peer (in the peer's namespace); 0 when none
    int ifindex = 0;
    int masterIndex = 0;         // the bridge (or other master) it is enslaved to; 0 when none
    std::string kind;            // "veth", "bridge", ...; "" for a device without a link kind
    bool peerElsewhere = false;  // its peer (a veth's other end) is in another namespace
  };
  std::vector<Link> list(std::string* error);
  // One link, in one request; nullopt when there is none.
  std::optional<Link> find(const std::string& name);
  std::optional<Link> find(int ifindex);

 private:
  explicit HostLinks(nl_sock* socket) : socket_(socket) {}
  nl_sock* socket_;
};

// A container's interface on one network and the root-namespace end of its veth.
struct ContainerVeth {
  std::string containerInterface;  // "eth0", inside the container's namespace
  std::string hostInterface;       // "veth1a2b3c4", in ours
};

// Finds the interface with MAC `mac` inside the network namespace at `netnsPath` and the host end
// of its veth (its peer ifindex, read inside the namespace). The namespace is entered by a
// short-lived thread, so the agent's own threads never change namespace.
std::optional<ContainerVeth> containerVethOf(const std::string& netnsPath, const std::string& mac,
                                             HostLinks& links, std::string* error);

// Turns checksum and segmentation offloads off on a link of the agent's own (the trunk's DPDK
// end, the uplink pairs): what the fast path receives is then complete. Best effort: false when
// some feature could not be changed.
bool disableOffloads(const std::string& name, std::string* error);

// For the trunk's kernel end: no VLAN insertion offload (the tag must be in the frame, where the
// DPDK end's af_xdp sees it) and no checksum or segmentation offload (so that the kernel
// completes checksums and segments a container's large sends as they enter the trunk, and the
// containers' own veths can keep their offloads).
bool setTrunkOffloads(const std::string& name, std::string* error);

// The link carries no IPv6 of the host's own (no router solicitations, no DAD): it is one end
// of a wire. Best effort.
void disableIpv6(const std::string& name);

}  // namespace bulkhead::controlplane
