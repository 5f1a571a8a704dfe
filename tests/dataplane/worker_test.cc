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
    rx_ = rte_ring_create((name + "rx").c_str(), 4096, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx_ = rte_ring_create((name + "tx").c_str(), 4096, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_NE(rx_, nullptr);
    ASSERT_NE(tx_, nullptr);
    const int port = rte_eth_from_rings((name + "trunk").c_str(), &rx_, 1, &tx_, 1,
                                        static_cast<unsigned>(socket));
    ASSERT_GE(port, 0) << rte_strerror(rte_errno);
    port_ = static_cast<uint16_t>(port);
    frames_ = dataplane::createPacketPool(name + "frames", 4095, 2048);
    ASSERT_NE(frames_, nullptr);
    const rte_eth_conf conf{};
    ASSERT_EQ(rte_eth_dev_configure(port_, 1, 1, &conf), 0);
    ASSERT_EQ(
        rte_eth_rx_queue_setup(port_, 0, 1024, static_cast<unsigned>(socket), nullptr, frames_), 0);
    ASSERT_EQ(rte_eth_tx_queue_setup(port_, 0, 1024, static_cast<unsigned>(socket), nullptr), 0);
    ASSERT_EQ(rte_eth_dev_start(port_), 0);
    shared_.packetPool = dataplane::createPacketPool(name + "own", 1023, 2048);
    shared_.eventPool =
        rte_mempool_create((name + "events").c_str(), 1023, sizeof(dataplane::ViolationEvent), 0, 0,
                           nullptr, nullptr, nullptr, nullptr, socket, 0);
    shared_.violations = rte_ring_create((name + "viol").c_str(), 1024, socket, RING_F_SC_DEQ);
    shared_.rcu = static_cast<rte_rcu_qsbr*>(
        rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(1), RTE_CACHE_LINE_SIZE));
    ASSERT_NE(shared_.eventPool, nullptr);
    ASSERT_NE(shared_.violations, nullptr);
    ASSERT_NE(shared_.rcu, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(shared_.rcu, 1), 0);

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
    rte_ring_free(rx_);
    rte_ring_free(tx_);
    rte_ring_free(shared_.violations);
    rte_mempool_free(shared_.eventPool);
    rte_mempool_free(shared_.packetPool);
    rte_mempool_free(frames_);
    rte_free(shared_.rcu);
  }

  // Runs the worker on its own thread, counting the heap allocations that thread makes.
  void start(const dataplane::WorkerConfig& config) {
    worker_ = std::make_unique<dataplane::Worker>(0, config, shared_);
    thread_ = std::thread([this] {
      testing::countAllocations(true);
      worker_->run();
      testing::countAllocations(false);
      workerAllocations_ = testing::allocationsCounted();
    });
  }

  void stop() {
    if (thread_.joinable()) {
      shared_.stop.store(true);
      thread_.join();
    }
  }

  void put(const Bytes& frame) {
    rte_mbuf* mbuf = rte_pktmbuf_alloc(frames_);
    ASSERT_NE(mbuf, nullptr);
    std::memcpy(rte_pktmbuf_append(mbuf, static_cast<uint16_t>(frame.size())), frame.data(),
                frame.size());
    ASSERT_EQ(rte_ring_enqueue(rx_, mbuf), 0);
  }

  // What the worker sent, by the tag it went out with; waits until `expected` have come (5 s
  // at most).
  std::map<uint16_t, size_t> collect(size_t expected) {
    std::map<uint16_t, size_t> byTag;
    size_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got < expected && std::chrono::steady_clock::now() < deadline) {
      void* out = nullptr;
      if (rte_ring_dequeue(tx_, &out) != 0) {
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

  std::vector<dataplane::FlowSummary> dumpFlows() {
    const uint64_t before = worker_->flowsSequence();
    worker_->requestFlows();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (worker_->flowsSequence() == before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_NE(worker_->flowsSequence(), before) << "the worker never answered the dump";
    return worker_->flows();
  }

  void drainTx() {
    void* out = nullptr;
    while (rte_ring_dequeue(tx_, &out) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(out));
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

  rte_ring* rx_ = nullptr;
  rte_ring* tx_ = nullptr;
  uint16_t port_ = UINT16_MAX;
  rte_mempool* frames_ = nullptr;
  dataplane::ForwardingState state_;
  dataplane::WorkerShared shared_;
  std::unique_ptr<dataplane::Worker> worker_;
  std::thread thread_;
  uint64_t workerAllocations_ = 0;
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
