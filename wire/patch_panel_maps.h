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
