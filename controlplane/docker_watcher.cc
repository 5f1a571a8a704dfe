#include "controlplane/docker_watcher.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

namespace bulkhead::controlplane {
namespace {

using nlohmann::json;

// "1.41" -> {1, 41}: compared as numbers, "1.9" < "1.41".
std::pair<int, int> versionNumber(const std::string& text) {
  const size_t dot = text.find('.');
  try {
    return {std::stoi(text.substr(0, dot)),
            dot == std::string::npos ? 0 : std::stoi(text.substr(dot + 1))};
  } catch (const std::exception&) {
    return {0, 0};
  }
}

std::string stringAt(const json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

}  // namespace

std::string negotiateApiVersion(const json& version, std::string* error) {
  const std::string engine = stringAt(version, "ApiVersion");
  if (engine.empty()) {
    *error = "the engine's /version has no ApiVersion";
    return "";
  }
  std::string chosen = versionNumber(engine) < versionNumber(PreferredApiVersion)
                           ? engine
                           : std::string(PreferredApiVersion);
  // An engine newer than us may have dropped old versions: then speak its oldest.
  if (const std::string oldest = stringAt(version, "MinAPIVersion");
      !oldest.empty() && versionNumber(chosen) < versionNumber(oldest)) {
    chosen = oldest;
  }
  if (versionNumber(chosen) < versionNumber(MinimumApiVersion)) {
    *error =
        "the engine speaks API " + engine + "; bulkhead needs " + MinimumApiVersion + " or newer";
    return "";
  }
  return chosen;
}

std::string bridgeOfNetwork(const json& network) {
  if (stringAt(network, "Driver") != "bridge") {
    return "";
  }
  if (const auto options = network.find("Options");
      options != network.end() && options->is_object()) {
    if (const std::string name = stringAt(*options, "com.docker.network.bridge.name");
        !name.empty()) {
      return name;
    }
  }
  const std::string id = stringAt(network, "Id");
  return id.size() >= 12 ? "br-" + id.substr(0, 12) : "";
}

std::vector<DockerNetwork> parseNetworks(const json& list) {
  std::vector<DockerNetwork> out;
  if (!list.is_array()) {
    return out;
  }
  for (const auto& network : list) {
    if (!network.is_object()) {
      continue;
    }
    DockerNetwork entry{stringAt(network, "Id"), stringAt(network, "Name"),
                        bridgeOfNetwork(network)};
    if (!entry.id.empty() && !entry.name.empty()) {
      out.push_back(std::move(entry));
    }
  }
  return out;
}

std::optional<DockerContainer> parseInspect(const json& inspect,
                                            const std::map<std::string, std::string>& bridges) {
  if (!inspect.is_object()) {
    return std::nullopt;
  }
  const json& state = inspect.value("State", json::object());
  if (!state.is_object() || !state.value("Running", false)) {
    return std::nullopt;
  }
  DockerContainer container;
  container.id = stringAt(inspect, "Id");
  container.name = stringAt(inspect, "Name");
  if (container.name.starts_with('/')) {
    container.name.erase(0, 1);
  }
  const json& config = inspect.value("Config", json::object());
  if (config.is_object()) {
    container.image = stringAt(config, "Image");
    if (const auto labels = config.find("Labels"); labels != config.end() && labels->is_object()) {
      for (const auto& [key, value] : labels->items()) {
        if (value.is_string()) {
          container.labels[key] = value.get<std::string>();
        }
      }
    }
  }
  const json& settings = inspect.value("NetworkSettings", json::object());
  if (settings.is_object()) {
    container.netnsPath = stringAt(settings, "SandboxKey");
    if (const auto networks = settings.find("Networks");
        networks != settings.end() && networks->is_object()) {
      for (const auto& [name, network] : networks->items()) {
        if (!network.is_object()) {
          continue;
        }
        DockerContainer::Network entry;
        entry.name = name;
        const auto bridge = bridges.find(stringAt(network, "NetworkID"));
        entry.bridge = bridge != bridges.end() ? bridge->second : "";
        entry.ip = stringAt(network, "IPAddress");
        entry.ipv6 = stringAt(network, "GlobalIPv6Address");
        entry.mac = stringAt(network, "MacAddress");
        container.networks.push_back(std::move(entry));
      }
    }
  }
  if (container.id.empty() || container.name.empty()) {
    return std::nullopt;
  }
  return container;
}

DockerWatcher::DockerWatcher(std::string socketPath)
    : client_(std::move(socketPath), 10), eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

DockerWatcher::~DockerWatcher() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
  ::close(eventFd_);
}

void DockerWatcher::start() {
  thread_ = std::thread([this] { run(); });
}

std::vector<DockerUpdate> DockerWatcher::take() {
  uint64_t ignored;
  [[maybe_unused]] const ssize_t n = ::read(eventFd_, &ignored, sizeof ignored);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<DockerUpdate> out(std::make_move_iterator(updates_.begin()),
                                std::make_move_iterator(updates_.end()));
  updates_.clear();
  return out;
}

void DockerWatcher::push(DockerUpdate update) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  update.pushedNs = uint64_t(now.tv_sec) * 1000000000ull + uint64_t(now.tv_nsec);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    updates_.push_back(std::move(update));
  }
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(eventFd_, &one, sizeof one);
}

