#include "controlplane/agent_journal.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace bulkhead::controlplane {
namespace {

TEST(AgentJournal, RoundTripsWhatTheNextStartNeeds) {
  testing::TempDir dir;
  const std::string path = dir.file("state/journal.json");  // the directory is created
  AgentJournal journal;
  journal.running = true;
  journal.instance = "bh0";
  journal.plugged = {"veth12ab", "bh0-u1"};
  journal.uplinks = {"bh0-u1"};
  journal.protectedBridges = {"shop0"};
  journal.apiEndpoints.push_back(nlohmann::json{{"name", "web"}, {"interface", "veth12ab"}});
  std::string error;
  ASSERT_TRUE(journal.save(path, &error)) << error;

  std::string warning;
  const auto loaded = AgentJournal::load(path, &warning);
  EXPECT_EQ(warning, "");
  EXPECT_TRUE(loaded.running);
  EXPECT_EQ(loaded.instance, "bh0");
  EXPECT_EQ(loaded.plugged, journal.plugged);
  EXPECT_EQ(loaded.uplinks, journal.uplinks);
  EXPECT_EQ(loaded.protectedBridges, journal.protectedBridges);
  ASSERT_EQ(loaded.apiEndpoints.size(), 1u);
  EXPECT_EQ(loaded.apiEndpoints[0]["interface"], "veth12ab");
}

TEST(AgentJournal, AMissingFileIsAFirstStartAndABrokenOneIsSaidAndIgnored) {
  testing::TempDir dir;
  std::string warning;
  const auto none = AgentJournal::load(dir.file("absent.json"), &warning);
  EXPECT_FALSE(none.running);
  EXPECT_TRUE(none.plugged.empty());
  EXPECT_EQ(warning, "");

  for (const std::string text :
       {"{\"running\": tru", "{\"plugged\": [3]}", "{\"apiEndpoints\": [\"web\"]}"}) {
    std::ofstream(dir.file("broken.json")) << text;
    warning.clear();
    const auto broken = AgentJournal::load(dir.file("broken.json"), &warning);
    EXPECT_FALSE(broken.running);
    EXPECT_TRUE(broken.plugged.empty());
    EXPECT_NE(warning.find("broken.json"), std::string::npos) << warning;
  }
}

}  // namespace
}  // namespace bulkhead::controlplane
