// The agent's configuration refuses, with file:line:col, what the agent could not run with,
// before anything is made.
#include "controlplane/agent_config.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/temp_dir.h"

namespace bulkhead::controlplane {
namespace {

std::string errorsOf(const std::string& text) {
  const AgentConfigLoad load = loadAgentConfigText(text, "bulkhead.yaml");
  std::string out;
  for (const auto& error : load.errors) {
    out += rules::format(error) + "\n";
  }
  return out;
}

// A flow table of fewer than 1024 entries used to pass validation and then fail in rte_hash at
// start (issue #10): every value below the minimum is refused where it is written.
TEST(AgentConfig, AFlowTableTooSmallToMakeIsRefusedWhereItIsWritten) {
  for (const unsigned small : {0u, 1u, 7u, 8u, 1023u}) {
    EXPECT_EQ(errorsOf("logLevel: info\nmaxFlows: " + std::to_string(small) + "\n"),
              "bulkhead.yaml:2:11: maxFlows must be a whole number from 1024 to 16777216, got '" +
                  std::to_string(small) + "'\n");
  }
  const AgentConfigLoad smallest = loadAgentConfigText("maxFlows: 1024\n", "bulkhead.yaml");
  ASSERT_TRUE(smallest.ok());
  EXPECT_EQ(smallest.config.maxFlows, 1024u);
  EXPECT_NE(errorsOf("maxFlows: 16777217\n"), "");
  EXPECT_NE(errorsOf("maxFlows: -1\n"), "");
  EXPECT_NE(errorsOf("maxFlows: 4096x\n"), "");
  EXPECT_NE(errorsOf("maxFlows: [1]\n"), "");
}

TEST(AgentConfig, UnknownKeysAndWrongTypesAreErrorsNotIgnored) {
  EXPECT_NE(errorsOf("maxFlow: 4096\n").find("bulkhead.yaml:1:1:"), std::string::npos);
  EXPECT_NE(errorsOf("busyPoll: sometimes\n"), "");
  EXPECT_NE(errorsOf("workers: 0\n"), "");
  EXPECT_EQ(errorsOf("maxFlows: 1048576\nmaxFlowsPerEndpoint: 1\n"), "");
}

// A trunk per worker, and the patch panel picks among at most 16.
TEST(AgentConfig, WorkersRangeFromOneToSixteen) {
  const AgentConfigLoad four = loadAgentConfigText("workers: 4\n", "b.yaml");
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four.config.workers, 4u);
  EXPECT_EQ(errorsOf("workers: 16\n"), "");
  EXPECT_NE(errorsOf("workers: 17\n").find("bulkhead.yaml:1:"), std::string::npos)
      << errorsOf("workers: 17\n");
}

// A flow table costs what its flows touch (dataplane/flow_table.h), so the default can be a
// million flows per worker (docs/agent.md).
TEST(AgentConfig, AWorkerTracksAMillionFlowsByDefault) {
  const AgentConfigLoad load = loadAgentConfigText("logLevel: info\n", "b.yaml");
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load.config.maxFlows, 1048576u);
}

TEST(AgentConfig, AFullFlowTableDropsUnlessToldToEvictIdleFlows) {
  EXPECT_EQ(loadAgentConfigText("logLevel: info\n", "b.yaml").config.flowTableFull,
            dataplane::FullTable::Drop);
  const AgentConfigLoad evict = loadAgentConfigText("flowTableFull: evict-idle\n", "b.yaml");
  ASSERT_TRUE(evict.ok());
  EXPECT_EQ(evict.config.flowTableFull, dataplane::FullTable::EvictIdle);
  EXPECT_EQ(errorsOf("flowTableFull: lru\n"),
            "bulkhead.yaml:1:16: flowTableFull must be drop or evict-idle, got 'lru'\n");
}

