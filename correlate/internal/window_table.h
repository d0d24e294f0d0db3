// The event_count state of one correlation rule in one shard: a fixed number of group
// slots, each with a ring of event times and a few evidence buffers, an index from group
// key to slot, and a least-recently-updated list for eviction. Everything is allocated
// in the constructor; add() allocates only when it raises an alert, or when a group key
// is longer than any key its slot held before.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/event.h"
#include "common/metrics.h"
#include "correlate/alert.h"
#include "correlate/rules.h"

namespace vigil::correlate::internal {

struct WindowCounters {
  Counter* evictions = nullptr;
  Counter* late_events = nullptr;
  Gauge* keys = nullptr;
};

class WindowTable {
 public:
  WindowTable(const CorrelationRule& rule, size_t max_groups, size_t evidence_bytes,
              WindowCounters counters);

  // Adds one event (at `event_ns`, event time) to the group `key`. Returns true and fills
  // the window part of `alert` (group, first/last time, count, evidence, hits) when the
  // group reaches the rule's count; the group's window then restarts empty.
  bool add(std::string_view key, int64_t event_ns, const Event& event, Alert& alert);

  size_t groupCount() const { return index_.size(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kHitBytes = 256;  // "list:indicator@field" lines per event

  struct Group {
    std::string key;
    uint64_t head_seq = 0;  // sequence number of the oldest event in the window
    uint32_t count = 0;
    int64_t newest_ns = 0;
    uint32_t older = kNone;  // least-recently-updated list
    uint32_t newer = kNone;
  };

  uint32_t findOrCreate(std::string_view key);
  void unlink(uint32_t slot);
  void linkNewest(uint32_t slot);
  void storeEvidence(uint32_t slot, uint64_t seq, const Event& event);
  void fillAlert(uint32_t slot, Alert& alert) const;
  int64_t& timeAt(uint32_t slot, uint64_t seq) {
    return times_[static_cast<size_t>(slot) * ring_size_ + seq % ring_size_];
  }
  int64_t timeAt(uint32_t slot, uint64_t seq) const {
    return times_[static_cast<size_t>(slot) * ring_size_ + seq % ring_size_];
  }

  const CorrelationRule& rule_;
  size_t ring_size_;      // the rule's minimum count: the window fires when it is full
  size_t evidence_size_;  // evidence entries per group: min(ring_size_, kMaxEvidence)
  size_t evidence_bytes_;
  WindowCounters counters_;

  std::vector<Group> groups_;
  std::vector<int64_t> times_;
  std::vector<char> evidence_;             // [group][entry] raw text, then hit lines
  std::vector<uint32_t> evidence_length_;  // [group][entry] raw length, hit length
  std::vector<uint32_t> free_;
  absl::flat_hash_map<std::string_view, uint32_t, std::hash<std::string_view>,
                      std::equal_to<std::string_view>>
      index_;
  uint32_t oldest_ = kNone;
  uint32_t newest_ = kNone;
};

}  // namespace vigil::correlate::internal
