// What the Docker engine (or podman's compatible API) answers, read the way the watcher reads it:
// /version, a container's inspect, a network, the network list, an event line. The first byte
// picks which; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "controlplane/docker_watcher.h"
#include "controlplane/runtime_labels.h"
#include "text/untrusted_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  if (size == 0) {
    return 0;
  }
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string error;
  const bool event = data[0] % 5 == 4;
  const auto parsed = text::parseUntrusted(
      body, event ? text::EngineEventLimits : text::EngineAnswerLimits, &error);
  if (!parsed) {
    return 0;
  }
  switch (data[0] % 5) {
    case 0:
      (void)controlplane::negotiateApiVersion(*parsed, &error);
      break;
    case 1: {
      static const std::map<std::string, std::string> bridges = {{"net1", "br-net1"}};
      if (auto container = controlplane::parseInspect(*parsed, bridges)) {
        if (container->id.empty() || container->name.empty()) {
          __builtin_trap();  // a container the agent cannot name must not come out
        }
      }
      (void)controlplane::parseRuntimeInspect("id", body);
      break;
    }
    case 2:
      (void)controlplane::bridgeOfNetwork(*parsed);
      break;
    case 3:
      (void)controlplane::parseNetworks(*parsed);
      break;
    case 4:
      if (const auto read = controlplane::parseEvent(*parsed);
          read.kind != controlplane::DockerEvent::Kind::Ignored &&
          read.kind != controlplane::DockerEvent::Kind::NetworksChanged && read.id.empty()) {
        __builtin_trap();  // an event about no container
      }
      break;
  }
  return 0;
}
