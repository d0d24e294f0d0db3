// The state of one correlation rule in one shard. It has a fixed number of group slots,
// a slab of per-type window state for each slot, a pool of evidence shared by the slots,
// an open-addressing index from group key to slot, and a least-recently-updated list for
// eviction.
// Everything is allocated in the constructor; add() allocates only when it raises an
// alert, or when a group key is longer than any key its slot held before.
//
// Window state per group, by type (one word is 8 bytes):
// - event_count: a ring of min_count event times (min_count words).
// - value_count: up to min_count (value hash, last seen) pairs (2 * min_count words).
//   Distinct values are counted exactly up to min_count, which is all a gt/gte condition
//   needs, because the window fires and restarts when it gets there.
// - temporal: the newest time each referenced rule matched (one word per rule).
// - temporal_ordered: per step, the start and end time of the best chain that has
//   completed the steps up to it (two words per rule).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

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

// The part of one event that a window uses: its event time, the referenced rule that
// matched it (an index into CorrelationRule::detections), and for value_count the hash
// of its value tuple.
struct WindowInput {
  int64_t event_ns = 0;
  uint32_t position = 0;
  uint64_t value_hash = 0;
};

class WindowTable {
 public:
  // `max_groups` slots; `evidence_events` entries in the shared evidence pool, each with
  // up to `evidence_bytes` of raw text.
  WindowTable(const CorrelationRule& rule, size_t max_groups, size_t evidence_events,
              size_t evidence_bytes, WindowCounters counters);

  // Adds one event to the group `key`. Returns true and fills the window part of `alert`
  // (group, first/last time, count, evidence, hits) when the group's condition holds;
  // the group's window then restarts empty.
  bool add(std::string_view key, const WindowInput& input, const Event& event, Alert& alert);

  size_t groupCount() const { return group_count_; }

  // Bytes held per group slot: the slot, its key reserve, its window state and its share
  // of the index (evidence excluded; see evidencePoolBytes()).
  size_t bytesPerGroup() const;
  // Bytes of the shared evidence pool.
  size_t evidencePoolBytes() const;

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kHitBytes = 256;  // "list:indicator@field" lines per event
  static constexpr size_t kKeyReserveBytes = 64;

  struct Group {
    std::string key;
    uint64_t first_seq = 0;  // sequence number of the oldest event of the current window
    uint64_t next_seq = 0;   // sequence number the next event of this group gets
    int64_t newest_ns = 0;   // newest event time seen by the current window
    uint32_t count = 0;      // value_count: values held; temporal types: rules recorded
    uint32_t key_hash = 0;   // low 32 bits of std::hash of the key
    uint32_t generation = 0;
    uint32_t newest_evidence = kNone;  // pool entry of the group's latest event
    uint32_t older = kNone;            // least-recently-updated list
    uint32_t newer = kNone;
  };

  // One pool entry: the raw text and hit lines of one event, and which group event it is.
  struct Evidence {
    uint32_t slot = kNone;
    uint32_t generation = 0;
    uint64_t seq = 0;
    uint32_t previous = kNone;  // the same group's evidence before this one
    uint32_t raw_length = 0;
    uint32_t hit_length = 0;
  };

  uint32_t findOrCreate(std::string_view key);
  uint32_t findSlot(std::string_view key, uint32_t hash) const;
  void insertSlot(uint32_t slot);
  void eraseSlot(uint32_t slot);
  void unlink(uint32_t slot);
  void linkNewest(uint32_t slot);
  void storeEvidence(uint32_t slot, const Event& event);
  void restart(uint32_t slot);
  bool windowActive(const Group& group) const;

  bool addEventCount(uint32_t slot, int64_t event_ns, Alert& alert);
  bool addValueCount(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addTemporal(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addTemporalOrdered(uint32_t slot, const WindowInput& input, Alert& alert);

  void fillAlert(uint32_t slot, Alert& alert) const;
  int64_t* state(uint32_t slot) { return slab_.data() + static_cast<size_t>(slot) * state_words_; }

  const CorrelationRule& rule_;
  size_t state_words_;  // int64 words of window state per group (see the file comment)
  size_t evidence_bytes_;
  WindowCounters counters_;

  std::vector<Group> groups_;
  std::vector<int64_t> slab_;
  std::vector<Evidence> evidence_;
  std::vector<char> evidence_text_;  // [entry] raw text, then hit lines
  uint32_t next_evidence_ = 0;
  uint32_t generations_ = 0;
  std::vector<uint32_t> free_;
  // Linear probing over a power-of-two table of slot + 1 (0 = empty), at most half full.
  // Erasing shifts the following entries back, so the table never holds tombstones.
  std::vector<uint32_t> index_;
  size_t index_mask_ = 0;
  size_t group_count_ = 0;
  uint32_t oldest_ = kNone;
  uint32_t newest_ = kNone;
};

}  // namespace vigil::correlate::internal
