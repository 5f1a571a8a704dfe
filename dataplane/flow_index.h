#pragma once

#include <cstddef>
#include <cstdint>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dataplane/mapped_array.h"

namespace bulkhead::dataplane {

__extension__ typedef unsigned __int128 Uint128;  // GCC's and clang's, under -Wpedantic

// The flow table's lookup index: from a key's 64-bit hash to the slot that holds the flow, in
// about 6.3 bytes per flow. Buckets are one cache line of 12 slot numbers with an 8-bit tag each;
// a key that finds its home bucket full goes on to the next one, and every bucket it passes
// counts it (`overflow`), so a lookup stops at the first bucket nothing passed -- no tombstones,
// no rehash, never a move (F14's scheme). Sized at construction for its capacity at 80% load: an
// insert below capacity always finds room. Keys live with the flows, not here: `match(slot)`
// compares them, on the cache line the packet needs next anyway.
//
// One writer (the owning worker), no locks, nothing allocated after construction.
class FlowIndex {
 public:
  static constexpr uint32_t NotFound = UINT32_MAX;

  explicit FlowIndex(uint32_t capacity);

  template <typename Match>
  uint32_t find(uint64_t hash, Match&& match) const;
  // `slot` must not be in the index, and fewer than `capacity` slots may be.
  void insert(uint64_t hash, uint32_t slot);
  void erase(uint64_t hash, uint32_t slot);
  // Brings the key's home bucket towards the cache ahead of a find (a burst's lookups overlap).
  void prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[home(hash)]); }
  // The first slot in the key's home bucket whose tag matches: most likely the key's, so its flow
  // can be fetched ahead of the find too. NotFound when none does.
  uint32_t likelySlot(uint64_t hash) const {
    const Bucket& entry = buckets_[home(hash)];
    const uint32_t ways = candidates(entry, tag(hash));
    return ways != 0 && entry.slot[__builtin_ctz(ways)] != 0 ? entry.slot[__builtin_ctz(ways)] - 1
                                                             : NotFound;
  }

  size_t bytes() const { return buckets_.bytes(); }

 private:
  static constexpr int Ways = 12;
  struct alignas(64) Bucket {
    uint32_t slot[Ways];  // slot + 1; 0: empty
    uint8_t tag[Ways];
    uint32_t overflow;  // keys homed before this bucket that are stored after it
  };
  static_assert(sizeof(Bucket) == 64);

  size_t home(uint64_t hash) const {
    return static_cast<size_t>((static_cast<Uint128>(hash) * count_) >> 64);
  }
  static uint8_t tag(uint64_t hash) { return static_cast<uint8_t>(hash); }
  // The ways whose tag is `wanted`, one bit each: the 12 tags compared at once where SSE2 is.
  static uint32_t candidates(const Bucket& bucket, uint8_t wanted) {
#ifdef __SSE2__
    // The 16 bytes from the tags on are the tags and `overflow`: only the low 12 bits count.
    const __m128i tags = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bucket.tag));
    const int equal =
        _mm_movemask_epi8(_mm_cmpeq_epi8(tags, _mm_set1_epi8(static_cast<char>(wanted))));
    return static_cast<uint32_t>(equal) & ((1u << Ways) - 1);
#else
    uint32_t ways = 0;
    for (int way = 0; way < Ways; ++way) {
      ways |= uint32_t{bucket.tag[way] == wanted} << way;
    }
    return ways;
#endif
  }
  size_t next(size_t bucket) const {
    return bucket + 1 < count_ ? bucket + 1 : 0;
  }

  size_t count_;
  MappedArray<Bucket> buckets_;
};

template <typename Match>
uint32_t FlowIndex::find(uint64_t hash, Match&& match) const {
  const uint8_t wanted = tag(hash);
  for (size_t bucket = home(hash), probed = 0; probed < count_; bucket = next(bucket), ++probed) {
    const Bucket& entry = buckets_[bucket];
    for (uint32_t ways = candidates(entry, wanted); ways != 0; ways &= ways - 1) {
      const int way = __builtin_ctz(ways);
      if (entry.slot[way] != 0 && match(entry.slot[way] - 1)) {
        return entry.slot[way] - 1;
      }
    }
    if (entry.overflow == 0) {
      break;
    }
  }
  return NotFound;
}

}  // namespace bulkhead::dataplane
