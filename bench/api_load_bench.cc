// The local API under hostile clients: how long `status` and a CNI ADD + DEL take through a real
// bulkheadd when CLIENTS (default 100) other connections are open and
//   - quiet: none (the baseline, measured in the same run);
//   - idle: each has sent `{` and nothing more;
//   - trickling: each sends one byte every 100 ms of a request that never ends (and reconnects
//     when the agent's per-connection deadline closes it).
// Prints p50 and p99 per phase and the ratio to the quiet phase. A benchmark, not a test: it
// fails only when the setup does. Needs root (namespaces, a DPDK agent).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/client.h"
#include "bench/lab_agent.h"

namespace {

using bulkhead::bench::fromEnv;
using bulkhead::bench::millisecondsSince;
using bulkhead::bench::quantile;
using Clock = std::chrono::steady_clock;

int connectTo(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// COUNT connections that misbehave one way, kept open (reopened when the agent closes them) by
// one thread until the object goes.
class HostileClients {
 public:
  enum class Kind { Idle, Trickling };

  HostileClients(std::string socket, unsigned count, Kind kind)
      : socket_(std::move(socket)), kind_(kind), fds_(count, -1) {
    thread_ = std::thread([this] { run(); });
  }
  ~HostileClients() {
    stop_ = true;
    thread_.join();
    for (const int fd : fds_) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
  unsigned reconnects() const { return reconnects_; }
  unsigned open() const { return open_; }

 private:
  void run() {
    while (!stop_) {
      for (int& fd : fds_) {
        if (fd >= 0 && closedByPeer(fd)) {
          ::close(fd);
          fd = -1;
          ++reconnects_;
        }
        if (fd < 0) {
          fd = connectTo(socket_);
          if (fd >= 0) {
            ::send(fd, "{\"command\":\"", kind_ == Kind::Idle ? 1 : 12, MSG_NOSIGNAL);
          }
        } else if (kind_ == Kind::Trickling) {
          ::send(fd, "a", 1, MSG_NOSIGNAL);
        }
      }
      open_ = unsigned(std::count_if(fds_.begin(), fds_.end(), [](int fd) { return fd >= 0; }));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  static bool closedByPeer(int fd) {
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, 0) <= 0) {
      return false;
    }
    char buffer[256];
    return ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT) <= 0 ||
           (entry.revents & (POLLHUP | POLLERR)) != 0;
  }

  std::string socket_;
  Kind kind_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<unsigned> reconnects_{0};
  std::atomic<unsigned> open_{0};
  std::thread thread_;
};

class Run {
 public:
  Run()
      : agent_(1,
               "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: load}\n"
               "spec:\n  endpointSelector: {matchLabels: {app: load}}\n  ingress: []\n"),
        clients_(fromEnv("CLIENTS", 100)),
        samples_(fromEnv("SAMPLES", 1000)) {
    agent_.start();
    add_ = agent_.cniCommand("ADD", 0);
    del_ = agent_.cniCommand("DEL", 0);
  }

  struct Figures {
    std::vector<double> status;
    std::vector<double> cni;
  };

  Figures measure() {
    Figures figures;
    for (unsigned i = 0; i < samples_; ++i) {
      const auto start = Clock::now();
      std::string error;
      if (bulkhead::api::callApi(socket(), {{"command", "status"}}, &error, 10).is_null()) {
        throw std::runtime_error("status failed: " + error);
      }
      figures.status.push_back(millisecondsSince(start));
    }
    const unsigned cycles = std::max(1u, samples_ / 10);
    for (unsigned i = 0; i < cycles; ++i) {
      const auto start = Clock::now();
      const auto added = bulkhead::testing::runCommand({"/bin/sh", "-c", add_}, 30);
      figures.cni.push_back(millisecondsSince(start));
      const auto deleted = bulkhead::testing::runCommand({"/bin/sh", "-c", del_}, 30);
      if (added.exitCode != 0 || deleted.exitCode != 0) {
        throw std::runtime_error("CNI failed: " + added.out + deleted.out);
      }
    }
    return figures;
  }

  unsigned clients() const { return clients_; }
  const std::string& socket() const { return agent_.socket(); }
  void stop() { agent_.stop(); }

 private:
  bulkhead::bench::LabAgent agent_;
  std::string add_;
  std::string del_;
  unsigned clients_;
  unsigned samples_;
};

void report(const std::string& phase, const Run::Figures& figures, const Run::Figures& quiet) {
  const auto ratio = [](double now, double base) { return base > 0 ? now / base : 0.0; };
  std::printf("| %-26s | %7.2f | %7.2f | %5.2fx | %7.2f | %7.2f | %5.2fx |\n", phase.c_str(),
              quantile(figures.status, 0.5), quantile(figures.status, 0.99),
              ratio(quantile(figures.status, 0.5), quantile(quiet.status, 0.5)),
              quantile(figures.cni, 0.5), quantile(figures.cni, 0.99),
              ratio(quantile(figures.cni, 0.5), quantile(quiet.cni, 0.5)));
  if (&figures != &quiet) {
    // For scripts/bench/all: metric|value|unit|baseline|baseline value|ratio|target
    std::printf("result|bulkhead status p99, %s|%.2f|ms|quiet|%.2f|%.2f|\n", phase.c_str(),
                quantile(figures.status, 0.99), quantile(quiet.status, 0.99),
                ratio(quantile(figures.status, 0.99), quantile(quiet.status, 0.99)));
    std::printf("result|CNI ADD p99, %s|%.2f|ms|quiet|%.2f|%.2f|\n", phase.c_str(),
                quantile(figures.cni, 0.99), quantile(quiet.cni, 0.99),
                ratio(quantile(figures.cni, 0.99), quantile(quiet.cni, 0.99)));
  }
  std::fflush(stdout);
}

}  // namespace

int main() {
  return bulkhead::bench::runLabBenchmark("api_load_bench", [] {
    Run run;
    std::printf(
        "%u hostile connections in the idle and trickling phases\n\n"
        "| phase | status p50 ms | p99 | vs quiet | CNI ADD p50 ms | p99 | vs quiet |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n",
        run.clients());
    run.measure();  // warm: the first ADD makes the tag's state, caches fill
    const Run::Figures quiet = run.measure();
    report("quiet", quiet, quiet);
    unsigned reconnects = 0;
    for (const auto kind : {HostileClients::Kind::Idle, HostileClients::Kind::Trickling}) {
      HostileClients clients(run.socket(), run.clients(), kind);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const unsigned open = clients.open();
      const Run::Figures figures = run.measure();
      report(std::string(kind == HostileClients::Kind::Idle ? "idle" : "trickling") + " (" +
                 std::to_string(open) + " open)",
             figures, quiet);
      reconnects += clients.reconnects();
    }
    std::printf("\nhostile connections closed by the agent (5 s deadline) and reopened: %u\n",
                reconnects);
    run.stop();
  });
}
