#include <gtest/gtest.h>

#include "tests/support/eal_environment.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new bulkhead::testing::EalEnvironment);
  return RUN_ALL_TESTS();
}
