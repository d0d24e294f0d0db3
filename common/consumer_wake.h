// Wakes a consumer that sleeps until one of several single-producer rings has work.
// Producers call notify() after each publish. It costs one load while the consumer is
// busy, and takes a lock only when the consumer sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace vigil {

class ConsumerWake {
 public:
  // Producer: wakes the consumer when it sleeps in waitFor().
  //
  // NOTE: the load below is not ordered after the producer's publish (no fence, to keep
  // the publish path free of one). On x86 the publish can still sit in the store buffer
  // while this load reads an old `false`, and the consumer may check its rings in that
  // window of a few nanoseconds and sleep. It then wakes at its timeout, so such a miss
  // delays the work by at most one waitFor() timeout and loses nothing.
  void notify() {
    if (waiting_.load(std::memory_order_relaxed)) wakeSlow();
  }

  // Consumer: sleeps until notify() is called, `timeout` passes, or `ready()` returns
  // true. `ready` is checked after the consumer has announced that it waits, so work
  // published before that announcement is found without sleeping.
  template <typename Ready>
  void waitFor(std::chrono::microseconds timeout, Ready ready) {
    waiting_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!ready()) {
      std::unique_lock<std::mutex> lock(mu_);
      woken_.wait_for(lock, timeout, [this] { return notified_.load(std::memory_order_acquire); });
    }
    waiting_.store(false, std::memory_order_relaxed);
    notified_.store(false, std::memory_order_relaxed);
  }

  // Number of notify() calls that woke a sleeping consumer.
  uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  // Only the first producer to see the sleeping consumer takes the lock. The others
  // return at the flag. Taking and releasing mu_ after setting the flag makes sure the
  // consumer either saw the flag or already waits on woken_ when notify_one() runs.
  void wakeSlow() {
    if (notified_.load(std::memory_order_relaxed) ||
        notified_.exchange(true, std::memory_order_acq_rel)) {
      return;
    }
    { std::lock_guard<std::mutex> lock(mu_); }
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    woken_.notify_one();
  }

  alignas(64) std::atomic<bool> waiting_{false};
  std::atomic<bool> notified_{false};
  std::mutex mu_;
  std::condition_variable woken_;
  std::atomic<uint64_t> wakeups_{0};
};

}  // namespace vigil
