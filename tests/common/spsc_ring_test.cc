#include "common/spsc_ring.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>

namespace vigil {
namespace {

// A producer and a consumer on two threads see every item once, in order.
TEST(SpscRingTest, TwoThreadsKeepOrder) {
  SpscRing<uint64_t> ring(64, [] { return std::make_unique<uint64_t>(0); });
  constexpr uint64_t kItems = 200000;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kItems;) {
      if (uint64_t* slot = ring.tryClaim()) {
        *slot = i++;
        ring.publish();
      }
    }
  });
  uint64_t expected = 0;
  while (expected < kItems) {
    if (uint64_t* slot = ring.front()) {
      ASSERT_EQ(*slot, expected);
      ++expected;
      ring.pop();
    }
  }
  producer.join();
  EXPECT_EQ(ring.size(), 0u);
}

// A full ring refuses a claim instead of overwriting unread slots.
TEST(SpscRingTest, FullRingRejectsClaim) {
  SpscRing<int> ring(4, [] { return std::make_unique<int>(0); });
  for (int i = 0; i < 4; ++i) {
    ASSERT_NE(ring.tryClaim(), nullptr);
    ring.publish();
  }
  EXPECT_EQ(ring.tryClaim(), nullptr);
  ring.pop();
  EXPECT_NE(ring.tryClaim(), nullptr);
}

// A batch filled through claimAhead() and published at once arrives in order.
TEST(SpscRingTest, BatchClaimPublishesInOrder) {
  SpscRing<int> ring(8, [] { return std::make_unique<int>(0); });
  ASSERT_NE(ring.tryClaim(), nullptr);
  ring.publish();
  ring.pop();
  ASSERT_EQ(ring.freeSlots(), 8u);
  for (size_t i = 0; i < 5; ++i) *ring.claimAhead(i) = static_cast<int>(i) + 10;
  ring.publish(5);
  EXPECT_EQ(ring.size(), 5u);
  EXPECT_EQ(ring.freeSlots(), 3u);
  for (int i = 0; i < 5; ++i) {
    int* slot = ring.front();
    ASSERT_NE(slot, nullptr);
    EXPECT_EQ(*slot, i + 10);
    ring.pop();
  }
  EXPECT_EQ(ring.front(), nullptr);
}

}  // namespace
}  // namespace vigil
