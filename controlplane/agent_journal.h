#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bulkhead::controlplane {

// What an agent leaves in the kernel and what a restart must redo, written to the state
// directory after every change: the interfaces it plugged, its uplink pairs, the bridges it
// protects (their veths stay quarantined across a restart), and the endpoints the API attached
// (a CNI runtime will not send ADD again). The next start reads it to take over, or
// `bulkheadd --release` to remove, what this one left.
struct AgentJournal {
  bool running = false;  // true while an agent runs: still true at the next start means a crash
  int pid = 0;           // of the agent that wrote it
  std::string instance;
  std::vector<std::string> plugged;
  std::vector<std::string> uplinks;
  std::vector<std::string> protectedBridges;
  std::vector<nlohmann::json> apiEndpoints;  // attach requests, replayed at the next start

  // A missing file is an empty journal; an unreadable one too, with `warning` set.
  static AgentJournal load(const std::string& path, std::string* warning);
  // Atomically (write + rename), so a crash mid-write leaves the previous journal.
  bool save(const std::string& path, std::string* error) const;
};

}  // namespace bulkhead::controlplane
