#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/integration/docker_engine.h"

namespace bulkhead::testing {

// A GoogleTest fixture whose suite shares one private Docker engine (tests/integration/
// docker_engine.h), with the image imported. SetUp() skips, saying why, on a machine that
// cannot run one: derived fixtures call it first and return when IsSkipped().
class DockerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  static DockerEngine* engine_;
};

}  // namespace bulkhead::testing
