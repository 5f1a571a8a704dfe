// A worker on a real DPDK port (the ring PMD: the test puts tagged frames on the trunk's rx ring
// and takes what the worker sends from its tx ring), on its own thread as the agent runs it.
#include "dataplane/worker.h"

#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/eal.h"
#include "dpi/protocol_catalog.h"
#include "rules/policy_compiler.h"
#include "rules/policy_loader.h"
#include "tests/support/allocation_counter.h"
#include "tests/support/frames.h"

namespace bulkhead {
namespace {

using testing::Bytes;

constexpr uint16_t WebTag = 10;
constexpr uint16_t ApiTag = 11;
constexpr rules::IdentityId Web = 256;
constexpr rules::IdentityId Api = 257;
constexpr const char* WebIp = "10.0.1.10";
constexpr const char* ApiIp = "10.0.2.20";

// The longest name a policy may have (253 characters): its rule names reach the flow dump whole.
const std::string PolicyName = "api-" + std::string(249, 'x');

const std::string Policy = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: )" + PolicyName +
                           R"(}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 6100, protocol: UDP}]}]
)";

// A UDP frame on the trunk, tagged with the attachment it enters on.
Bytes trunkFrame(uint16_t tag, const char* src, uint16_t srcPort, const char* dst,
                 uint16_t dstPort) {
  const Bytes ip = testing::ipv4({.src = src, .dst = dst, .protocol = 17, .id = 1},
                                 testing::udp(srcPort, dstPort, Bytes(32, 0x5A)));
  return testing::join({testing::ethernet(testing::EtherIpv4, {{testing::EtherVlan, tag}}), ip});
}

