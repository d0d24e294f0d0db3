#include "intel/snapshot.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace vigil::intel {
namespace {

// Key of an indicator across snapshots: one byte of type, the owning tenant, a 0x1f
// byte (never in a tenant name), then the normalized text. Each tenant's copy keeps its
// own sightings.
std::string indicatorKey(const IndicatorSet& set, uint32_t id) {
  std::string key(1, static_cast<char>(set.type(id)));
  key += set.tenant(id);
  key += '\x1f';
  key += set.text(id);
  return key;
}

struct MergedSighting {
  uint64_t count = 0;
  int64_t last_ns = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Sightings

Sightings::Sightings(size_t indicators)
    : slots_(std::make_unique<Slot[]>(indicators)), size_(indicators) {}

void Sightings::add(uint32_t id, uint64_t count, int64_t last_ns) {
  Slot& slot = slots_[id];
  slot.count.fetch_add(count, std::memory_order_relaxed);
  int64_t seen = slot.last_ns.load(std::memory_order_relaxed);
  while (seen < last_ns &&
         !slot.last_ns.compare_exchange_weak(seen, last_ns, std::memory_order_relaxed)) {
  }
}

// ---------------------------------------------------------------------------------------
// SnapshotPart and Snapshot

SnapshotPart::SnapshotPart(std::shared_ptr<const IndicatorSet> indicator_set, size_t readers)
    : set(std::move(indicator_set)), sightings(set->size()) {
  scratches.reserve(readers);
  for (size_t i = 0; i < readers; ++i) scratches.push_back(std::make_unique<Scratch>(*set));
}

Snapshot::Snapshot(std::shared_ptr<SnapshotPart> base, std::shared_ptr<SnapshotPart> delta,
                   uint64_t generation)
    : base_(std::move(base)), delta_(std::move(delta)), generation_(generation) {}

size_t Snapshot::match(size_t reader, Event& event, int64_t now_ns) const {
  const size_t first = event.hit_count;
  size_t added = matchEvent(*base_->set, *base_->scratches[reader], event);
  if (delta_ != nullptr) {
    const size_t delta_first = event.hit_count;
    added += matchEvent(*delta_->set, *delta_->scratches[reader], event);
    const auto offset = static_cast<uint32_t>(base_->set->size());
    for (size_t i = delta_first; i < event.hit_count; ++i) {
      delta_->sightings.record(event.hits[i].indicator_id, now_ns);
      event.hits[i].indicator_id += offset;
    }
    for (size_t i = first; i < delta_first; ++i) {
      base_->sightings.record(event.hits[i].indicator_id, now_ns);
    }
    return added;
  }
  for (size_t i = first; i < event.hit_count; ++i) {
    base_->sightings.record(event.hits[i].indicator_id, now_ns);
  }
  return added;
}

size_t Snapshot::matchBatch(size_t reader, std::span<Event* const> events,
                            int64_t now_ns) const {
  // With no feeds configured the daemon still publishes an empty snapshot. Walking each
  // message for host names and addresses that cannot match cost 8 % of vigild's CPU on W2.
  if (size() == 0) return 0;
  size_t added = 0;
  for (size_t start = 0; start < events.size(); start += kMatchChunkEvents) {
    const size_t count = std::min(kMatchChunkEvents, events.size() - start);
    added += matchChunk(reader, events.subspan(start, count), now_ns);
  }
  return added;
}

size_t Snapshot::matchChunk(size_t reader, std::span<Event* const> events,
                            int64_t now_ns) const {
  // first[i]: the hit count of events[i] before the base part added its hits.
  // delta_first[i]: the same before the delta part added its hits.
  std::array<size_t, kMatchChunkEvents> first;
  for (size_t i = 0; i < events.size(); ++i) first[i] = events[i]->hit_count;

  if (delta_ == nullptr) {
    const size_t added = matchEvents(*base_->set, *base_->scratches[reader], events);
    for (size_t i = 0; i < events.size(); ++i) {
      const Event& event = *events[i];
      for (size_t h = first[i]; h < event.hit_count; ++h) {
        base_->sightings.record(event.hits[h].indicator_id, now_ns);
      }
    }
    return added;
  }

  // One walk of each event probes both parts, and delta hits follow the base hits of the
  // same event, as in match().
  std::array<size_t, kMatchChunkEvents> delta_first;
  const size_t added =
      matchEventsWithDelta(*base_->set, *base_->scratches[reader], *delta_->set,
                           *delta_->scratches[reader], events, delta_first);
  const auto offset = static_cast<uint32_t>(base_->set->size());
  for (size_t i = 0; i < events.size(); ++i) {
    Event& event = *events[i];
    for (size_t h = first[i]; h < delta_first[i]; ++h) {
      base_->sightings.record(event.hits[h].indicator_id, now_ns);
    }
    for (size_t h = delta_first[i]; h < event.hit_count; ++h) {
      delta_->sightings.record(event.hits[h].indicator_id, now_ns);
      event.hits[h].indicator_id += offset;
    }
  }
  return added;
}

size_t Snapshot::size() const {
  return base_->set->size() + (delta_ != nullptr ? delta_->set->size() : 0);
}

Indicator Snapshot::indicator(uint32_t id) const {
  const size_t base_size = base_->set->size();
  if (id < base_size) return base_->set->indicator(id);
  return delta_->set->indicator(static_cast<uint32_t>(id - base_size));
}

uint64_t Snapshot::hitCount(uint32_t id) const {
  const size_t base_size = base_->set->size();
  if (id < base_size) return base_->sightings.count(id);
  return delta_->sightings.count(static_cast<uint32_t>(id - base_size));
}

int64_t Snapshot::lastHitNs(uint32_t id) const {
  const size_t base_size = base_->set->size();
  if (id < base_size) return base_->sightings.lastHitNs(id);
  return delta_->sightings.lastHitNs(static_cast<uint32_t>(id - base_size));
}

uint64_t Snapshot::scanErrors() const {
  uint64_t errors = 0;
  for (const auto& scratch : base_->scratches) errors += scratch->scanErrors();
  if (delta_ != nullptr) {
    for (const auto& scratch : delta_->scratches) errors += scratch->scanErrors();
  }
  return errors;
}

// ---------------------------------------------------------------------------------------
// SnapshotStore

SnapshotStore::SnapshotStore(size_t readers) : slots_(std::max<size_t>(readers, 1)) {}

SnapshotStore::~SnapshotStore() = default;

const Snapshot* SnapshotStore::acquire(size_t reader) {
  // Announce the epoch before reading the pointer. With sequentially consistent
  // operations on both sides, a publisher that saw this slot offline (or at an older
  // epoch) swapped the pointer before this load, so the old snapshot is never read here
  // once reclaim() may free it.
  const uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
  slots_[reader].epoch.store(epoch, std::memory_order_seq_cst);
  return published_.load(std::memory_order_seq_cst);
}

void SnapshotStore::release(size_t reader) {
  slots_[reader].epoch.store(0, std::memory_order_release);
}

uint64_t SnapshotStore::publish(std::shared_ptr<const IndicatorSet> base) {
  auto part = std::make_shared<SnapshotPart>(std::move(base), slots_.size());
  std::lock_guard lock(mutex_);
  return publishLocked(std::move(part), nullptr);
}

std::optional<uint64_t> SnapshotStore::publishDelta(std::shared_ptr<const IndicatorSet> delta) {
  auto part = std::make_shared<SnapshotPart>(std::move(delta), slots_.size());
  std::lock_guard lock(mutex_);
  if (current_ == nullptr) return std::nullopt;
  return publishLocked(current_->base_, std::move(part));
}

uint64_t SnapshotStore::publishLocked(std::shared_ptr<SnapshotPart> base,
                                      std::shared_ptr<SnapshotPart> delta) {
  auto next = std::make_shared<Snapshot>(std::move(base), std::move(delta), ++generation_);
  published_.store(next.get(), std::memory_order_seq_cst);
  // Readers that announce this epoch or a later one read the new pointer.
  const uint64_t epoch = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
  if (current_ != nullptr) retired_.push_back({std::move(current_), epoch});
  current_ = std::move(next);
  return generation_;
}

bool SnapshotStore::inUseLocked(const SnapshotPart* part) const {
  if (part == nullptr) return false;
  if (current_->base_.get() == part || current_->delta_.get() == part) return true;
  for (const Retired& r : retired_) {
    if (r.snapshot->base_.get() == part || r.snapshot->delta_.get() == part) return true;
  }
  return false;
}

size_t SnapshotStore::reclaim() {
  std::lock_guard lock(mutex_);
  if (retired_.empty()) return 0;
  uint64_t oldest = UINT64_MAX;  // oldest epoch an online slot may still be using
  for (const ReaderSlot& slot : slots_) {
    const uint64_t epoch = slot.epoch.load(std::memory_order_seq_cst);
    if (epoch != 0) oldest = std::min(oldest, epoch);
  }
  size_t freed = 0;
  for (size_t i = 0; i < retired_.size();) {
    if (retired_[i].epoch > oldest) {
      ++i;
      continue;
    }
    std::shared_ptr<Snapshot> gone = std::move(retired_[i].snapshot);
    retired_.erase(retired_.begin() + static_cast<std::ptrdiff_t>(i));
    // A part that no remaining snapshot shares takes its sightings along; keep them.
    if (!inUseLocked(gone->base_.get())) mergeSightingsLocked(*gone->base_);
    if (gone->delta_ != nullptr && !inUseLocked(gone->delta_.get())) {
      mergeSightingsLocked(*gone->delta_);
    }
    ++freed;
  }
  reclaimed_ += freed;
  return freed;
}

void SnapshotStore::mergeSightingsLocked(const SnapshotPart& from) {
  absl::flat_hash_map<std::string, MergedSighting> hit;
  for (uint32_t id = 0; id < from.sightings.size(); ++id) {
    const uint64_t count = from.sightings.count(id);
    if (count == 0) continue;
    hit[indicatorKey(*from.set, id)] = {count, from.sightings.lastHitNs(id)};
  }
  if (hit.empty()) return;
  auto mergeInto = [&hit](SnapshotPart* part) {
    if (part == nullptr) return;
    for (uint32_t id = 0; id < part->set->size() && !hit.empty(); ++id) {
      auto it = hit.find(indicatorKey(*part->set, id));
      if (it == hit.end()) continue;
      part->sightings.add(id, it->second.count, it->second.last_ns);
      hit.erase(it);
    }
  };
  mergeInto(current_->base_.get());
  mergeInto(current_->delta_.get());
}

std::shared_ptr<const Snapshot> SnapshotStore::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

SnapshotStoreStats SnapshotStore::stats() const {
  std::lock_guard lock(mutex_);
  return {generation_, reclaimed_, retired_.size()};
}

}  // namespace vigil::intel