TEST(AgentConfig, EstablishedFlowsAreOffloadedUnlessToldNone) {
  EXPECT_EQ(loadAgentConfigText("logLevel: info\n", "b.yaml").config.offload, Offload::Established);
  const AgentConfigLoad none = loadAgentConfigText("offload: none\n", "b.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none.config.offload, Offload::None);
  EXPECT_EQ(errorsOf("offload: all\n"),
            "bulkhead.yaml:1:10: offload must be established or none, got 'all'\n");
}

TEST(AgentConfig, MetricsAreOnLoopbackUnlessMovedOrOff) {
  const AgentConfigLoad plain = loadAgentConfigText("logLevel: info\n", "b.yaml");
  EXPECT_EQ(plain.config.metricsAddress, "127.0.0.1:9968");
  EXPECT_FALSE(plain.config.metricsAddressChosen);
  for (const char* address : {"0.0.0.0:9100", "[::1]:0", "off"}) {
    const AgentConfigLoad moved =
        loadAgentConfigText(std::string("metricsAddress: \"") + address + "\"\n", "b.yaml");
    ASSERT_TRUE(moved.ok()) << address;
    EXPECT_EQ(moved.config.metricsAddress, address);
    EXPECT_TRUE(moved.config.metricsAddressChosen);
  }
  EXPECT_EQ(errorsOf("metricsAddress: 9968\n"),
            "bulkhead.yaml:1:17: metrics address '9968': expected host:port (or off)\n");
}

TEST(AgentConfig, LogsGoToAFileStdoutOrSyslogAndFilesMayRotateBySize) {
  const AgentConfigLoad plain = loadAgentConfigText("logLevel: info\n", "b.yaml");
  EXPECT_EQ(plain.config.violationLog, "/var/log/bulkhead/violations.jsonl");
  EXPECT_EQ(plain.config.flowLog, "");
  EXPECT_EQ(plain.config.logMaxBytes, 0u);
  const AgentConfigLoad set = loadAgentConfigText(
      "violationLog: syslog+udp://127.0.0.1:514\nflowLog: /var/log/bulkhead/flows.jsonl\n"
      "logMaxBytes: 100M\nlogFiles: 3\nsyslogFacility: local3\n",
      "b.yaml");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.config.violationLog, "syslog+udp://127.0.0.1:514");
  EXPECT_EQ(set.config.flowLog, "/var/log/bulkhead/flows.jsonl");
  EXPECT_EQ(set.config.logMaxBytes, 100u << 20);
  EXPECT_EQ(set.config.logFiles, 3u);
  EXPECT_EQ(set.config.syslogFacility, 19u);
  EXPECT_EQ(errorsOf("flowLog: syslog+tcp://127.0.0.1:514\n"),
            "bulkhead.yaml:1:10: flowLog: 'syslog+tcp://127.0.0.1:514': syslog takes "
            "syslog+unix:// or syslog+udp://\n");
  EXPECT_EQ(errorsOf("logMaxBytes: 10X\n"),
            "bulkhead.yaml:1:14: logMaxBytes must be a size such as 104857600, 100M or 1G (0: "
            "never rotate), got '10X'\n");
  EXPECT_EQ(errorsOf("syslogFacility: kern\n"),
            "bulkhead.yaml:1:17: syslogFacility must be local0..local7, daemon, user, auth or "
            "authpriv, got 'kern'\n");
}

}  // namespace
}  // namespace bulkhead::controlplane

namespace bulkhead::controlplane {
namespace {

// docs/multihost.md: the kvstore key, its defaults, and what it refuses where it is written.
TEST(AgentConfig, TheKvstoreIsOffUnlessItsEndpointsAreGiven) {
  EXPECT_FALSE(loadAgentConfigText("logLevel: info\n", "b.yaml").config.kvstore.enabled());
  testing::TempDir dir;
  const std::string password = dir.write("password", "s3cret\n");
  const AgentConfigLoad load = loadAgentConfigText(
      "kvstore:\n  endpoints: [https://10.0.0.5:2379, https://10.0.0.6:2379]\n"
      "  host: node-a\n  subnets: [10.1.0.0/24, fd00:1::/64]\n  leaseSeconds: 30\n"
      "  tls: {ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/k.pem}\n"
      "  username: bulkhead\n  passwordFile: " +
          password + "\n",
      "b.yaml");
  ASSERT_TRUE(load.ok()) << (load.errors.empty() ? "" : load.errors.front().message);
  const KvstoreConfig& kvstore = load.config.kvstore;
  EXPECT_TRUE(kvstore.enabled());
  EXPECT_EQ(kvstore.etcd.endpoints.size(), 2u);
  EXPECT_EQ(kvstore.prefix, "/bulkhead");
  EXPECT_EQ(kvstore.host, "node-a");
  EXPECT_EQ(kvstore.subnets.size(), 2u);
  EXPECT_EQ(kvstore.leaseSeconds, 30u);
  EXPECT_EQ(kvstore.etcd.timeoutSeconds, 5);
  EXPECT_EQ(kvstore.etcd.certFile, "/etc/c.pem");
  EXPECT_EQ(kvstore.etcd.password, "s3cret") << "one line, without its newline";

  EXPECT_EQ(errorsOf("kvstore: {host: a}\n"),
            "bulkhead.yaml:1:10: kvstore.endpoints is missing: the etcd client URLs to use\n");
  EXPECT_NE(errorsOf("kvstore: {endpoints: [10.0.0.5:2379]}\n").find("is no etcd client URL"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], host: Node_A}\n").find("kvstore.host"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], prefix: bulkhead/}\n")
                .find("kvstore.prefix must start with '/'"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], subnets: [10.1.0.0/33]}\n")
                .find("kvstore.subnets"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], leaseSeconds: 2}\n")
                .find("kvstore.leaseSeconds must be a whole number from 5 to 3600"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], tls: {ca: /x}}\n").find("plain http"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [https://a:1], tls: {cert: /x}}\n")
                .find("cert and key go together"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], username: u}\n")
                .find("username and passwordFile go together"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], passwordFile: /nonexistent/p}\n")
                .find("cannot read a password"),
            std::string::npos);
  EXPECT_NE(errorsOf("kvstore: {endpoints: [http://a:1], password: x}\n").find("password"),
            std::string::npos)
      << "a password is only ever read from a file";
}

}  // namespace
}  // namespace bulkhead::controlplane
