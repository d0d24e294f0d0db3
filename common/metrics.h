// Counters and gauges for /metrics. The control plane registers them once at start and
// hands references to the data plane, which only ever does relaxed atomic adds: no locks
// and no allocation per event. Each counter sits on its own cache line so two workers
// bumping different counters never share one.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

class alignas(64) Counter {
 public:
  void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class alignas(64) Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Label pairs, e.g. {{"reason", "queue_full"}, {"source", "udp0"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Owns every counter and gauge of one process. Thread-safe: registration and rendering
// take a mutex (control plane only); the returned references stay valid for the life of
// the registry.
class MetricsRegistry {
 public:
  // Returns the counter for (name, labels), creating it on first use. `name` is a
  // Prometheus metric name ("vigil_events_received_total"); `help` is its HELP text.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});

  // Registers a gauge whose value is computed when /metrics is read (queue depth, RSS).
  void gaugeFunction(std::string_view name, std::string_view help, const Labels& labels,
                     std::function<int64_t()> fn);

  // Sum of all series of `name` whose labels include every pair in `match`.
  uint64_t sum(std::string_view name, const Labels& match = {}) const;

  // Prometheus text exposition format 0.0.4.
  std::string renderPrometheus() const;

 private:
  struct Family {
    std::string help;
    std::string type;  // "counter" or "gauge"
    std::vector<std::pair<std::string, Counter*>> counters;  // rendered labels -> counter
    std::vector<std::pair<std::string, Gauge*>> gauges;
    std::vector<std::pair<std::string, std::function<int64_t()>>> functions;
    std::vector<Labels> counter_labels;
  };
  Family& family(std::string_view name, std::string_view help, std::string_view type);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  std::deque<Counter> counter_storage_;
  std::deque<Gauge> gauge_storage_;
};

}  // namespace vigil
