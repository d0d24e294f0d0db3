#include "correlate/internal/window_table.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "common/utf8.h"
#include "correlate/internal/group_key.h"

namespace vigil::correlate::internal {
namespace {

// Appends "list:indicator@field" lines for the event's hits into `out` (at most
// `capacity` bytes, whole lines only). Returns the length written.
size_t writeHits(const Event& event, char* out, size_t capacity) {
  size_t used = 0;
  for (size_t i = 0; i < event.hit_count; ++i) {
    const IndicatorHit& hit = event.hits[i];
    size_t need = hit.list.size() + 1 + hit.indicator.size() + 1 + hit.field.size() + 1;
    if (used + need > capacity) break;
    auto put = [&](std::string_view text) {
      std::memcpy(out + used, text.data(), text.size());
      used += text.size();
    };
    put(hit.list);
    put(":");
    put(hit.indicator);
    put("@");
    put(hit.field);
    put("\n");
  }
  return used;
}

constexpr int64_t kNoTime = INT64_MIN;

// Words before the type's own state in a window that closes: the open window's start
// t0 (kNoTime when none is open), and its oldest and newest event times.
constexpr size_t kCloseHeader = 3;

size_t windowWords(const CorrelationRule& rule) {
  if (rule.closes) {
    switch (rule.type) {
      case CorrelationType::kEventCount:
        return kCloseHeader;
      case CorrelationType::kValueCount:
        return kCloseHeader + rule.count_cap;
      case CorrelationType::kValueSum:
      case CorrelationType::kValueAvg:
        return kCloseHeader + 2;
      case CorrelationType::kValuePercentile:
        return kCloseHeader + kPercentileSample;
      default:
        break;  // the loader accepts upper bounds on these types only
    }
  }
  switch (rule.type) {
    case CorrelationType::kEventCount:
      return rule.min_count;
    case CorrelationType::kValueCount:
      return 2 * rule.min_count;
    case CorrelationType::kTemporal:
      return rule.detections.size();
    case CorrelationType::kTemporalOrdered:
      return 2 * rule.detections.size();
    case CorrelationType::kAbsence:
      return 3;
    case CorrelationType::kValueSum:
    case CorrelationType::kValueAvg:
      return 3 * kAggregateEntries;
    case CorrelationType::kValuePercentile:
      return 2 * kPercentileSample;
  }
  return 0;
}

// Returns the nearest-rank `percentile` of values[0..count): the smallest value with at
// least percentile % of the values at or below it. Reorders `values`.
double nearestRank(double* values, size_t count, double percentile) {
  auto rank = static_cast<size_t>(std::ceil(percentile / 100.0 * static_cast<double>(count)));
  rank = std::clamp<size_t>(rank, 1, count);
  std::nth_element(values, values + rank - 1, values + count);
  return values[rank - 1];
}

}  // namespace

WindowTable::WindowTable(std::shared_ptr<const CorrelationRule> rule, size_t max_groups,
                         size_t max_tenant_groups, size_t evidence_events, size_t evidence_bytes,
                         WindowCounters counters)
    : rule_holder_(std::move(rule)),
      rule_(*rule_holder_),
      state_words_(windowWords(rule_) + (rule_.suppress_ns > 0 ? 1 : 0)),
      window_words_(windowWords(rule_)),
      evidence_bytes_(evidence_bytes),
      counters_(counters),
      evidence_(std::max<size_t>(evidence_events, 1)),
      evidence_text_(evidence_.size() * (evidence_bytes + kHitBytes)),
      max_groups_(max_groups),
      max_tenant_groups_(max_tenant_groups),
      // 16 bytes per group fit a short tenant name and one address-sized value.
      keys_(max_groups * 16) {
  // Slots and their state are reserved for max_groups but written only as groups arrive.
  // Writing them all here touched 100 MB per rule at a million keys, which cost the
  // start (and every reload that changes a rule) a tenth of a second of page faults.
  // Reserving up front keeps slot references stable and allocates nothing per event.
  groups_.reserve(max_groups);
  slab_.reserve(max_groups * state_words_);
  index_.assign(std::max<size_t>(4, max_groups * 10 / 7 + 1), 0);
  // An index entry is slot + 1 in the low slot_bits_ bits and a tag of the key's hash
  // in the rest. max_groups is below 2^27 (the config allows 10^8 keys), so at least
  // 5 bits are left for the tag.
  slot_bits_ = static_cast<uint32_t>(std::bit_width(max_groups + 1));
  slot_mask_ = slot_bits_ >= 32 ? UINT32_MAX : (1u << slot_bits_) - 1;
  if (rule_.type == CorrelationType::kAbsence || rule_.closes) {
    timers_ = true;
    heap_.reserve(max_groups);
    heap_pos_.reserve(max_groups);
  }
  counters_.state_bytes->add(static_cast<int64_t>(totalBytes()));
}

WindowTable::~WindowTable() {
  // The gauges live in a registry that outlives the table.
  counters_.state_bytes->add(-static_cast<int64_t>(totalBytes()));
  counters_.keys->add(-static_cast<int64_t>(groupCount()));
  if (counters_.pending_timers != nullptr) {
    counters_.pending_timers->add(-static_cast<int64_t>(pendingTimers()));
  }
}

uint32_t WindowTable::findSlot(std::string_view key, uint32_t hash) const {
  const uint32_t tag = tagOf(hash);
  for (size_t i = home(hash); index_[i] != 0; i = nextIndex(i)) {
    // The tag filters out almost every other key without reading its slot.
    if ((index_[i] >> slot_bits_) != tag) continue;
    const uint32_t slot = (index_[i] & slot_mask_) - 1;
    const Group& group = groups_[slot];
    if (group.key_hash == hash && keyOf(group) == key) return slot;
  }
  return kNone;
}

void WindowTable::insertSlot(uint32_t slot) {
  const uint32_t hash = groups_[slot].key_hash;
  size_t i = home(hash);
  while (index_[i] != 0) i = nextIndex(i);
  index_[i] = (slot + 1) | (tagOf(hash) << slot_bits_);
  ++group_count_;
}

void WindowTable::eraseSlot(uint32_t slot) {
  size_t hole = home(groups_[slot].key_hash);
  while ((index_[hole] & slot_mask_) != slot + 1) hole = nextIndex(hole);
  // Backward-shift deletion: move each later entry of the probe run into the hole unless
  // its home position lies cyclically in (hole, j], where it is still reachable.
  for (size_t j = nextIndex(hole); index_[j] != 0; j = nextIndex(j)) {
    size_t entry_home = home(groups_[(index_[j] & slot_mask_) - 1].key_hash);
    bool reachable =
        hole <= j ? (hole < entry_home && entry_home <= j) : (hole < entry_home || entry_home <= j);
    if (reachable) continue;
    index_[hole] = index_[j];
    hole = j;
  }
  index_[hole] = 0;
  --group_count_;
}

size_t WindowTable::slotBytes() const {
  // Absence and closing windows add a timer heap entry and a heap position per slot.
  const size_t timer_bytes = timers_ ? 2 * sizeof(uint32_t) : 0;
  return sizeof(Group) + state_words_ * sizeof(int64_t) + timer_bytes;
}

size_t WindowTable::bytesPerGroup() const {
  const size_t groups = std::max<size_t>(max_groups_, 1);
  const size_t index_bytes = (index_.size() * sizeof(uint32_t) + groups - 1) / groups;
  return slotBytes() + index_bytes;
}

size_t WindowTable::evidencePoolBytes() const {
  return evidence_.size() * sizeof(Evidence) + evidence_text_.size();
}

size_t WindowTable::totalBytes() const {
  // Slots count once written (see the constructor); the reserve behind them is not
  // resident until then.
  return groups_.size() * slotBytes() + index_.size() * sizeof(uint32_t) + keys_.capacityBytes() +
         evidencePoolBytes() + tenants_.capacity() * sizeof(Tenant);
}

void WindowTable::unlink(uint32_t slot) {
  Group& group = groups_[slot];
  if (group.older != kNone) groups_[group.older].newer = group.newer;
  if (group.newer != kNone) groups_[group.newer].older = group.older;
  if (oldest_ == slot) oldest_ = group.newer;
  if (newest_ == slot) newest_ = group.older;
  group.older = group.newer = kNone;

  Tenant& tenant = tenants_[group.tenant];
  if (group.tenant_older != kNone) groups_[group.tenant_older].tenant_newer = group.tenant_newer;
  if (group.tenant_newer != kNone) groups_[group.tenant_newer].tenant_older = group.tenant_older;
  if (tenant.oldest == slot) tenant.oldest = group.tenant_newer;
  if (tenant.newest == slot) tenant.newest = group.tenant_older;
  group.tenant_older = group.tenant_newer = kNone;
}

void WindowTable::linkNewest(uint32_t slot) {
  Group& group = groups_[slot];
  group.older = newest_;
  group.newer = kNone;
  if (newest_ != kNone) groups_[newest_].newer = slot;
  newest_ = slot;
  if (oldest_ == kNone) oldest_ = slot;

  Tenant& tenant = tenants_[group.tenant];
  group.tenant_older = tenant.newest;
  group.tenant_newer = kNone;
  if (tenant.newest != kNone) groups_[tenant.newest].tenant_newer = slot;
  tenant.newest = slot;
  if (tenant.oldest == kNone) tenant.oldest = slot;
}

uint16_t WindowTable::tenantOf(std::string_view key) {
  std::string_view name = GroupKeyReader(key, KeyArena::kMaxKeyBytes).nextPart();
  // Debian's Abseil has its own string_view, which heterogeneous lookup needs.
  auto it = tenant_ids_.find(absl::string_view(name.data(), name.size()));
  if (it != tenant_ids_.end()) return it->second;
  // NOTE: past kMaxTenants distinct tenants, the newer ones share the last entry and so
  // share one per-tenant limit.
  if (tenants_.size() == kMaxTenants) return static_cast<uint16_t>(kMaxTenants - 1);
  const size_t capacity_before = tenants_.capacity();
  tenants_.emplace_back();
  counters_.state_bytes->add(
      static_cast<int64_t>((tenants_.capacity() - capacity_before) * sizeof(Tenant)));
  auto id = static_cast<uint16_t>(tenants_.size() - 1);
  tenant_ids_.emplace(std::string(name), id);
  return id;
}

void WindowTable::evict(uint32_t slot) {
  if (timers_ && heap_pos_[slot] != kNone) heapRemove(slot);
  unlink(slot);
  eraseSlot(slot);
  Group& group = groups_[slot];
  keys_.release(group.key_offset, group.key_length);
  --tenants_[group.tenant].groups;
  group.older = free_head_;
  free_head_ = slot;
  counters_.keys->add(-1);
}

void WindowTable::newSlot() {
  const auto slot = static_cast<uint32_t>(groups_.size());
  groups_.emplace_back();
  slab_.resize(slab_.size() + state_words_, kNoTime);
  if (timers_) heap_pos_.push_back(kNone);
  groups_[slot].older = free_head_;
  free_head_ = slot;
  counters_.state_bytes->add(static_cast<int64_t>(slotBytes()));
}

uint32_t WindowTable::findOrCreate(std::string_view key) {
  const auto hash = static_cast<uint32_t>(std::hash<std::string_view>()(key));
  if (uint32_t found = findSlot(key, hash); found != kNone) {
    unlink(found);
    linkNewest(found);
    return found;
  }
  const uint16_t tenant = tenantOf(key);
  if (max_tenant_groups_ > 0 && tenants_[tenant].groups >= max_tenant_groups_) {
    // The tenant is at its limit: drop its own group that was updated least recently.
    evict(tenants_[tenant].oldest);
    counters_.tenant_evictions->add();
  } else if (free_head_ == kNone) {
    if (groups_.size() < max_groups_) {
      newSlot();
    } else {
      // Full: drop the group that was updated least recently.
      evict(oldest_);
      counters_.evictions->add();
    }
  }
  uint32_t slot = free_head_;
  Group& group = groups_[slot];
  free_head_ = group.older;
  const size_t arena_before = keys_.capacityBytes();
  group.key_offset = keys_.store(key);
  if (keys_.capacityBytes() != arena_before) {
    counters_.state_bytes->add(static_cast<int64_t>(keys_.capacityBytes() - arena_before));
  }
  group.key_length = static_cast<uint16_t>(std::min(key.size(), KeyArena::kMaxKeyBytes));
  group.tenant = tenant;
  ++tenants_[tenant].groups;
  group.key_hash = hash;
  group.first_seq = group.next_seq = 0;
  group.newest_ns = 0;
  group.generation = ++generations_;
  group.newest_evidence = kNone;
  restart(slot);
  std::fill(state(slot) + window_words_, state(slot) + state_words_, kNoTime);
  insertSlot(slot);
  linkNewest(slot);
  counters_.keys->add(1);
  return slot;
}

void WindowTable::restart(uint32_t slot) {
  Group& group = groups_[slot];
  group.first_seq = group.next_seq;
  group.count = 0;
  int64_t* words = state(slot);
  std::fill(words, words + window_words_, kNoTime);
}

bool WindowTable::windowActive(const Group& group) const {
  return group.next_seq > group.first_seq;
}

void WindowTable::storeEvidence(uint32_t slot, const Event& event) {
  char* base = claimEvidence(slot, groups_[slot].next_seq, event.raw);
  evidence_[groups_[slot].newest_evidence].hit_length =
      static_cast<uint32_t>(writeHits(event, base + evidence_bytes_, kHitBytes));
}

char* WindowTable::claimEvidence(uint32_t slot, uint64_t seq, std::string_view raw) {
  Group& group = groups_[slot];
  uint32_t entry = next_evidence_;
  next_evidence_ = static_cast<uint32_t>((next_evidence_ + 1) % evidence_.size());
  char* base = evidence_text_.data() + static_cast<size_t>(entry) * (evidence_bytes_ + kHitBytes);
  const size_t raw_length = utf8PrefixLength(raw, evidence_bytes_);
  if (raw_length > 0) std::memcpy(base, raw.data(), raw_length);
  Evidence& evidence = evidence_[entry];
  evidence.slot = slot;
  evidence.generation = group.generation;
  evidence.seq = seq;
  evidence.previous = group.newest_evidence;
  evidence.raw_length = static_cast<uint32_t>(raw_length);
  evidence.hit_length = 0;
  group.newest_evidence = entry;
  return base;
}

size_t WindowTable::groupEvidence(uint32_t slot,
                                  std::array<uint32_t, Alert::kMaxEvidence>& out) const {
  const Group& group = groups_[slot];
  size_t found = 0;
  uint64_t next_seq = group.next_seq;
  for (uint32_t e = group.newest_evidence; e != kNone && found < out.size();) {
    const Evidence& evidence = evidence_[e];
    if (evidence.slot != slot || evidence.generation != group.generation ||
        evidence.seq >= next_seq || evidence.seq < group.first_seq) {
      break;
    }
    out[found++] = e;
    next_seq = evidence.seq;
    e = evidence.previous;
  }
  return found;
}

bool WindowTable::add(std::string_view key, const WindowInput& input, const Event& event,
                      Alert& alert) {
  if (rule_.type == CorrelationType::kAbsence) {
    if (input.event_ns < input.watermark_ns) {
      // The windows this event could change may already have closed.
      counters_.late_events->add();
      return false;
    }
    uint32_t slot = findOrCreate(key);
    if (input.position == 0) storeEvidence(slot, event);
    return addAbsence(slot, input);
  }
  if (rule_.closes) {
    if (input.event_ns < input.watermark_ns) {
      // The window this event belongs to may already have closed.
      counters_.late_events->add();
      return false;
    }
    return addClosing(findOrCreate(key), input, event, alert);
  }
  uint32_t slot = findOrCreate(key);
  Group& group = groups_[slot];
  if (windowActive(group) && input.event_ns < group.newest_ns - rule_.timespan_ns) {
    // Older than every window this group can still form: it can never count.
    counters_.late_events->add();
    return false;
  }
  group.newest_ns =
      windowActive(group) ? std::max(group.newest_ns, input.event_ns) : input.event_ns;
  storeEvidence(slot, event);
  ++group.next_seq;

  switch (rule_.type) {
    case CorrelationType::kEventCount:
      return addEventCount(slot, input.event_ns, alert);
    case CorrelationType::kValueCount:
      return addValueCount(slot, input, alert);
    case CorrelationType::kTemporal:
      return addTemporal(slot, input, alert);
    case CorrelationType::kTemporalOrdered:
      return addTemporalOrdered(slot, input, alert);
    case CorrelationType::kValueSum:
    case CorrelationType::kValueAvg:
      return addValueAggregate(slot, input, alert);
    case CorrelationType::kValuePercentile:
      return addPercentile(slot, input, alert);
    case CorrelationType::kAbsence:
      break;  // handled above
  }
  return false;
}

// A window that closes: opens at the group's first event t0, holds the events that
// arrive while it is open and are not later than t0 + timespan, and is decided by
// closeWindow() when the watermark passes t0 + timespan (expire()) or when one of the
// group's events later than that arrives first (possible while the watermark lags by the
// allowed lateness). Returns true when that early close raised an alert.
bool WindowTable::addClosing(uint32_t slot, const WindowInput& input, const Event& event,
                             Alert& alert) {
  int64_t* words = state(slot);
  const int64_t t = input.event_ns;
  bool fired = false;
  if (words[0] != kNoTime && t - words[0] > rule_.timespan_ns) {
    heapRemove(slot);
    fired = closeWindow(slot, alert);
  }
  Group& group = groups_[slot];
  if (words[0] == kNoTime) {
    restart(slot);
    words[0] = words[1] = words[2] = t;
    if (rule_.type == CorrelationType::kValueSum || rule_.type == CorrelationType::kValueAvg) {
      words[kCloseHeader] = std::bit_cast<int64_t>(0.0);
      words[kCloseHeader + 1] = 0;
    }
    heapPush(slot);
  }
  words[1] = std::min(words[1], t);
  words[2] = std::max(words[2], t);
  group.newest_ns = words[2];
  storeEvidence(slot, event);
  const uint64_t index = group.next_seq - group.first_seq;  // this event's place in the window
  ++group.next_seq;
  int64_t* own = words + kCloseHeader;
  switch (rule_.type) {
    case CorrelationType::kValueCount: {
      const auto hash = static_cast<int64_t>(input.value_hash);
      if (group.count < rule_.count_cap &&
          std::find(own, own + group.count, hash) == own + group.count) {
        own[group.count++] = hash;
      }
      break;
    }
    case CorrelationType::kValueSum:
    case CorrelationType::kValueAvg:
      own[0] = std::bit_cast<int64_t>(std::bit_cast<double>(own[0]) + input.number);
      ++own[1];
      break;
    case CorrelationType::kValuePercentile:
      if (index >= kPercentileSample) counters_.sample_dropped->add();
      own[index % kPercentileSample] = std::bit_cast<int64_t>(input.number);
      group.count = static_cast<uint32_t>(std::min<uint64_t>(index + 1, kPercentileSample));
      break;
    default:
      break;  // event_count: the sequence numbers count the events
  }
  return fired;
}

// Decides the open window of a rule whose windows close, fills `alert` when the condition
// holds, and leaves the group without an open window. The caller removed its timer.
bool WindowTable::closeWindow(uint32_t slot, Alert& alert) {
  Group& group = groups_[slot];
  const int64_t* words = state(slot);
  const int64_t* own = words + kCloseHeader;
  const uint64_t events = group.next_seq - group.first_seq;
  double metric = static_cast<double>(events);
  switch (rule_.type) {
    case CorrelationType::kValueCount:
      metric = group.count;
      break;
    case CorrelationType::kValueSum:
      metric = std::bit_cast<double>(own[0]);
      break;
    case CorrelationType::kValueAvg:
      metric = std::bit_cast<double>(own[0]) / static_cast<double>(std::max<int64_t>(own[1], 1));
      break;
    case CorrelationType::kValuePercentile: {
      std::array<double, kPercentileSample> values;
      for (uint32_t i = 0; i < group.count; ++i) values[i] = std::bit_cast<double>(own[i]);
      metric = nearestRank(values.data(), group.count, rule_.percentile);
      break;
    }
    default:
      break;
  }
  bool fired = false;
  if (events > 0 && rule_.conditionHolds(metric)) {
    alert.event_count = events;
    alert.first_event_ns = words[1];
    alert.last_event_ns = words[2];
    if (rule_.type != CorrelationType::kEventCount) alert.metric = metric;
    fillAlert(slot, alert);
    fired = admit(slot, alert);
  }
  restart(slot);
  return fired;
}

// State: up to group.count entries of (event time, value as the bits of a double), oldest
// arrival first. When all kPercentileSample are taken, the oldest is dropped and counted.
bool WindowTable::addPercentile(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* entries = state(slot);
  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < group.count; ++i) {
    if (entries[2 * i] < oldest_allowed) continue;
    entries[2 * kept] = entries[2 * i];
    entries[2 * kept + 1] = entries[2 * i + 1];
    ++kept;
  }
  group.count = kept;
  if (group.count == kPercentileSample) {
    counters_.sample_dropped->add();
    std::copy(entries + 2, entries + 2 * kPercentileSample, entries);
    --group.count;
  }
  entries[2 * group.count] = input.event_ns;
  entries[2 * group.count + 1] = std::bit_cast<int64_t>(input.number);
  ++group.count;

