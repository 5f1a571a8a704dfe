// The agent's Prometheus endpoint as monitoring meets it: promtool checks what it serves, and a
// real Prometheus server scrapes it and answers queries on what the traffic did.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/integration/agent_fixture.h"
#include "tests/support/free_port.h"

namespace bulkhead {
namespace {

using testing::freePort;

class AgentMetricsTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped()) {
      return;
    }
    if (!std::filesystem::exists("/usr/bin/prometheus") ||
        !std::filesystem::exists("/usr/bin/promtool")) {
      GTEST_SKIP() << "needs Debian's prometheus (prometheus, promtool; scripts/setup.sh)";
    }
  }

  // What the agent serves at /metrics, fetched as a scraper would.
  testing::CommandResult scrape(const std::string& address) {
    return testing::runCommand(
        {"/usr/bin/curl", "-sS", "--fail", "--max-time", "10", "http://" + address + "/metrics"},
        15);
  }

  // A Prometheus server's answer to an instant query: the value of its only sample, or nullopt.
  std::optional<double> query(int port, const std::string& promql) {
    const auto result = testing::runCommand(
        {"/usr/bin/curl", "-sS", "--max-time", "5", "-G", "--data-urlencode", "query=" + promql,
         "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query"},
        10);
    if (result.exitCode != 0) {
      return std::nullopt;
    }
    const json answer = json::parse(result.out, nullptr, false);
    if (answer.is_discarded() || answer.value("status", "") != "success" ||
        answer["data"]["result"].size() != 1) {
      return std::nullopt;
    }
    return std::stod(answer["data"]["result"][0]["value"][1].get<std::string>());
  }
};

TEST_F(AgentMetricsTest, PrometheusScrapesWhatTheTrafficDid) {
  extraConfig_ = "metricsAddress: 127.0.0.1:0\nwatchPolicy: false\n";  // reloads when told
  startAgent();
  const json status = json::parse(cli({"status", "--json"}).out);
  ASSERT_TRUE(status["metrics"]["address"].is_string()) << status["metrics"];
  const std::string address = status["metrics"]["address"];

  httpServer(*api_, 8080);
  httpServer(*api_, 9090);
  ASSERT_EQ(httpGet(*web_, *api_, 8080), 200);
  EXPECT_EQ(httpGet(*web_, *api_, 9090, 2), 0);  // no rule: dropped
  ASSERT_TRUE(counterReaches("flowsCreated", 2));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return json::parse(cli({"status", "--json"}).out)["counters"]["dropped"]["policy-denied"] >
               0;
      },
      5));

  const auto served = scrape(address);
  ASSERT_EQ(served.exitCode, 0) << served.err << agent_->log();
  EXPECT_NE(served.out.find("bulkhead_classifications_total{protocol=\"HTTP\"} 1\n"),
            std::string::npos)
      << served.out;
  EXPECT_NE(served.out.find("bulkhead_endpoints{source=\"config\"} 3\n"), std::string::npos)
      << served.out;
  EXPECT_NE(served.out.find("bulkhead_policy_compile_seconds_count 1\n"), std::string::npos)
      << served.out;
  // Prometheus's own linter takes it as it is.
  const std::string file = lab_->dir().write("metrics.txt", served.out);
  const auto lint = testing::runCommand(
      {"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file + " 2>&1"}, 30);
  EXPECT_EQ(lint.exitCode, 0) << lint.out;

  // A real Prometheus scrapes the agent every second.
  const int prometheusPort = freePort();
  ASSERT_GT(prometheusPort, 0);
  const std::string config =
      lab_->dir().write("prometheus.yml",
                        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                        "scrape_configs:\n"
                        "  - job_name: bulkhead\n"
                        "    static_configs: [{targets: ['" +
                            address + "']}]\n");
  std::filesystem::create_directories(lab_->dir().file("tsdb"));
  auto& prometheus =
      lab_->spawn(nullptr,
                  {"/usr/bin/prometheus", "--config.file=" + config,
                   "--storage.tsdb.path=" + lab_->dir().file("tsdb"),
                   "--web.listen-address=127.0.0.1:" + std::to_string(prometheusPort)},
                  "prometheus.log");
  ASSERT_TRUE(
      testing::waitFor([&] { return query(prometheusPort, "up{job=\"bulkhead\"}") == 1.0; }, 60))
      << prometheus.log();
  // After the first scrape: what the agent did, as Prometheus stored it.
  std::optional<double> policyDrops;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        policyDrops = query(prometheusPort, "bulkhead_drops_total{reason=\"policy\"}");
        return policyDrops.has_value();
      },
      20))
      << prometheus.log();
  EXPECT_GE(*policyDrops, 1.0);
  EXPECT_EQ(query(prometheusPort, "bulkhead_classifications_total{protocol=\"HTTP\"}"), 1.0);
  EXPECT_GE(query(prometheusPort, "bulkhead_flows_created_total").value_or(0), 2.0);
  EXPECT_EQ(query(prometheusPort, "bulkhead_policy_generation"), 1.0);
  // A broken policy is one rejected reload; the fixed one an applied reload and a new generation.
  lab_->dir().write("policy.yaml", "apiVersion: bulkhead.io/v1\nkind: SegmentationPolicy\n");
  EXPECT_NE(cli({"policy", "reload"}).exitCode, 0);
  lab_->dir().write("policy.yaml", policy("monitor"));
  ASSERT_EQ(cli({"policy", "reload"}).exitCode, 0);
  EXPECT_TRUE(testing::waitFor(
      [&] {
        return query(prometheusPort, "bulkhead_policy_reloads_total{result=\"applied\"}") == 1.0 &&
               query(prometheusPort, "bulkhead_policy_reloads_total{result=\"rejected\"}") == 1.0 &&
               query(prometheusPort, "bulkhead_policy_generation") == 2.0;
      },
      20))
      << prometheus.log();
  EXPECT_GE(json::parse(cli({"status", "--json"}).out)["metrics"]["scrapes"].get<int>(), 2);
  const auto text = cli({"status"}).out;
  EXPECT_NE(text.find("metrics: http://" + address + "/metrics, "), std::string::npos) << text;
  prometheus.stop();
}

