// bulkheadd's flags refuse what the agent could not run with, as a usage error (exit 2) before
// the EAL or anything in the kernel is touched: no root needed.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/binaries.h"
#include "tests/support/run_command.h"

namespace bulkhead {
namespace {

// A flow table of fewer than 1024 entries used to pass validation and then fail in rte_hash at
// start (issue #10).
TEST(AgentFlags, MaxFlowsBelowTheMinimumIsAUsageErrorBeforeAnythingStarts) {
  const std::string config = ::testing::TempDir() + "/agent_flags_test.yaml";
  std::ofstream(config) << "logLevel: info\n";
  for (const std::string small : {"1", "7", "1023"}) {
    const auto result = testing::runCommand(
        {testing::builtBinary("bulkheadd"), "--config", config, "--max-flows", small}, 30);
    EXPECT_EQ(result.exitCode, 2) << result.err;
    EXPECT_NE(result.err.find("--max-flows"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("1024"), std::string::npos) << result.err;
  }
  std::remove(config.c_str());
}

TEST(AgentFlags, AMetricsAddressThatIsNoHostAndPortIsAUsageError) {
  const std::string config = ::testing::TempDir() + "/agent_flags_metrics.yaml";
  std::ofstream(config) << "logLevel: info\n";
  for (const std::string bad : {"9968", "localhost:http", "::1:9968"}) {
    const auto result = testing::runCommand(
        {testing::builtBinary("bulkheadd"), "--config", config, "--metrics-address", bad}, 30);
    EXPECT_EQ(result.exitCode, 2) << result.err;
    EXPECT_NE(result.err.find("--metrics-address: metrics address '" + bad + "'"),
              std::string::npos)
        << result.err;
  }
  std::remove(config.c_str());
}

}  // namespace
}  // namespace bulkhead
