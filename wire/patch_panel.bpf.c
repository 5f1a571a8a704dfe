// The patch panel: two tc (clsact, direct-action) programs that put every attached interface
// on the trunk and take frames off it again. Nothing else touches the frames: identity,
// policy and switching are the fast path's, on the other end of the trunk.
//
//   from a port (ingress of a container's host veth, or of a bridge's uplink): the frame gets
//   the port's 802.1Q tag and goes to the trunk's kernel end; its DPDK end hands it to the
//   fast path. A port the map does not know drops everything.
//   from the trunk (ingress of its kernel end: frames the fast path sent): the tag names the
//   port; it is removed and the frame leaves through that port. An unknown tag drops.
//   A frame into the trunk also wakes the fast path when it sleeps (bh_doorbell).
#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "wire/patch_panel_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BH_MAX_PORTS);
  __type(key, __u32);    // ifindex
  __type(value, __u16);  // tag
} bh_port_tag SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, BH_TAGS);
  __type(key, __u32);  // tag
  __type(value, struct bh_port);
} bh_tag_port SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bh_config);
} bh_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, BH_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} bh_counters SEC(".maps");

// An idle worker sets its bh_asleep and blocks on its doorbell ring (dataplane/doorbell.h); the
// next frame into its trunk clears the flag and rings, forcing the wakeup. While the worker is
// awake a frame costs one load of this global. Worker 0's ring is bh_doorbell; the agent makes
// the others' and puts them in bh_doorbells.
struct bh_doorbell_ring {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, BH_DOORBELL_BYTES);
} bh_doorbell SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, BH_MAX_WORKERS);
  __type(key, __u32);
  __array(values, struct bh_doorbell_ring);
} bh_doorbells SEC(".maps") = {
    .values = {[0] = &bh_doorbell},
};

volatile __u32 bh_asleep[BH_MAX_WORKERS];

static __always_inline void ring_doorbell(__u32 trunk) {
  trunk &= BH_MAX_WORKERS - 1;
  if (bh_asleep[trunk]) {
    bh_asleep[trunk] = 0;
    void *ring = bpf_map_lookup_elem(&bh_doorbells, &trunk);
    if (ring) {
      __u8 one = 1;
      bpf_ringbuf_output(ring, &one, sizeof(one), BPF_RB_FORCE_WAKEUP);
    }
  }
}

static __always_inline int count(__u32 counter, int verdict) {
  __u64 *value = bpf_map_lookup_elem(&bh_counters, &counter);
  if (value) {
    *value += 1;
  }
  return verdict;
}

// The trunk of the worker that owns the frame's conversation: the same hash of the address pair
// the workers compute, so both directions of a flow, its fragments and ICMP errors about it
// reach one worker. Read with bpf_skb_load_bytes: a header outside the linear part still counts.
// What does not parse as IP goes to the first trunk, as to a single worker.
static __always_inline __u32 owner_trunk(struct __sk_buff *skb, __u16 proto, __u32 trunks) {
  if (trunks < 2) {
    return 0;
  }
  __u32 a = 0;
  __u32 b = 0;
  if (proto == bpf_htons(ETH_P_IP)) {
    __u32 addresses[2];
    if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), addresses,
                           sizeof(addresses))) {
      return 0;
    }
    a = bpf_ntohl(addresses[0]);
    b = bpf_ntohl(addresses[1]);
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    __u32 addresses[8];
    if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, saddr), addresses,
                           sizeof(addresses))) {
      return 0;
    }
    a = bh_fold_words(bpf_ntohl(addresses[0]), bpf_ntohl(addresses[1]), bpf_ntohl(addresses[2]),
                      bpf_ntohl(addresses[3]));
    b = bh_fold_words(bpf_ntohl(addresses[4]), bpf_ntohl(addresses[5]), bpf_ntohl(addresses[6]),
                      bpf_ntohl(addresses[7]));
  } else {
    return 0;
  }
  return bh_conversation_owner(bh_conversation_hash(a, b), trunks);
}

SEC("tc")
int bh_from_port(struct __sk_buff *skb) {
  __u32 ifindex = skb->ifindex;
  __u16 *tag = bpf_map_lookup_elem(&bh_port_tag, &ifindex);
  if (!tag) {
    return count(BH_PORT_UNKNOWN, TC_ACT_SHOT);
  }
  if (skb->vlan_present) {
    return count(BH_PORT_TAGGED, TC_ACT_SHOT);
  }
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  if (data + ETH_HLEN > end) {
    return count(BH_PORT_TAGGED, TC_ACT_SHOT);
  }
  __u16 proto = ((struct ethhdr *)data)->h_proto;
  if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
    return count(BH_PORT_TAGGED, TC_ACT_SHOT);
  }
  __u32 zero = 0;
  struct bh_config *config = bpf_map_lookup_elem(&bh_config, &zero);
  if (!config || config->trunks == 0 || config->trunks > BH_MAX_WORKERS) {
    return count(BH_NO_TRUNK, TC_ACT_SHOT);
  }
  __u32 trunk = owner_trunk(skb, proto, config->trunks);
  // The owner is below `trunks`, which clang knows and the verifier does not: the empty asm
  // hides it from clang, so the mask the verifier needs stays in the program (a no-op: the
  // bound is a power of two).
  asm volatile("" : "+r"(trunk));
  trunk &= BH_MAX_WORKERS - 1;
  const __u32 trunk_ifindex = config->trunk_ifindex[trunk];
  if (!trunk_ifindex) {
    return count(BH_NO_TRUNK, TC_ACT_SHOT);
  }
  if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), *tag)) {
    return count(BH_PUSH_FAILED, TC_ACT_SHOT);
  }
  count(BH_PORT_TO_TRUNK, 0);
  if (trunk != 0) {
    count(BH_PORT_TO_OTHER_TRUNK, 0);
  }
  ring_doorbell(trunk);
  return bpf_redirect(trunk_ifindex, 0);
}

SEC("tc")
int bh_from_trunk(struct __sk_buff *skb) {
  __u32 tag;
  if (skb->vlan_present) {
    tag = skb->vlan_tci & 0x0fff;
  } else {
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    if (data + ETH_HLEN + 4 > end) {
      return count(BH_TRUNK_UNTAGGED, TC_ACT_SHOT);
    }
    if (((struct ethhdr *)data)->h_proto != bpf_htons(ETH_P_8021Q)) {
      return count(BH_TRUNK_UNTAGGED, TC_ACT_SHOT);
    }
    tag = bpf_ntohs(*(__u16 *)(data + ETH_HLEN)) & 0x0fff;
  }
  struct bh_port *port = bpf_map_lookup_elem(&bh_tag_port, &tag);
  if (!port || !port->ifindex) {
    return count(BH_TRUNK_UNKNOWN_TAG, TC_ACT_SHOT);
  }
  if (bpf_skb_vlan_pop(skb)) {
    return count(BH_PUSH_FAILED, TC_ACT_SHOT);
  }
  count(BH_TRUNK_TO_PORT, 0);
  if (port->flags & BH_PORT_PEER) {
    return bpf_redirect_peer(port->ifindex, 0);
  }
  return bpf_redirect(port->ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