  std::array<double, kPercentileSample> values;
  int64_t first_ns = input.event_ns;
  for (uint32_t i = 0; i < group.count; ++i) {
    values[i] = std::bit_cast<double>(entries[2 * i + 1]);
    first_ns = std::min(first_ns, entries[2 * i]);
  }
  const double metric = nearestRank(values.data(), group.count, rule_.percentile);
  if (!rule_.conditionHolds(metric)) return false;
  alert.event_count = group.next_seq - group.first_seq;
  alert.first_event_ns = first_ns;
  alert.last_event_ns = group.newest_ns;
  alert.metric = metric;
  fillAlert(slot, alert);
  restart(slot);
  return admit(slot, alert);
}

// Both edges are inside the window: an event exactly `timespan` older than the newest
// still counts. NOTE: the ring is kept in arrival order, so an out-of-order event is
// pruned only once every event before it has left the window.
bool WindowTable::addEventCount(uint32_t slot, int64_t event_ns, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* times = state(slot);
  const size_t ring = window_words_;
  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  const uint64_t seq = group.next_seq - 1;
  while (group.first_seq < seq && times[group.first_seq % ring] < oldest_allowed) {
    ++group.first_seq;
  }
  times[seq % ring] = event_ns;
  const uint64_t count = group.next_seq - group.first_seq;
  if (count < rule_.min_count) return false;

  alert.event_count = count;
  alert.first_event_ns = alert.last_event_ns = event_ns;
  for (uint64_t s = group.first_seq; s < group.next_seq; ++s) {
    alert.first_event_ns = std::min(alert.first_event_ns, times[s % ring]);
    alert.last_event_ns = std::max(alert.last_event_ns, times[s % ring]);
  }
  fillAlert(slot, alert);
  restart(slot);
  return admit(slot, alert);
}

