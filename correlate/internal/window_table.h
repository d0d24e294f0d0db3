// The state of one correlation rule in one shard. It has a fixed number of 64-byte group
// slots, a slab of per-type window state for each slot, the group keys in an arena of
// blocks sized to each key, a pool of evidence shared by the slots, an open-addressing
// index from group key to slot, and least-recently-updated lists (one over the table and
// one per tenant) for eviction.
// Everything except the key arena is allocated in the constructor. add() allocates only
// when it raises an alert, when the key arena has no free block of the key's size class,
// or when a tenant appears for the first time.
//
// Window state per group, by type (one word is 8 bytes):
// - event_count: a ring of min_count event times (min_count words).
// - value_count: up to min_count (value hash, last seen) pairs (2 * min_count words).
//   Distinct values are counted exactly up to min_count, which is all a gt/gte condition
//   needs, because the window fires and restarts when it gets there. Until then the last
//   word contains the oldest event time since the window started.
// - temporal: the newest time each referenced rule matched (one word per rule).
// - temporal_ordered: per step, the start and end time of the best chain that has
//   completed the steps up to it (two words per rule).
// - absence: the start of the open window, the newest time of the first rule in it and
//   the newest time the second rule matched (three words). A group with an open window
//   sits in a timer heap ordered by deadline (start + timespan), which expire() pops
//   once the watermark passes the deadline.
// - value_sum, value_avg: up to kAggregateEntries entries of (newest event time, sum of
//   values, events), three words each. Each event gets its own entry while one is free.
//   When all are taken, the two oldest merge and the merged entry leaves the window with
//   its newer event, so the window may count older values for a little longer.
// - value_percentile: up to kPercentileSample (event time, value) pairs, oldest arrival
//   first; a full window drops its oldest value (counted) to take a new one.
// A rule whose condition has an upper bound or an exclusion (CorrelationRule::closes)
// keeps instead one window per group that closes on the watermark: its start t0, its
// oldest and newest event time (three words), then
// - event_count: nothing more (the sequence numbers count the events);
// - value_count: up to count_cap distinct value hashes (count_cap words);
// - value_sum, value_avg: the sum and the number of events (two words);
// - value_percentile: a ring of the newest kPercentileSample values.
// Such a group sits in the timer heap while its window is open, as absence groups do.
// A rule with `suppress` adds one word: the last event time of the group's last
// delivered alert.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/event.h"
#include "common/metrics.h"
#include "correlate/alert.h"
#include "correlate/internal/checkpoint_codec.h"
#include "correlate/internal/key_arena.h"
#include "correlate/rules.h"

namespace vigil::correlate::internal {

struct WindowCounters {
  Counter* evictions = nullptr;
  Counter* late_events = nullptr;
  Counter* suppressed = nullptr;        // alerts held back by the rule's `suppress`
  Counter* tenant_evictions = nullptr;  // groups dropped for the per-tenant limit
  Counter* sample_dropped = nullptr;    // value_percentile values dropped from a full sample
  Gauge* keys = nullptr;
  Gauge* state_bytes = nullptr;  // follows the key arena's growth
  // Taken back in the destructor only; the engine counts timers as they change.
  Gauge* pending_timers = nullptr;
};

// The part of one event that a window uses: its event time, the referenced rule that
// matched it (an index into CorrelationRule::detections), and for value_count the hash
// of its value tuple.
struct WindowInput {
  int64_t event_ns = 0;
  uint32_t position = 0;
  uint64_t value_hash = 0;
  // The shard's watermark: its newest event time minus the allowed lateness. Only
  // absence windows use it; an event older than it is late (counted and dropped).
  int64_t watermark_ns = INT64_MIN;
  double number = 0;  // value_sum and value_avg: the event's value
};

// Entries of a value_sum or value_avg window (see the file comment).
inline constexpr size_t kAggregateEntries = 8;

class WindowTable {
 public:
  // `max_groups` slots, of which one tenant may hold `max_tenant_groups` (0: no limit);
  // `evidence_events` entries in the shared evidence pool, each with up to
  // `evidence_bytes` of raw text.
  // The table keeps `rule` alive, so it may outlive the rule set it was built for when a
  // rule reload hands it to the next engine. Adds its memory to counters.state_bytes; the
  // destructor takes back that memory, its groups (counters.keys) and its pending timers.
  WindowTable(std::shared_ptr<const CorrelationRule> rule, size_t max_groups,
              size_t max_tenant_groups, size_t evidence_events, size_t evidence_bytes,
              WindowCounters counters);
  ~WindowTable();
  WindowTable(const WindowTable&) = delete;
  WindowTable& operator=(const WindowTable&) = delete;

