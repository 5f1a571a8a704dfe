#include "controlplane/identity_allocator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using controlplane::IdentityAllocator;

const rules::Labels Web = {{"app", "web"}};
const rules::Labels Api = {{"app", "api"}, {"tier", "backend"}};

TEST(IdentityAllocator, SameLabelsSameIdentity) {
  IdentityAllocator allocator;
  const auto web = allocator.allocate(Web);
  EXPECT_EQ(web, rules::reserved_identity::FirstEndpoint);
  EXPECT_EQ(allocator.allocate(Api), web + 1);
  EXPECT_EQ(allocator.allocate(Web), web);
  EXPECT_EQ(allocator.identities().size(), 2u);
}

TEST(IdentityAllocator, NumberingSurvivesARestartWhateverTheOrder) {
  testing::TempDir dir;
  const std::string state = dir.file("state/identities.json");
  std::string warning;
  rules::IdentityId web = 0;
  rules::IdentityId api = 0;
  {
    IdentityAllocator first(state, &warning);
    web = first.allocate(Web);
    api = first.allocate(Api);
    std::string error;
    ASSERT_TRUE(first.save(&error)) << error;
  }
  EXPECT_FALSE(std::filesystem::exists(state + ".tmp"));
  IdentityAllocator second(state, &warning);
  EXPECT_TRUE(warning.empty()) << warning;
  EXPECT_EQ(second.allocate(Api), api);  // asked in the other order
  EXPECT_EQ(second.allocate(Web), web);
  EXPECT_EQ(second.allocate({{"app", "db"}}), api + 1);  // new ones continue after the last
}

TEST(IdentityAllocator, CorruptStateIsMovedAsideAndNumberingStartsAgain) {
  testing::TempDir dir;
  const std::string state = dir.write("identities.json", "{\"identities\": [{\"id\": \"x\"}]}");
  std::string warning;
  IdentityAllocator allocator(state, &warning);
  EXPECT_NE(warning.find("corrupt"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(state + ".corrupt"));
  EXPECT_EQ(allocator.allocate(Web), rules::reserved_identity::FirstEndpoint);
}

TEST(IdentityAllocator, UnwritableStateIsReported) {
  std::string warning;
  IdentityAllocator allocator("/proc/bulkhead-no-such-dir/identities.json", &warning);
  allocator.allocate(Web);
  std::string error;
  EXPECT_FALSE(allocator.save(&error));
  EXPECT_NE(error.find("/proc/bulkhead-no-such-dir"), std::string::npos) << error;
}

}  // namespace
}  // namespace bulkhead
