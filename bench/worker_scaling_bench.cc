// Workers side by side (#11 item 1, "2 workers >= 1.8x one worker"): established-flow UDP
// through 1 and 2 workers, each worker on its own thread with a queue of a ring-PMD trunk, the
// frames placed on their owner's queue as the patch panel places them on the owner's trunk.
// Each iteration puts a batch of frames on the rx rings while the workers see no trunk, then
// lets them go and times until every frame has left on a tx ring: the generator costs the
// workers nothing while they run. Each worker has a CPU of its own. Baseline: one worker, in the
// same run (scripts/bench/workers.sh prints the ratio).
#include <benchmark/benchmark.h>
#include <rte_ring.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/conversation_owner.h"
#include "dataplane/eal.h"
#include "dataplane/worker.h"
#include "tests/support/ring_trunk.h"

namespace {

using namespace bulkhead;
namespace support = bulkhead::testing;

// Conversations between 1024 address pairs spread evenly enough (within a few percent) that
// the figure is the workers', not the hash's luck with a few; 4 flows each.
constexpr int Addresses = 1024;
constexpr int Ports = 4;
constexpr unsigned Batch = 65536;  // some 4 ms of one worker: the wakeups below stay noise
constexpr int WarmupRounds = 20;   // past nDPI's packet budget: the flows are established

struct Frame {
  support::Bytes bytes;
  unsigned owner;  // the queue the patch panel would put it on
};

// Puts `count` frames on the rx rings, going round `frames` from `*next`, while the workers see
// a state without a trunk (`idle`) and so poll nothing; the caller lets them go. How many went
// in (fewer when the pool or a ring is full).
size_t fill(support::RingTrunk& trunk, const std::vector<Frame>& frames, size_t count,
            const dataplane::ForwardingState& idle, size_t* next) {
  trunk.shared.state.store(&idle);
  // A worker may still be in the burst it began with the real state.
  std::this_thread::sleep_for(std::chrono::microseconds(200));
  size_t queued = 0;
  for (; queued < count; ++queued) {
    const Frame& frame = frames[*next];
    *next = (*next + 1) % frames.size();
    if (!trunk.put(frame.bytes, frame.owner % trunk.queues())) {
      break;
    }
  }
  return queued;
}

size_t sentCount(const support::RingTrunk& trunk) {
  size_t sent = 0;
  for (rte_ring* ring : trunk.tx) {
    sent += rte_ring_count(ring);
  }
  return sent;
}

bool awaitSent(const support::RingTrunk& trunk, size_t expected) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sentCount(trunk) < expected) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

void BM_EstablishedFlowsThroughWorkers(benchmark::State& state) {
  const auto workers = static_cast<unsigned>(state.range(0));
  static int instance = 0;
  support::RingTrunk trunk("ws" + std::to_string(instance++), workers, 2 * Batch, Batch + 4096);
  std::vector<Frame> frames;
  // 1024 web containers, each an attachment of its own (an address list would make the source
  // check the cost measured), each in a conversation with api.
  const dataplane::Attachment webTemplate = trunk.state.attachments[0];
  for (int address = 0; address < Addresses; ++address) {
    const std::string web =
        "10.1." + std::to_string(address / 256) + "." + std::to_string(address % 256);
    dataplane::Attachment attachment = webTemplate;
    attachment.tag = static_cast<uint16_t>(100 + address);
    attachment.endpointSlot = static_cast<uint32_t>(2 + address);
    attachment.ips = {support::ip(web.c_str())};
    trunk.state.attachments.push_back(attachment);
    dataplane::PacketMeta meta;
    meta.srcIp = support::ip(web.c_str());
    meta.dstIp = support::ip(support::ApiIp);
    const unsigned owner = dataplane::conversationOwner(meta, workers);
    for (int flow = 0; flow < Ports; ++flow) {
      const auto port = static_cast<uint16_t>(20000 + flow);
      frames.push_back(
          {support::trunkFrame(attachment.tag, web.c_str(), port, support::ApiIp, 6100), owner});
      frames.push_back(
          {support::trunkFrame(support::ApiTag, support::ApiIp, 6100, web.c_str(), port), owner});
    }
  }
  trunk.state.index();
  // The same endpoints without a trunk: the workers poll nothing while a batch is put, and keep
  // their flows (a state without the endpoints would end them).
  dataplane::ForwardingState idle = trunk.state;
  idle.hasTrunk = false;
  trunk.addInboxes(workers);

  dataplane::WorkerConfig config;
  // Not busyPoll: a worker that polls on after its frames keeps this thread, which waits for
  // them, off the CPU for a time slice (on a 2-CPU machine, every CPU has a worker). Idle, it
  // sleeps 50 us at a time, before and after the batch alike with 1 and 2 workers.
  config.busyPoll = false;
  config.pipeline.flows.capacity = 65536;
  config.pipeline.dpi.maxClassifyingFlows = 16384;
  std::vector<std::unique_ptr<dataplane::Worker>> running;
  std::vector<std::thread> threads;
  for (unsigned id = 0; id < workers; ++id) {
    running.push_back(std::make_unique<dataplane::Worker>(id, config, trunk.shared));
  }
  for (unsigned id = 0; id < workers; ++id) {
    threads.emplace_back([&, id] {
      // Threads inherit the EAL's main lcore, one CPU: each worker gets a CPU of its own, as the
      // agent's lcores do (this thread, which mostly sleeps, shares the first).
      cpu_set_t cpus;
      CPU_ZERO(&cpus);
      CPU_SET(id % std::max(1u, std::thread::hardware_concurrency()), &cpus);
      pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
      running[id]->run();
    });
  }
  const auto finish = [&] {
    trunk.shared.stop.store(true);
    for (auto& thread : threads) {
      thread.join();
    }
  };

  size_t next = 0;
  for (int round = 0; round < WarmupRounds; ++round) {
    const size_t queued = fill(trunk, frames, frames.size(), idle, &next);
    trunk.shared.state.store(&trunk.state);
    if (queued != frames.size() || !awaitSent(trunk, queued)) {
      finish();
      state.SkipWithError("the warm-up did not get through");
      return;
    }
    trunk.drainTx();
  }
  uint64_t handled = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const size_t queued = fill(trunk, frames, Batch, idle, &next);
    state.ResumeTiming();
    trunk.shared.state.store(&trunk.state);
    if (!awaitSent(trunk, queued)) {
      state.SkipWithError("frames were lost");
      break;
    }
    state.PauseTiming();
    handled += queued;
    trunk.drainTx();
    state.ResumeTiming();
  }
  finish();
  uint64_t handedOff = 0;
  uint64_t flowsCreated = 0;
  uint64_t dropped = 0;
  for (const auto& worker : running) {
    const auto counters = worker->counters();
    handedOff += counters.handedOff;
    flowsCreated += counters.pipeline.flowsCreated;
    for (const uint64_t count : counters.pipeline.dropped) {
      dropped += count;
    }
  }
  state.counters["flowsCreated"] = static_cast<double>(flowsCreated);
  state.counters["dropped"] = static_cast<double>(dropped);
  state.SetItemsProcessed(static_cast<int64_t>(handled));
  state.counters["workers"] = workers;
  state.counters["handedOff"] = static_cast<double>(handedOff);
}
BENCHMARK(BM_EstablishedFlowsThroughWorkers)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  bulkhead::dataplane::initEal(bulkhead::dataplane::offlineEalArguments(1024));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