// Listens on host:wanted (0: any port) while it lives; `port` is the one taken, or 0.
struct Listener {
  Listener(const std::string& host, int wanted) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(wanted));
    ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
    socklen_t length = sizeof(address);
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        ::listen(fd, 1) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
    }
  }
  ~Listener() { ::close(fd); }
  int fd = -1;
  int port = 0;
};

// An address the operator chose must be had; the default one, taken by another program, costs
// the metrics only.
TEST_F(AgentMetricsTest, AChosenAddressInUseStopsTheStartTheDefaultOneOnlyTheMetrics) {
  const Listener chosen("127.0.0.1", 0);
  ASSERT_GT(chosen.port, 0);
  const std::string taken = "127.0.0.1:" + std::to_string(chosen.port);
  extraConfig_ = "metricsAddress: " + taken + "\n";
  const std::string path = writeConfig();
  auto& refused =
      lab_->spawn(nullptr, {testing::builtBinary("bulkheadd"), "--config", path}, "refused.log");
  EXPECT_TRUE(testing::waitFor([&] { return !refused.running(); }, 60));
  EXPECT_EQ(refused.exitCode(), std::optional<int>(1)) << refused.log();
  EXPECT_NE(refused.log().find("cannot listen on " + taken), std::string::npos) << refused.log();

  // The default port: held by this test unless someone else holds it already -- taken either way.
  const Listener byDefault("127.0.0.1", 9968);
  extraConfig_.clear();
  startAgent();
  const json metrics = json::parse(cli({"status", "--json"}).out)["metrics"];
  EXPECT_TRUE(metrics["address"].is_null()) << metrics;
  EXPECT_NE(metrics["error"].get<std::string>().find("127.0.0.1:9968"), std::string::npos)
      << metrics;
  EXPECT_NE(cli({"status"}).out.find("metrics: none (metrics: cannot listen on 127.0.0.1:9968"),
            std::string::npos);
  EXPECT_EQ(httpGet(*web_, *api_, 8080, 2), 0) << "still enforcing: nothing listens, no rule";
}

}  // namespace
}  // namespace bulkhead
