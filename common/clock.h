// Time sources. Code that needs "now" takes a Clock& so tests can drive time by hand.
#pragma once

#include <atomic>
#include <cstdint>

namespace vigil {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, UTC nanoseconds since the epoch. Thread-safe.
  virtual int64_t nowNs() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t nowNs() const override;
  static RealClock& instance();
};

// A clock that moves only when a test calls setNs() or advanceNs().
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(int64_t start_ns = 0) : now_ns_(start_ns) {}
  int64_t nowNs() const override { return now_ns_.load(std::memory_order_relaxed); }
  void setNs(int64_t ns) { now_ns_.store(ns, std::memory_order_relaxed); }
  void advanceNs(int64_t ns) { now_ns_.fetch_add(ns, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_ns_;
};

// Monotonic nanoseconds for measuring durations; unrelated to wall time.
int64_t monotonicNs();

}  // namespace vigil
