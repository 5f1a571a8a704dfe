#include "controlplane/fast_path.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "dataplane/eal.h"

namespace bulkhead::controlplane {
namespace {

bool hasArgument(const std::vector<std::string>& arguments,
                 std::initializer_list<std::string_view> names) {
  return std::any_of(arguments.begin(), arguments.end(), [&](const std::string& argument) {
    return std::any_of(names.begin(), names.end(), [&](std::string_view name) {
      return argument == name || argument.starts_with(std::string(name) + "=");
    });
  });
}

// Free hugepages and a hugetlbfs mount: what EAL needs to use them.
bool hugepagesAvailable() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  long freePages = 0;
  while (std::getline(meminfo, line)) {
    if (line.starts_with("HugePages_Free:")) {
      freePages = std::stol(line.substr(15));
    }
  }
  std::ifstream mounts("/proc/mounts");
  bool mounted = false;
  while (std::getline(mounts, line)) {
    mounted = mounted || line.find(" hugetlbfs ") != std::string::npos;
  }
  return freePages > 0 && mounted;
}

// One lcore for the control thread and one per worker, spread over the CPUs we may run on.
std::string lcoreMap(unsigned workers) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) {
        cpus.push_back(cpu);
      }
    }
  }
  if (cpus.empty()) {
    cpus.push_back(0);
  }
  std::string map;
  for (unsigned lcore = 0; lcore <= workers; ++lcore) {
    map += (lcore ? "," : "") + std::to_string(lcore) + "@" +
           std::to_string(cpus[lcore % cpus.size()]);
  }
  return map;
}

std::vector<std::string> ealArguments(const AgentConfig& config) {
  std::vector<std::string> arguments = {"bulkheadd"};
  const auto& user = config.ealArguments;
  if (!hasArgument(user, {"-l", "--lcores", "-c"})) {
    arguments.push_back("--lcores=" + lcoreMap(config.workers));
  }
  const bool huge = config.hugepages == Hugepages::On ||
                    (config.hugepages == Hugepages::Auto && hugepagesAvailable());
  if (huge) {
    arguments.push_back("--in-memory");  // no hugepage files left behind by a crash
  } else {
    arguments.insert(arguments.end(),
                     {"--no-huge", "--no-shconf", "-m", std::to_string(config.memoryMegabytes)});
  }
  if (!hasArgument(user, {"-a", "--allow", "--no-pci", "-b", "--block"})) {
    arguments.push_back("--no-pci");  // the trunk is a kernel interface attached as a vdev
  }
  if (!hasArgument(user, {"--file-prefix"})) {
    arguments.push_back("--file-prefix=bulkheadd-" + std::to_string(getpid()));
  }
  if (!hasArgument(user, {"--log-level"})) {
    arguments.push_back("--log-level=lib.*:warning");
  }
  // Metrics are Prometheus's (metricsAddress): DPDK's telemetry socket would be a second,
  // unauthenticated window, and its start line noise in the agent's log.
  if (!hasArgument(user, {"--telemetry", "--no-telemetry"})) {
    arguments.push_back("--no-telemetry");
  }
  arguments.insert(arguments.end(), user.begin(), user.end());
  return arguments;
}

int launchWorker(void* worker) {
  return static_cast<dataplane::Worker*>(worker)->run();
}

}  // namespace

FastPath::~FastPath() {
  stop();
}

