#include "common/consumer_wake.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace vigil {
namespace {

// The waiter would sleep for a minute, so notify() from another thread must end it first.
TEST(ConsumerWakeTest, NotifyEndsWait) {
  ConsumerWake wake;
  std::atomic<bool> work{false};
  std::atomic<bool> returned{false};
  std::thread consumer([&] {
    while (!work.load()) wake.waitFor(std::chrono::minutes(1), [&] { return work.load(); });
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  work = true;
  wake.notify();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!returned.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(returned.load());
  if (!returned.load()) {
    // Never hang the test binary: a second notify or the minute ends the wait.
    wake.notify();
  }
  consumer.join();
}

// Work that is ready before the wait starts is seen without sleeping or a notify().
TEST(ConsumerWakeTest, ReadyWorkSkipsSleep) {
  ConsumerWake wake;
  const auto start = std::chrono::steady_clock::now();
  wake.waitFor(std::chrono::minutes(1), [] { return true; });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(wake.wakeups(), 0u);
}

// notify() with no waiter does nothing, so it costs the producer one load.
TEST(ConsumerWakeTest, NotifyWithoutWaiterCountsNoWakeup) {
  ConsumerWake wake;
  wake.notify();
  EXPECT_EQ(wake.wakeups(), 0u);
}

}  // namespace
}  // namespace vigil
