#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace bulkhead::api {

// The agent's local API: a Unix stream socket, one JSON request line per connection answered by
// one JSON line. Access is the socket file's: 0600 (root), or 0660 for a named group.
//
// Served from the control thread's loop without ever blocking it: every connection is
// non-blocking and has a deadline, so a client that connects and says nothing, trickles its
// request or never reads its answer costs one slot until its deadline, and every other client is
// answered at once. When all slots are taken, the oldest connection is cut off for a newcomer if
// it has had `evictAfterMs` to say what it wants; otherwise newcomers wait in the listen backlog
// (SOMAXCONN) for a slot. Requests are bounded in size and nesting (text::ApiRequestLimits).
class ApiServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  struct Limits {
    size_t maxConnections = 256;
    uint64_t deadlineMs = 5000;   // from accept to the last byte of the answer
    uint64_t evictAfterMs = 500;  // a real client has sent its request long before
  };

  static std::unique_ptr<ApiServer> open(const std::string& path, const std::string& group,
                                         std::string* error);
  static std::unique_ptr<ApiServer> open(const std::string& path, const std::string& group,
                                         const Limits& limits, std::string* error);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Readable (for poll) when a client connects, sends, or can take more of its answer.
  int fd() const { return epoll_; }
  // Does what is ready without blocking: accepts, reads, answers complete requests, writes, and
  // cuts off connections past their deadline. Call it every turn of the loop, ready or not.
  void serve(const Handler& handler);
  size_t connections() const { return connections_.size(); }
  uint64_t cutOff() const { return cutOff_; }  // connections closed at their deadline or evicted

 private:
  struct Connection {
    std::string in;
    std::string out;
    size_t sent = 0;
    uint64_t acceptedMs = 0;
    bool answering = false;
  };

  ApiServer(int listener, int epoll, std::string path, Limits limits)
      : listener_(listener), epoll_(epoll), path_(std::move(path)), limits_(limits) {}
  void accept(uint64_t nowMs);
  void read(int client, Connection& connection, const Handler& handler);
  void answer(int client, Connection& connection, const nlohmann::json& reply);
  void write(int client, Connection& connection);
  void close(int client);
  void listen(bool on);
  void expire(uint64_t nowMs);

  int listener_;
  int epoll_;
  std::string path_;
  Limits limits_;
  std::map<int, Connection> connections_;
  bool listening_ = true;
  uint64_t cutOff_ = 0;
};

}  // namespace bulkhead::api