// State: `count` pairs of (value hash, newest time the value was seen). The last pair is
// written only by the event that fires the window, so until then its time word contains
// the oldest event time since the window started. Checkpoints written before that word
// was kept have kNoTime there, and the first time then comes from the events after the
// restore and the stored values.
bool WindowTable::addValueCount(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* pairs = state(slot);
  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  const auto hash = static_cast<int64_t>(input.value_hash);
  int64_t& window_oldest_ns = pairs[window_words_ - 1];
  window_oldest_ns =
      window_oldest_ns == kNoTime ? input.event_ns : std::min(window_oldest_ns, input.event_ns);

  // Drop values whose newest sighting left the window, keeping the rest packed.
  uint32_t kept = 0;
  bool found = false;
  for (uint32_t i = 0; i < group.count; ++i) {
    int64_t value = pairs[2 * i];
    int64_t seen_ns = pairs[2 * i + 1];
    if (value == hash) {
      seen_ns = std::max(seen_ns, input.event_ns);
      found = true;
    }
    if (seen_ns < oldest_allowed) continue;
    pairs[2 * kept] = value;
    pairs[2 * kept + 1] = seen_ns;
    ++kept;
  }
  group.count = kept;
  const int64_t first_ns = window_oldest_ns;
  if (!found && input.event_ns >= oldest_allowed) {
    pairs[2 * group.count] = hash;
    pairs[2 * group.count + 1] = input.event_ns;
    ++group.count;
  }
  if (group.count < rule_.min_count) return false;

  // The count, the first event time and the evidence all cover the events since the
  // window started, including events whose value has left the window since.
  alert.event_count = group.next_seq - group.first_seq;
  alert.first_event_ns = alert.last_event_ns = input.event_ns;
  for (uint32_t i = 0; i < group.count; ++i) {
    alert.first_event_ns = std::min(alert.first_event_ns, pairs[2 * i + 1]);
    alert.last_event_ns = std::max(alert.last_event_ns, pairs[2 * i + 1]);
  }
  alert.first_event_ns = std::min(alert.first_event_ns, first_ns);
  fillAlert(slot, alert);
  restart(slot);
  return admit(slot, alert);
}

