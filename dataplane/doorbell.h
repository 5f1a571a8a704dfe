#pragma once

namespace bulkhead::dataplane {

// How an idle worker sleeps without missing a frame: the wire's BPF rings the bell as the next
// frame enters the trunk (wire/trunk_doorbell.h), so a worker with nothing to do costs nothing
// until traffic comes back. The protocol, from the worker's side:
//
//   arm();  then look at the rx queue once more (a frame that entered before arm() rang no bell);
//   if it is still empty, wait();  then disarm() and poll again -- the frame that rang is on its
//   way into the rx ring, not necessarily there yet.
//
// One per worker; only that worker calls it.
class Doorbell {
 public:
  virtual ~Doorbell() = default;
  virtual void arm() = 0;
  // Blocks until the bell rings or `timeoutMs` pass; true when it rang (or the wait was
  // interrupted: treated as a ring, a spurious look costs one poll).
  virtual bool wait(int timeoutMs) = 0;
  // Stops asking for rings and clears those already there.
  virtual void disarm() = 0;
};

}  // namespace bulkhead::dataplane
