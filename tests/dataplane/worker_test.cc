// A worker on a real DPDK port (the ring PMD: the test puts tagged frames on the trunk's rx ring
// and takes what the worker sends from its tx ring), on its own thread as the agent runs it.
#include "dataplane/worker.h"

#include <gtest/gtest.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/allocation_counter.h"
#include "tests/support/frames.h"
#include "tests/support/ring_trunk.h"

namespace bulkhead {
namespace {

using testing::ApiIp;
using testing::ApiTag;
using testing::Bytes;
using testing::trunkFrame;
using testing::WebIp;
using testing::WebTag;
constexpr rules::IdentityId Web = testing::WebIdentity;
constexpr rules::IdentityId Api = testing::ApiIdentity;

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int instance = 0;
    // Two queues each way, as two workers have; a test of one worker uses the first.
    ASSERT_NO_THROW(trunk_.emplace("wt" + std::to_string(instance++), Queues));
  }

  void TearDown() override { stop(); }

  // Runs `count` workers, each on its own thread, counting the heap allocations those threads
  // make; with more than one, each gets an inbox.
  void start(const dataplane::WorkerConfig& config, unsigned count = 1) {
    ASSERT_NO_THROW(trunk_->addInboxes(count));
    for (unsigned id = 0; id < count; ++id) {
      workers_.push_back(std::make_unique<dataplane::Worker>(id, config, trunk_->shared));
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
    if (trunk_) {
      trunk_->shared.stop.store(true);
    }
    for (auto& thread : threads_) {
      if (thread.joinable()) {
        thread.join();
      }
    }
  }

  void put(const Bytes& frame, unsigned queue = 0) { ASSERT_TRUE(trunk_->put(frame, queue)); }

  // What the worker sent, by the tag it went out with; waits until `expected` have come (5 s
  // at most).
  std::map<uint16_t, size_t> collect(size_t expected) {
    std::map<uint16_t, size_t> byTag;
    size_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got < expected && std::chrono::steady_clock::now() < deadline) {
      void* out = nullptr;
      if (rte_ring_dequeue(trunk_->tx[0], &out) != 0 &&
          rte_ring_dequeue(trunk_->tx[1], &out) != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      auto* mbuf = static_cast<rte_mbuf*>(out);
      ++byTag[testing::tagOf(mbuf)];
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

  size_t drainViolations() { return trunk_->drainViolations(); }

  static constexpr unsigned Queues = 2;
  // Declared first: destroyed after the workers, whose threads have stopped by then.
  std::optional<testing::RingTrunk> trunk_;
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
  config.judgedRecords = true;  // as the agent runs: learning's records cost no allocation either
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
      EXPECT_EQ(flow.ruleName(), testing::ringTrunkPolicyName() + "/ingress/0");
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
  // One report per violationInterval (10 s): the denied flow's later packets are held back.
  EXPECT_EQ(counters.violationsQueued, 1u);
  EXPECT_EQ(counters.violationsSuppressed, uint64_t{Rounds - 1});
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
    trunk_->state.attachments[0].ips.push_back(testing::ip(webIps.back().c_str()));
  }
  trunk_->state.index();
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
// Where a worker offloads flows, kept as the wire keeps them: one entry per direction; the test
// sets the counts the wire would have made.
class RecordingOffload final : public dataplane::FlowOffload {
 public:
  struct Entry {
    dataplane::OffloadDirection direction;
    uint32_t version = 0;
    dataplane::OffloadCounts counts;
  };

  bool install(const dataplane::OffloadDirection& direction, uint32_t version) override {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_[direction.ingressTag] = {direction, version, {}};
    ++installs_;
    return true;
  }
  bool read(const dataplane::OffloadDirection& direction,
            dataplane::OffloadCounts* counts) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = find(direction);
    if (found == entries_.end()) {
      return false;
    }
    *counts = found->second.counts;
    return true;
  }
  bool take(const dataplane::OffloadDirection& direction,
            dataplane::OffloadCounts* counts) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = find(direction);
    if (found == entries_.end()) {
      return false;
    }
    *counts = found->second.counts;
    entries_.erase(found);
    ++takes_;
    return true;
  }

  std::map<uint16_t, Entry> entries() {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_;
  }
  void count(uint16_t ingressTag, uint64_t packets, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.at(ingressTag).counts = {packets, bytes, 0};
  }
  size_t installs() {
    std::lock_guard<std::mutex> lock(mutex_);
    return installs_;
  }
  size_t takes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return takes_;
  }

