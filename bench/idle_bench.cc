// What an idle agent costs, and what idleness costs the first packet after it: a real bulkheadd
// with two endpoints (attached by the real bulkhead-cni) and no traffic, then pings between them
// INTERVAL_MS apart (default 500: every ping finds the worker asleep). Measured twice in one run:
// with `busyPoll: true` (the baseline: never sleeps) and as configured by default (sleeps, on the
// wire's doorbell once quiet). Prints the agent's CPU use over QUIET_SECONDS (default 10) of
// silence as a share of one core, and the ping round trips (p50, p99); the latency idleness adds is
// the difference of the two p50s. A benchmark, not a test: it fails only when the setup does.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "bench/lab_agent.h"

namespace {

using bulkhead::bench::fromEnv;
using bulkhead::bench::quantile;

const char* Policy =
    "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\nmetadata: {name: idle}\n"
    "spec:\n  endpointSelector: {matchLabels: {app: load}}\n  ingress:\n"
    "    - fromEndpoints: [{matchLabels: {app: load}}]\n"
    "      toPorts: [{ports: [{protocol: ICMP}]}]\n";

// Time on a CPU, in seconds, from a /proc schedstat file: exact nanoseconds, where stat's
// utime and stime are sampled at the timer tick and a worker that wakes on a timer aligned with
// it is counted at almost every tick.
double cpuSeconds(const std::string& schedstat) {
  std::ifstream in(schedstat);
  double nanoseconds = 0;
  in >> nanoseconds;
  return nanoseconds / 1e9;
}

double cpuSeconds(pid_t pid) {
  double total = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    total += cpuSeconds((task.path() / "schedstat").string());
  }
  return total;
}

// Each thread's CPU seconds by name ("rte-worker-1", "bulkheadd", ...), summed per name.
std::map<std::string, double> threadCpuSeconds(pid_t pid) {
  std::map<std::string, double> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    out[name] += cpuSeconds((task.path() / "schedstat").string());
  }
  return out;
}

struct Figures {
  double cpuShare = 0;
  std::map<std::string, double> threadShares;
  std::vector<double> rtts;  // ms
};

Figures measure(bulkhead::bench::LabAgent& agent, const std::string& extraConfig) {
  agent.start(extraConfig);
  agent.cni("ADD", 0);
  agent.cni("ADD", 1);
  const std::string to = "10.78.0.3";
  // Warm: ARP and the flow's first packets through nDPI.
  agent.lab().exec(agent.host(0), {"ping", "-c", "3", "-i", "0.2", "-W", "1", to}, 10);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const unsigned seconds = fromEnv("QUIET_SECONDS", 10);
  const double before = cpuSeconds(agent.pid());
  const auto threadsBefore = threadCpuSeconds(agent.pid());
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  Figures figures;
  figures.cpuShare = (cpuSeconds(agent.pid()) - before) / double(seconds);
  for (const auto& [name, used] : threadCpuSeconds(agent.pid())) {
    const auto was = threadsBefore.find(name);
    figures.threadShares[name] =
        (used - (was != threadsBefore.end() ? was->second : 0.0)) / double(seconds);
  }

  const unsigned count = fromEnv("PINGS", 20);
  const double interval = fromEnv("INTERVAL_MS", 500) / 1000.0;
  const auto result = agent.lab().exec(
      agent.host(0),
      {"ping", "-c", std::to_string(count), "-i", std::to_string(interval), "-W", "1", to},
      int(count * interval) + 30);
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) {
    if (const auto at = line.find("time="); at != std::string::npos) {
      figures.rtts.push_back(std::stod(line.substr(at + 5)));
    }
  }
  agent.cni("DEL", 0);
  agent.cni("DEL", 1);
  agent.stop();
  if (figures.rtts.size() < count / 2) {
    throw std::runtime_error("pings got " + std::to_string(figures.rtts.size()) + " replies of " +
                             std::to_string(count) + ":\n" + result.out + result.err);
  }
  return figures;
}

void report(const char* mode, const Figures& figures) {
  std::printf("| %-22s | %6.1f%% | %7.3f | %7.3f | %zu |\n", mode, 100 * figures.cpuShare,
              quantile(figures.rtts, 0.5), quantile(figures.rtts, 0.99), figures.rtts.size());
  for (const auto& [name, share] : figures.threadShares) {
    if (share > 0) {
      std::printf("|   thread %-13s | %6.1f%% | | | |\n", name.c_str(), 100 * share);
    }
  }
  std::fflush(stdout);
}

}  // namespace

int main() {
  return bulkhead::bench::runLabBenchmark("idle_bench", [] {
    bulkhead::bench::LabAgent agent(2, Policy);
    std::printf(
        "| worker | idle CPU (one core) | ping RTT p50 ms | p99 | replies |\n"
        "|---|---:|---:|---:|---:|\n");
    const Figures busy = measure(agent, "busyPoll: true\n");
    report("busyPoll: true", busy);
    const Figures idle = measure(agent, "");
    report("default (doorbell)", idle);
    std::printf(
        "\nidle CPU: %.3fx busy polling's; latency idleness adds to a packet: %+.3f ms "
        "(p50)\n",
        busy.cpuShare > 0 ? idle.cpuShare / busy.cpuShare : 0.0,
        quantile(idle.rtts, 0.5) - quantile(busy.rtts, 0.5));
    // For scripts/bench/all (#11 item 6): metric|value|unit|baseline|baseline value|ratio|target
    std::printf("result|idle agent's CPU|%.2f|%% of a core|busyPoll: true|%.2f|%.4f|value<=1.0\n",
                100 * idle.cpuShare, 100 * busy.cpuShare,
                busy.cpuShare > 0 ? idle.cpuShare / busy.cpuShare : 0.0);
    std::printf(
        "result|ping RTT p50 after idleness|%.3f|ms|busyPoll: true|%.3f|%.2f|"
        "added<=0.1\n",
        quantile(idle.rtts, 0.5), quantile(busy.rtts, 0.5),
        quantile(busy.rtts, 0.5) > 0 ? quantile(idle.rtts, 0.5) / quantile(busy.rtts, 0.5) : 0.0);
  });
}