bool FastPath::start(const AgentConfig& config, const std::vector<std::string>& trunkPorts,
                     std::vector<std::unique_ptr<dataplane::Doorbell>> doorbells,
                     std::string* error, dataplane::FlowOffload* offload) {
  const auto fail = [&](std::string message) {
    *error = std::move(message);
    stop();
    return false;
  };
  if (trunkPorts.size() != config.workers || config.workers == 0 ||
      config.workers > dataplane::Worker::MaxWorkers) {
    *error = std::to_string(config.workers) + " workers on " + std::to_string(trunkPorts.size()) +
             " trunks: one trunk per worker, at most " +
             std::to_string(dataplane::Worker::MaxWorkers);
    return false;
  }
  try {
    dataplane::initEal(ealArguments(config));
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (rte_lcore_count() < config.workers + 1) {
    return fail("EAL gave " + std::to_string(rte_lcore_count()) + " lcores; " +
                std::to_string(config.workers) + " workers need " +
                std::to_string(config.workers + 1) + " (one more for the control thread)");
  }
  try {
    // The workers' own frames (TCP resets, flooded copies); received packets live in the
    // trunk's pool.
    packetPool_ = dataplane::createPacketPool("bh_packets", 4095, RTE_MBUF_DEFAULT_DATAROOM);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  const int socket = static_cast<int>(rte_socket_id());
  eventPool_ = rte_mempool_create("bh_events", 4095, sizeof(dataplane::ViolationEvent), 64, 0,
                                  nullptr, nullptr, nullptr, nullptr, socket, 0);
  violations_ = rte_ring_create("bh_violations", 4096, socket, RING_F_SC_DEQ);
  recordPool_ = rte_mempool_create("bh_records", 8191, sizeof(dataplane::ViolationEvent), 64, 0,
                                   nullptr, nullptr, nullptr, nullptr, socket, 0);
  records_ = rte_ring_create("bh_records", 8192, socket, RING_F_SC_DEQ);
  const size_t rcuSize = rte_rcu_qsbr_get_memsize(config.workers);
  rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("bh_rcu", rcuSize, RTE_CACHE_LINE_SIZE));
  if (eventPool_ == nullptr || violations_ == nullptr || recordPool_ == nullptr ||
      records_ == nullptr || rcu_ == nullptr || rte_rcu_qsbr_init(rcu_, config.workers) != 0) {
    return fail(std::string("cannot allocate control structures: ") + rte_strerror(rte_errno));
  }
  shared_.rcu = rcu_;
  shared_.violations = violations_;
  shared_.eventPool = eventPool_;
  shared_.records = records_;
  shared_.recordPool = recordPool_;
  shared_.packetPool = packetPool_;
  shared_.offload = offload;
  doorbells_ = std::move(doorbells);
  doorbells_.resize(config.workers);
  if (config.workers > 1) {
    // A frame another worker received for a conversation this one owns (af_packet hashes its
    // own way; ARP and such are not steered) waits here; sized like an rx ring, twice over.
    for (unsigned worker = 0; worker < config.workers; ++worker) {
      const std::string name = "bh_inbox" + std::to_string(worker);
      rte_ring* inbox = rte_ring_create(name.c_str(), 2048, socket, RING_F_SC_DEQ);
      if (inbox == nullptr) {
        return fail("cannot allocate " + name + ": " + rte_strerror(rte_errno));
      }
      shared_.inboxes.push_back(inbox);
    }
  }
  ports_ = std::make_unique<dataplane::PortManager>(config.mbufsPerPort, 1, 1024);
  for (const auto& trunkPort : trunkPorts) {
    try {
      trunks_.push_back(ports_->attach(trunkPort, config.portDriver));
    } catch (const std::exception& e) {
      return fail("trunk " + trunkPort + ": " + e.what());
    }
    const auto& trunk = trunks_.back();
    spdlog::info("trunk {} is port {} via {}", trunkPort, trunk.portId,
                 dataplane::toString(trunk.driver));
    if (!trunk.fallbackReason.empty()) {
      spdlog::warn("trunk {}: fell back to af_packet: {}", trunkPort, trunk.fallbackReason);
    }
  }

  dataplane::WorkerConfig workerConfig;
  workerConfig.pipeline.flows.capacity = config.maxFlows;
  workerConfig.pipeline.flows.whenFull = config.flowTableFull;
  workerConfig.pipeline.maxFlowsPerEndpoint =
      config.maxFlowsPerEndpoint != 0 ? std::min(config.maxFlowsPerEndpoint, config.maxFlows)
                                      : config.maxFlows / 8;
  workerConfig.pipeline.dpi.packetBudget = static_cast<uint16_t>(config.dpiBudget);
  workerConfig.pipeline.hold.timeoutNs = uint64_t{config.dpiHoldMicros} * 1000;
  workerConfig.pipeline.hold.packets = config.dpiHoldPackets;
  workerConfig.busyPoll = config.busyPoll;
  workerConfig.violationIntervalNs = uint64_t{config.violationIntervalSeconds} * 1000000000ull;
  workerConfig.flowRecords = !config.flowLog.empty();
  workerConfig.judgedRecords = config.learning;
  unsigned lcore = 0;
  unsigned id = 0;
  try {
    RTE_LCORE_FOREACH_WORKER(lcore) {
      if (id == config.workers) {
        break;
      }
      workers_.push_back(
          std::make_unique<dataplane::Worker>(id, workerConfig, shared_, doorbells_[id].get()));
      if (rte_eal_remote_launch(launchWorker, workers_.back().get(), lcore) != 0) {
        return fail("cannot launch worker " + std::to_string(id) + " on lcore " +
                    std::to_string(lcore));
      }
      workersRunning_ = true;
      ++id;
    }
  } catch (const std::exception& e) {
    return fail("worker " + std::to_string(id) + ": " + e.what());
  }
  return true;
}

void FastPath::stop(const std::function<void(const dataplane::ViolationEvent&)>& drain) {
  if (workersRunning_) {
    shared_.stop = true;
    rte_eal_mp_wait_lcore();
    workersRunning_ = false;
  }
  if (violations_ != nullptr && drain) {
    drainViolations(drain);
  }
  for (rte_ring* inbox : shared_.inboxes) {
    void* left = nullptr;
    while (rte_ring_dequeue(inbox, &left) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
    }
    rte_ring_free(inbox);
  }
  shared_.inboxes.clear();
  if (ports_) {
    for (const auto& trunk : trunks_) {
      ports_->detach(trunk);
    }
  }
  trunks_.clear();
  ports_.reset();
  shared_.state = nullptr;
  retired_.clear();  // the workers have stopped
  current_.reset();
  workers_.clear();
  doorbells_.clear();
  rte_ring_free(violations_);
  violations_ = nullptr;
  rte_mempool_free(eventPool_);
  eventPool_ = nullptr;
  rte_ring_free(records_);
  records_ = nullptr;
  rte_mempool_free(recordPool_);
  recordPool_ = nullptr;
  rte_mempool_free(packetPool_);
  packetPool_ = nullptr;
  rte_free(rcu_);
  rcu_ = nullptr;
  if (dataplane::ealInitialized() && !ealCleanedUp_) {
    rte_eal_cleanup();
    ealCleanedUp_ = true;
  }
}

void FastPath::publish(std::unique_ptr<dataplane::ForwardingState> state) {
  if (!trunks_.empty()) {
    state->hasTrunk = true;
    state->trunks.clear();
    for (const auto& trunk : trunks_) {
      state->trunks.push_back({trunk.portId, 0, trunk.mac});
    }
  }
  shared_.state.store(state.get(), std::memory_order_release);
  if (current_) {
    if (rcu_ != nullptr && workersRunning_) {
      retired_.emplace_back(rte_rcu_qsbr_start(rcu_), std::move(current_));
    } else {
      current_.reset();  // no worker runs: nobody can be reading it
    }
  }
  current_ = std::move(state);
  reclaim();
}

void FastPath::reclaim() {
  while (!retired_.empty() &&
         (!workersRunning_ || rte_rcu_qsbr_check(rcu_, retired_.front().first, false) == 1)) {
    retired_.pop_front();
  }
}

void FastPath::drainViolations(const std::function<void(const dataplane::ViolationEvent&)>& write) {
  const auto drain = [&](rte_ring* ring, rte_mempool* pool) {
    if (ring == nullptr) {
      return;
    }
    void* events[64];
    for (unsigned left = 2 * rte_ring_get_size(ring); left > 0;) {
      const unsigned count = rte_ring_dequeue_burst(ring, events, std::min(left, 64u), nullptr);
      for (unsigned i = 0; i < count; ++i) {
        write(*static_cast<dataplane::ViolationEvent*>(events[i]));
      }
      if (count > 0) {
        rte_mempool_put_bulk(pool, events, count);
      }
      if (count < 64) {
        return;
      }
      left -= count;
    }
  };
  drain(violations_, eventPool_);
  drain(records_, recordPool_);
}

std::vector<dataplane::WorkerCounters> FastPath::counters() const {
  std::vector<dataplane::WorkerCounters> out;
  for (const auto& worker : workers_) {
    out.push_back(worker->counters());
  }
  return out;
}

std::vector<dataplane::FlowSummary> FastPath::flows() const {
  std::vector<uint64_t> before;
  for (const auto& worker : workers_) {
    before.push_back(worker->flowsSequence());
    worker->requestFlows();
  }
  // Workers answer at their next housekeeping, every ~100 ms.
  for (int tries = 0; tries < 100; ++tries) {
    bool all = true;
    for (size_t i = 0; i < workers_.size(); ++i) {
      all = all && workers_[i]->flowsSequence() != before[i];
    }
    if (all) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<dataplane::FlowSummary> out;
  for (const auto& worker : workers_) {
    const auto flows = worker->flows();
    out.insert(out.end(), flows.begin(), flows.end());
  }
  return out;
}

}  // namespace bulkhead::controlplane