  // Adds one event to the group `key`. Returns true and fills the window part of `alert`
  // (group, first/last time, count, evidence, hits) when the group's condition holds;
  // the group's window then restarts empty.
  bool add(std::string_view key, const WindowInput& input, const Event& event, Alert& alert);

  // Closes every absence window, and every window of a rule that closes, whose deadline
  // (start + timespan) is older than `watermark_ns`. Appends one alert per closed absence
  // window and per closed window whose condition holds to `out`, with the window part
  // filled as add() does. Returns the number appended, which the caller completes with
  // the rule part. Returns 0 for sliding windows.
  size_t expire(int64_t watermark_ns, std::vector<Alert>& out);
  // Windows waiting for their deadline (absence, and rules whose windows close).
  size_t pendingTimers() const { return heap_.size(); }

  size_t groupCount() const { return group_count_; }

  // Appends every group, least recently updated first, as a count and then one record
  // per group (key, sequence numbers, newest time, count, state words, and the evidence
  // of its window that the pool still holds). Does not change the table.
  void save(ByteWriter& out) const;
  // Reads one group record written by save(). Returns false when the record is cut short.
  static bool readGroup(ByteReader& in, SavedGroup& group);
  // Returns true when `group` is a state this rule's windows can hold.
  bool acceptsGroup(const SavedGroup& group) const;
  // Adds `group` as the newest group (evicting as add() does when the table is full) and
  // starts its absence timer if it has an open window. `group` must pass acceptsGroup().
  void restoreGroup(const SavedGroup& group);

  // Bytes held per group slot: the slot, its window state, its timer heap entry and its
  // share of the index. Keys (keyBytes()) and evidence (evidencePoolBytes()) are extra.
  size_t bytesPerGroup() const;
  // Bytes of the key blocks in use, and of the whole key arena.
  size_t keyBytes() const { return keys_.usedBytes(); }
  size_t keyArenaBytes() const { return keys_.capacityBytes(); }
  // Bytes of the shared evidence pool.
  size_t evidencePoolBytes() const;
  // Everything the table has allocated: slots, state, index, timers, key arena, evidence.
  size_t totalBytes() const;

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kHitBytes = 256;  // "list:indicator@field" lines per event
  static constexpr size_t kMaxTenants = UINT16_MAX;

  struct Group {
    uint64_t first_seq = 0;  // sequence number of the oldest event of the current window
    uint64_t next_seq = 0;   // sequence number the next event of this group gets
    int64_t newest_ns = 0;   // newest event time seen by the current window
    uint32_t key_offset = 0;  // the key's block in keys_
    uint16_t key_length = 0;
    uint16_t tenant = 0;     // index into tenants_
    uint32_t key_hash = 0;   // low 32 bits of std::hash of the key
    uint32_t count = 0;      // value_count: values held; temporal types: rules recorded
    uint32_t generation = 0;
    uint32_t newest_evidence = kNone;  // pool entry of the group's latest event
    uint32_t older = kNone;  // least-recently-updated list; the free list when unused
    uint32_t newer = kNone;
    uint32_t tenant_older = kNone;  // the same list over the groups of one tenant
    uint32_t tenant_newer = kNone;
  };
  static_assert(sizeof(Group) == 64, "a group slot fills one cache line");

