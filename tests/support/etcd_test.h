#pragma once

// Tests against a real etcd: each test of the fixture gets its own members on loopback ports,
// ended when it ends; without Debian's etcd-server the test is skipped, saying so.
#include <gtest/gtest.h>

#include <memory>

#include "kvstore/etcd_client.h"
#include "tests/support/etcd_cluster.h"

namespace bulkhead::testing {

class EtcdTest : public ::testing::Test {
 protected:
  explicit EtcdTest(int members = 1) : members_(members) {}

  void SetUp() override {
    if (!EtcdCluster::available()) {
      GTEST_SKIP() << "needs Debian's etcd-server (" << EtcdCluster::Binary
                   << "; scripts/setup.sh installs it)";
    }
    etcd_ = std::make_unique<EtcdCluster>(dir_, members_);
    ASSERT_TRUE(etcd_->ready()) << etcd_->log(0);
  }

  // A client of every member, with short timeouts: a fault shows within seconds.
  kvstore::EtcdOptions options() const { return etcd_->clientOptions(); }

  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;

 private:
  int members_;
};

}  // namespace bulkhead::testing