 private:
  // By ingress tag, but only for the very direction asked about: the worker must name it right.
  std::map<uint16_t, Entry>::iterator find(const dataplane::OffloadDirection& direction) {
    const auto found = entries_.find(direction.ingressTag);
    if (found == entries_.end()) {
      return found;
    }
    const auto& entry = found->second.direction;
    const bool same = entry.ipProtocol == direction.ipProtocol && entry.srcIp == direction.srcIp &&
                      entry.dstIp == direction.dstIp && entry.srcPort == direction.srcPort &&
                      entry.dstPort == direction.dstPort;
    return same ? found : entries_.end();
  }

  std::mutex mutex_;
  std::map<uint16_t, Entry> entries_;  // by ingress tag: one flow per direction in this test
  size_t installs_ = 0;
  size_t takes_ = 0;
};

// A flow the worker has allowed for good goes into the wire, both directions, once each; a
// denied one never does. What the wire carried shows in the flow dump, and a new forwarding
// state takes the old entries' counts into the flow and installs the directions again under its
// own version, as their next packets come.
TEST_F(WorkerTest, OffloadsAFlowAllowedForGoodAndTakesItBackUnderANewState) {
  RecordingOffload offload;
  trunk_->shared.offload = &offload;
  trunk_->state.offloadVersion = 7;
  dataplane::WorkerConfig config;
  config.pipeline.flows.capacity = 4096;
  config.pipeline.dpi.maxClassifyingFlows = 1024;
  start(config);

  constexpr int Rounds = 40;  // past nDPI's budget of 32: classified, the verdict final
  for (int round = 0; round < Rounds; ++round) {
    put(trunkFrame(WebTag, WebIp, 20000, ApiIp, 6100));
    put(trunkFrame(ApiTag, ApiIp, 6100, WebIp, 20000));
    put(trunkFrame(WebTag, WebIp, 30000, ApiIp, 9999));  // denied
  }
  EXPECT_EQ(collect(2 * Rounds).size(), 2u);
  auto entries = offload.entries();
  ASSERT_EQ(entries.size(), 2u) << "both directions of the allowed flow, nothing of the denied";
  EXPECT_EQ(offload.installs(), 2u) << "once per direction, not once per packet";
  const auto& forward = entries.at(WebTag);
  EXPECT_EQ(forward.direction.egressTag, ApiTag);
  EXPECT_EQ(forward.direction.srcIp, testing::ip(WebIp));
  EXPECT_EQ(forward.direction.srcPort, 20000);
  EXPECT_EQ(forward.direction.dstPort, 6100);
  EXPECT_EQ(forward.version, 7u);
  const auto& back = entries.at(ApiTag);
  EXPECT_EQ(back.direction.egressTag, WebTag);
  EXPECT_EQ(back.direction.srcIp, testing::ip(ApiIp));
  EXPECT_EQ(back.direction.dstPort, 20000);

  // The wire carried 1000 frames one way.
  offload.count(WebTag, 1000, 64000);
  const auto flowOf = [](const std::vector<dataplane::FlowSummary>& flows, uint16_t port) {
    for (const auto& flow : flows) {
      if (flow.srcPort == port) {
        return flow;
      }
    }
    ADD_FAILURE() << "no flow from port " << port;
    return dataplane::FlowSummary{};
  };
  auto flow = flowOf(dumpFlows(), 20000);
  EXPECT_TRUE(flow.offloaded);
  EXPECT_EQ(flow.packets, uint64_t{2 * Rounds + 1000});
  const uint64_t workerBytes = flow.bytes - 64000;
  EXPECT_FALSE(flowOf(dumpFlows(), 30000).offloaded);

  // A new state: the old entries are void in the wire; the next packet brings their counts home.
  auto next = std::make_unique<dataplane::ForwardingState>(trunk_->state);
  next->offloadVersion = 8;
  trunk_->shared.state.store(next.get());
  put(trunkFrame(WebTag, WebIp, 20000, ApiIp, 6100));
  EXPECT_EQ(collect(1).size(), 1u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (offload.installs() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  entries = offload.entries();
  EXPECT_EQ(offload.takes(), 2u) << "both old directions taken back";
  ASSERT_EQ(entries.size(), 1u) << "only the direction that spoke since";
  EXPECT_EQ(entries.at(WebTag).version, 8u);
  flow = flowOf(dumpFlows(), 20000);
  EXPECT_EQ(flow.packets, uint64_t{2 * Rounds + 1000 + 1}) << "the wire's share, in the flow";
  EXPECT_GT(flow.bytes, workerBytes + 64000);
  put(trunkFrame(ApiTag, ApiIp, 6100, WebIp, 20000));
  EXPECT_EQ(collect(1).size(), 1u);
  stop();  // before `next` goes: the worker reads it
  EXPECT_EQ(offload.entries().size(), 2u);
  EXPECT_EQ(offload.entries().at(ApiTag).version, 8u);
  EXPECT_EQ(worker_->counters().offloadInstalled, 4u);
  EXPECT_EQ(worker_->counters().offloadWithdrawn, 2u);
}

// A flow that ended is still in the dump for a while, marked ended, with its verdict and counts:
// what succeeded does not vanish from `bulkhead flows` when it closes.
// Learning's records have a ring of their own: a container opening new flows as fast as it can
// overflows that (counted), never the room its violations are reported in.
TEST_F(WorkerTest, AFloodOfNewFlowsFillsTheRecordRingNeverTheViolationRing) {
  dataplane::WorkerConfig config;
  config.pipeline.flows.capacity = 4096;
  config.judgedRecords = true;
  start(config);
  constexpr int Flows = 1000;  // past the 256 records, within the 1024 violations
  for (int flow = 0; flow < Flows; ++flow) {
    put(trunkFrame(WebTag, WebIp, static_cast<uint16_t>(20000 + flow), ApiIp, 9999));  // denied
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (worker_->counters().rxPackets < Flows && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
  const dataplane::WorkerCounters counters = worker_->counters();
  EXPECT_EQ(counters.violationsQueued, uint64_t{Flows});
  EXPECT_EQ(counters.violationsLost, 0u);
  EXPECT_EQ(counters.judgedRecordsQueued + counters.judgedRecordsLost, uint64_t{Flows});
  EXPECT_GT(counters.judgedRecordsLost, 0u);
  EXPECT_LE(counters.judgedRecordsQueued, 256u);
  EXPECT_EQ(drainViolations(), size_t{Flows});
}

TEST_F(WorkerTest, TheDumpKeepsTheFlowsThatEndedLately) {
  dataplane::WorkerConfig config;
  config.pipeline.flows.capacity = 4096;
  config.pipeline.flows.timeouts.udpSeconds = 1;
  start(config);
  put(trunkFrame(WebTag, WebIp, 20001, ApiIp, 6100));
  put(trunkFrame(ApiTag, ApiIp, 6100, WebIp, 20001));
  put(trunkFrame(WebTag, WebIp, 30000, ApiIp, 9999));  // denied
  EXPECT_EQ(collect(2).size(), 2u);
  auto flows = dumpFlows();
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_FALSE(flows[0].ended);
  // Idle past the UDP timeout: both expire at a housekeeping.
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  flows = dumpFlows();
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(worker_->counters().flows, 0u) << "nothing tracked any more";
  for (const auto& flow : flows) {
    EXPECT_TRUE(flow.ended);
    if (flow.dstPort == 6100) {
      EXPECT_EQ(flow.decision, rules::Decision::Allow);
      EXPECT_EQ(flow.packets, 2u);
      EXPECT_EQ(flow.ruleName(), testing::ringTrunkPolicyName() + "/ingress/0");
    } else {
      EXPECT_EQ(flow.decision, rules::Decision::Deny);
      EXPECT_EQ(flow.dropped, 1u);
    }
  }
}

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
