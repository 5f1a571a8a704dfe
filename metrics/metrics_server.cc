#include "metrics/metrics_server.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <httplib.h>
#pragma GCC diagnostic pop

namespace bulkhead::metrics {

bool parseListenAddress(const std::string& text, std::string& host, uint16_t& port,
                        std::string* error) {
  const auto fail = [&](const std::string& why) {
    *error = "metrics address '" + text.substr(0, 128) + "': " + why;
    return false;
  };
  std::string_view portText;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("an IPv6 address is written [address]:port");
    }
    host = text.substr(1, close - 1);
    portText = std::string_view(text).substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return fail("expected host:port");
    }
    host = text.substr(0, colon);
    if (host.find(':') != std::string::npos) {
      return fail("an IPv6 address is written [address]:port");
    }
    portText = std::string_view(text).substr(colon + 1);
  }
  if (host.empty()) {
    return fail("no host (0.0.0.0 listens on every IPv4 address, 127.0.0.1 on loopback only)");
  }
  unsigned value = 0;
  const auto [end, code] =
      std::from_chars(portText.data(), portText.data() + portText.size(), value);
  if (portText.empty() || code != std::errc() || end != portText.data() + portText.size() ||
      value > 65535) {
    return fail("the port must be a number from 0 to 65535");
  }
  port = static_cast<uint16_t>(value);
  return true;
}

std::unique_ptr<MetricsServer> MetricsServer::open(const std::string& address, std::string* error,
                                                   uint64_t renderTimeoutMs) {
  std::string host;
  uint16_t port = 0;
  if (!parseListenAddress(address, host, port, error)) {
    return nullptr;
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->renderTimeoutMs_ = renderTimeoutMs;
  server->wakeup_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (server->wakeup_ < 0) {
    *error = std::string("metrics: eventfd: ") + strerror(errno);
    return nullptr;
  }
  auto& http = *(server->server_ = std::make_unique<httplib::Server>());
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.set_keep_alive_max_count(100);
  http.set_keep_alive_timeout(5);
  http.set_payload_max_length(1024);
  // Two threads: a scrape and one more client at a time is all a loopback endpoint needs, and
  // every thread is one more that a slow client can hold until its timeout.
  // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, with which a second agent would
  // bind the same port and take every other scrape.
  http.set_socket_options([](socket_t sock) {
    const int on = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  });
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  MetricsServer* self = server.get();
  http.Get("/metrics", [self](const httplib::Request&, httplib::Response& response) {
    bool ok = false;
    std::string body = self->scrape(&ok);
    if (!ok) {
      response.status = 503;
      response.set_content("the agent's control loop did not answer in time\n", "text/plain");
      return;
    }
    response.set_content(std::move(body), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("bulkheadd: metrics at /metrics\n", "text/plain");
  });
  int bound = port;
  if (port == 0) {
    bound = http.bind_to_any_port(host);
  } else if (!http.bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0) {
    *error = "metrics: cannot listen on " + address + " (address in use, or not this host's)";
    return nullptr;
  }
  server->address_ =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  server->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  // httplib's stop() does nothing to a server whose loop has not begun, which would then never
  // end: the loop runs before anyone can stop it.
  for (int waited = 0; !http.is_running(); ++waited) {
    if (waited == 5000) {
      *error = "metrics: the HTTP server on " + server->address_ + " did not start";
      return nullptr;  // its destructor stops and joins whatever did start
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

MetricsServer::~MetricsServer() {
  if (server_) {
    server_->stop();
  }
  {
    // A scrape waiting for a render that will never come is let go at once.
    std::lock_guard<std::mutex> lock(mutex_);
    answered_ = asked_;
    text_.clear();
  }
  rendered_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (wakeup_ >= 0) {
    ::close(wakeup_);
  }
}

std::string MetricsServer::scrape(bool* ok) {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t ticket = ++asked_;
  ++scrapes_;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wakeup_, &one, sizeof(one));
  *ok = rendered_.wait_for(lock, std::chrono::milliseconds(renderTimeoutMs_),
                           [&] { return answered_ >= ticket; });
  if (!*ok || text_.empty()) {
    ++timeouts_;
    *ok = false;
    return {};
  }
  return text_;
}

void MetricsServer::serve(const Render& render) {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t got = ::read(wakeup_, &count, sizeof(count));
  uint64_t asked = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (asked_ == answered_) {
      return;
    }
    asked = asked_;
  }
  // Rendered outside the lock: a scrape arriving meanwhile asks again and waits for the next.
  std::string text = render();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    text_ = std::move(text);
    answered_ = asked;
  }
  rendered_.notify_all();
}

uint64_t MetricsServer::scrapes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return scrapes_;
}

uint64_t MetricsServer::renderTimeouts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return timeouts_;
}

}  // namespace bulkhead::metrics