// State: per referenced rule, the newest time it matched (kNoTime when it has not).
bool WindowTable::addTemporal(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* times = state(slot);
  times[input.position] = std::max(times[input.position], input.event_ns);

  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  uint32_t present = 0;
  int64_t first_ns = INT64_MAX;
  for (size_t r = 0; r < window_words_; ++r) {
    if (times[r] == kNoTime || times[r] < oldest_allowed) continue;
    ++present;
    first_ns = std::min(first_ns, times[r]);
  }
  group.count = present;
  if (present < rule_.min_count) return false;

  alert.event_count = present;
  alert.first_event_ns = first_ns;
  alert.last_event_ns = group.newest_ns;
  fillAlert(slot, alert);
  restart(slot);
  return admit(slot, alert);
}

// State: per step i, start[i] and end[i] of the chain that has matched steps 0..i with
// the latest start (the latest start leaves the most room for the remaining steps).
// NOTE: order is checked as events arrive. An event that arrives after a later step's
// event but carries an earlier time does not complete that step retroactively.
bool WindowTable::addTemporalOrdered(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* steps = state(slot);
  const size_t step = input.position;
  const int64_t t = input.event_ns;
  int64_t& start = steps[2 * step];
  int64_t& end = steps[2 * step + 1];

  int64_t candidate = kNoTime;
  if (step == 0) {
    candidate = t;
  } else {
    const int64_t previous_start = steps[2 * (step - 1)];
    const int64_t previous_end = steps[2 * (step - 1) + 1];
    // Equal times count as ordered: the earlier step's event arrived first.
    if (previous_start != kNoTime && previous_end <= t && t - previous_start <= rule_.timespan_ns) {
      candidate = previous_start;
    }
  }
  if (candidate == kNoTime) return false;
  if (start == kNoTime) ++group.count;
  if (start == kNoTime || candidate > start || (candidate == start && t < end)) {
    start = candidate;
    end = t;
  }
  if (step + 1 < rule_.detections.size()) return false;

  alert.event_count = rule_.detections.size();
  alert.first_event_ns = start;
  alert.last_event_ns = end;
  fillAlert(slot, alert);
  restart(slot);
  return admit(slot, alert);
}

