#include "dataplane/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>

namespace bulkhead::dataplane {
namespace {

std::atomic<bool> initialized{false};

int firstAllowedCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) {
        return cpu;
      }
    }
  }
  return 0;
}

}  // namespace

void initEal(const std::vector<std::string>& arguments) {
  if (initialized.exchange(true)) {
    throw std::runtime_error("DPDK EAL is already initialised in this process");
  }
  std::vector<std::string> copies = arguments;
  std::vector<char*> argv;
  for (auto& argument : copies) {
    argv.push_back(argument.data());
  }
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(copies.size()), argv.data()) < 0) {
    initialized = false;
    throw std::runtime_error(std::string("DPDK EAL initialisation failed: ") +
                             rte_strerror(rte_errno));
  }
}

bool ealInitialized() { return initialized; }

std::vector<std::string> offlineEalArguments(int memoryMegabytes) {
  return {"bulkhead",
          "--no-huge",
          "--no-pci",
          "--no-shconf",
          "--no-telemetry",
          "-m",
          std::to_string(memoryMegabytes),
          "-l",
          std::to_string(firstAllowedCpu()),
          "--file-prefix",
          "bulkhead-offline-" + std::to_string(getpid()),
          "--log-level",
          "lib.*:error"};
}

rte_mempool* createPacketPool(const std::string& name, unsigned count, unsigned dataRoom) {
  rte_mempool* pool = rte_pktmbuf_pool_create(name.c_str(), count, 0, 0,
                                              static_cast<uint16_t>(dataRoom + RTE_PKTMBUF_HEADROOM),
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    throw std::runtime_error("cannot create mbuf pool '" + name + "': " + rte_strerror(rte_errno));
  }
  return pool;
}

}  // namespace bulkhead::dataplane
