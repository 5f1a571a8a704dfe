// Scale: COUNT containers (default 500) of a real, private Docker engine on NETWORKS bridge
// networks behind one bulkheadd trunk. Measures, in one run:
//   - what the engine itself takes to start a container (`docker run`, wall time): the baseline;
//   - from the engine's start event to the state that enforces the container being published,
//     as the agent measures it (`bulkhead status`: docker.attachLatencyMs);
//   - the agent's resident memory with every container attached;
//   - how long a restarted agent takes until every container is enforced again, after a clean
//     stop and after SIGKILL (wall time from the start, and the agent's own resync time).
// A benchmark, not a test: it prints figures and fails only when the setup does. Needs root.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/client.h"
#include "tests/integration/docker_engine.h"
#include "tests/integration/lab.h"
#include "tests/integration/web_api_policy.h"
#include "tests/support/binaries.h"

namespace {

using bulkhead::testing::DockerEngine;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

unsigned fromEnv(const char* name, unsigned fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && std::atoi(value) > 0 ? static_cast<unsigned>(std::atoi(value))
                                                  : fallback;
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, size_t(q * double(values.size())))];
}

long rssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

class Run {
 public:
  Run(DockerEngine& engine, bulkhead::testing::Lab& lab) : engine_(engine), lab_(lab) {
    socket_ = lab_.dir().file("api.sock");
    config_ = lab_.dir().write(
        "bulkhead.yaml",
        "policy: " + lab_.dir().write("policy.yaml", bulkhead::testing::webToApiPolicy()) +
            "\napiSocket: " + socket_ + "\nviolationLog: " + lab_.dir().file("violations.jsonl") +
            "\ninstance: " + lab_.agentInstance() + "\nstateDirectory: " +
            lab_.dir().file("state") + "\ndocker: {socket: " + engine_.socket() +
            "}\nhugepages: off\nmemoryMegabytes: 1024\nlogLevel: warn\n");
  }

  void startAgent() {
    agent_ = &lab_.spawn(
        nullptr,
        {bulkhead::testing::builtBinary("bulkheadd"), "--config", config_, "--log-level", "info"},
        "agent" + std::to_string(++starts_) + ".log");
    if (!agent_->waitForLog("bulkheadd ready", 60)) {
      throw std::runtime_error("bulkheadd did not start:\n" + agent_->log());
    }
  }

  void stopAgent(int signal) {
    if (signal != SIGTERM) {
      ::kill(agent_->pid(), signal);
    }
    agent_->stop(30);
  }

  json status() const {
    std::string error;
    const json reply = bulkhead::api::callApi(socket_, {{"command", "status"}}, &error, 30);
    return reply.is_null() ? json::object() : reply;
  }

  size_t endpoints() const { return status().value("endpoints", json::array()).size(); }

  bool awaitEndpoints(size_t count, int timeoutSeconds) const {
    return bulkhead::testing::waitFor([&] { return endpoints() == count; }, timeoutSeconds);
  }

  pid_t agentPid() const { return agent_->pid(); }
  std::string agentLog() const { return agent_->log(); }

 private:
  DockerEngine& engine_;
  bulkhead::testing::Lab& lab_;
  bulkhead::testing::Process* agent_ = nullptr;
  int starts_ = 0;
  std::string socket_;
  std::string config_;
};