  // The groups of one tenant, oldest first, for the per-tenant limit.
  struct Tenant {
    uint32_t groups = 0;
    uint32_t oldest = kNone;
    uint32_t newest = kNone;
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
  // Writes the next never-used slot (below max_groups_) and puts it on the free list.
  void newSlot();
  // Bytes of one written slot: the group, its window state and its timer entries.
  size_t slotBytes() const;
  uint32_t findSlot(std::string_view key, uint32_t hash) const;
  std::string_view keyOf(const Group& group) const {
    return keys_.view(group.key_offset, group.key_length);
  }
  uint16_t tenantOf(std::string_view key);
  void evict(uint32_t slot);
  size_t home(uint32_t hash) const {
    return static_cast<size_t>((static_cast<uint64_t>(hash) * index_.size()) >> 32);
  }
  size_t nextIndex(size_t i) const { return i + 1 == index_.size() ? 0 : i + 1; }
  // The low bits of the hash that fit above the slot number in an index entry. home()
  // uses the high bits, so the tag adds information.
  uint32_t tagOf(uint32_t hash) const {
    return slot_bits_ >= 32 ? 0 : hash & ((1u << (32 - slot_bits_)) - 1);
  }
  void insertSlot(uint32_t slot);
  void eraseSlot(uint32_t slot);
  void unlink(uint32_t slot);
  void linkNewest(uint32_t slot);
  void storeEvidence(uint32_t slot, const Event& event);
  // Takes the next pool entry for event `seq` of the group in `slot`, copies `raw` (cut to
  // evidence_bytes_) and returns the entry's text; the caller writes the hit lines.
  char* claimEvidence(uint32_t slot, uint64_t seq, std::string_view raw);
  // The pool entries of the group's current window, newest first (at most kMaxEvidence).
  size_t groupEvidence(uint32_t slot, std::array<uint32_t, Alert::kMaxEvidence>& out) const;
  void restart(uint32_t slot);
  bool windowActive(const Group& group) const;

  bool addEventCount(uint32_t slot, int64_t event_ns, Alert& alert);
  bool addValueCount(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addTemporal(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addTemporalOrdered(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addAbsence(uint32_t slot, const WindowInput& input);
  bool addValueAggregate(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addPercentile(uint32_t slot, const WindowInput& input, Alert& alert);
  bool addClosing(uint32_t slot, const WindowInput& input, const Event& event, Alert& alert);
  bool closeWindow(uint32_t slot, Alert& alert);
  // Returns true when the alert may be delivered, and records it; false (and counts it)
  // when the group alerted within `suppress` of this alert's last event time.
  bool admit(uint32_t slot, const Alert& alert);

  // Timer heap of absence windows and windows that close: a binary min-heap of slots by deadline,
  // with each slot's position in heap_pos_ (kNone when it has no timer).
  int64_t deadline(uint32_t slot) { return state(slot)[0] + rule_.timespan_ns; }
  void heapPush(uint32_t slot);
  void heapRemove(uint32_t slot);
  void heapSiftUp(size_t i);
  void heapSiftDown(size_t i);
  void heapSwap(size_t a, size_t b);

  void fillAlert(uint32_t slot, Alert& alert) const;
  int64_t* state(uint32_t slot) { return slab_.data() + static_cast<size_t>(slot) * state_words_; }

  std::shared_ptr<const CorrelationRule> rule_holder_;
  const CorrelationRule& rule_;  // *rule_holder_
  size_t state_words_;  // int64 words of window state per group (see the file comment)
  size_t window_words_;  // the part of state_words_ the type uses; the suppress word follows
  size_t evidence_bytes_;
  WindowCounters counters_;

  std::vector<Group> groups_;  // reserved to max_groups_, written as groups arrive
  std::vector<int64_t> slab_;  // state_words_ per written slot, reserved likewise
  std::vector<Evidence> evidence_;
  std::vector<char> evidence_text_;  // [entry] raw text, then hit lines
  uint32_t next_evidence_ = 0;
  uint32_t generations_ = 0;
  uint32_t free_head_ = kNone;  // unused slots, linked through Group::older
  // Linear probing over a table of entries (slot + 1 and a hash tag, 0 = empty), at most
  // 70 % full, whose size need not be a power of two: a hash's home is
  // (hash * size) >> 32. Erasing shifts the following entries back, so the table never
  // holds tombstones.
  std::vector<uint32_t> index_;
  uint32_t slot_bits_ = 0;
  uint32_t slot_mask_ = 0;
  size_t group_count_ = 0;
  size_t max_groups_ = 0;
  size_t max_tenant_groups_ = 0;
  KeyArena keys_;
  std::vector<Tenant> tenants_;
  absl::flat_hash_map<std::string, uint16_t> tenant_ids_;
  uint32_t oldest_ = kNone;
  uint32_t newest_ = kNone;
  bool timers_ = false;             // absence and closing windows have deadlines
  std::vector<uint32_t> heap_;      // timers only; reserved to max_groups
  std::vector<uint32_t> heap_pos_;  // timers only; per written slot
};

}  // namespace vigil::correlate::internal