// State: group.count entries of (newest event time, sum as the bits of a double, events),
// oldest first.
bool WindowTable::addValueAggregate(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* entries = state(slot);
  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  auto sumOf = [&](uint32_t i) { return std::bit_cast<double>(entries[3 * i + 1]); };

  // Drop entries whose newest event left the window, keeping the rest packed in order.
  uint32_t kept = 0;
  for (uint32_t i = 0; i < group.count; ++i) {
    if (entries[3 * i] < oldest_allowed) continue;
    std::copy(entries + 3 * i, entries + 3 * i + 3, entries + 3 * kept);
    ++kept;
  }
  group.count = kept;
  if (group.count == kAggregateEntries) {
    // Merge the two oldest entries into one that leaves with the newer of them.
    entries[0] = std::max(entries[0], entries[3]);
    entries[1] = std::bit_cast<int64_t>(sumOf(0) + sumOf(1));
    entries[2] += entries[5];
    std::copy(entries + 6, entries + 3 * kAggregateEntries, entries + 3);
    --group.count;
  }
  int64_t* added = entries + 3 * group.count;
  added[0] = input.event_ns;
  added[1] = std::bit_cast<int64_t>(input.number);
  added[2] = 1;
  ++group.count;

  double sum = 0;
  int64_t events = 0;
  int64_t first_ns = input.event_ns;
  for (uint32_t i = 0; i < group.count; ++i) {
    sum += sumOf(i);
    events += entries[3 * i + 2];
    first_ns = std::min(first_ns, entries[3 * i]);
  }
  const double metric = rule_.type == CorrelationType::kValueSum ? sum : sum / static_cast<double>(events);
  if (!rule_.conditionHolds(metric)) return false;

  alert.event_count = static_cast<uint64_t>(events);
  alert.first_event_ns = first_ns;
  alert.last_event_ns = group.newest_ns;
  alert.metric = metric;
  fillAlert(slot, alert);
  restart(slot);
  return admit(slot, alert);
}

