#include "tests/integration/docker_suite.h"

namespace bulkhead::testing {

DockerEngine* DockerSuite::engine_ = nullptr;

void DockerSuite::SetUpTestSuite() {
  if (!haveRoot() || !DockerEngine::unavailableReason().empty() ||
      !DockerEngine::imageUnavailableReason().empty()) {
    return;
  }
  engine_ = new DockerEngine();
  engine_->ensureImage();
}

void DockerSuite::TearDownTestSuite() {
  delete engine_;
  engine_ = nullptr;
}

void DockerSuite::SetUp() {
  if (!haveRoot()) {
    GTEST_SKIP() << "needs root: runs a Docker engine and a DPDK agent";
  }
  if (const auto reason = DockerEngine::unavailableReason(); !reason.empty()) {
    GTEST_SKIP() << reason << " (scripts/setup.sh installs docker.io)";
  }
  if (const auto reason = DockerEngine::imageUnavailableReason(); !reason.empty()) {
    GTEST_SKIP() << reason << " (scripts/setup.sh installs busybox-static)";
  }
  ASSERT_NE(engine_, nullptr);
  if (!engine_->running()) {
    engine_->startEngine();  // a previous test failed with the engine stopped
  }
}

}  // namespace bulkhead::testing
