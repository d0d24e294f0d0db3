// Counters, gauges and histograms for /metrics. The control plane registers them once at start and
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

// A Prometheus histogram with fixed upper bounds, in the unit of its metric name (seconds
// for `_seconds`). observe() is lock-free and never allocates: one relaxed add on the
// bucket, the count and the sum. Readers may see the three a moment apart.
class Histogram {
 public:
  // `bounds` must be sorted ascending; a +Inf bucket is always added after them.
  explicit Histogram(std::vector<double> bounds);

  void observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Observations in bucket `i` alone (not cumulative); i == bounds().size() is +Inf.
  uint64_t bucketValue(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  alignas(64) std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
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

  // Returns the histogram for (name, labels), creating it with `bounds` on first use. A
  // later call with other bounds gets the existing histogram. `name` has no _bucket suffix.
  Histogram& histogram(std::string_view name, std::string_view help,
                       const std::vector<double>& bounds, const Labels& labels = {});

  // Registers a gauge whose value is computed when /metrics is read (queue depth, RSS).
  void gaugeFunction(std::string_view name, std::string_view help, const Labels& labels,
                     std::function<int64_t()> fn);

  // Sum of all series of `name` whose labels include every pair in `match`. For a
  // histogram, `name` is its `_count` series (or `_sum`, rounded down).
  uint64_t sum(std::string_view name, const Labels& match = {}) const;

  // Prometheus text exposition format 0.0.4.
  std::string renderPrometheus() const;

 private:
  struct Family {
    std::string help;
    std::string type;  // "counter", "gauge" or "histogram"
    std::vector<std::pair<std::string, Counter*>> counters;  // rendered labels -> counter
    std::vector<std::pair<std::string, Gauge*>> gauges;
    std::vector<std::pair<std::string, std::function<int64_t()>>> functions;
    std::vector<Labels> counter_labels;
    std::vector<std::pair<Labels, Histogram*>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, std::string_view type);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  std::deque<Counter> counter_storage_;
  std::deque<Gauge> gauge_storage_;
  std::deque<Histogram> histogram_storage_;
};

}  // namespace vigil
