#include "controlplane/policy_watcher.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using controlplane::PolicyWatcher;

// Time is passed in explicitly, so settling is tested without sleeping.
TEST(PolicyWatcher, ReportsAChangeOnceItHasSettled) {
  testing::TempDir dir;
  const std::string policy = dir.write("policy.yaml", "v1");
  std::string error;
  auto watcher = PolicyWatcher::open({policy}, &error, 200);
  ASSERT_TRUE(watcher) << error;
  EXPECT_FALSE(watcher->poll(1000));
  std::ofstream(policy) << "v2";
  EXPECT_FALSE(watcher->poll(1000));  // just written: may still be mid-edit
  EXPECT_FALSE(watcher->poll(1100));
  EXPECT_TRUE(watcher->poll(1200));
  EXPECT_FALSE(watcher->poll(2000));  // reported once
}

TEST(PolicyWatcher, FollowsAnEditorsRenameAndIgnoresOtherFiles) {
  testing::TempDir dir;
  const std::string policy = dir.write("policy.yaml", "v1");
  std::string error;
  auto watcher = PolicyWatcher::open({policy}, &error, 0);
  ASSERT_TRUE(watcher) << error;
  dir.write("unrelated.txt", "x");
  dir.write(".policy.yaml.swp", "x");
  EXPECT_FALSE(watcher->poll(10));
  const std::string temporary = dir.write("policy.yaml.new", "v2");
  std::filesystem::rename(temporary, policy);
  EXPECT_TRUE(watcher->poll(20));
}

TEST(PolicyWatcher, AnyFileInAWatchedDirectoryCounts) {
  testing::TempDir dir;
  std::string error;
  auto watcher = PolicyWatcher::open({dir.path().string()}, &error, 0);
  ASSERT_TRUE(watcher) << error;
  dir.write("new-policy.yaml", "x");
  EXPECT_TRUE(watcher->poll(5));
  std::filesystem::remove(dir.file("new-policy.yaml"));
  EXPECT_TRUE(watcher->poll(6));
}

TEST(PolicyWatcher, MissingDirectoryIsAnError) {
  std::string error;
  EXPECT_FALSE(PolicyWatcher::open({"/nonexistent-bulkhead-dir/policy.yaml"}, &error));
  EXPECT_NE(error.find("cannot watch /nonexistent-bulkhead-dir"), std::string::npos) << error;
}

TEST(PolicyDigest, IsTheSha256OfPathsLengthsAndContents) {
  testing::TempDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  std::ofstream("a.yaml") << "hello";
  const std::string digest = controlplane::policyDigest({"a.yaml"});
  std::filesystem::current_path(cwd);
  // printf 'a.yaml\n5\nhello' | sha256sum
  EXPECT_EQ(digest, "9826460564cf9391a27092ab37cb46c3b70b13b5ef516f0343a84faf3ac1dbae");
  EXPECT_NE(controlplane::policyDigest({dir.file("a.yaml")}), digest);  // the path is part of it
}

}  // namespace
}  // namespace bulkhead