bool DockerWatcher::sleepInterruptibly(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !stop_;
}

void DockerWatcher::run() {
  double backoff = 0.5;
  while (!stop_) {
    std::string error;
    if (connectAndResync(&error)) {
      connected_ = true;
      backoff = 0.5;
      if (!lastError_.empty()) {
        spdlog::info("docker: reconnected to {} (API {})", client_.socketPath(), apiVersion_);
        lastError_.clear();
      }
      if (followEvents(&error)) {
        return;  // asked to stop
      }
      connected_ = false;
    }
    if (error != lastError_) {
      spdlog::warn("docker: {}; retrying with back-off (up to 10 s)", error);
      lastError_ = error;
    }
    if (!sleepInterruptibly(backoff)) {
      return;
    }
    backoff = std::min(backoff * 2, 10.0);
  }
}

bool DockerWatcher::connectAndResync(std::string* error) {
  const auto version = client_.get("/version", error);
  if (!version) {
    return false;
  }
  json parsed = json::parse(version->body, nullptr, false);
  if (version->status != 200 || parsed.is_discarded()) {
    *error = "/version answered HTTP " + std::to_string(version->status);
    return false;
  }
  const std::string chosen = negotiateApiVersion(parsed, error);
  if (chosen.empty()) {
    return false;
  }
  if (chosen != apiVersion_) {
    spdlog::info("docker: engine {} on {}, speaking API {}", stringAt(parsed, "Version"),
                 client_.socketPath(), chosen);
  }
  apiVersion_ = chosen;
  prefix_ = "/v" + chosen;
  bridges_.clear();
  DockerUpdate resync;
  resync.kind = DockerUpdate::Kind::Resync;
  timespec began;
  clock_gettime(CLOCK_MONOTONIC, &began);
  resync.sinceNs = uint64_t(began.tv_sec) * 1000000000ull + uint64_t(began.tv_nsec);
  if (!listNetworks(&resync.networks, error)) {
    return false;
  }

  const auto list = client_.get(prefix_ + "/containers/json", error);
  if (!list) {
    return false;
  }
  const json containers = json::parse(list->body, nullptr, false);
  if (list->status != 200 || !containers.is_array()) {
    *error = "/containers/json answered HTTP " + std::to_string(list->status);
    return false;
  }
  running_.clear();
  for (const auto& summary : containers) {
    bool exists = true;
    if (auto container = inspect(stringAt(summary, "Id"), &exists)) {
      running_.insert(container->id);
      resync.containers.push_back(std::move(*container));
    } else if (exists) {
      *error = "cannot inspect container " + stringAt(summary, "Id");
      return false;
    }
  }
  push(std::move(resync));
  return true;
}

bool DockerWatcher::listNetworks(std::vector<DockerNetwork>* networks, std::string* error) {
  const auto answer = client_.get(prefix_ + "/networks", error);
  if (!answer) {
    return false;
  }
  const json list = json::parse(answer->body, nullptr, false);
  if (answer->status != 200 || !list.is_array()) {
    *error = "/networks answered HTTP " + std::to_string(answer->status);
    return false;
  }
  *networks = parseNetworks(list);
  for (const auto& network : *networks) {
    bridges_[network.id] = network.bridge;
  }
  return true;
}

