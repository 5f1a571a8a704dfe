#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace bulkhead::controlplane {

// The agent's local API: a Unix stream socket, one JSON request line per connection answered by
// one JSON line. Access is the socket file's: 0600 (root), or 0660 for a named group. Served
// from the control thread's loop; a slow or silent client is cut off after a short timeout.
class ApiServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  static std::unique_ptr<ApiServer> open(const std::string& path, const std::string& group,
                                         std::string* error);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  int fd() const { return fd_; }
  // Answers every connection waiting to be accepted.
  void serveReady(const Handler& handler);

 private:
  ApiServer(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void serve(int client, const Handler& handler);

  int fd_;
  std::string path_;
};

// The client side, for the CLI and tests: sends one request, returns the reply, or sets `error`
// (agent not running, access denied, timeout) and returns null.
nlohmann::json callApi(const std::string& path, const nlohmann::json& request, std::string* error,
                       int timeoutSeconds = 10);

}  // namespace bulkhead::controlplane
