// Learning through the real agent: flows judged in monitor mode become observed edges, kept
// across a restart, and `bulkhead policy suggest` turns them into a policy that, put in force,
// allows exactly what was seen and denies what was not.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/agent_fixture.h"
#include "tests/support/paths.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

class AgentLearningTest : public AgentTest {
 protected:
  // The agent's edges, once one matches `predicate` (10 s at most); empty when none did.
  json awaitEdge(const std::function<bool(const json&)>& predicate) {
    json found;
    testing::waitFor(
        [&] {
          const json reply = call({{"command", "edges"}});
          for (const auto& edge : reply.value("edges", json::array())) {
            if (predicate(edge)) {
              found = edge;
              return true;
            }
          }
          return false;
        },
        10);
    return found;
  }

  static bool webToApi8080(const json& edge) {
    return edge["src"]["labels"].value("app", "") == "web" &&
           edge["dst"]["labels"].value("app", "") == "api" && edge["port"] == 8080 &&
           edge["protocol"] == "HTTP";
  }
};

TEST_F(AgentLearningTest, TheSuggestionOfMonitorModeFlowsEnforcesExactlyThem) {
  // The policy the package installs: every container in monitor mode.
  std::ofstream(policyPath_) << testing::readFile(testing::sourceDir() +
                                                  "/packaging/policies/00-monitor-everything.yaml");
  extraConfig_ = "watchPolicy: false\n";
  startAgent();
  httpServer(*api_, 8080);
  httpServer(*api_, 9090);
  httpServer(*db_, 8080);
  ASSERT_EQ(httpGet(*web_, *api_, 8080), 200);

  const json edge = awaitEdge(webToApi8080);
  ASSERT_FALSE(edge.is_null()) << call({{"command", "edges"}}).dump();
  EXPECT_GE(edge["flows"].get<uint64_t>(), 1u);
  EXPECT_GE(edge["monitored"].get<uint64_t>(), 1u);  // passed: only monitor policies are in force
  EXPECT_EQ(edge["dst"]["labels"].value("bulkhead.io/name", ""), "api");

  // The suggestion, its diff against the monitor policy, and policy check's word on it.
  testing::TempDir out;
  const std::string dir = out.file("suggested");
  const auto suggest = cli({"policy", "suggest", "--output", dir, "--diff"});
  ASSERT_EQ(suggest.exitCode, 0) << suggest.err << suggest.out;
  EXPECT_NE(suggest.out.find("wrote 2 policies to " + dir), std::string::npos) << suggest.out;
  EXPECT_NE(suggest.out.find("+ web -> api TCP/8080 HTTP"), std::string::npos) << suggest.out;
  EXPECT_NE(suggest.out.find("deny (monitor: passes) by default-deny"), std::string::npos)
      << suggest.out;
  ASSERT_TRUE(std::filesystem::exists(dir + "/api.yaml"));
  ASSERT_TRUE(std::filesystem::exists(dir + "/web.yaml"));
  const std::string apiPolicy = testing::readFile(dir + "/api.yaml");
  EXPECT_NE(apiPolicy.find("matchLabels: {\"app\": \"api\"}"), std::string::npos) << apiPolicy;
  EXPECT_NE(apiPolicy.find("l7: {protocols: [\"HTTP\"]}"), std::string::npos) << apiPolicy;
  const auto check =
      testing::runCommand({testing::builtBinary("bulkhead"), "policy", "check", dir}, 30);
  ASSERT_EQ(check.exitCode, 0) << check.err << check.out;
  const auto unknown = cli({"policy", "suggest", "--endpoint", "nobody"});
  EXPECT_EQ(unknown.exitCode, 1);
  EXPECT_NE(unknown.err.find("no recorded flow of an endpoint named 'nobody'"), std::string::npos)
      << unknown.err;
  const auto badSince = cli({"policy", "suggest", "--since", "yesterday"});
  EXPECT_EQ(badSince.exitCode, 1);
  EXPECT_NE(badSince.err.find("since must be a duration"), std::string::npos) << badSince.err;

  // In force, in enforce mode: what was seen passes, what was not is dropped and reported.
  std::ofstream(policyPath_) << testing::readFile(dir + "/api.yaml") << "---\n"
                             << testing::readFile(dir + "/web.yaml");
  const auto reload = cli({"policy", "reload"});
  ASSERT_EQ(reload.exitCode, 0) << reload.err;
  EXPECT_EQ(httpGet(*web_, *api_, 8080), 200);
  EXPECT_EQ(httpGet(*web_, *api_, 9090, 2), 0);
  EXPECT_EQ(httpGet(*web_, *db_, 8080, 2), 0);
  const auto refused = violation(
      [](const json& line) { return line["mode"] == "enforce" && line["dst"]["port"] == 9090; });
  ASSERT_TRUE(refused) << "no enforced violation for web -> api:9090";
  EXPECT_EQ((*refused)["rule"], "default-deny");
  // bulkhead flows says why as the violation log does.
  const json flow = awaitFlow([](const json& f) { return f["dst"]["port"] == 9090; });
  ASSERT_FALSE(flow.is_null());
  EXPECT_EQ(flow["closest_rule"], "api/ingress/0") << flow.dump();
  EXPECT_EQ(flow["mismatch"]["what"], "port") << flow.dump();
  EXPECT_NE(cli({"flows"}).out.find("this flow's port is 9090/TCP"), std::string::npos);

  // Kept across a restart, in the state directory.
  agent_->stop(10);
  ASSERT_EQ(agent_->exitCode(), std::optional<int>(0)) << agent_->log();
  const std::string saved = lab_->dir().file("state") + "/edges.json";
  ASSERT_TRUE(std::filesystem::exists(saved));
  EXPECT_NE(testing::readFile(saved).find("\"port\":8080"), std::string::npos);
  startAgent();
  EXPECT_FALSE(awaitEdge(webToApi8080).is_null()) << call({{"command", "edges"}}).dump();
  const json status = call({{"command", "status"}});
  EXPECT_EQ(status["learning"]["enabled"], true);
  EXPECT_GE(status["learning"]["edges"].get<uint64_t>(), 3u);  // 8080, 9090 and db's 8080
}

TEST_F(AgentLearningTest, OffRecordsNothingAndSaysSo) {
  extraConfig_ = "learning: false\n";
  startAgent();
  httpServer(*api_, 8080);
  ASSERT_EQ(httpGet(*web_, *api_, 8080), 200);
  const auto suggest = cli({"policy", "suggest"});
  EXPECT_EQ(suggest.exitCode, 1);
  EXPECT_NE(suggest.err.find("learning is off"), std::string::npos) << suggest.err;
  EXPECT_EQ(call({{"command", "status"}})["learning"]["enabled"], false);
}

}  // namespace
}  // namespace bulkhead
