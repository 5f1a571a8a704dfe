#pragma once

#include <gtest/gtest.h>

#include "dataplane/eal.h"

namespace bulkhead::testing {

// DPDK's EAL can start once per process: test binaries that need mbufs or hashes register this
// environment from main(). No hugepages, no NIC: the same arguments `bulkhead simulate` uses.
class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!dataplane::ealInitialized()) {
      dataplane::initEal(dataplane::offlineEalArguments(512));
    }
  }
};

}  // namespace bulkhead::testing