bool WindowTable::admit(uint32_t slot, const Alert& alert) {
  if (rule_.suppress_ns <= 0) return true;
  int64_t& last = state(slot)[window_words_];
  if (last != kNoTime && alert.last_event_ns >= last &&
      alert.last_event_ns - last < rule_.suppress_ns) {
    counters_.suppressed->add();
    return false;
  }
  last = std::max(last, alert.last_event_ns);
  return true;
}

// State: [0] start of the open window (the first rule's earliest match in it, kNoTime
// when none is open), [1] the first rule's newest match in it, [2] the newest time the
// second rule matched. Events of the first rule count in the window's sequence numbers,
// so the alert's evidence and count are those events.
bool WindowTable::addAbsence(uint32_t slot, const WindowInput& input) {
  Group& group = groups_[slot];
  int64_t* words = state(slot);
  const int64_t t = input.event_ns;
  if (input.position == 1) {
    words[2] = std::max(words[2], t);
    // A match inside [start, start + timespan] cancels the open window.
    if (words[0] != kNoTime && t >= words[0] && t <= words[0] + rule_.timespan_ns) {
      heapRemove(slot);
      restart(slot);
      words[2] = t;
    }
    return false;
  }
  ++group.next_seq;
  if (words[0] == kNoTime) {
    // A second-rule match that arrived earlier but lies inside the new window cancels it
    // at once. NOTE: only the newest such match is kept, so with events out of order an
    // earlier match can be missed when a later one already moved words[2] past the
    // window.
    if (words[2] != kNoTime && words[2] >= t && words[2] <= t + rule_.timespan_ns) {
      group.first_seq = group.next_seq;
      return false;
    }
    words[0] = words[1] = t;
    group.count = 1;
    heapPush(slot);
    return false;
  }
  // NOTE: a match later than the open window's deadline (possible while the watermark
  // lags by the allowed lateness) joins that window instead of opening a second one.
  ++group.count;
  words[1] = std::max(words[1], t);
  if (t < words[0]) {
    // An out-of-order match within the lateness opens the window earlier.
    words[0] = t;
    heapSiftUp(heap_pos_[slot]);
  }
  return false;
}

