#include "dataplane/forwarding_state.h"

namespace bulkhead::dataplane {

void ForwardingState::index() {
  indexByPort.fill(NoPortIndex);
  endpointByMac.clear();
  endpointByIp.clear();
  uplink = NoPortIndex;
  for (size_t i = 0; i < ports.size(); ++i) {
    const auto index = static_cast<int16_t>(i);
    const PortBinding& port = ports[i];
    if (port.portId < RTE_MAX_ETHPORTS) {
      indexByPort[port.portId] = index;
    }
    if (port.uplink) {
      uplink = index;
      continue;
    }
    for (const auto& mac : port.macs) {
      endpointByMac[macKey(mac)] = index;
    }
    for (const auto& ip : port.ips) {
      endpointByIp[ip] = index;
    }
  }
}

}  // namespace bulkhead::dataplane
