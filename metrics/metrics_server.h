#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace bulkhead::metrics {

// "127.0.0.1:9968", "[::1]:9968", "localhost:0" (port 0: the kernel picks one) as host and port;
// false with *error when it is none of these.
bool parseListenAddress(const std::string& text, std::string& host, uint16_t& port,
                        std::string* error);

// The agent's Prometheus endpoint: GET /metrics over HTTP/1.1 (cpp-httplib), on its own threads,
// answered with text the control thread renders when a scrape asks for it -- so that everything
// the text reads stays the control thread's alone, and an agent nobody scrapes renders nothing.
//
// A scrape wakes the control loop through fd() and waits up to `renderTimeoutMs` for serve() to
// render; a control thread that does not answer in time gets the scraper a 503, never a hang.
// Clients are bounded by time (read and write timeouts, keep-alive limits) and by size (a request
// body is refused); the threads are a fixed pool of two.
class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Binds and starts serving; nullptr with *error when the address is invalid or taken.
  static std::unique_ptr<MetricsServer> open(const std::string& address, std::string* error,
                                             uint64_t renderTimeoutMs = 3000);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Readable (for poll) while a scrape waits for serve().
  int fd() const { return wakeup_; }
  // Renders if a scrape waits; returns at once otherwise. Control thread, every loop turn.
  void serve(const Render& render);

  // Where it listens, as "host:port" with the port the kernel chose for port 0.
  const std::string& address() const { return address_; }
  uint64_t scrapes() const;
  uint64_t renderTimeouts() const;

 private:
  MetricsServer() = default;
  std::string scrape(bool* ok);

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
  int wakeup_ = -1;  // eventfd
  uint64_t renderTimeoutMs_ = 3000;
  mutable std::mutex mutex_;
  std::condition_variable rendered_;
  uint64_t asked_ = 0;     // scrapes that asked for a render
  uint64_t answered_ = 0;  // the asks the last render answered
  std::string text_;
  uint64_t scrapes_ = 0;
  uint64_t timeouts_ = 0;
};

}  // namespace bulkhead::metrics
