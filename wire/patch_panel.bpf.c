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
//   A frame of an offloaded flow (bh_offload: an established flow the fast path has allowed
//   for good) skips the trunk: it goes straight out of the interface its entry names, counted
//   in the entry.
#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
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

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BH_OFFLOAD_ENTRIES);
  __type(key, struct bh_offload_key);
  __type(value, struct bh_offload_value);
} bh_offload SEC(".maps");

// 0: no offload (the configuration says none, or no state is in force yet).
volatile __u32 bh_offload_version;
// The agent moves it a few seconds ahead while it runs (bpf_ktime_get_ns): an agent that died
// stops offloading within that, and every frame goes into the trunk, where nobody takes it --
// the wire fails closed, offloaded flows included.
volatile __u64 bh_offload_until;

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

static __always_inline int same_mac(const __u8 *a, const __u8 *b) {
  return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
          (a[5] ^ b[5])) == 0;
}

static __always_inline int redirect_to(const struct bh_port *port) {
  if (port->flags & BH_PORT_PEER) {
    return bpf_redirect_peer(port->ifindex, 0);
  }
  return bpf_redirect(port->ifindex, 0);
}

// The verdict for a frame of an offloaded flow, or -1: the frame goes to the trunk as any other.
static __always_inline int offloaded(struct __sk_buff *skb, __u16 tag) {
  const __u32 version = bh_offload_version;
  if (version == 0) {
    return -1;
  }
  struct iphdr ip;
  if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip))) {
    return -1;
  }
  // Fragments (MF or an offset) are the fast path's: it alone knows which datagram they are of.
  if (ip.version != 4 || ip.ihl < 5 || (ip.frag_off & bpf_htons(0x3fff))) {
    return -1;
  }
  const __u32 l4 = ETH_HLEN + ip.ihl * 4;
  __u32 headers = ip.ihl * 4;
  __u16 ports[2];
  if (ip.protocol == IPPROTO_TCP) {
    struct tcphdr tcp;
    if (bpf_skb_load_bytes(skb, l4, &tcp, sizeof(tcp))) {
      return -1;
    }
    // Opening and closing are the fast path's: its connection tracking must see them.
    if (tcp.syn || tcp.fin || tcp.rst) {
      return -1;
    }
    ports[0] = tcp.source;
    ports[1] = tcp.dest;
    headers += tcp.doff * 4;
  } else if (ip.protocol == IPPROTO_UDP) {
    if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports))) {
      return -1;
    }
    headers += sizeof(struct udphdr);
  } else {
    return -1;
  }
  struct bh_offload_key key = {
      .tag = tag,
      .protocol = ip.protocol,
      .saddr = ip.saddr,
      .daddr = ip.daddr,
      .sport = ports[0],
      .dport = ports[1],
  };
  struct bh_offload_value *entry = bpf_map_lookup_elem(&bh_offload, &key);
  if (!entry) {
    return -1;
  }
  if (entry->version != version) {
    return count(BH_OFFLOAD_STALE, -1);
  }
  // Read only for a frame the map holds: the rest of the port's frames pay no clock.
  const __u64 now = bpf_ktime_get_ns();
  if (now > bh_offload_until) {
    return -1;
  }
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  if (data + ETH_HLEN > end) {
    return -1;
  }
  const struct ethhdr *eth = data;
  if (!same_mac(eth->h_dest, entry->dst_mac) || !same_mac(eth->h_source, entry->src_mac)) {
    return -1;  // not the frames the fast path switched: let it look at this one
  }
  __u32 egress = entry->egress_tag;
  struct bh_port *port = bpf_map_lookup_elem(&bh_tag_port, &egress);
  if (!port || !port->ifindex) {
    return -1;
  }
  // As the trunk would have counted it: each segment of a super-frame with its own headers
  // and the tag.
  const __u32 segments = skb->gso_segs > 1 ? skb->gso_segs : 1;
  __sync_fetch_and_add(&entry->packets, segments);
  __sync_fetch_and_add(&entry->bytes,
                       skb->len + segments * 4 + (segments - 1) * (ETH_HLEN + headers));
  entry->last_ns = now;
  count(BH_PORT_OFFLOADED, 0);
  return redirect_to(port);
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
  if (proto == bpf_htons(ETH_P_IP)) {
    const int verdict = offloaded(skb, *tag);
    if (verdict >= 0) {
      return verdict;
    }
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
  return redirect_to(port);
}

char LICENSE[] SEC("license") = "GPL";
