#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <httplib.h>
#pragma GCC diagnostic pop

namespace bulkhead::metrics {
namespace {

// The control loop as the agent runs it: poll the server's fd (and a bound), serve, again.
class ControlLoop {
 public:
  ControlLoop(MetricsServer& server, MetricsServer::Render render)
      : server_(server), render_(std::move(render)), thread_([this] { run(); }) {}
  ~ControlLoop() {
    stop_ = true;
    thread_.join();
  }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  void run() {
    while (!stop_) {
      pollfd fd{server_.fd(), POLLIN, 0};
      ::poll(&fd, 1, 50);
      server_.serve(render_);
    }
  }
  MetricsServer& server_;
  MetricsServer::Render render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

uint16_t portOf(const MetricsServer& server) {
  return static_cast<uint16_t>(std::stoi(server.address().substr(server.address().rfind(':') + 1)));
}

TEST(MetricsAddress, IsHostAndPort) {
  std::string host;
  uint16_t port = 1;
  std::string error;
  ASSERT_TRUE(parseListenAddress("127.0.0.1:9968", host, port, &error)) << error;
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9968);
  ASSERT_TRUE(parseListenAddress("[::1]:0", host, port, &error)) << error;
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  for (const char* bad : {"9968", ":9968", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99x",
                          "::1:9968", "[::1]9968", "[::1"}) {
    error.clear();
    EXPECT_FALSE(parseListenAddress(bad, host, port, &error)) << bad;
    EXPECT_NE(error.find(bad), std::string::npos) << error;
  }
}

TEST(MetricsServer, AScrapeGetsWhatTheControlThreadRendersThen) {
  std::string error;
  auto server = MetricsServer::open("127.0.0.1:0", &error);
  ASSERT_TRUE(server) << error;
  std::atomic<int> renders{0};
  std::thread::id renderedOn;
  std::unique_ptr<ControlLoop> loop;
  loop = std::make_unique<ControlLoop>(*server, [&] {
    renderedOn = std::this_thread::get_id();
    return "# TYPE bulkhead_renders counter\nbulkhead_renders " + std::to_string(++renders) + "\n";
  });
  // Nobody scraped: nothing rendered.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(renders.load(), 0);

  httplib::Client client("127.0.0.1", portOf(*server));
  for (int scrape = 1; scrape <= 3; ++scrape) {
    const auto response = client.Get("/metrics");
    ASSERT_TRUE(response) << httplib::to_string(response.error());
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->get_header_value("Content-Type"),
              "text/plain; version=0.0.4; charset=utf-8");
    // Fresh for every scrape, never an old copy.
    EXPECT_EQ(response->body,
              "# TYPE bulkhead_renders counter\nbulkhead_renders " + std::to_string(scrape) + "\n");
  }
  EXPECT_EQ(renderedOn, loop->id());
  EXPECT_EQ(server->scrapes(), 3u);
  const auto missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  loop.reset();
}

TEST(MetricsServer, AControlThreadThatDoesNotAnswerCostsTheScraperA503NotAHang) {
  std::string error;
  auto server = MetricsServer::open("127.0.0.1:0", &error, 200);
  ASSERT_TRUE(server) << error;
  httplib::Client client("127.0.0.1", portOf(*server));
  client.set_read_timeout(10, 0);
  const auto start = std::chrono::steady_clock::now();
  const auto response = client.Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 503);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(server->renderTimeouts(), 1u);
}

TEST(MetricsServer, AClientThatConnectsAndSaysNothingDoesNotBlockAScrape) {
  std::string error;
  auto server = MetricsServer::open("127.0.0.1:0", &error);
  ASSERT_TRUE(server) << error;
  ControlLoop loop(*server, [] { return std::string("# TYPE up gauge\nup 1\n"); });
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(portOf(*server));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  httplib::Client client("127.0.0.1", portOf(*server));
  client.set_read_timeout(3, 0);
  const auto response = client.Get("/metrics");
  ::close(silent);
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->body, "# TYPE up gauge\nup 1\n");
}

TEST(MetricsServer, AnAddressInUseIsAnError) {
  std::string error;
  auto first = MetricsServer::open("127.0.0.1:0", &error);
  ASSERT_TRUE(first) << error;
  auto second = MetricsServer::open(first->address(), &error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find(first->address()), std::string::npos) << error;
  EXPECT_FALSE(MetricsServer::open("192.0.2.1:0", &error)) << "not an address of this host";
}

}  // namespace
}  // namespace bulkhead::metrics
