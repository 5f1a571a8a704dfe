#include "dataplane/hold_queue.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <string>
#include <vector>

#include "dataplane/eal.h"

namespace bulkhead {
namespace {

using dataplane::FlowHold;
using dataplane::HoldQueue;

constexpr uint64_t Ms = 1000000;

class HoldQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    pool_ = dataplane::createPacketPool("hq" + std::to_string(counter++), 63, 256);
    ASSERT_NE(pool_, nullptr);
  }
  void TearDown() override { rte_mempool_free(pool_); }

  rte_mbuf* mbuf() { return rte_pktmbuf_alloc(pool_); }
  unsigned inUse() const { return rte_mempool_in_use_count(pool_); }

  rte_mempool* pool_ = nullptr;
};

TEST_F(HoldQueueTest, ReleasesAFlowsPacketsInOrderWithTheirEgress) {
  HoldQueue queue(8, 4, 2 * Ms);
  FlowHold flow;
  const uint32_t owner = 0;
  rte_mbuf* a = mbuf();
  rte_mbuf* b = mbuf();
  ASSERT_TRUE(queue.hold(flow, owner, a, 3, 0));
  ASSERT_TRUE(queue.hold(flow, owner, b, 4, 1));
  EXPECT_EQ(flow.count, 2);
  EXPECT_EQ(queue.size(), 2u);
  std::vector<HoldQueue::Released> out;
  queue.release(flow, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].mbuf, a);
  EXPECT_EQ(out[0].egress, 3);
  EXPECT_EQ(out[1].mbuf, b);
  EXPECT_EQ(out[1].egress, 4);
  EXPECT_EQ(flow.count, 0);
  EXPECT_EQ(queue.size(), 0u);
  for (const auto& packet : out) {
    rte_pktmbuf_free(packet.mbuf);
  }
}

TEST_F(HoldQueueTest, DroppingFreesTheMbufs) {
  const unsigned before = inUse();
  HoldQueue queue(8, 4, 2 * Ms);
  FlowHold flow;
  ASSERT_TRUE(queue.hold(flow, 0, mbuf(), 0, 0));
  ASSERT_TRUE(queue.hold(flow, 0, mbuf(), 0, 0));
  EXPECT_EQ(inUse(), before + 2);
  EXPECT_EQ(queue.drop(flow), 2u);
  EXPECT_EQ(inUse(), before);
  EXPECT_EQ(flow.count, 0);
}

TEST_F(HoldQueueTest, RefusesPastItsCapacityAndAFlowsShare) {
  HoldQueue queue(3, 2, 2 * Ms);
  FlowHold one;
  FlowHold two;
  rte_mbuf* extra = mbuf();
  EXPECT_TRUE(queue.hold(one, 0, mbuf(), 0, 0));
  EXPECT_TRUE(queue.hold(one, 0, mbuf(), 0, 0));
  EXPECT_FALSE(queue.hold(one, 0, extra, 0, 0)) << "a flow's share is 2";
  EXPECT_TRUE(queue.hold(two, 0, mbuf(), 0, 0));
  EXPECT_FALSE(queue.hold(two, 0, extra, 0, 0)) << "the queue holds 3";
  queue.drop(one);
  EXPECT_TRUE(queue.hold(two, 0, extra, 0, 0)) << "room again once one flow went";
  queue.drop(two);
}

TEST_F(HoldQueueTest, HoldingTurnsOffWithNoCapacityOrNoTimeout) {
  FlowHold flow;
  rte_mbuf* packet = mbuf();
  HoldQueue none(0, 8, 2 * Ms);
  EXPECT_FALSE(none.enabled());
  EXPECT_FALSE(none.hold(flow, 0, packet, 0, 0));
  HoldQueue noTimeout(8, 8, 0);
  EXPECT_FALSE(noTimeout.enabled());
  EXPECT_FALSE(noTimeout.hold(flow, 0, packet, 0, 0));
  rte_pktmbuf_free(packet);
}

TEST_F(HoldQueueTest, FlowsComeDueInTheOrderTheyStartedHolding) {
  HoldQueue queue(8, 4, 2 * Ms);
  FlowHold first;
  FlowHold second;
  FlowHold early;
  const uint32_t a = 1;
  const uint32_t b = 2;
  const uint32_t c = 3;
  ASSERT_TRUE(queue.hold(first, a, mbuf(), 0, 10 * Ms));
  ASSERT_TRUE(queue.hold(early, c, mbuf(), 0, 10 * Ms + 1));
  ASSERT_TRUE(queue.hold(second, b, mbuf(), 0, 11 * Ms));
  ASSERT_TRUE(queue.hold(first, a, mbuf(), 0, 11 * Ms));  // joins its flow: no new deadline
  // `early` got its verdict before the timeout: its deadline entry is stale now.
  queue.drop(early);

  std::vector<uint32_t> due;
  const auto collect = [&](uint32_t owner) { due.push_back(owner); };
  queue.forEachDue(12 * Ms - 1, collect);
  EXPECT_TRUE(due.empty()) << "nothing waited 2 ms yet";
  queue.forEachDue(12 * Ms, collect);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], a);
  queue.drop(first);
  queue.forEachDue(13 * Ms, collect);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[1], b);
  queue.drop(second);
  queue.forEachDue(100 * Ms, collect);
  EXPECT_EQ(due.size(), 2u);
}

TEST_F(HoldQueueTest, WhatIsStillHeldIsFreedWithTheQueue) {
  const unsigned before = inUse();
  {
    HoldQueue queue(8, 4, 2 * Ms);
    FlowHold flow;
    ASSERT_TRUE(queue.hold(flow, 0, mbuf(), 0, 0));
    EXPECT_EQ(inUse(), before + 1);
  }
  EXPECT_EQ(inUse(), before);
}

}  // namespace
}  // namespace bulkhead
