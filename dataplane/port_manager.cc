#include "dataplane/port_manager.h"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <xdp/libxdp.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace bulkhead::dataplane {

const char* toString(PortDriver driver) {
  switch (driver) {
    case PortDriver::Auto:
      return "auto";
    case PortDriver::AfXdp:
      return "af_xdp";
    case PortDriver::AfPacket:
      return "af_packet";
  }
  return "?";
}

bool parsePortDriver(const std::string& text, PortDriver& out) {
  if (text == "auto") {
    out = PortDriver::Auto;
  } else if (text == "af_xdp") {
    out = PortDriver::AfXdp;
  } else if (text == "af_packet") {
    out = PortDriver::AfPacket;
  } else {
    return false;
  }
  return true;
}

namespace {

// libxdp (under DPDK's af_xdp driver) tells stderr about every port it makes: that the kernel
// would not run its dispatcher and it loads a single program instead, as intended on such
// kernels. Its warnings stay, but for that one; its information and debugging go.
int quietLibxdp(libxdp_print_level level, const char* format, va_list arguments) {
  if (level != LIBXDP_WARN ||
      std::strstr(format, "Compatibility check for dispatcher") != nullptr) {
    return 0;
  }
  return std::vfprintf(stderr, format, arguments);
}

}  // namespace

PortManager::PortManager(unsigned mbufsPerPort, uint16_t queues, uint16_t ringSize)
    : mbufsPerPort_(mbufsPerPort), queues_(queues), ringSize_(ringSize) {
  libxdp_set_print(quietLibxdp);
}

bool PortManager::tryAttach(const std::string& interface, PortDriver driver, PortInfo& out,
                            std::string& error) {
  const bool xdp = driver == PortDriver::AfXdp;
  const unsigned sequence = sequence_++;
  const std::string device =
      std::string(xdp ? "net_af_xdp" : "net_af_packet") + "_bh" + std::to_string(sequence);
  rte_mempool* pool = rte_pktmbuf_pool_create(("bh_rx" + std::to_string(sequence)).c_str(),
                                              mbufsPerPort_, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    error = std::string(toString(driver)) + ": no memory for the port's mbuf pool (" +
            rte_strerror(rte_errno) + ")";
    return false;
  }
  std::string arguments = device + ",iface=" + interface;
  if (xdp) {
    arguments += ",start_queue=0,queue_count=" + std::to_string(queues_);
  } else {
    arguments += ",qpairs=" + std::to_string(queues_);
  }
  if (rte_dev_probe(arguments.c_str()) != 0) {
    error = std::string(toString(driver)) + ": probe failed (" + rte_strerror(rte_errno) + ")";
    rte_mempool_free(pool);
    return false;
  }
  uint16_t portId = 0;
  if (rte_eth_dev_get_port_by_name(device.c_str(), &portId) != 0) {
    error = std::string(toString(driver)) + ": probed but no port";
    rte_eal_hotplug_remove("vdev", device.c_str());
    rte_mempool_free(pool);
    return false;
  }
  const auto fail = [&](const char* step, int code) {
    error = std::string(toString(driver)) + ": " + step + " failed (" + rte_strerror(-code) + ")";
    rte_eth_dev_stop(portId);
    rte_eth_dev_close(portId);
    rte_eal_hotplug_remove("vdev", device.c_str());
    rte_mempool_free(pool);
    return false;
  };
  rte_eth_conf config;
  std::memset(&config, 0, sizeof(config));
  if (const int rc = rte_eth_dev_configure(portId, queues_, queues_, &config); rc != 0) {
    return fail("configure", rc);
  }
  const int socket = rte_eth_dev_socket_id(portId);
  for (uint16_t queue = 0; queue < queues_; ++queue) {
    if (const int rc = rte_eth_rx_queue_setup(portId, queue, ringSize_,
                                              static_cast<unsigned>(socket), nullptr, pool);
        rc != 0) {
      return fail("rx queue setup", rc);
    }
    if (const int rc = rte_eth_tx_queue_setup(portId, queue, ringSize_,
                                              static_cast<unsigned>(socket), nullptr);
        rc != 0) {
      return fail("tx queue setup", rc);
    }
  }
  if (const int rc = rte_eth_dev_start(portId); rc != 0) {
    return fail("start", rc);
  }
  // A bump-in-the-wire forwards frames for every MAC behind the interface, not just its own.
  rte_eth_promiscuous_enable(portId);
  rte_ether_addr address;
  out = {portId, interface, device, driver, pool, {}, {}};
  if (rte_eth_macaddr_get(portId, &address) == 0) {
    std::memcpy(out.mac.bytes.data(), address.addr_bytes, 6);
  }
  return true;
}

PortInfo PortManager::attach(const std::string& interface, PortDriver preference) {
  if (interface.empty() || interface.find('/') != std::string::npos ||
      interface.find(',') != std::string::npos || interface.size() > 15) {
    throw std::runtime_error("'" + interface + "' is not an interface name");
  }
  std::ofstream("/proc/sys/net/ipv6/conf/" + interface + "/disable_ipv6") << "1";
  std::string reasons;
  PortInfo port;
  if (preference != PortDriver::AfPacket) {
    std::string error;
    if (tryAttach(interface, PortDriver::AfXdp, port, error)) {
      return port;
    }
    reasons += error;
  }
  if (preference != PortDriver::AfXdp) {
    std::string error;
    if (tryAttach(interface, PortDriver::AfPacket, port, error)) {
      port.fallbackReason = reasons;
      return port;
    }
    reasons += (reasons.empty() ? "" : "; ") + error;
  }
  throw std::runtime_error("cannot attach interface '" + interface + "': " + reasons);
}

void PortManager::detach(const PortInfo& port) {
  rte_eth_dev_stop(port.portId);
  rte_eth_dev_close(port.portId);
  rte_eal_hotplug_remove("vdev", port.device.c_str());
  rte_mempool_free(port.pool);
}

}  // namespace bulkhead::dataplane
