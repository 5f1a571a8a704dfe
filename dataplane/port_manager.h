#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "dataplane/packet_meta.h"

struct rte_mempool;

namespace bulkhead::dataplane {

enum class PortDriver { Auto, AfXdp, AfPacket };

const char* toString(PortDriver driver);
bool parsePortDriver(const std::string& text, PortDriver& out);

struct PortInfo {
  uint16_t portId = 0;
  std::string interface;  // the kernel interface (e.g. a veth's host end)
  std::string device;     // the DPDK vdev name
  PortDriver driver = PortDriver::AfPacket;
  rte_mempool* pool = nullptr;  // the port's own receive pool (af_xdp makes it its UMEM)
  MacAddress mac;             // the interface's own address
  std::string fallbackReason;  // why the preferred driver was not used, if it was not
};

// Attaches a kernel interface (the trunk's DPDK end) as a DPDK port (a vdev) and detaches it.
// The interface stops being an IP interface of the host (IPv6 is disabled on it): from then on
// it is one end of a wire, and the host's own chatter on it would only look like spoofing. Only
// the control thread calls it; workers must have stopped polling a port before detach().
// af_xdp is preferred where it works; af_packet is the fallback. An interface is attached once
// per process: the kernel refuses af_xdp a second xsk socket on it.
class PortManager {
 public:
  // Each port gets its own receive pool of `mbufsPerPort`: af_xdp registers the pool it receives
  // into as its UMEM, and one pool shared by several ports starved them all.
  PortManager(unsigned mbufsPerPort, uint16_t queues, uint16_t ringSize);

  // Throws std::runtime_error with every driver's reason when no driver can attach it.
  PortInfo attach(const std::string& interface, PortDriver preference);
  void detach(const PortInfo& port);

 private:
  bool tryAttach(const std::string& interface, PortDriver driver, PortInfo& out,
                 std::string& error);

  unsigned mbufsPerPort_;
  uint16_t queues_;
  uint16_t ringSize_;
  unsigned sequence_ = 0;
};

}  // namespace bulkhead::dataplane
