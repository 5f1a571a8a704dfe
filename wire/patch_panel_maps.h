// What the patch panel's BPF programs (patch_panel.bpf.c) and the agent (patch_panel.cc) share:
// map sizes, the counters, the configuration record. C, so that both compilers read it.
#pragma once

#include <linux/types.h>

#include "dataplane/conversation_hash.h"

// 802.1Q VLAN ids: a frame's tag on the trunk names the attachment it entered on (or is bound
// for). 0 and 4095 are reserved by 802.1Q and never given out.
#define BH_TAGS 4096
#define BH_MAX_PORTS 8192  // interfaces that may carry a tag at once

// Why a frame went where it went; per CPU, summed by the agent.
enum bh_counter {
  BH_PORT_TO_TRUNK = 0,    // tagged and sent into the trunk
  BH_PORT_UNKNOWN,         // from an interface with no tag (not plugged in): dropped
  BH_PORT_TAGGED,          // already carried a VLAN tag: dropped
  BH_NO_TRUNK,             // no trunk set: dropped
  BH_TRUNK_TO_PORT,        // from the trunk, untagged and sent to its interface
  BH_TRUNK_UNTAGGED,       // from the trunk without a tag: dropped
  BH_TRUNK_UNKNOWN_TAG,    // a tag no interface carries: dropped
  BH_PUSH_FAILED,          // the kernel could not add or remove the tag: dropped
  BH_PORT_TO_OTHER_TRUNK,  // of BH_PORT_TO_TRUNK, sent into a trunk other than the first
  BH_PORT_OFFLOADED,       // an offloaded flow's: sent straight to its egress, past the trunk
  BH_OFFLOAD_STALE,        // an offloaded flow's under an older policy: into the trunk instead
  BH_COUNTERS
};

// Where frames with a tag leave the trunk: the interface, and how.
struct bh_port {
  __u32 ifindex;  // 0 for none
  __u32 flags;
};
// The interface is a veth whose other end is in another namespace (a container's): the frame is
// handed straight to that end's ingress (bpf_redirect_peer), skipping the veth's transmit and the
// backlog queue a second time. Without it (the agent's uplinks, a NIC) it is transmitted.
#define BH_PORT_PEER 1u

// The fast path's doorbell (a BPF ring buffer): one record per ring, a page is plenty.
#define BH_DOORBELL_BYTES 4096

// One trunk per worker (DPDK 22.11's af_xdp driver takes one queue of a veth, which has no
// combined channels): an IP frame goes into the trunk of the worker that owns its conversation
// (dataplane/conversation_hash.h), anything else into trunk 0.
struct bh_config {
  __u32 trunks;                         // how many of trunk_ifindex are set; 0 for none yet
  __u32 trunk_ifindex[BH_MAX_WORKERS];  // the trunks' kernel ends: where tagged frames go
};

// Established-flow offload (docs/architecture.md, "Offloaded flows"). Once a worker's verdict on
// a flow is final and allows it, the worker puts each direction here; the port's program then
// sends that direction's frames straight to the egress interface, GSO super-frames whole. Only
// IPv4 TCP and UDP, never a fragment; a TCP segment with SYN, FIN or RST always goes to the trunk.
#define BH_OFFLOAD_ENTRIES 65536  // directions: two per flow

// One direction, as it enters: the tag of the interface it came in on (so that no other
// attachment can use the entry by spoofing the addresses), then the 5-tuple in network order.
struct bh_offload_key {
  __u16 tag;
  __u8 protocol;
  __u8 pad;
  __u32 saddr;
  __u32 daddr;
  __u16 sport;
  __u16 dport;
};

struct bh_offload_value {
  __u8 src_mac[6];  // the frame's addresses must be the ones the worker switched
  __u8 dst_mac[6];
  __u16 egress_tag;  // where it goes: bh_tag_port says through which interface, and how
  __u16 pad;
  // Used only while it equals bh_offload_version: the agent moves that before each new policy or
  // forwarding state is in force, so every entry made under the old one is void at once.
  __u32 version;
  // Since the entry was made, as the trunk would have counted them: one packet per segment of a
  // GSO super-frame, each with its Ethernet and 802.1Q header. Written only by the programs.
  __u64 packets;
  __u64 bytes;
  __u64 last_ns;  // bpf_ktime_get_ns (CLOCK_MONOTONIC) of the last frame
};