uint16_t tagOf(rte_mbuf* mbuf) {
  const uint8_t* frame = rte_pktmbuf_mtod(mbuf, const uint8_t*);
  return static_cast<uint16_t>(((frame[14] & 0x0F) << 8) | frame[15]);
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int instance = 0;
    const std::string name = "wt" + std::to_string(instance++);
    const int socket = static_cast<int>(rte_socket_id());
    // Two queues each way, as a trunk shared by two workers has; a test of one worker uses the
    // first. Each ring has one producer: the test or one worker.
    for (unsigned queue = 0; queue < Queues; ++queue) {
      const std::string suffix = std::to_string(queue);
      rx_[queue] = rte_ring_create((name + "rx" + suffix).c_str(), 4096, socket,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
      tx_[queue] = rte_ring_create((name + "tx" + suffix).c_str(), 4096, socket,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
      ASSERT_NE(rx_[queue], nullptr);
      ASSERT_NE(tx_[queue], nullptr);
    }
    const int port = rte_eth_from_rings((name + "trunk").c_str(), rx_.data(), Queues, tx_.data(),
                                        Queues, static_cast<unsigned>(socket));
    ASSERT_GE(port, 0) << rte_strerror(rte_errno);
    port_ = static_cast<uint16_t>(port);
    frames_ = dataplane::createPacketPool(name + "frames", 4095, 2048);
    ASSERT_NE(frames_, nullptr);
    const rte_eth_conf conf{};
    ASSERT_EQ(rte_eth_dev_configure(port_, Queues, Queues, &conf), 0);
    for (uint16_t queue = 0; queue < Queues; ++queue) {
      ASSERT_EQ(rte_eth_rx_queue_setup(port_, queue, 1024, static_cast<unsigned>(socket), nullptr,
                                       frames_),
                0);
      ASSERT_EQ(rte_eth_tx_queue_setup(port_, queue, 1024, static_cast<unsigned>(socket), nullptr),
                0);
    }
    ASSERT_EQ(rte_eth_dev_start(port_), 0);
    shared_.packetPool = dataplane::createPacketPool(name + "own", 1023, 2048);
    shared_.eventPool =
        rte_mempool_create((name + "events").c_str(), 1023, sizeof(dataplane::ViolationEvent), 0, 0,
                           nullptr, nullptr, nullptr, nullptr, socket, 0);
    shared_.violations = rte_ring_create((name + "viol").c_str(), 1024, socket, RING_F_SC_DEQ);
    shared_.rcu = static_cast<rte_rcu_qsbr*>(
        rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(Queues), RTE_CACHE_LINE_SIZE));
    ASSERT_NE(shared_.eventPool, nullptr);
    ASSERT_NE(shared_.violations, nullptr);
    ASSERT_NE(shared_.rcu, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(shared_.rcu, Queues), 0);

    const dpi::NdpiProtocolCatalog catalog;
    const auto loaded = rules::loadPolicyText(Policy, "worker.yaml", catalog);
    ASSERT_TRUE(loaded.ok());
    state_.policy = rules::compilePolicy(
        loaded.set, {{Web, {{"app", "web"}}}, {Api, {{"app", "api"}}}}, catalog, 1);
    state_.hasTrunk = true;
    state_.trunkPort = port_;
    state_.trunkMac = {{0x02, 0xAA, 0, 0, 0, 1}};
    dataplane::Attachment web;
    web.tag = WebTag;
    web.segment = 1;
    web.endpointSlot = 0;
    web.identity = Web;
    web.ips = {testing::ip(WebIp)};
    dataplane::Attachment api = web;
    api.tag = ApiTag;
    api.endpointSlot = 1;
    api.identity = Api;
    api.ips = {testing::ip(ApiIp)};
    state_.attachments = {web, api};
    state_.index();
    shared_.state.store(&state_);
  }

  void TearDown() override {
    stop();
    drainTx();
    drainViolations();
    if (port_ != UINT16_MAX) {
      rte_eth_dev_stop(port_);
      rte_eth_dev_close(port_);
    }
    for (unsigned queue = 0; queue < Queues; ++queue) {
      rte_ring_free(rx_[queue]);
      rte_ring_free(tx_[queue]);
    }
    for (rte_ring* inbox : shared_.inboxes) {
      void* left = nullptr;
      while (rte_ring_dequeue(inbox, &left) == 0) {
        rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
      }
      rte_ring_free(inbox);
    }
    rte_ring_free(shared_.violations);
    rte_mempool_free(shared_.eventPool);
    rte_mempool_free(shared_.packetPool);
    rte_mempool_free(frames_);
    rte_free(shared_.rcu);
  }

  // Runs `count` workers, each on its own thread, counting the heap allocations those threads
  // make; with more than one, each gets an inbox.
  void start(const dataplane::WorkerConfig& config, unsigned count = 1) {
    if (count > 1) {
      for (unsigned id = 0; id < count; ++id) {
        static int inbox = 0;
        shared_.inboxes.push_back(rte_ring_create(("wtin" + std::to_string(inbox++)).c_str(), 1024,
                                                  static_cast<int>(rte_socket_id()),
                                                  RING_F_SC_DEQ));
        ASSERT_NE(shared_.inboxes.back(), nullptr);
      }
    }
    for (unsigned id = 0; id < count; ++id) {
      workers_.push_back(std::make_unique<dataplane::Worker>(id, config, shared_));
    }
    for (unsigned id = 0; id < count; ++id) {
      threads_.emplace_back([this, id] {
        testing::countAllocations(true);
        workers_[id]->run();
        testing::countAllocations(false);
        workerAllocations_ += testing::allocationsCounted();
      });
    }
    worker_ = workers_.front().get();
  }

  void stop() {
    shared_.stop.store(true);
    for (auto& thread : threads_) {
      if (thread.joinable()) {
        thread.join();
      }
    }
  }

  void put(const Bytes& frame, unsigned queue = 0) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(frames_);
    ASSERT_NE(mbuf, nullptr);
    std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    ASSERT_EQ(rte_ring_enqueue(rx_[queue], mbuf), 0);
  }

  // What the worker sent, by the tag it went out with; waits until `expected` have come (5 s
  // at most).
  std::map<uint16_t, size_t> collect(size_t expected) {
    std::map<uint16_t, size_t> byTag;
    size_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got < expected && std::chrono::steady_clock::now() < deadline) {
      void* out = nullptr;
      if (rte_ring_dequeue(tx_[0], &out) != 0 && rte_ring_dequeue(tx_[1], &out) != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      auto* mbuf = static_cast<rte_mbuf*>(out);
      ++byTag[tagOf(mbuf)];
      rte_pktmbuf_free(mbuf);
      ++got;
    }
    return byTag;
  }

  std::vector<dataplane::FlowSummary> dumpFlows(dataplane::Worker* worker = nullptr) {
    if (worker == nullptr) {
      worker = worker_;
    }
    const uint64_t before = worker->flowsSequence();
    worker->requestFlows();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (worker->flowsSequence() == before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_NE(worker->flowsSequence(), before) << "the worker never answered the dump";
    return worker->flows();
  }

  void drainTx() {
    void* out = nullptr;
    for (rte_ring* ring : tx_) {
      while (ring != nullptr && rte_ring_dequeue(ring, &out) == 0) {
        rte_pktmbuf_free(static_cast<rte_mbuf*>(out));
      }
    }
  }

  size_t drainViolations() {
    size_t count = 0;
    void* event = nullptr;
    while (shared_.violations != nullptr && rte_ring_dequeue(shared_.violations, &event) == 0) {
      rte_mempool_put(shared_.eventPool, event);
      ++count;
    }
    return count;
  }

  static constexpr unsigned Queues = 2;
  std::array<rte_ring*, Queues> rx_{};
  std::array<rte_ring*, Queues> tx_{};
  uint16_t port_ = UINT16_MAX;
  rte_mempool* frames_ = nullptr;
  dataplane::ForwardingState state_;
  dataplane::WorkerShared shared_;
  std::vector<std::unique_ptr<dataplane::Worker>> workers_;
  dataplane::Worker* worker_ = nullptr;  // the first
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> workerAllocations_ = 0;
};

