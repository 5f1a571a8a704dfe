#include "wire/trunk_doorbell.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <unistd.h>

namespace bulkhead::wire {
namespace {

int counted(void*, void*, size_t) {
  return 0;  // a ring says only "a frame came": nothing to read in it
}

}  // namespace

std::unique_ptr<TrunkDoorbell> TrunkDoorbell::open(uint32_t* asleep, int ringFd, int ownedFd,
                                                   std::string* error) {
  ring_buffer* ring = ring_buffer__new(ringFd, counted, nullptr, nullptr);
  if (ring == nullptr) {
    *error = std::string("the fast path's doorbell (BPF ring buffer): ") + std::strerror(errno);
    if (ownedFd >= 0) {
      close(ownedFd);
    }
    return nullptr;
  }
  return std::unique_ptr<TrunkDoorbell>(new TrunkDoorbell(asleep, ring, ownedFd));
}

TrunkDoorbell::~TrunkDoorbell() {
  ring_buffer__free(ring_);
  if (ownedFd_ >= 0) {
    close(ownedFd_);
  }
}

void TrunkDoorbell::arm() {
  // Sequentially consistent (a full barrier): the flag is visible to the BPF program before the
  // worker's last look at the rx ring, so a frame is either in the ring by that look or found
  // the flag set and rings.
  std::atomic_ref<uint32_t>(*asleep_).store(1, std::memory_order_seq_cst);
}

bool TrunkDoorbell::wait(int timeoutMs) {
  return ring_buffer__poll(ring_, timeoutMs) != 0;  // records consumed, or -EINTR
}

void TrunkDoorbell::disarm() {
  std::atomic_ref<uint32_t>(*asleep_).store(0, std::memory_order_relaxed);
  ring_buffer__consume(ring_);
}

}  // namespace bulkhead::wire
