#include "dataplane/hold_queue.h"

#include <rte_mbuf.h>

namespace bulkhead::dataplane {

HoldQueue::HoldQueue(uint32_t capacity, uint32_t perFlow, uint64_t timeoutNs)
    : capacity_(capacity), perFlow_(perFlow), timeoutNs_(timeoutNs) {
  slots_.resize(capacity_);
  free_.reserve(capacity_);
  for (uint32_t i = capacity_; i > 0; --i) {
    free_.push_back(i - 1);
  }
  // Flows that start holding and are released early leave stale entries until they are due:
  // room for several per slot before holding has to say no.
  ring_.resize(size_t{capacity_} * 4);
}

HoldQueue::~HoldQueue() {
  for (Slot& slot : slots_) {
    if (slot.mbuf != nullptr) {
      rte_pktmbuf_free(slot.mbuf);
    }
  }
}

bool HoldQueue::hold(FlowHold& flow, uint32_t owner, rte_mbuf* mbuf, uint16_t egress, uint64_t nowNs) {
  if (!enabled() || free_.empty() || flow.count >= perFlow_) {
    return false;
  }
  if (flow.count == 0) {
    if (ringSize_ == ring_.size()) {
      return false;
    }
    flow.ticket = nextTicket_++;
    if (nextTicket_ == 0) {
      nextTicket_ = 1;  // 0 means "no entry"
    }
    ring_[(ringHead_ + ringSize_) % ring_.size()] = {&flow, owner, flow.ticket, nowNs + timeoutNs_};
    ++ringSize_;
  }
  const uint32_t index = free_.back();
  free_.pop_back();
  slots_[index] = {mbuf, egress, FlowHold::None};
  if (flow.tail == FlowHold::None) {
    flow.head = index;
  } else {
    slots_[flow.tail].next = index;
  }
  flow.tail = index;
  ++flow.count;
  ++used_;
  return true;
}

template <typename Take>
void HoldQueue::takeAll(FlowHold& flow, Take&& take) {
  for (uint32_t index = flow.head; index != FlowHold::None;) {
    Slot& slot = slots_[index];
    take(slot);
    const uint32_t next = slot.next;
    slot = {};
    free_.push_back(index);
    --used_;
    index = next;
  }
  flow = {};
}

void HoldQueue::release(FlowHold& flow, std::vector<Released>& out) {
  takeAll(flow, [&](const Slot& slot) { out.push_back({slot.mbuf, slot.egress}); });
}

uint32_t HoldQueue::drop(FlowHold& flow, uint64_t* bytes) {
  const uint32_t count = flow.count;
  takeAll(flow, [&](const Slot& slot) {
    if (bytes != nullptr) {
      *bytes += rte_pktmbuf_pkt_len(slot.mbuf);
    }
    rte_pktmbuf_free(slot.mbuf);
  });
  return count;
}

}  // namespace bulkhead::dataplane