// Both directions of every flow (two different tags) meet in one flow of the worker, the
// switched frames leave tagged for their destination, a denied flow is dropped and reported,
// and the worker's thread allocates nothing on the heap the whole time: not per packet, not for
// new flows or their classification, not for the flow dumps it builds.
TEST_F(WorkerTest, SwitchesBothDirectionsIntoOneFlowWithoutAllocating) {
  dataplane::WorkerConfig config;
  config.pipeline.flows.capacity = 4096;
  config.pipeline.dpi.maxClassifyingFlows = 1024;
  start(config);

  constexpr int Flows = 300;
  constexpr int Rounds = 3;
  for (int round = 0; round < Rounds; ++round) {
    for (int flow = 0; flow < Flows; ++flow) {
      const auto port = static_cast<uint16_t>(20000 + flow);
      put(trunkFrame(WebTag, WebIp, port, ApiIp, 6100));
      put(trunkFrame(ApiTag, ApiIp, 6100, WebIp, port));
    }
    put(trunkFrame(WebTag, WebIp, 30000, ApiIp, 9999));  // not allowed
  }
  const auto sent = collect(2 * Flows * Rounds);
  EXPECT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent.count(ApiTag) ? sent.at(ApiTag) : 0u, size_t{Flows * Rounds}) << "web -> api";
  EXPECT_EQ(sent.count(WebTag) ? sent.at(WebTag) : 0u, size_t{Flows * Rounds}) << "api -> web";

  for (int dump = 0; dump < 2; ++dump) {  // the second reuses the first's buffers
    const auto flows = dumpFlows();
    ASSERT_EQ(flows.size(), size_t{Flows + 1}) << "dump " << dump;
    size_t denied = 0;
    for (const auto& flow : flows) {
      EXPECT_EQ(flow.srcIdentity, Web);
      EXPECT_EQ(flow.dstIdentity, Api);
      EXPECT_EQ(flow.srcIp, testing::ip(WebIp));
      if (flow.dstPort == 9999) {
        ++denied;
        EXPECT_EQ(flow.decision, rules::Decision::Deny);
        EXPECT_EQ(flow.dropped, uint64_t{Rounds});
        continue;
      }
      EXPECT_EQ(flow.decision, rules::Decision::Allow);
      EXPECT_EQ(flow.ruleName(), PolicyName + "/ingress/0");
      EXPECT_EQ(flow.packets, uint64_t{2 * Rounds}) << "both directions in one flow";
      EXPECT_EQ(flow.dropped, 0u);
      EXPECT_EQ(flow.state, dataplane::ConnState::Established);
    }
    EXPECT_EQ(denied, 1u);
  }
  stop();
  EXPECT_GE(drainViolations(), 1u) << "the denied flow is reported";
  const dataplane::WorkerCounters counters = worker_->counters();
  EXPECT_EQ(counters.rxPackets, uint64_t{(2 * Flows + 1) * Rounds});
  EXPECT_EQ(counters.pipeline.dropped[static_cast<size_t>(dataplane::DropReason::PolicyDenied)],
            uint64_t{Rounds});
  EXPECT_EQ(workerAllocations_, 0u) << "heap allocations on the worker's thread";
}