size_t WindowTable::expire(int64_t watermark_ns, std::vector<Alert>& out) {
  size_t fired = 0;
  while (!heap_.empty() && deadline(heap_.front()) < watermark_ns) {
    uint32_t slot = heap_.front();
    heapRemove(slot);
    if (rule_.closes) {
      Alert alert;
      if (!closeWindow(slot, alert)) continue;
      out.push_back(std::move(alert));
      ++fired;
      continue;
    }
    Group& group = groups_[slot];
    const int64_t* words = state(slot);
    Alert alert;
    alert.event_count = group.next_seq - group.first_seq;
    alert.first_event_ns = words[0];
    alert.last_event_ns = words[1];
    fillAlert(slot, alert);
    int64_t newest_answer = words[2];
    restart(slot);
    state(slot)[2] = newest_answer;
    group.count = 0;
    if (!admit(slot, alert)) continue;
    out.push_back(std::move(alert));
    ++fired;
  }
  return fired;
}

void WindowTable::heapSwap(size_t a, size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_pos_[heap_[a]] = static_cast<uint32_t>(a);
  heap_pos_[heap_[b]] = static_cast<uint32_t>(b);
}

void WindowTable::heapSiftUp(size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (deadline(heap_[parent]) <= deadline(heap_[i])) break;
    heapSwap(i, parent);
    i = parent;
  }
}

void WindowTable::heapSiftDown(size_t i) {
  while (true) {
    size_t smallest = i;
    for (size_t child : {2 * i + 1, 2 * i + 2}) {
      if (child < heap_.size() && deadline(heap_[child]) < deadline(heap_[smallest])) {
        smallest = child;
      }
    }
    if (smallest == i) return;
    heapSwap(i, smallest);
    i = smallest;
  }
}

void WindowTable::heapPush(uint32_t slot) {
  heap_.push_back(slot);  // never grows past the reserve: one entry per slot at most
  heap_pos_[slot] = static_cast<uint32_t>(heap_.size() - 1);
  heapSiftUp(heap_.size() - 1);
}

void WindowTable::heapRemove(uint32_t slot) {
  size_t i = heap_pos_[slot];
  if (i == kNone) return;
  size_t last = heap_.size() - 1;
  if (i != last) heapSwap(i, last);
  heap_.pop_back();
  heap_pos_[slot] = kNone;
  if (i < heap_.size()) {
    // The entry moved into the hole may belong above or below it.
    uint32_t moved = heap_[i];
    heapSiftUp(i);
    heapSiftDown(heap_pos_[moved]);
  }
}

