#pragma once

// Workers without a kernel: a trunk on DPDK's ring PMD whose rx rings the caller fills with
// tagged frames and whose tx rings hold what the workers sent, with everything the workers
// share and a forwarding state of two endpoints, web and api, and a policy that lets web reach
// api on UDP 6100. For the worker's tests and the workers' scaling benchmark; needs the EAL.
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/forwarding_state.h"
#include "dataplane/worker.h"
#include "tests/support/frames.h"

namespace bulkhead::testing {

constexpr uint16_t WebTag = 10;
constexpr uint16_t ApiTag = 11;
constexpr rules::IdentityId WebIdentity = 256;
constexpr rules::IdentityId ApiIdentity = 257;
constexpr const char* WebIp = "10.0.1.10";
constexpr const char* ApiIp = "10.0.2.20";

// The policy's name: the longest a policy may have (253 characters), so that its rule names
// reach the flow dump whole.
const std::string& ringTrunkPolicyName();

// A UDP frame on the trunk with 32 bytes of payload, tagged with the attachment it enters on.
Bytes trunkFrame(uint16_t tag, const char* src, uint16_t srcPort, const char* dst,
                 uint16_t dstPort);
uint16_t tagOf(rte_mbuf* mbuf);

class RingTrunk {
 public:
  // `queues` rx and tx rings of `ringSize` each, a pool of `frames` for what the caller puts,
  // RCU for `queues` workers. `name` must be unique in the process. Throws std::runtime_error
  // when DPDK refuses.
  RingTrunk(const std::string& name, unsigned queues, unsigned ringSize = 4096,
            unsigned frames = 4095);
  ~RingTrunk();  // frees what is left in the rings: the workers must have stopped
  RingTrunk(const RingTrunk&) = delete;
  RingTrunk& operator=(const RingTrunk&) = delete;

  // An inbox per worker, for `count` > 1 workers handing frames to each other.
  void addInboxes(unsigned count);
  // Publishes `state` (after a change to its attachments: index() first).
  void publish() { shared.state.store(&state); }

  // A copy of `frame` into rx queue `queue`; false when the pool or the ring is full.
  bool put(const Bytes& frame, unsigned queue = 0);
  void drainTx();
  size_t drainViolations();

  unsigned queues() const { return static_cast<unsigned>(rx.size()); }

  std::vector<rte_ring*> rx;
  std::vector<rte_ring*> tx;
  uint16_t port = UINT16_MAX;
  rte_mempool* frames = nullptr;
  dataplane::ForwardingState state;
  dataplane::WorkerShared shared;

 private:
  void release();
  std::string name_;
};

}  // namespace bulkhead::testing
