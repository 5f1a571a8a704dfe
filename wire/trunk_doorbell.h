#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/doorbell.h"

struct ring_buffer;

namespace bulkhead::wire {

// A worker's doorbell on the patch panel (dataplane/doorbell.h): `asleep` is the worker's slot
// of the BPF program's global bh_asleep, mapped into the agent, and `ringFd` its ring buffer,
// which the worker blocks on (epoll through libbpf); `ownedFd` (or -1) is closed with it. Made by
// PatchPanel::doorbell(); must not outlive the panel.
class TrunkDoorbell final : public dataplane::Doorbell {
 public:
  static std::unique_ptr<TrunkDoorbell> open(uint32_t* asleep, int ringFd, int ownedFd,
                                             std::string* error);
  ~TrunkDoorbell() override;
  TrunkDoorbell(const TrunkDoorbell&) = delete;
  TrunkDoorbell& operator=(const TrunkDoorbell&) = delete;

  void arm() override;
  bool wait(int timeoutMs) override;
  void disarm() override;

 private:
  TrunkDoorbell(uint32_t* asleep, ring_buffer* ring, int ownedFd)
      : asleep_(asleep), ring_(ring), ownedFd_(ownedFd) {}

  uint32_t* asleep_;  // shared with the BPF program: only accessed atomically
  ring_buffer* ring_;
  int ownedFd_;
};

}  // namespace bulkhead::wire
