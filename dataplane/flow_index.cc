#include "dataplane/flow_index.h"

#include <cassert>

namespace bulkhead::dataplane {
namespace {

// 80% load: linear probing over 12-way buckets then rarely leaves the home bucket.
size_t bucketsFor(uint32_t capacity) {
  const size_t slots = (size_t{capacity} * 5 + 3) / 4;
  return slots / 12 + 1;
}

}  // namespace

FlowIndex::FlowIndex(uint32_t capacity) : count_(bucketsFor(capacity)), buckets_(count_) {}

void FlowIndex::insert(uint64_t hash, uint32_t slot) {
  for (size_t bucket = home(hash);; bucket = next(bucket)) {
    Bucket& entry = buckets_[bucket];
    for (int way = 0; way < Ways; ++way) {
      if (entry.slot[way] == 0) {
        entry.slot[way] = slot + 1;
        entry.tag[way] = tag(hash);
        return;
      }
    }
    ++entry.overflow;
  }
}

void FlowIndex::erase(uint64_t hash, uint32_t slot) {
  const size_t first = home(hash);
  size_t bucket = first;
  for (size_t probed = 0; probed < count_; bucket = next(bucket), ++probed) {
    Bucket& entry = buckets_[bucket];
    for (int way = 0; way < Ways; ++way) {
      if (entry.slot[way] == slot + 1) {
        entry.slot[way] = 0;
        // The key no longer passes the buckets before its own.
        for (size_t passed = first; passed != bucket; passed = next(passed)) {
          assert(buckets_[passed].overflow > 0);
          --buckets_[passed].overflow;
        }
        return;
      }
    }
  }
}

}  // namespace bulkhead::dataplane
