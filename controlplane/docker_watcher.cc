#include "controlplane/docker_watcher.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "http/curl_transfer.h"
#include "text/untrusted_json.h"

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

// Everything the engine says is read through text::'s accessors: a member of the wrong type
// reads as absent, and nothing here throws.
using text::arrayMember;
using text::boolMember;
using text::objectMember;
using text::stringMember;

std::string stringAt(const json& object, const char* key) {
  return stringMember(object, key);
}

const json& objectOrEmpty(const json* found) {
  static const json empty = json::object();
  return found != nullptr ? *found : empty;
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
  if (const auto* options = objectMember(network, "Options")) {
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
  if (!boolMember(objectOrEmpty(objectMember(inspect, "State")), "Running").value_or(false)) {
    return std::nullopt;
  }
  DockerContainer container;
  container.id = stringAt(inspect, "Id");
  container.name = stringAt(inspect, "Name");
  if (container.name.starts_with('/')) {
    container.name.erase(0, 1);
  }
  if (const auto* config = objectMember(inspect, "Config")) {
    container.image = stringAt(*config, "Image");
    if (const auto* labels = objectMember(*config, "Labels")) {
      for (const auto& [key, value] : labels->items()) {
        if (value.is_string()) {
          container.labels[key] = value.get<std::string>();
        }
      }
    }
  }
  if (const auto* settings = objectMember(inspect, "NetworkSettings")) {
    container.netnsPath = stringAt(*settings, "SandboxKey");
    if (const auto* networks = objectMember(*settings, "Networks")) {
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

std::string DockerWatcher::apiVersion() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return apiVersion_;
}

void DockerWatcher::run() {
  double backoff = 0.5;
  while (!stop_) {
    std::string error;
    // Whatever the engine sends, this thread reports it and tries again: it never takes the
    // agent down. The parsers do not throw; this is the last line behind them.
    try {
      if (connectAndResync(&error)) {
        connected_ = true;
        if (!lastError_.empty()) {
          spdlog::info("docker: reconnected to {} (API {})", client_.socketPath(), apiVersion());
          lastError_.clear();
        }
        const auto followed = std::chrono::steady_clock::now();
        if (followEvents(&error)) {
          return;  // asked to stop
        }
        connected_ = false;
        // Only a stream that held for a while earns a quick retry: an engine whose /events fails
        // at once would otherwise get a full resync every second.
        if (std::chrono::steady_clock::now() - followed > std::chrono::seconds(10)) {
          backoff = 0.5;
        }
      }
    } catch (const std::exception& e) {
      connected_ = false;
      error = std::string("the engine's answer could not be used: ") + e.what();
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

std::optional<json> DockerWatcher::getJson(const std::string& path, std::string* error,
                                           long* status, const text::JsonLimits& limits) {
  const auto answer = client_.get(path, error, limits.maxBytes);
  if (!answer) {
    return std::nullopt;
  }
  if (status != nullptr) {
    *status = answer->status;
  }
  if (answer->status != 200) {
    *error = path + " answered HTTP " + std::to_string(answer->status);
    return std::nullopt;
  }
  std::string problem;
  auto parsed = text::parseUntrusted(answer->body, limits, &problem);
  if (!parsed) {
    *error = path + " answered with what is not usable JSON: " + problem;
  }
  return parsed;
}

bool DockerWatcher::connectAndResync(std::string* error) {
  const auto version = getJson("/version", error);
  if (!version) {
    return false;
  }
  const std::string chosen = negotiateApiVersion(*version, error);
  if (chosen.empty()) {
    return false;
  }
  if (chosen != apiVersion()) {
    spdlog::info("docker: engine {} on {}, speaking API {}", stringAt(*version, "Version"),
                 client_.socketPath(), chosen);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    apiVersion_ = chosen;
  }
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
  const auto containers =
      getJson(prefix_ + "/containers/json", error, nullptr, text::EngineListLimits);
  if (!containers) {
    return false;
  }
  if (!containers->is_array()) {
    *error = "/containers/json is not a list";
    return false;
  }
  running_.clear();
  for (const auto& summary : *containers) {
    const std::string id = stringAt(summary, "Id");
    if (id.empty()) {
      continue;  // nothing to look at; the engine's listing is odd, not the container
    }
    bool exists = true;
    if (auto container = inspect(id, &exists)) {
      running_.insert(container->id);
      resync.containers.push_back(std::move(*container));
    } else if (exists) {
      *error = "cannot inspect container " + id;
      return false;
    }
  }
  push(std::move(resync));
  return true;
}

bool DockerWatcher::listNetworks(std::vector<DockerNetwork>* networks, std::string* error) {
  const auto list = getJson(prefix_ + "/networks", error, nullptr, text::EngineListLimits);
  if (!list) {
    return false;
  }
  if (!list->is_array()) {
    *error = "/networks is not a list";
    return false;
  }
  *networks = parseNetworks(*list);
  for (const auto& network : *networks) {
    bridges_[network.id] = network.bridge;
  }
  return true;
}

std::optional<DockerContainer> DockerWatcher::inspect(const std::string& id, bool* exists) {
  std::string error;
  long status = 0;
  *exists = true;
  const auto parsed =
      getJson(prefix_ + "/containers/" + http::urlEncode(id) + "/json", &error, &status);
  if (!parsed) {
    *exists = status != 404;  // removed since the event: nothing to do
    if (*exists) {
      spdlog::warn("docker: {}", error);
    }
    return std::nullopt;
  }
  // Learn the bridges of networks we have not seen before parsing refers to them.
  const json* settings = objectMember(*parsed, "NetworkSettings");
  const json* networks = settings != nullptr ? objectMember(*settings, "Networks") : nullptr;
  for (const auto& [name, network] : objectOrEmpty(networks).items()) {
    const std::string networkId = stringAt(network, "NetworkID");
    if (networkId.empty() || bridges_.count(networkId) != 0) {
      continue;
    }
    if (const auto answer = getJson(prefix_ + "/networks/" + http::urlEncode(networkId), &error)) {
      bridges_[networkId] = bridgeOfNetwork(*answer);
    }
  }
  auto container = parseInspect(*parsed, bridges_);
  if (!container) {
    // An answer that is no container at all, or a running container that cannot be parsed, is
    // worth a retry; a stopped container is gone.
    *exists = !parsed->is_object() ||
              boolMember(objectOrEmpty(objectMember(*parsed, "State")), "Running").value_or(false);
  }
  return container;
}

bool DockerWatcher::followEvents(std::string* error) {
  // From just before the resync's listing: what happened while we listed is replayed, and the
  // agent's reconciliation makes a replay harmless.
  const long long since = static_cast<long long>(std::time(nullptr)) - 1;
  const std::string filters = R"({"type":["container","network"]})";
  const std::string path =
      prefix_ + "/events?since=" + std::to_string(since) + "&filters=" + http::urlEncode(filters);
  return client_.stream(
      path,
      [this](std::string_view line) {
        std::string problem;
        const auto event = text::parseUntrusted(line, text::EngineEventLimits, &problem);
        if (!event || !event->is_object()) {
          // Not an event we can read: what it said is unknown, so the next resync settles it.
          spdlog::warn("docker: an event that is not a JSON object ({}) was left out",
                       event ? "another type" : problem);
          return;
        }
        onEvent(*event);
      },
      [this] { return stop_.load(); }, error, text::EngineEventLimits.maxBytes);
}

DockerEvent parseEvent(const json& event) {
  const std::string type = stringAt(event, "Type");
  const std::string action = stringAt(event, "Action");
  const json& actor = objectOrEmpty(objectMember(event, "Actor"));
  DockerEvent out;
  out.timeNs = text::unsignedMember(event, "timeNano").value_or(0);
  if (type == "network" && (action == "create" || action == "destroy")) {
    out.kind = DockerEvent::Kind::NetworksChanged;
    return out;
  }
  if (type == "container") {
    out.id = stringAt(actor, "ID");
    out.kind = action == "start" || action == "unpause" ? DockerEvent::Kind::Started
               : action == "die"                        ? DockerEvent::Kind::Stopped
               : action == "destroy"                    ? DockerEvent::Kind::Removed
                                                        : DockerEvent::Kind::Ignored;
  } else if (type == "network" && (action == "connect" || action == "disconnect")) {
    out.id = stringAt(objectOrEmpty(objectMember(actor, "Attributes")), "container");
    out.kind = DockerEvent::Kind::Connected;
  }
  if (out.id.empty()) {
    out.kind = DockerEvent::Kind::Ignored;
  }
  return out;
}

void DockerWatcher::onEvent(const json& raw) {
  const DockerEvent event = parseEvent(raw);
  switch (event.kind) {
    case DockerEvent::Kind::Ignored:
      return;
    case DockerEvent::Kind::NetworksChanged: {
      DockerUpdate update;
      update.kind = DockerUpdate::Kind::Networks;
      std::string error;
      if (listNetworks(&update.networks, &error)) {
        push(std::move(update));
      } else {
        spdlog::warn("docker: networks changed: {}", error);
      }
      return;
    }
    case DockerEvent::Kind::Stopped:
    case DockerEvent::Kind::Removed:
      if (running_.erase(event.id) != 0 || event.kind == DockerEvent::Kind::Stopped) {
        push({DockerUpdate::Kind::Gone, {}, event.id});
      }
      return;
    case DockerEvent::Kind::Connected:
      // A container joins its networks before it starts: those connects need no look, its start
      // event follows. Only a running container's connect or disconnect changes an endpoint.
      if (running_.count(event.id) == 0) {
        return;
      }
      break;
    case DockerEvent::Kind::Started:
      running_.insert(event.id);
      break;
  }
  bool exists = true;
  if (auto container = inspect(event.id, &exists)) {
    DockerUpdate update{DockerUpdate::Kind::Running, {std::move(*container)}, event.id, {}, 0};
    update.sinceNs = event.timeNs;
    push(std::move(update));
  } else if (!exists) {
    push({DockerUpdate::Kind::Gone, {}, event.id});
  }
}

}  // namespace bulkhead::controlplane
