#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct rte_mbuf;

namespace bulkhead::dataplane {

// A flow's place in the HoldQueue, kept in its FlowEntry.
struct FlowHold {
  static constexpr uint32_t None = UINT32_MAX;
  uint32_t head = None;  // oldest held packet (a slot of the queue)
  uint32_t tail = None;
  uint16_t count = 0;
  uint32_t ticket = 0;  // names this flow's entry in the deadline ring; 0: none
};

// Packets of flows still being classified, kept back so that nothing an L7 rule has not yet
// allowed reaches its destination (docs/policy.md, "What passes before the verdict"). A held
// packet leaves when its flow's verdict arrives (forwarded, or dropped with the flow), or when
// its flow has waited `timeout` since its first held packet, because then classification needs
// the other side's answer, which a held packet would never let come.
//
// Fixed capacity, carved at construction: nothing allocates per packet. One per pipeline
// (worker); not thread-safe.
class HoldQueue {
 public:
  struct Released {
    rte_mbuf* mbuf;
    uint16_t egress;  // what the caller gave with the packet: where it was going
  };

  HoldQueue(uint32_t capacity, uint32_t perFlow, uint64_t timeoutNs);
  ~HoldQueue();  // frees whatever is still held
  HoldQueue(const HoldQueue&) = delete;
  HoldQueue& operator=(const HoldQueue&) = delete;

  bool enabled() const { return capacity_ > 0 && timeoutNs_ > 0; }
  // Appends to the flow's held packets; false when the queue, the flow's share or the deadline
  // ring is full (the caller forwards the packet instead). `owner` is what releaseDue hands
  // back for this flow (its flow table slot).
  bool hold(FlowHold& flow, uint32_t owner, rte_mbuf* mbuf, uint16_t egress, uint64_t nowNs);
  // Moves the flow's held packets, oldest first, to `out`.
  void release(FlowHold& flow, std::vector<Released>& out);
  // Frees the flow's held packets; how many there were (their bytes added to *bytes).
  uint32_t drop(FlowHold& flow, uint64_t* bytes = nullptr);
  // Calls `due(owner)` for every flow that has held packets for longer than the timeout, in
  // the order they started holding; the caller releases (or drops) them. Cheap when nothing is
  // due: one comparison.
  template <typename Due>
  void forEachDue(uint64_t nowNs, Due&& due);

  uint32_t size() const { return used_; }

 private:
  struct Slot {
    rte_mbuf* mbuf = nullptr;
    uint16_t egress = 0;
    uint32_t next = FlowHold::None;
  };
  struct Deadline {
    FlowHold* flow = nullptr;
    uint32_t owner = 0;
    uint32_t ticket = 0;
    uint64_t dueNs = 0;
  };

  // Hands each of the flow's slots, oldest first, to `take`, then frees them.
  template <typename Take>
  void takeAll(FlowHold& flow, Take&& take);

  uint32_t capacity_;
  uint32_t perFlow_;
  uint64_t timeoutNs_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  uint32_t used_ = 0;
  // Every flow that starts holding gets an entry; the timeout is the same for all, so entries
  // are due in the order they were made. A flow released early leaves a stale entry behind,
  // recognised by its ticket.
  std::vector<Deadline> ring_;
  size_t ringHead_ = 0;
  size_t ringSize_ = 0;
  uint32_t nextTicket_ = 1;
};

template <typename Due>
void HoldQueue::forEachDue(uint64_t nowNs, Due&& due) {
  while (ringSize_ > 0 && ring_[ringHead_].dueNs <= nowNs) {
    const Deadline entry = ring_[ringHead_];
    ringHead_ = (ringHead_ + 1) % ring_.size();
    --ringSize_;
    // A flow released early, or gone, left its entry behind: its ticket moved on.
    if (entry.flow->ticket == entry.ticket && entry.flow->count > 0) {
      due(entry.owner);
    }
  }
}

}  // namespace bulkhead::dataplane
