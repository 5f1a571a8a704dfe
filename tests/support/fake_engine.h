#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bulkhead::testing {

// Stands in for the Docker engine on a Unix socket, for testing what the agent does with what an
// engine says: every GET is answered from a table the test fills (path without its query
// string -> status and body), and /events streams the lines the test queues until the test ends
// the stream. Plain HTTP/1.1 with `Connection: close`, one request per connection, as libcurl
// speaks it to the real engine.
class FakeEngine {
 public:
  struct Answer {
    int status = 200;
    std::string body;
  };

  explicit FakeEngine(std::string path) : path_(std::move(path)) {
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listener_, 64) != 0) {
      ::close(listener_);
      listener_ = -1;
      return;
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeEngine() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    for (auto& worker : workers_) {
      worker.join();
    }
    if (listener_ >= 0) {
      ::close(listener_);
    }
    ::unlink(path_.c_str());
  }
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;

  bool listening() const { return listener_ >= 0; }
  const std::string& path() const { return path_; }

  // `path` as the watcher asks for it, with the API prefix ("/v1.41/networks"), or "/version".
  void answer(const std::string& path, Answer answer) {
    std::lock_guard lock(mutex_);
    answers_[path] = std::move(answer);
  }
  // Sent once, on the event stream open now or the next to open; a line may lack its newline.
  void event(const std::string& line) {
    std::lock_guard lock(mutex_);
    events_.push_back(line);
  }
  // Closes every event stream open now (the engine "restarts" its stream).
  void endStreams() { ++streamGeneration_; }
  size_t requests(const std::string& path) const {
    std::lock_guard lock(mutex_);
    const auto found = counts_.find(path);
    return found == counts_.end() ? 0 : found->second;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 20) <= 0) {
        continue;
      }
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        workers_.emplace_back([this, client] {
          serve(client);
          ::close(client);
        });
      }
    }
  }

  void serve(int client) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && !stop_) {
      pollfd ready{client, POLLIN, 0};
      if (::poll(&ready, 1, 20) <= 0) {
        continue;
      }
      const ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        return;
      }
      request.append(buffer, size_t(n));
    }
    const size_t start = request.find(' ') + 1;
    std::string path = request.substr(start, request.find(' ', start) - start);
    path = path.substr(0, path.find('?'));
    {
      std::lock_guard lock(mutex_);
      ++counts_[path];
    }
    if (path.ends_with("/events")) {
      stream(client);
      return;
    }
    Answer found{404, R"({"message":"page not found"})"};
    {
      std::lock_guard lock(mutex_);
      if (const auto it = answers_.find(path); it != answers_.end()) {
        found = it->second;
      }
    }
    const std::string head = "HTTP/1.1 " + std::to_string(found.status) +
                             " X\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(found.body.size()) + "\r\nConnection: close\r\n\r\n";
    sendAll(client, head + found.body);
  }

  void stream(int client) {
    const int generation = streamGeneration_;
    if (!sendAll(client,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Connection: close\r\n\r\n")) {
      return;
    }
    while (!stop_ && streamGeneration_ == generation) {
      std::vector<std::string> lines;
      {
        std::lock_guard lock(mutex_);
        lines.swap(events_);
      }
      for (const auto& line : lines) {
        if (!sendAll(client, line)) {
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  bool sendAll(int client, const std::string& data) {
    size_t done = 0;
    while (done < data.size() && !stop_) {
      const ssize_t n = ::send(client, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      done += size_t(n);
    }
    return done == data.size();
  }

  std::string path_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> streamGeneration_{0};
  mutable std::mutex mutex_;
  std::map<std::string, Answer> answers_;
  std::map<std::string, size_t> counts_;
  std::vector<std::string> events_;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

}  // namespace bulkhead::testing
