#include "controlplane/attachment_journal.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace bulkhead::controlplane {
namespace {

TEST(AttachmentJournal, RoundTripsWhatTheNextStartNeeds) {
  testing::TempDir dir;
  const std::string path = dir.file("state/attachments.json");  // the directory is created
  AttachmentJournal journal;
  journal.running = true;
  journal.uplinks.push_back({"bhu-1a2b3c4d", "bhb-1a2b3c4d", "shop0"});
  journal.endpoints.push_back({"web", "veth12ab", "shop0", "api",
                               nlohmann::json{{"name", "web"}, {"interface", "veth12ab"}}});
  journal.endpoints.push_back({"db", "veth34cd", "", "docker", nullptr});
  std::string error;
  ASSERT_TRUE(journal.save(path, &error)) << error;

  std::string warning;
  const auto loaded = AttachmentJournal::load(path, &warning);
  EXPECT_EQ(warning, "");
  EXPECT_TRUE(loaded.running);
  ASSERT_EQ(loaded.uplinks.size(), 1u);
  EXPECT_EQ(loaded.uplinks[0].peer, "bhb-1a2b3c4d");
  EXPECT_EQ(loaded.uplinks[0].bridge, "shop0");
  ASSERT_EQ(loaded.endpoints.size(), 2u);
  EXPECT_EQ(loaded.endpoints[0].request["interface"], "veth12ab");
  EXPECT_EQ(loaded.endpoints[1].source, "docker");
  EXPECT_EQ(loaded.endpoints[1].bridge, "");
}

TEST(AttachmentJournal, AMissingFileIsAFirstStartAndABrokenOneIsSaidAndIgnored) {
  testing::TempDir dir;
  std::string warning;
  const auto none = AttachmentJournal::load(dir.file("absent.json"), &warning);
  EXPECT_FALSE(none.running);
  EXPECT_TRUE(none.endpoints.empty());
  EXPECT_EQ(warning, "");

  for (const std::string text : {"{\"running\": tru", "{\"endpoints\": [{\"name\": 3}]}"}) {
    std::ofstream(dir.file("broken.json")) << text;
    warning.clear();
    const auto broken = AttachmentJournal::load(dir.file("broken.json"), &warning);
    EXPECT_FALSE(broken.running);
    EXPECT_TRUE(broken.endpoints.empty());
    EXPECT_NE(warning.find("broken.json"), std::string::npos) << warning;
  }
}

}  // namespace
}  // namespace bulkhead::controlplane
