#include "tests/support/ring_trunk.h"

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <cstring>
#include <stdexcept>

#include "dataplane/eal.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"

namespace bulkhead::testing {

const std::string& ringTrunkPolicyName() {
  static const std::string name = "api-" + std::string(249, 'x');
  return name;
}

Bytes trunkFrame(uint16_t tag, const char* src, uint16_t srcPort, const char* dst,
                 uint16_t dstPort) {
  const Bytes packet = ipv4({.src = src, .dst = dst, .protocol = 17, .id = 1},
                            udp(srcPort, dstPort, Bytes(32, 0x5A)));
  return join({ethernet(EtherIpv4, {{EtherVlan, tag}}), packet});
}

uint16_t tagOf(rte_mbuf* mbuf) {
  const uint8_t* frame = rte_pktmbuf_mtod(mbuf, const uint8_t*);
  return static_cast<uint16_t>(((frame[14] & 0x0F) << 8) | frame[15]);
}

RingTrunk::RingTrunk(const std::string& name, unsigned queues, unsigned ringSize, unsigned count)
    : name_(name) {
  const auto fail = [&](const std::string& what) {
    const std::string message = name + ": " + what + ": " + rte_strerror(rte_errno);
    release();
    throw std::runtime_error(message);
  };
  const int socket = static_cast<int>(rte_socket_id());
  // One producer per ring: the caller (rx) or one worker (tx).
  for (unsigned queue = 0; queue < queues; ++queue) {
    const std::string suffix = std::to_string(queue);
    rx.push_back(rte_ring_create((name + "rx" + suffix).c_str(), ringSize, socket,
                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
    tx.push_back(rte_ring_create((name + "tx" + suffix).c_str(), ringSize, socket,
                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
    if (rx.back() == nullptr || tx.back() == nullptr) {
      fail("rings");
    }
  }
  const int made = rte_eth_from_rings((name + "trunk").c_str(), rx.data(), queues, tx.data(),
                                      queues, static_cast<unsigned>(socket));
  if (made < 0) {
    fail("ring port");
  }
  port = static_cast<uint16_t>(made);
  frames = dataplane::createPacketPool(name + "frames", count, 2048);
  const rte_eth_conf conf{};
  if (frames == nullptr || rte_eth_dev_configure(port, static_cast<uint16_t>(queues),
                                                 static_cast<uint16_t>(queues), &conf) != 0) {
    fail("port configuration");
  }
  for (uint16_t queue = 0; queue < queues; ++queue) {
    if (rte_eth_rx_queue_setup(port, queue, 1024, static_cast<unsigned>(socket), nullptr, frames) !=
            0 ||
        rte_eth_tx_queue_setup(port, queue, 1024, static_cast<unsigned>(socket), nullptr) != 0) {
      fail("queue setup");
    }
  }
  if (rte_eth_dev_start(port) != 0) {
    fail("port start");
  }
  shared.packetPool = dataplane::createPacketPool(name + "own", 1023, 2048);
  shared.eventPool =
      rte_mempool_create((name + "events").c_str(), 1023, sizeof(dataplane::ViolationEvent), 0, 0,
                         nullptr, nullptr, nullptr, nullptr, socket, 0);
  shared.violations = rte_ring_create((name + "viol").c_str(), 1024, socket, RING_F_SC_DEQ);
  // Small: a test fills it with a few hundred new flows.
  shared.recordPool =
      rte_mempool_create((name + "records").c_str(), 255, sizeof(dataplane::ViolationEvent), 0, 0,
                         nullptr, nullptr, nullptr, nullptr, socket, 0);
  shared.records = rte_ring_create((name + "rec").c_str(), 256, socket, RING_F_SC_DEQ);
  shared.rcu = static_cast<rte_rcu_qsbr*>(
      rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(queues), RTE_CACHE_LINE_SIZE));
  if (shared.packetPool == nullptr || shared.eventPool == nullptr || shared.violations == nullptr ||
      shared.recordPool == nullptr || shared.records == nullptr || shared.rcu == nullptr ||
      rte_rcu_qsbr_init(shared.rcu, queues) != 0) {
    fail("shared structures");
  }

  const std::string policy =
      "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\n"
      "metadata: {name: " +
      ringTrunkPolicyName() +
      "}\nspec:\n  endpointSelector: {matchLabels: {app: api}}\n"
      "  ingress:\n    - fromEndpoints: [{matchLabels: {app: web}}]\n"
      "      toPorts: [{ports: [{port: 6100, protocol: UDP}]}]\n";
  const dpi::NdpiProtocolCatalog catalog;
  const auto loaded = rules::loadPolicyText(policy, "worker.yaml", catalog);
  if (!loaded.ok()) {
    release();
    throw std::runtime_error(name + ": the policy does not load");
  }
  state.policy = rules::compilePolicy(
      loaded.set, {{WebIdentity, {{"app", "web"}}}, {ApiIdentity, {{"app", "api"}}}}, catalog, 1);
  state.hasTrunk = true;
  for (uint16_t queue = 0; queue < queues; ++queue) {
    state.trunks.push_back({port, queue, {{0x02, 0xAA, 0, 0, 0, 1}}});
  }
  dataplane::Attachment web;
  web.tag = WebTag;
  web.segment = 1;
  web.endpointSlot = 0;
  web.identity = WebIdentity;
  web.ips = {ip(WebIp)};
  dataplane::Attachment api = web;
  api.tag = ApiTag;
  api.endpointSlot = 1;
  api.identity = ApiIdentity;
  api.ips = {ip(ApiIp)};
  state.attachments = {web, api};
  state.index();
  publish();
}

RingTrunk::~RingTrunk() {
  release();
}

void RingTrunk::addInboxes(unsigned count) {
  if (count < 2) {
    return;
  }
  for (unsigned id = 0; id < count; ++id) {
    rte_ring* inbox = rte_ring_create((name_ + "in" + std::to_string(id)).c_str(), 1024,
                                      static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
    if (inbox == nullptr) {
      throw std::runtime_error(name_ + ": inbox: " + rte_strerror(rte_errno));
    }
    shared.inboxes.push_back(inbox);
  }
}

bool RingTrunk::put(const Bytes& frame, unsigned queue) {
  rte_mbuf* mbuf = rte_pktmbuf_alloc(frames);
  if (mbuf == nullptr) {
    return false;
  }
  std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size())), frame.data(),
              frame.size());
  if (rte_ring_enqueue(rx.at(queue), mbuf) != 0) {
    rte_pktmbuf_free(mbuf);
    return false;
  }
  return true;
}

void RingTrunk::drainTx() {
  void* out = nullptr;
  for (rte_ring* ring : tx) {
    while (ring != nullptr && rte_ring_dequeue(ring, &out) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(out));
    }
  }
}

size_t RingTrunk::drainViolations() {
  size_t count = 0;
  void* event = nullptr;
  while (shared.violations != nullptr && rte_ring_dequeue(shared.violations, &event) == 0) {
    rte_mempool_put(shared.eventPool, event);
    ++count;
  }
  return count;
}

void RingTrunk::release() {
  drainTx();
  drainViolations();
  if (port != UINT16_MAX) {
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
    port = UINT16_MAX;
  }
  void* left = nullptr;
  for (rte_ring* ring : rx) {
    while (ring != nullptr && rte_ring_dequeue(ring, &left) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
    }
    rte_ring_free(ring);
  }
  for (rte_ring* ring : tx) {
    rte_ring_free(ring);
  }
  rx.clear();
  tx.clear();
  for (rte_ring* inbox : shared.inboxes) {
    while (rte_ring_dequeue(inbox, &left) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
    }
    rte_ring_free(inbox);
  }
  shared.inboxes.clear();
  rte_ring_free(shared.violations);
  shared.violations = nullptr;
  rte_mempool_free(shared.eventPool);
  shared.eventPool = nullptr;
  while (shared.records != nullptr && rte_ring_dequeue(shared.records, &left) == 0) {
    rte_mempool_put(shared.recordPool, left);
  }
  rte_ring_free(shared.records);
  shared.records = nullptr;
  rte_mempool_free(shared.recordPool);
  shared.recordPool = nullptr;
  rte_mempool_free(shared.packetPool);
  shared.packetPool = nullptr;
  rte_mempool_free(frames);
  frames = nullptr;
  rte_free(shared.rcu);
  shared.rcu = nullptr;
}

}  // namespace bulkhead::testing