std::optional<DockerContainer> DockerWatcher::inspect(const std::string& id, bool* exists) {
  std::string error;
  *exists = true;
  const auto response = client_.get(prefix_ + "/containers/" + urlEncode(id) + "/json", &error);
  if (!response) {
    return std::nullopt;
  }
  if (response->status == 404) {
    *exists = false;  // removed since the event: nothing to do
    return std::nullopt;
  }
  const json parsed = json::parse(response->body, nullptr, false);
  // Learn the bridges of networks we have not seen before parsing refers to them.
  const json networks = parsed.value("/NetworkSettings/Networks"_json_pointer, json::object());
  for (const auto& [name, network] : networks.items()) {
    const std::string networkId = stringAt(network, "NetworkID");
    if (networkId.empty() || bridges_.count(networkId) != 0) {
      continue;
    }
    const auto answer = client_.get(prefix_ + "/networks/" + urlEncode(networkId), &error);
    if (answer && answer->status == 200) {
      bridges_[networkId] = bridgeOfNetwork(json::parse(answer->body, nullptr, false));
    }
  }
  auto container = parseInspect(parsed, bridges_);
  if (!container) {
    *exists = parsed.is_object() && response->status == 200 &&
              parsed.value("/State/Running"_json_pointer, false);
  }
  return container;
}

bool DockerWatcher::followEvents(std::string* error) {
  // From just before the resync's listing: what happened while we listed is replayed, and the
  // agent's reconciliation makes a replay harmless.
  const long long since = static_cast<long long>(std::time(nullptr)) - 1;
  const std::string filters = R"({"type":["container","network"]})";
  const std::string path =
      prefix_ + "/events?since=" + std::to_string(since) + "&filters=" + urlEncode(filters);
  return client_.stream(
      path,
      [this](std::string_view line) {
        const json event = json::parse(line, nullptr, false);
        if (event.is_object()) {
          onEvent(event);
        }
      },
      [this] { return stop_.load(); }, error);
}

void DockerWatcher::onEvent(const json& event) {
  const std::string type = stringAt(event, "Type");
  const std::string action = stringAt(event, "Action");
  const json& actor = event.value("Actor", json::object());
  if (type == "network" && (action == "create" || action == "destroy")) {
    DockerUpdate update;
    update.kind = DockerUpdate::Kind::Networks;
    std::string error;
    if (listNetworks(&update.networks, &error)) {
      push(std::move(update));
    } else {
      spdlog::warn("docker: network {}: {}", action, error);
    }
    return;
  }
  std::string id;
  if (type == "container") {
    id = stringAt(actor, "ID");
  } else if (type == "network" && (action == "connect" || action == "disconnect")) {
    id = stringAt(actor.value("Attributes", json::object()), "container");
  }
  if (id.empty()) {
    return;
  }
  if (type == "container" && (action == "die" || action == "destroy")) {
    if (running_.erase(id) != 0 || action == "die") {
      push({DockerUpdate::Kind::Gone, {}, id});
    }
    return;
  }
  if (type == "container" && action != "start" && action != "unpause") {
    return;
  }
  // A container joins its networks before it starts: those connects need no look, its start
  // event follows. Only a running container's connect or disconnect changes an endpoint.
  if (type == "network" && running_.count(id) == 0) {
    return;
  }
  if (type == "container") {
    running_.insert(id);
  }
  bool exists = true;
  if (auto container = inspect(id, &exists)) {
    DockerUpdate update{DockerUpdate::Kind::Running, {std::move(*container)}, id, {}, 0};
    if (const auto time = event.find("timeNano");
        time != event.end() && time->is_number_unsigned()) {
      update.sinceNs = time->get<uint64_t>();
    }
    push(std::move(update));
  } else if (!exists) {
    push({DockerUpdate::Kind::Gone, {}, id});
  }
}

}  // namespace bulkhead::controlplane
