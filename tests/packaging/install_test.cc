// What `cmake --install` puts on a machine: the binaries, a systemd unit systemd accepts, and a
// configuration and first policy the agent accepts. No root needed: everything goes to DESTDIR.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/binaries.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace bulkhead {
namespace {

using testing::readFile;

class InstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/bin/cmake")) {
      GTEST_SKIP() << "needs cmake (scripts/setup.sh installs it)";
    }
    const auto installed =
        testing::runCommand({"/usr/bin/env", "DESTDIR=" + root_.file("root"), "/usr/bin/cmake",
                             "--install", BULKHEAD_BINARY_DIR, "--prefix", "/usr"},
                            120);
    ASSERT_EQ(installed.exitCode, 0) << installed.out << installed.err;
    out_ = installed.out;
  }
  std::string at(const std::string& path) const { return root_.file("root") + path; }

  testing::TempDir root_;
  std::string out_;
};

TEST_F(InstallTest, PutsTheBinariesTheUnitTheConfigurationAndTheDocsInPlace) {
  for (const char* file : {"/usr/sbin/bulkheadd", "/usr/bin/bulkhead", "/usr/bin/bulkhead-cni"}) {
    EXPECT_EQ(::access(at(file).c_str(), X_OK), 0) << file;
  }
  const std::string unit = readFile(at("/usr/lib/systemd/system/bulkheadd.service"));
  EXPECT_NE(unit.find("\nExecStart=/usr/sbin/bulkheadd --config /etc/bulkhead/bulkhead.yaml\n"),
            std::string::npos)
      << unit;
  EXPECT_EQ(unit.find('@'), std::string::npos) << "a placeholder left: " << unit;
  EXPECT_TRUE(std::filesystem::exists(at("/usr/share/doc/bulkhead/operations.md")));
  EXPECT_TRUE(std::filesystem::exists(at("/usr/share/doc/bulkhead/examples/policies/api.yaml")));

  // The configuration and the first policy as installed are valid for the agent.
  const auto checked =
      testing::runCommand({at("/usr/sbin/bulkheadd"), "--config", at("/etc/bulkhead/bulkhead.yaml"),
                           "--policy", at("/etc/bulkhead/policies"), "--check-config"},
                          60);
  EXPECT_EQ(checked.exitCode, 0) << checked.out << checked.err;
  EXPECT_NE(checked.out.find("1 policies"), std::string::npos) << checked.out;
}

TEST_F(InstallTest, AReinstallKeepsTheOperatorsConfiguration) {
  std::ofstream(at("/etc/bulkhead/bulkhead.yaml")) << "policy: /srv/policies\n";
  const auto again =
      testing::runCommand({"/usr/bin/env", "DESTDIR=" + root_.file("root"), "/usr/bin/cmake",
                           "--install", BULKHEAD_BINARY_DIR, "--prefix", "/usr"},
                          120);
  ASSERT_EQ(again.exitCode, 0) << again.err;
  EXPECT_EQ(readFile(at("/etc/bulkhead/bulkhead.yaml")), "policy: /srv/policies\n");
  EXPECT_NE(again.out.find("Kept: " + at("/etc/bulkhead/bulkhead.yaml")), std::string::npos)
      << again.out;
}

// systemd's own checker reads the unit as installed, with the binaries it names pointed at this
// build (they are not in /usr/sbin here): no unknown key, no bad value, nothing missing.
TEST_F(InstallTest, SystemdAcceptsTheUnitWithoutAWarning) {
  if (!std::filesystem::exists("/usr/bin/systemd-analyze")) {
    GTEST_SKIP() << "needs systemd-analyze (Debian package systemd)";
  }
  std::string unit = readFile(at("/usr/lib/systemd/system/bulkheadd.service"));
  unit = std::regex_replace(unit, std::regex("/usr/sbin/bulkheadd"), at("/usr/sbin/bulkheadd"));
  const std::string path = root_.write("bulkheadd.service", unit);
  const auto verified = testing::runCommand({"/usr/bin/systemd-analyze", "verify", path}, 60);
  EXPECT_EQ(verified.exitCode, 0) << verified.err;
  EXPECT_EQ(verified.err, "") << "systemd warns about the unit";
  EXPECT_EQ(verified.out, "");
}

}  // namespace
}  // namespace bulkhead
