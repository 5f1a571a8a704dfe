#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/server.h"

namespace bulkhead::testing {

// Stands in for bulkheadd on its local API, for testing bulkhead-cni: a real ApiServer served
// from a thread of the test, answering attach, detach and status like the agent over a table of
// attached endpoints (or refusing everything when told to), and recording every request.
class FakeAgent {
 public:
  struct Request {
    nlohmann::json body;
    // For attach: whether the interface it names existed when the request came in (a runtime
    // must call the plugin after the veth is made, not before).
    bool interfaceExisted = false;
  };

  explicit FakeAgent(const std::string& path) {
    std::string error;
    server_ = api::ApiServer::open(path, "", &error);
    EXPECT_TRUE(server_) << error;
    if (server_) {
      thread_ = std::thread([this] { loop(); });
    }
  }
  ~FakeAgent() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  FakeAgent(const FakeAgent&) = delete;
  FakeAgent& operator=(const FakeAgent&) = delete;

  void refuseWith(const std::string& message) {
    std::lock_guard lock(mutex_);
    refusal_ = message;
  }
  void attachByHand(const std::string& name, const std::string& interface) {
    std::lock_guard lock(mutex_);
    attached_[name] = interface;
  }
  std::vector<nlohmann::json> requests() const {
    std::lock_guard lock(mutex_);
    std::vector<nlohmann::json> out;
    for (const auto& request : requests_) {
      out.push_back(request.body);
    }
    return out;
  }
  std::vector<Request> requests(const std::string& command) const {
    std::lock_guard lock(mutex_);
    std::vector<Request> matching;
    for (const auto& request : requests_) {
      if (request.body.value("command", "") == command) {
        matching.push_back(request);
      }
    }
    return matching;
  }

 private:
  void loop() {
    const auto handler = [this](const nlohmann::json& request) { return handle(request); };
    while (!stop_) {
      pollfd ready{server_->fd(), POLLIN, 0};
      ::poll(&ready, 1, 20);
      server_->serve(handler);
    }
  }

  nlohmann::json handle(const nlohmann::json& request) {
    std::lock_guard lock(mutex_);
    const std::string command = request.value("command", "");
    Request recorded{request, false};
    const nlohmann::json endpoint = request.value("endpoint", nlohmann::json::object());
    const std::string interface = endpoint.is_object() ? endpoint.value("interface", "") : "";
    if (command == "attach" && !interface.empty()) {
      std::error_code ignored;
      recorded.interfaceExisted = std::filesystem::exists("/sys/class/net/" + interface, ignored);
    }
    requests_.push_back(recorded);
    if (!refusal_.empty()) {
      return {{"ok", false}, {"error", refusal_}};
    }
    if (command == "attach") {
      const std::string name = endpoint.value("name", "");
      if (attached_.count(name) != 0) {
        return {{"ok", false}, {"error", "endpoint '" + name + "' is already attached"}};
      }
      attached_[name] = interface;
      return {{"ok", true}, {"policyGeneration", 1}};
    }
    if (command == "detach") {
      const std::string name = request.value("name", "");
      if (attached_.erase(name) == 0) {
        return {{"ok", false}, {"error", "no endpoint named '" + name + "' is attached"}};
      }
      return {{"ok", true}, {"policyGeneration", 1}};
    }
    if (command == "status") {
      nlohmann::json endpoints = nlohmann::json::array();
      for (const auto& [name, attachedInterface] : attached_) {
        endpoints.push_back({{"name", name},
                             {"interface", attachedInterface},
                             {"attachments", {{{"interface", attachedInterface}, {"tag", 1}}}}});
      }
      return {{"ok", true}, {"endpoints", endpoints}};
    }
    return {{"ok", false}, {"error", "unknown command '" + command + "'"}};
  }

  std::unique_ptr<api::ApiServer> server_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::string refusal_;
  std::map<std::string, std::string> attached_;
  std::vector<Request> requests_;
};

}  // namespace bulkhead::testing
