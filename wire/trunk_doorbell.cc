#include "wire/trunk_doorbell.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

namespace bulkhead::wire {
namespace {

int counted(void*, void*, size_t) {
  return 0;  // a ring says only "a frame came": nothing to read in it
}

}  // namespace

std::unique_ptr<TrunkDoorbell> TrunkDoorbell::open(volatile uint32_t* asleep, int ringFd,
                                                   std::string* error) {
  ring_buffer* ring = ring_buffer__new(ringFd, counted, nullptr, nullptr);
  if (ring == nullptr) {
    *error = std::string("the fast path's doorbell (BPF ring buffer): ") + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<TrunkDoorbell>(new TrunkDoorbell(asleep, ring));
}

TrunkDoorbell::~TrunkDoorbell() {
  ring_buffer__free(ring_);
}

void TrunkDoorbell::arm() {
  *asleep_ = 1;
  // The store must be visible to the BPF program before the worker's last look at the rx ring:
  // then a frame either is in the ring by that look, or found the flag set and rings.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool TrunkDoorbell::wait(int timeoutMs) {
  return ring_buffer__poll(ring_, timeoutMs) != 0;  // records consumed, or -EINTR
}

void TrunkDoorbell::disarm() {
  *asleep_ = 0;
  ring_buffer__consume(ring_);
}

}  // namespace bulkhead::wire
