// The real `bulkhead` binary as a new user meets it: help, commands with subcommands, typos,
// and where it finds the agent.
#include <gtest/gtest.h>

#include "tests/support/paths.h"
#include "tests/support/run_command.h"

namespace bulkhead {
namespace {

using testing::runCommand;

testing::CommandResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), testing::bulkheadBinary());
  return runCommand(args);
}

TEST(CliUsage, HelpAloneAndHelpOfACommandAnswer) {
  const auto help = cli({"help"});
  EXPECT_EQ(help.exitCode, 0) << help.err;
  EXPECT_NE(help.out.find("bulkhead policy check PATH..."), std::string::npos) << help.out;

  const auto status = cli({"help", "status"});
  EXPECT_EQ(status.exitCode, 0) << status.err;
  EXPECT_NE(status.out.find("--socket"), std::string::npos) << status.out;

  const auto check = cli({"help", "policy", "check"});
  EXPECT_EQ(check.exitCode, 0) << check.err;
  EXPECT_NE(check.out.find("bulkhead policy check PATH..."), std::string::npos) << check.out;

  const auto policy = cli({"help", "policy"});
  EXPECT_EQ(policy.exitCode, 0) << policy.err;
  EXPECT_NE(policy.out.find("check reload show"), std::string::npos) << policy.out;
}

TEST(CliUsage, ACommandWithoutItsSubcommandListsThem) {
  for (const auto& [command, subs] : std::vector<std::pair<std::string, std::string>>{
           {"policy", "check reload show"}, {"endpoint", "attach detach"}}) {
    const auto result = cli({command});
    EXPECT_EQ(result.exitCode, 2) << command;
    EXPECT_NE(result.err.find("subcommands: " + subs), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("unknown command"), std::string::npos) << result.err;
  }
}

TEST(CliUsage, ATypoGetsTheNearestName) {
  const auto sub = cli({"policy", "chek", "x.yaml"});
  EXPECT_EQ(sub.exitCode, 2);
  EXPECT_NE(sub.err.find("unknown subcommand 'chek'; did you mean 'policy check'?"),
            std::string::npos)
      << sub.err;

  const auto command = cli({"statsu"});
  EXPECT_EQ(command.exitCode, 2);
  EXPECT_NE(command.err.find("unknown command 'statsu'; did you mean 'status'?"), std::string::npos)
      << command.err;

  // Nothing near: no guess.
  const auto far = cli({"frobnicate"});
  EXPECT_EQ(far.exitCode, 2);
  EXPECT_NE(far.err.find("unknown command 'frobnicate'"), std::string::npos) << far.err;
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << far.err;
}

// $BULKHEAD_SOCKET is where the agent is looked for; --socket still wins.
TEST(CliUsage, TheSocketComesFromTheEnvironmentUnlessGiven) {
  const std::string fromEnvironment = "/nonexistent/bulkhead-env.sock";
  const auto env = runCommand(
      {"/usr/bin/env", "BULKHEAD_SOCKET=" + fromEnvironment, testing::bulkheadBinary(), "status"});
  EXPECT_EQ(env.exitCode, 2);
  EXPECT_NE(env.err.find(fromEnvironment), std::string::npos) << env.err;

  const auto given =
      runCommand({"/usr/bin/env", "BULKHEAD_SOCKET=" + fromEnvironment, testing::bulkheadBinary(),
                  "status", "--socket", "/nonexistent/given.sock"});
  EXPECT_EQ(given.exitCode, 2);
  EXPECT_NE(given.err.find("/nonexistent/given.sock"), std::string::npos) << given.err;
  EXPECT_EQ(given.err.find(fromEnvironment), std::string::npos) << given.err;
}

}  // namespace
}  // namespace bulkhead
