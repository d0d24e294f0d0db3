// QuotaBucket, the per-tenant token bucket that the pipeline's analyze stage checks.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "correlate/pipeline.h"

namespace vigil::correlate {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kStart = 1000 * kSecond;  // an arbitrary monotonic reading

// A full bucket admits exactly `burst` events at one instant, then rejects.
TEST(QuotaBucket, BurstAtOneInstant) {
  QuotaBucket bucket(10, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.tryTake(kStart)) << "event " << i;
  EXPECT_FALSE(bucket.tryTake(kStart));
  EXPECT_FALSE(bucket.tryTake(kStart));
}

// One token comes back per 1 / rate seconds, and not before.
TEST(QuotaBucket, RefillsAtRate) {
  QuotaBucket bucket(10, 1);
  EXPECT_TRUE(bucket.tryTake(kStart));
  EXPECT_FALSE(bucket.tryTake(kStart + kSecond / 10 - 1));
  EXPECT_TRUE(bucket.tryTake(kStart + kSecond / 10));
  EXPECT_FALSE(bucket.tryTake(kStart + kSecond / 10));
}

// A long idle period refills the bucket only up to `burst`.
TEST(QuotaBucket, IdleRefillStopsAtBurst) {
  QuotaBucket bucket(100, 3);
  EXPECT_TRUE(bucket.tryTake(kStart));
  const int64_t later = kStart + 3600 * kSecond;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.tryTake(later)) << "event " << i;
  EXPECT_FALSE(bucket.tryTake(later));
}

// Over a steady second, a rate of 1000/s with burst 1 admits 1000 of 10000 offered events.
TEST(QuotaBucket, SteadyRate) {
  QuotaBucket bucket(1000, 1);
  int admitted = 0;
  for (int i = 0; i < 10000; ++i) {
    if (bucket.tryTake(kStart + i * (kSecond / 10000))) ++admitted;
  }
  EXPECT_EQ(admitted, 1000);
}

// A fractional rate (one event per 1000 s) admits the burst and nothing more for minutes.
TEST(QuotaBucket, FractionalRate) {
  QuotaBucket bucket(0.001, 2);
  EXPECT_TRUE(bucket.tryTake(kStart));
  EXPECT_TRUE(bucket.tryTake(kStart));
  EXPECT_FALSE(bucket.tryTake(kStart + 600 * kSecond));
  EXPECT_TRUE(bucket.tryTake(kStart + 1000 * kSecond));
}

// Threads racing on one bucket admit exactly `burst` events in total, none twice.
TEST(QuotaBucket, ConcurrentTakersShareBurst) {
  constexpr int kThreads = 4;
  constexpr int kTriesPerThread = 50000;
  QuotaBucket bucket(0.001, 1000);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kTriesPerThread; ++i) {
        if (bucket.tryTake(kStart)) admitted.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 1000);
}

// Extreme rates and bursts do not overflow: the largest burst still admits, a zero burst
// counts as 1.
TEST(QuotaBucket, ExtremeValues) {
  QuotaBucket huge(0.001, 1e8);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(huge.tryTake(kStart)) << "event " << i;
  QuotaBucket fast(1e8, 1);
  EXPECT_TRUE(fast.tryTake(kStart));
  EXPECT_FALSE(fast.tryTake(kStart));
  EXPECT_TRUE(fast.tryTake(kStart + 10));
  QuotaBucket zero(1, 0);
  EXPECT_TRUE(zero.tryTake(kStart));
  EXPECT_FALSE(zero.tryTake(kStart));
}

}  // namespace
}  // namespace vigil::correlate
