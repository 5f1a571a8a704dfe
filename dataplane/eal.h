#pragma once

#include <string>
#include <vector>

struct rte_mempool;

namespace bulkhead::dataplane {

// DPDK's environment: initialised once per process, before any mbuf, hash or port exists.
// Throws std::runtime_error with EAL's reason when it cannot start.
void initEal(const std::vector<std::string>& arguments);
bool ealInitialized();

// Arguments for work that needs mbufs and hashes but no NIC and no hugepages: offline
// simulation, tests. Memory is private to the process (--no-shconf) so parallel runs coexist.
std::vector<std::string> offlineEalArguments(int memoryMegabytes = 256);

// A packet mbuf pool. `dataRoom` is the bytes per mbuf after headroom.
rte_mempool* createPacketPool(const std::string& name, unsigned count, unsigned dataRoom);

}  // namespace bulkhead::dataplane