void WindowTable::fillAlert(uint32_t slot, Alert& alert) const {
  const Group& group = groups_[slot];

  // The key contains the tenant and then the group-by values (see group_key.h).
  GroupKeyReader key(keyOf(group), KeyArena::kMaxKeyBytes);
  alert.tenant = std::string(key.nextPart());
  for (const std::string& field : rule_.group_by) {
    alert.group.emplace_back(field, std::string(key.nextPart()));
  }

  // Evidence: the group's most recent events of this window that the shared pool still
  // contains (the newest always is there). The walk goes newest first, and the alert
  // lists them oldest first.
  std::array<uint32_t, Alert::kMaxEvidence> entries;
  const size_t found = groupEvidence(slot, entries);
  for (size_t i = found; i > 0; --i) {
    const uint32_t entry = entries[i - 1];
    const Evidence& evidence = evidence_[entry];
    const char* base =
        evidence_text_.data() + static_cast<size_t>(entry) * (evidence_bytes_ + kHitBytes);
    alert.evidence.emplace_back(base, evidence.raw_length);
    std::string_view hits(base + evidence_bytes_, evidence.hit_length);
    while (!hits.empty()) {
      size_t end = hits.find('\n');
      std::string line(hits.substr(0, end));
      if (std::find(alert.indicator_hits.begin(), alert.indicator_hits.end(), line) ==
          alert.indicator_hits.end()) {
        alert.indicator_hits.push_back(std::move(line));
      }
      hits.remove_prefix(end + 1);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Checkpoints

void WindowTable::save(ByteWriter& out) const {
  out.u32(static_cast<uint32_t>(group_count_));
  for (uint32_t slot = oldest_; slot != kNone; slot = groups_[slot].newer) {
    const Group& group = groups_[slot];
    out.text(keyOf(group));
    out.u64(group.first_seq);
    out.u64(group.next_seq);
    out.i64(group.newest_ns);
    out.u32(group.count);
    out.u32(static_cast<uint32_t>(state_words_));
    const int64_t* words = slab_.data() + static_cast<size_t>(slot) * state_words_;
    for (size_t i = 0; i < state_words_; ++i) out.i64(words[i]);
    std::array<uint32_t, Alert::kMaxEvidence> entries;
    const size_t found = groupEvidence(slot, entries);
    out.u32(static_cast<uint32_t>(found));
    for (size_t i = found; i > 0; --i) {
      const Evidence& evidence = evidence_[entries[i - 1]];
      const char* base = evidence_text_.data() +
                         static_cast<size_t>(entries[i - 1]) * (evidence_bytes_ + kHitBytes);
      out.u64(evidence.seq);
      out.text(std::string_view(base, evidence.raw_length));
      out.text(std::string_view(base + evidence_bytes_, evidence.hit_length));
    }
  }
}

bool WindowTable::readGroup(ByteReader& in, SavedGroup& group) {
  uint32_t words = 0;
  in.text(group.key);
  in.u64(group.first_seq);
  in.u64(group.next_seq);
  in.i64(group.newest_ns);
  in.u32(group.count);
  in.u32(words);
  // Each word takes 8 bytes, so a count larger than what is left is a cut record.
  if (!in.ok() || words > in.remaining() / sizeof(int64_t)) return false;
  group.words.resize(words);
  for (int64_t& word : group.words) in.i64(word);
  uint32_t evidence = 0;
  in.u32(evidence);
  // Each entry takes at least 16 bytes (a sequence number and two lengths).
  if (!in.ok() || evidence > Alert::kMaxEvidence || evidence > in.remaining() / 16) return false;
  group.evidence.resize(evidence);
  for (SavedGroup::Evidence& entry : group.evidence) {
    in.u64(entry.seq);
    in.text(entry.raw);
    in.text(entry.hits);
  }
  return in.ok();
}

bool WindowTable::acceptsGroup(const SavedGroup& group) const {
  if (group.words.size() != state_words_ || group.key.size() > KeyArena::kMaxKeyBytes) {
    return false;
  }
  if (group.first_seq > group.next_seq) return false;
  // Evidence belongs to the open window, oldest first.
  uint64_t previous_seq = group.first_seq;
  for (size_t i = 0; i < group.evidence.size(); ++i) {
    const SavedGroup::Evidence& entry = group.evidence[i];
    if (entry.seq < previous_seq || (i > 0 && entry.seq == previous_seq) ||
        entry.seq > group.next_seq) {
      return false;
    }
    previous_seq = entry.seq;
  }
  const uint64_t held = group.next_seq - group.first_seq;
  if (rule_.closes) {
    const int64_t start = group.words[0];
    if (start != kNoTime && start > INT64_MAX - rule_.timespan_ns) return false;
    switch (rule_.type) {
      case CorrelationType::kValueCount:
        return group.count <= rule_.count_cap;
      case CorrelationType::kValuePercentile:
        return group.count <= kPercentileSample && group.count <= held;
      default:
        return true;
    }
  }
  switch (rule_.type) {
    case CorrelationType::kEventCount:
      return held < window_words_;  // the window restarts when it reaches min_count
    case CorrelationType::kValueCount:
      return group.count < rule_.min_count;
    case CorrelationType::kTemporal:
    case CorrelationType::kTemporalOrdered:
      return group.count <= rule_.detections.size();
    case CorrelationType::kValueSum:
    case CorrelationType::kValueAvg:
      return group.count <= kAggregateEntries;
    case CorrelationType::kValuePercentile:
      return group.count <= kPercentileSample;
    case CorrelationType::kAbsence: {
      // An open window's deadline must not overflow.
      const int64_t start = group.words[0];
      return start == kNoTime || start <= INT64_MAX - rule_.timespan_ns;
    }
  }
  return false;
}

void WindowTable::restoreGroup(const SavedGroup& saved) {
  const uint32_t slot = findOrCreate(saved.key);
  if (timers_) heapRemove(slot);
  Group& group = groups_[slot];
  group.first_seq = saved.first_seq;
  group.next_seq = saved.next_seq;
  group.newest_ns = saved.newest_ns;
  group.count = saved.count;
  group.newest_evidence = kNone;
  std::copy(saved.words.begin(), saved.words.end(), state(slot));
  // Evidence goes back into this table's pool; a smaller pool keeps the newest entries.
  for (const SavedGroup::Evidence& entry : saved.evidence) {
    char* base = claimEvidence(slot, entry.seq, entry.raw);
    const size_t hits = std::min(entry.hits.size(), kHitBytes);
    // Whole lines only, as writeHits() keeps them.
    const size_t cut = entry.hits.substr(0, hits).rfind('\n');
    const size_t length =
        hits == entry.hits.size() ? hits : (cut == std::string_view::npos ? 0 : cut + 1);
    if (length > 0) std::memcpy(base + evidence_bytes_, entry.hits.data(), length);
    evidence_[group.newest_evidence].hit_length = static_cast<uint32_t>(length);
  }
  if ((rule_.type == CorrelationType::kAbsence || rule_.closes) && state(slot)[0] != kNoTime) {
    heapPush(slot);
  }
}

}  // namespace vigil::correlate::internal