int run() {
  const unsigned count = fromEnv("COUNT", 500);
  const unsigned networks = std::min(fromEnv("NETWORKS", 2), 8u);
  const unsigned parallel = fromEnv("PARALLEL", 4);
  if (!bulkhead::testing::haveRoot()) {
    std::cerr << "scale: needs root (a Docker engine, namespaces, DPDK)\n";
    return 2;
  }
  if (const auto reason = DockerEngine::unavailableReason(); !reason.empty()) {
    std::cerr << "scale: " << reason << "\n";
    return 2;
  }
  if (count > networks * 1000) {
    std::cerr << "scale: at most 1000 containers per network (a /22 each)\n";
    return 2;
  }
  DockerEngine engine;
  engine.ensureImage();
  bulkhead::testing::Lab lab;
  std::vector<const bulkhead::testing::DockerNetwork*> nets;
  for (unsigned n = 0; n < networks; ++n) {
    nets.push_back(&engine.createNetwork("s" + std::to_string(n),
                                         "10.218." + std::to_string(4 * n) + ".0/22",
                                         "s" + std::to_string(n)));
  }
  Run bench(engine, lab);
  bench.startAgent();
  std::cout << "scale: " << count << " containers on " << networks << " networks, started "
            << parallel << " at a time; " << std::thread::hardware_concurrency() << " CPUs\n";

  std::vector<double> dockerRunMs;
  std::mutex mutex;
  std::atomic<unsigned> next{0};
  std::atomic<unsigned> failures{0};
  const auto started = Clock::now();
  std::vector<std::thread> starters;
  for (unsigned t = 0; t < parallel; ++t) {
    starters.emplace_back([&] {
      for (unsigned i = next++; i < count; i = next++) {
        const auto before = Clock::now();
        try {
          engine.run(engine.prefix() + "-c" + std::to_string(i),
                     {{"app", i % 50 == 0 ? "api" : "web"}}, nets[i % nets.size()]->name);
        } catch (const std::exception& e) {
          if (failures++ == 0) {
            std::cerr << "scale: " << e.what() << "\n";
          }
          continue;
        }
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - before).count();
        std::lock_guard lock(mutex);
        dockerRunMs.push_back(ms);
      }
    });
  }
  for (auto& starter : starters) {
    starter.join();
  }
  const unsigned running = count - failures;
  if (!bench.awaitEndpoints(running, 300)) {
    std::cerr << "scale: " << bench.endpoints() << " of " << running
              << " containers became endpoints\n"
              << bench.agentLog().substr(0, 4000);
    return 1;
  }
  const double allMs = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  const json status = bench.status();
  const json latency = status["docker"]["attachLatencyMs"];
  const json agentPart = status["docker"]["agentAttachLatencyMs"];
  const long rss = rssKiB(bench.agentPid());
  std::printf("containers started: %u (%u failed) in %.1f s\n", running, failures.load(),
              allMs / 1000);
  std::printf("docker run (the engine's own start, baseline): p50 %.1f ms, p99 %.1f ms\n",
              quantile(dockerRunMs, 0.5), quantile(dockerRunMs, 0.99));
  std::printf(
      "start event -> enforced (bulkheadd): p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d\n",
      latency.value("p50", 0.0), latency.value("p99", 0.0), latency.value("max", 0.0),
      latency.value("count", 0));
  std::printf(
      "  of which the agent's (update in hand -> enforced): p50 %.2f ms, p99 %.2f ms, "
      "max %.2f ms; the rest is the watcher's inspect of the container\n",
      agentPart.value("p50", 0.0), agentPart.value("p99", 0.0), agentPart.value("max", 0.0));
  std::printf("ratio enforced-latency/docker-run at p50: %.4f\n",
              latency.value("p50", 0.0) / std::max(quantile(dockerRunMs, 0.5), 1e-9));
  // For scripts/bench/all: metric|value|unit|baseline|baseline value|ratio|target
  std::printf(
      "result|start event -> enforced, p50 over %u containers|%.2f|ms|docker run p50|%.1f|%.4f|\n",
      running, latency.value("p50", 0.0), quantile(dockerRunMs, 0.5),
      latency.value("p50", 0.0) / std::max(quantile(dockerRunMs, 0.5), 1e-9));
  std::printf(
      "bulkheadd RSS with %u endpoints: %.1f MiB; tags in use %d; policy compiles "
      "saved %d of %d publishes\n",
      running, double(rss) / 1024, status["wire"].value("tagsInUse", 0),
      status.value("compilesSaved", 0), status.value("publishes", 0));

  for (const int signal : {SIGTERM, SIGKILL}) {
    bench.stopAgent(signal);
    const auto restart = Clock::now();
    bench.startAgent();
    if (!bench.awaitEndpoints(running, 300)) {
      std::cerr << "scale: after a restart only " << bench.endpoints() << " endpoints\n";
      return 1;
    }
    const double wallMs = std::chrono::duration<double, std::milli>(Clock::now() - restart).count();
    const json after = bench.status();
    std::printf(
        "restart after %s: every container enforced %.0f ms after the agent was started; "
        "its resync (engine asked -> published) %.0f ms; RSS %.1f MiB\n",
        signal == SIGTERM ? "a clean stop" : "SIGKILL", wallMs,
        after["docker"].value("lastResyncMs", 0.0), double(rssKiB(bench.agentPid())) / 1024);
  }
  bench.stopAgent(SIGTERM);
  // Removed here, as many at a time as they were started: the harness's own cleanup is bounded
  // for a test's handful.
  next = 0;
  std::vector<std::thread> removers;
  for (unsigned t = 0; t < parallel; ++t) {
    removers.emplace_back([&] {
      for (unsigned i = next++; i < count; i = next++) {
        engine.docker({"rm", "--force", engine.prefix() + "-c" + std::to_string(i)}, 60);
      }
    });
  }
  for (auto& remover : removers) {
    remover.join();
  }
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << "scale: " << e.what() << "\n";
    return 1;
  }
}
