#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/docker_client.h"
#include "text/untrusted_json.h"

namespace bulkhead::controlplane {

// A running container as the engine describes it: what the agent needs to make it an endpoint.
struct DockerContainer {
  struct Network {
    std::string name;
    std::string bridge;  // the Linux bridge behind the network; "" when it has none
    std::string ip;
    std::string ipv6;
    std::string mac;
  };
  std::string id;
  std::string name;   // without Docker's leading '/'
  std::string image;  // as the container was created from: "bulkhead-test/busybox:1"
  std::map<std::string, std::string> labels;
  std::string netnsPath;  // NetworkSettings.SandboxKey
  std::vector<Network> networks;
};

// A network of the engine. Only bridge networks have a bridge, and only they can be protected.
struct DockerNetwork {
  std::string id;
  std::string name;
  std::string bridge;  // "" unless the driver is "bridge"
};

// What the watcher tells the agent, in the engine's order.
struct DockerUpdate {
  enum class Kind {
    Resync,    // `containers` is every running container and `networks` every network: the
               // agent reconciles to exactly that
    Running,   // `containers[0]` runs (started, or its networks changed)
    Gone,      // the container `id` stopped or was removed
    Networks,  // a network was created or removed: `networks` is every network now
  };
  Kind kind = Kind::Running;
  std::vector<DockerContainer> containers;
  std::string id;
  std::vector<DockerNetwork> networks;
  // Running: when the engine says the container started (its event's timeNano, CLOCK_REALTIME
  // ns); 0 when unknown. Resync: when the watcher began asking (CLOCK_MONOTONIC ns).
  uint64_t sinceNs = 0;
  // When the watcher handed it over (CLOCK_REALTIME ns): the rest is the agent's.
  uint64_t pushedNs = 0;
};

// The highest engine API version the agent was written against; an engine that speaks a newer
// one still serves it. Older engines are refused below MinimumApiVersion (1.24: Docker 1.12).
inline constexpr const char* PreferredApiVersion = "1.41";
inline constexpr const char* MinimumApiVersion = "1.24";

// The version to talk in, given the engine's /version answer; "" with `error` when none fits.
std::string negotiateApiVersion(const nlohmann::json& version, std::string* error);
// GET /containers/<id>/json parsed; `bridges` maps network IDs to bridge names (see
// bridgeOfNetwork). nullopt when the container does not run.
std::optional<DockerContainer> parseInspect(const nlohmann::json& inspect,
                                            const std::map<std::string, std::string>& bridges);
// GET /networks/<id> parsed: the bridge's name for a bridge network, else "".
std::string bridgeOfNetwork(const nlohmann::json& network);
// GET /networks parsed; entries without an id or a name are left out.
std::vector<DockerNetwork> parseNetworks(const nlohmann::json& list);

// One line of the engine's event stream, as far as the agent cares.
struct DockerEvent {
  enum class Kind {
    Ignored,          // nothing the agent follows, or no container named
    NetworksChanged,  // a network was created or removed
    Started,          // container `id` started or was unpaused
    Stopped,          // container `id` died
    Removed,          // container `id` was destroyed
    Connected,        // container `id` joined or left a network
  };
  Kind kind = Kind::Ignored;
  std::string id;
  uint64_t timeNs = 0;  // the event's timeNano; 0 when it has none
};
DockerEvent parseEvent(const nlohmann::json& event);

// Follows one Docker engine: a full resync when it connects, then its event stream; when the
// engine goes away (or restarts) it reconnects with back-off and resyncs, so nothing that happened
// meanwhile is missed. Runs on its own thread; the agent takes updates with take() when fd()
// (an eventfd) is readable.
class DockerWatcher {
 public:
  explicit DockerWatcher(std::string socketPath);
  ~DockerWatcher();
  DockerWatcher(const DockerWatcher&) = delete;
  DockerWatcher& operator=(const DockerWatcher&) = delete;

  void start();
  int fd() const { return eventFd_; }
  std::vector<DockerUpdate> take();
  bool connected() const { return connected_; }
  std::string apiVersion() const;  // "" until connected

 private:
  void run();
  bool connectAndResync(std::string* error);
  // GET `path` as JSON within text::EngineAnswerLimits; nullopt with `error` for an HTTP error
  // (its status in `status`), an unreachable engine or what is not JSON.
  std::optional<nlohmann::json> getJson(const std::string& path, std::string* error,
                                        long* status = nullptr,
                                        const text::JsonLimits& limits = text::EngineAnswerLimits);
  bool listNetworks(std::vector<DockerNetwork>* networks, std::string* error);
  bool followEvents(std::string* error);
  void onEvent(const nlohmann::json& event);
  std::optional<DockerContainer> inspect(const std::string& id, bool* exists);
  void push(DockerUpdate update);
  bool sleepInterruptibly(double seconds);

  DockerClient client_;
  std::string apiVersion_;                      // guarded by mutex_: status reads it
  std::string prefix_;                          // "/v1.41"
  std::map<std::string, std::string> bridges_;  // network ID -> bridge name
  std::set<std::string> running_;               // container IDs the engine runs, as far as we heard
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::string lastError_;  // logged once, not at every retry
  int eventFd_ = -1;
  mutable std::mutex mutex_;
  std::deque<DockerUpdate> updates_;
  std::thread thread_;
};

}  // namespace bulkhead::controlplane
