#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulkhead::controlplane {

// What the agent changed on the host that outlives it, written to the state directory after
// every change: which veths it took off which bridge, which uplink pairs it created, and the
// endpoints the API attached (a CNI runtime will not send ADD again after an agent restart). The
// next start reads it to undo (failOpen after a crash) or redo (recovery) that work.
struct AttachmentJournal {
  struct Uplink {
    std::string interface;  // the dataplane's end
    std::string peer;       // the end enslaved to the bridge
    std::string bridge;
  };
  struct Endpoint {
    std::string name;
    std::string interface;
    std::string bridge;         // the bridge it was taken off; "" when it was on none
    std::string source;         // "config", "api" or "docker"
    nlohmann::json request;     // for "api": the attach request, replayed at recovery
  };
  bool running = false;  // true while an agent runs: still true at the next start means a crash
  std::vector<Uplink> uplinks;
  std::vector<Endpoint> endpoints;

  // A missing file is an empty journal; an unreadable one too, with `warning` set.
  static AttachmentJournal load(const std::string& path, std::string* warning);
  // Atomically (write + rename), so a crash mid-write leaves the previous journal.
  bool save(const std::string& path, std::string* error) const;
};

}  // namespace bulkhead::controlplane
