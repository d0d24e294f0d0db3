// Indicator snapshots that change while workers match: SnapshotStore publishes a new
// snapshot with one atomic pointer swap and frees the old one only after every reader
// slot has passed a quiescent point (an epoch scheme; readers never wait).
//
// A snapshot has a base part (the full build of every feed) and an optional delta part
// (a small set of analyst indicators served until the next full build). Each part owns
// one matcher Scratch per reader slot and one sighting counter per indicator.
//
// Reader slots: a reader slot is used by one thread at a time between acquire() and
// release() (the pipeline uses one slot per batch, because a batch is analyzed by one
// thread and batches are reused in order). Hits added by match() point into the
// snapshot's strings, so a slot must stay acquired until its events are done.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"

namespace vigil::intel {

// Hit count and last hit time of each indicator of one snapshot part. Workers update it
// with relaxed atomics and no locks; readers on the control plane may see a count and a
// time that are a few hits apart.
class Sightings {
 public:
  explicit Sightings(size_t indicators);

  // Counts one hit on indicator `id` at wall time `now_ns` (UTC nanoseconds). Never
  // allocates. Thread-safe.
  void record(uint32_t id, int64_t now_ns) {
    Slot& slot = slots_[id];
    slot.count.fetch_add(1, std::memory_order_relaxed);
    if (slot.last_ns.load(std::memory_order_relaxed) < now_ns) {
      slot.last_ns.store(now_ns, std::memory_order_relaxed);
    }
  }
  // Adds `count` hits with last hit time `last_ns` (merging an older part's figures).
  void add(uint32_t id, uint64_t count, int64_t last_ns);

  uint64_t count(uint32_t id) const { return slots_[id].count.load(std::memory_order_relaxed); }
  // Wall time of the latest hit in UTC nanoseconds, 0 when there was none.
  int64_t lastHitNs(uint32_t id) const {
    return slots_[id].last_ns.load(std::memory_order_relaxed);
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    std::atomic<uint64_t> count{0};
    std::atomic<int64_t> last_ns{0};
  };
  std::unique_ptr<Slot[]> slots_;
  size_t size_ = 0;
};

// One part of a snapshot: an indicator set with its per-slot scratch and sightings.
struct SnapshotPart {
  SnapshotPart(std::shared_ptr<const IndicatorSet> set, size_t readers);

  std::shared_ptr<const IndicatorSet> set;
  std::vector<std::unique_ptr<Scratch>> scratches;  // by reader slot
  Sightings sightings;
};

// One published state: base plus optional delta. Immutable except for the sighting
// counters. Indicator ids run over the base first, then the delta (delta id + base size).
class Snapshot {
 public:
  Snapshot(std::shared_ptr<SnapshotPart> base, std::shared_ptr<SnapshotPart> delta,
           uint64_t generation);

  // Matches `event` against both parts with the scratch of `reader`, records a sighting
  // per hit at `now_ns` (UTC nanoseconds) and returns the number of hits added. Hit ids
  // are snapshot-wide. Never allocates. Only the thread holding `reader` may call it.
  size_t match(size_t reader, Event& event, int64_t now_ns) const;

  // Matches each of `events` like match() and returns the number of hits added over all
  // of them. Each event gets the hits, in the order, and the sightings that match() gives
  // it. The events go through matchEvents(), which overlaps the cache misses of
  // consecutive events, or with a delta part through matchEventsWithDelta(), which walks
  // each event once for both parts. The events must be distinct objects. Never
  // allocates. Only the thread holding `reader` may call it.
  size_t matchBatch(size_t reader, std::span<Event* const> events, int64_t now_ns) const;

  // Number of indicators over both parts, and one of them by snapshot-wide id (see
  // IndicatorSet::indicator(), which allocates).
  size_t size() const;
  Indicator indicator(uint32_t id) const;
  uint64_t hitCount(uint32_t id) const;
  int64_t lastHitNs(uint32_t id) const;

  // Scan errors of every scratch of both parts (see Scratch::scanErrors()).
  uint64_t scanErrors() const;

  // Number of the publish that created it, counting from 1.
  uint64_t generation() const { return generation_; }
  const IndicatorSet& base() const { return *base_->set; }
  const IndicatorSet* delta() const { return delta_ ? delta_->set.get() : nullptr; }

 private:
  friend class SnapshotStore;

  // Events that matchBatch() passes to one matchEvents() or matchEventsWithDelta() call,
  // and so the size of its stack arrays of hit counts.
  static constexpr size_t kMatchChunkEvents = 256;

  size_t matchChunk(size_t reader, std::span<Event* const> events, int64_t now_ns) const;

  std::shared_ptr<SnapshotPart> base_;
  std::shared_ptr<SnapshotPart> delta_;  // null when there is no delta
  uint64_t generation_ = 0;
};

// Figures about the store's publishes and reclamation.
struct SnapshotStoreStats {
  uint64_t published = 0;  // snapshots published (full and delta)
  uint64_t reclaimed = 0;  // retired snapshots freed
  size_t pending = 0;      // retired snapshots that a reader slot may still use
};

class SnapshotStore {
 public:
  // `readers` reader slots (at least 1). Nothing is published yet: acquire() returns
  // nullptr until the first publish().
  explicit SnapshotStore(size_t readers);
  ~SnapshotStore();
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  size_t readers() const { return slots_.size(); }

  // --- reader side: never blocks, never allocates.

  // Enters reader slot `reader` and returns the current snapshot (nullptr when none was
  // published). The snapshot stays valid until release(reader). One thread at a time
  // may hold a slot; acquiring a held slot again moves it to the current snapshot.
  const Snapshot* acquire(size_t reader);
  // Leaves reader slot `reader`: its quiescent point.
  void release(size_t reader);

  // --- control plane: thread-safe, serialized by an internal mutex. These allocate
  // (a Scratch per reader slot) but never wait for readers.

  // Publishes a full build and drops the delta. Returns the new generation.
  uint64_t publish(std::shared_ptr<const IndicatorSet> base);
  // Publishes `delta` next to the current base (replacing the previous delta). Returns
  // the new generation, or nullopt when no base was published yet.
  std::optional<uint64_t> publishDelta(std::shared_ptr<const IndicatorSet> delta);

  // Frees each retired snapshot that no reader slot can still use. Sightings of a part
  // that leaves with it are added to the indicators of the current snapshot with the
  // same type, tenant and text. Returns the number freed.
  size_t reclaim();

  // The current snapshot for control-plane readers (exports, dumps); nullptr when none.
  std::shared_ptr<const Snapshot> current() const;
  SnapshotStoreStats stats() const;

 private:
  // One reader slot's epoch on its own cache line: 0 when offline.
  struct alignas(64) ReaderSlot {
    std::atomic<uint64_t> epoch{0};
  };
  struct Retired {
    std::shared_ptr<Snapshot> snapshot;
    uint64_t epoch = 0;  // safe to free once every online slot has reached it
  };

  uint64_t publishLocked(std::shared_ptr<SnapshotPart> base, std::shared_ptr<SnapshotPart> delta);
  bool inUseLocked(const SnapshotPart* part) const;
  void mergeSightingsLocked(const SnapshotPart& from);

  std::vector<ReaderSlot> slots_;
  std::atomic<uint64_t> epoch_{1};
  std::atomic<const Snapshot*> published_{nullptr};

  mutable std::mutex mutex_;  // control plane only
  std::shared_ptr<Snapshot> current_;
  std::vector<Retired> retired_;
  uint64_t generation_ = 0;
  uint64_t reclaimed_ = 0;
};

}  // namespace vigil::intel
