/* Which worker owns a conversation: computed alike by the patch panel, which sends each frame
 * into its owner's trunk (wire/patch_panel.bpf.c), and by the workers, which hand a frame that
 * reached another worker on to its owner (conversation_owner.h). C, so that both compilers read
 * it; the two must agree for the kernel's choice to stick, and the hand-off corrects any frame
 * on which they do not. */
#ifndef BULKHEAD_DATAPLANE_CONVERSATION_HASH_H
#define BULKHEAD_DATAPLANE_CONVERSATION_HASH_H

#include <linux/types.h>

/* The most workers (and so trunks) an agent runs. */
#define BH_MAX_WORKERS 16

/* An address folded to 32 bits: the XOR of the four words of its 16-byte form (IPv4 in the
 * first four bytes, the rest zero), each read in network byte order. */
static inline __u32 bh_fold_words(__u32 w0, __u32 w1, __u32 w2, __u32 w3) {
  return w0 ^ w1 ^ w2 ^ w3;
}

/* Symmetric in the two folded addresses, so both directions of a conversation land alike; the
 * murmur3 finaliser spreads neighbouring addresses over all workers. */
static inline __u32 bh_conversation_hash(__u32 a, __u32 b) {
  const __u32 low = a < b ? a : b;
  const __u32 high = a < b ? b : a;
  __u32 h = (low * 0x9e3779b1u) ^ high;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* The high bits, scaled: no modulo, and independent of the low bits the flow table's own index
 * uses. */
static inline __u32 bh_conversation_owner(__u32 hash, __u32 workers) {
  return (__u32)(((__u64)hash * workers) >> 32);
}

#endif
