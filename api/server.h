#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace bulkhead::api {

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

}  // namespace bulkhead::api