// Two workers on one trunk. Each direction of every conversation enters on its own queue (web's
// on the first, api's replies on the second), as a multi-queue trunk may deliver them: both
// must still meet in one flow, held by one worker, and nothing may be lost or allocated on the
// way from one worker to the other.
TEST_F(WorkerTest, TwoWorkersMeetBothDirectionsOfEveryConversationAtItsOwner) {
  constexpr int Addresses = 16;  // web's: conversations between 16 address pairs
  constexpr int Ports = 20;
  constexpr int Rounds = 3;
  std::vector<std::string> webIps;
  for (int i = 0; i < Addresses; ++i) {
    webIps.push_back("10.0.1." + std::to_string(100 + i));
    state_.attachments[0].ips.push_back(testing::ip(webIps.back().c_str()));
  }
  state_.index();
  dataplane::WorkerConfig config;
  config.pipeline.flows.capacity = 4096;
  config.pipeline.dpi.maxClassifyingFlows = 1024;
  start(config, 2);

  // Each round's requests are through before their replies enter: a reply that overtook its
  // request would be a flow of its own, from api.
  constexpr size_t Allowed = size_t{Addresses} * Ports;
  std::map<uint16_t, size_t> sent;
  for (int round = 0; round < Rounds; ++round) {
    for (const bool reply : {false, true}) {
      for (const std::string& web : webIps) {
        for (int flow = 0; flow < Ports; ++flow) {
          const auto port = static_cast<uint16_t>(20000 + flow);
          put(reply ? trunkFrame(ApiTag, ApiIp, 6100, web.c_str(), port)
                    : trunkFrame(WebTag, web.c_str(), port, ApiIp, 6100),
              reply ? 1 : 0);
        }
      }
      if (!reply) {
        put(trunkFrame(WebTag, webIps[0].c_str(), 30000, ApiIp, 9999), 0);  // not allowed
      }
      for (const auto& [tag, count] : collect(Allowed)) {
        sent[tag] += count;
      }
    }
  }
  EXPECT_EQ(sent.count(ApiTag) ? sent.at(ApiTag) : 0u, Allowed * Rounds) << "web -> api";
  EXPECT_EQ(sent.count(WebTag) ? sent.at(WebTag) : 0u, Allowed * Rounds) << "api -> web";

  std::map<std::pair<rules::IpAddress, uint16_t>, unsigned> holder;  // flow -> its worker
  size_t denied = 0;
  for (unsigned id = 0; id < 2; ++id) {
    const auto flows = dumpFlows(workers_[id].get());
    EXPECT_GT(flows.size(), 0u) << "worker " << id << " owns no conversation";
    for (const auto& flow : flows) {
      const auto [_, first] = holder.emplace(std::pair{flow.srcIp, flow.srcPort}, id);
      EXPECT_TRUE(first) << "a flow in both workers: " << flow.srcIp.toString() << ":"
                         << flow.srcPort;
      EXPECT_EQ(flow.srcIdentity, Web);
      EXPECT_EQ(flow.dstIdentity, Api);
      if (flow.dstPort == 9999) {
        ++denied;
        EXPECT_EQ(flow.decision, rules::Decision::Deny);
        EXPECT_EQ(flow.dropped, uint64_t{Rounds});
        continue;
      }
      EXPECT_EQ(flow.packets, uint64_t{2 * Rounds}) << "both directions in one flow";
      EXPECT_EQ(flow.state, dataplane::ConnState::Established);
    }
  }
  EXPECT_EQ(holder.size(), Allowed + 1);
  EXPECT_EQ(denied, 1u);
  for (const std::string& web : webIps) {  // every conversation of one pair at one worker
    const unsigned owner = holder[{testing::ip(web.c_str()), 20000}];
    for (int flow = 1; flow < Ports; ++flow) {
      EXPECT_EQ((holder[{testing::ip(web.c_str()), static_cast<uint16_t>(20000 + flow)}]), owner);
    }
  }
  stop();
  uint64_t handedOff = 0;
  uint64_t fromPeers = 0;
  uint64_t received = 0;
  for (const auto& worker : workers_) {
    const dataplane::WorkerCounters counters = worker->counters();
    handedOff += counters.handedOff;
    fromPeers += counters.fromPeers;
    received += counters.rxPackets;
    EXPECT_EQ(counters.handoffLost, 0u);
  }
  EXPECT_EQ(received, (2 * Allowed + 1) * Rounds);
  EXPECT_GT(handedOff, 0u);
  EXPECT_EQ(fromPeers, handedOff);
  EXPECT_EQ(workerAllocations_, 0u) << "heap allocations on the workers' threads";
}

// The counter is live: the same thread counts what it allocates (else the test above proves
// nothing).
TEST(AllocationCounter, CountsTheCallingThreadsAllocations) {
  // Through a volatile pointer and an escaping vector: the compiler may not elide either.
  void* (*volatile allocate)(size_t) = std::malloc;
  testing::countAllocations(true);
  const uint64_t before = testing::allocationsCounted();
  void* memory = allocate(64);
  std::vector<int> numbers(100);
  asm volatile("" : : "g"(numbers.data()) : "memory");
  const uint64_t after = testing::allocationsCounted();
  testing::countAllocations(false);
  std::free(memory);
  EXPECT_EQ(after - before, 2u) << "malloc and operator new";
}

}  // namespace
}  // namespace bulkhead
