// #14: the time from a container's start on host A to its identity being enforced on host B,
// with PUBLISHED (default 500) endpoints of a third host in the directory: p50 and p99 over
// SAMPLES (default 20) starts. Each start is a new label set ({app: web, instance: N}) at a new
// address, attached through host A's API; "enforced" is the first TCP connection from it that
// host B lets through to api on 8080 (a prober inside the container tries every ~15 ms, each
// attempt waiting 10 ms: that is the resolution). The baseline, from the same run: a key put into
// etcd until a watch sees it -- the store's own propagation. Two real agents and a real etcd
// (tests/integration/cluster_lab.h); root only.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/lab_agent.h"
#include "kvstore/cluster_identities.h"
#include "kvstore/endpoint_directory.h"
#include "tests/integration/cluster_lab.h"

namespace {

using bulkhead::bench::fromEnv;
using bulkhead::bench::quantile;
namespace kvstore = bulkhead::kvstore;
namespace testing = bulkhead::testing;

constexpr const char* Policy = R"(apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: api}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
)";

// Waits for its first accepted connection to api, then prints the wall-clock time of it.
constexpr const char* Prober = R"(import socket, sys, time
deadline = time.time() + 60
while time.time() < deadline:
    s = socket.socket()
    s.settimeout(0.01)
    try:
        s.connect(("10.213.2.12", 8080))
        print(repr(time.time()), flush=True)
        sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.005)
sys.exit(1)
)";

double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void require(bool ok, const std::string& what) {
  if (!ok) {
    throw std::runtime_error(what);
  }
}

// host-c's PUBLISHED endpoints, each with a label set of its own, as its agent would publish them.
void publishFiller(const kvstore::EtcdClient& store, unsigned published) {
  std::string error;
  const auto lease = store.grantLease(600, &error);
  require(lease.has_value(), "lease: " + error);
  require(store.put(kvstore::hostKey("/bulkhead", "host-c"), R"({"subnets": ["10.214.0.0/16"]})",
                    *lease, &error),
          error);
  kvstore::ClusterIdentities identities(store, "/bulkhead", "host-c", *lease);
  for (unsigned i = 0; i < published; ++i) {
    const bulkhead::rules::Labels labels{{"app", "filler"}, {"n", std::to_string(i)}};
    const auto id = identities.allocate(labels, &error);
    require(id.has_value(), "identity: " + error);
    const auto ip = bulkhead::rules::IpAddress::parse("10.214." + std::to_string(i / 250) + "." +
                                                      std::to_string(i % 250 + 1));
    const kvstore::PublishedEndpoint endpoint{"filler-" + std::to_string(i), *id, labels, {*ip}};
    require(store.put(kvstore::endpointKey("/bulkhead", "host-c", endpoint.name),
                      kvstore::encodeEndpoint(endpoint), *lease, &error),
            error);
  }
}

// The baseline: put a key, until a watch from the revision before sees it (ms).
std::vector<double> storePropagation(const kvstore::EtcdClient& store, unsigned samples) {
  std::vector<double> out;
  for (unsigned i = 0; i < samples; ++i) {
    std::string error;
    const auto before = store.get("/bench/", &error, true);
    require(before.has_value(), error);
    std::atomic<bool> seen{false};
    double seenAt = 0;
    std::thread watcher([&] {
      store.watch(
          "/bench/", before->revision + 1,
          [&](const auto&, int64_t) {
            seenAt = wallSeconds();
            seen = true;
          },
          [&] { return seen.load(); }, &error);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the watch is in place
    const double start = wallSeconds();
    require(store.put("/bench/k", std::to_string(i), 0, &error), error);
    watcher.join();
    out.push_back((seenAt - start) * 1000);
  }
  return out;
}

void run() {
  const unsigned published = fromEnv("PUBLISHED", 500);
  const unsigned samples = fromEnv("SAMPLES", 20);
  testing::ClusterLab cluster(1, Policy);
  kvstore::EtcdOptions options;
  options.endpoints = cluster.etcd().clientUrls();
  const kvstore::EtcdClient store(options);
  publishFiller(store, published);
  require(testing::ClusterLab::believes(cluster.agentB(), 2 + published, 60),
          "host B does not believe the published endpoints");
  const auto baseline = storePropagation(store, samples);

  testing::Host& probe = cluster.labA().addHost("probe", "10.213.1.100/24");
  std::vector<double> latencies;
  for (unsigned i = 0; i < samples; ++i) {
    const std::string ip = "10.213.1." + std::to_string(100 + i);
    auto& labA = cluster.labA();
    labA.exec(probe, {"ip", "addr", "flush", "dev", "eth0"});
    labA.exec(probe, {"ip", "addr", "add", ip + "/24", "dev", "eth0"});
    labA.exec(probe, {"ip", "route", "replace", "10.213.2.0/24", "via", "10.213.1.1"});
    // The gateway known beforehand: the kernel's ARP retries (1 s apart) are not what is timed.
    labA.exec(probe, {"ip", "neigh", "replace", "10.213.1.1", "lladdr", cluster.fabric().mac, "dev",
                      "eth0"});
    auto& prober = labA.spawn(&probe, {"/usr/bin/python3", "-c", Prober},
                              "prober-" + std::to_string(i) + ".log");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // trying, and refused
    require(prober.running(), "the prober got through before the container started");
    const double start = wallSeconds();
    const auto attached = cluster.agentA().cli(
        {"endpoint", "attach", "probe", "--interface", probe.hostIfname, "--label", "app=web",
         "--label", "instance=" + std::to_string(i), "--ip", ip, "--mac", probe.mac});
    require(attached.exitCode == 0, "attach: " + attached.err);
    require(testing::waitFor([&] { return !prober.running(); }, 60), "not enforced in 60 s");
    require(prober.exitCode() == std::optional<int>(0), "the prober gave up: " + prober.log());
    latencies.push_back((std::stod(prober.log()) - start) * 1000);
    prober.stop();
    require(cluster.agentA().cli({"endpoint", "detach", "probe"}).exitCode == 0, "detach");
  }

  std::printf("cluster: %u endpoints of a third host published, %u starts\n", published, samples);
  std::printf("| %-44s | %8s | %8s |\n", "", "p50 ms", "p99 ms");
  std::printf("| %-44s | %8.1f | %8.1f |\n", "etcd put -> watch (baseline)",
              quantile(baseline, 0.5), quantile(baseline, 0.99));
  std::printf("| %-44s | %8.1f | %8.1f |\n", "start on host A -> enforced on host B",
              quantile(latencies, 0.5), quantile(latencies, 0.99));
  // For scripts/bench/all: metric|value|unit|baseline|baseline value|ratio|target
  for (const double q : {0.5, 0.99}) {
    const double base = quantile(baseline, q);
    std::printf(
        "result|start on host A to enforced on host B p%d, %u published|%.1f|ms|etcd put "
        "to watch|%.1f|%.1f|\n",
        q == 0.5 ? 50 : 99, published, quantile(latencies, q), base,
        base > 0 ? quantile(latencies, q) / base : 0.0);
  }
  std::fflush(stdout);
}

}  // namespace

int main() {
  return bulkhead::bench::runLabBenchmark("cluster_bench", run);
}
