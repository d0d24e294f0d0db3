#include "correlate/internal/window_table.h"

#include <algorithm>
#include <cstring>

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

size_t stateWords(const CorrelationRule& rule) {
  switch (rule.type) {
    case CorrelationType::kEventCount:
      return rule.min_count;
    case CorrelationType::kValueCount:
      return 2 * rule.min_count;
    case CorrelationType::kTemporal:
      return rule.detections.size();
    case CorrelationType::kTemporalOrdered:
      return 2 * rule.detections.size();
  }
  return 0;
}

}  // namespace

WindowTable::WindowTable(const CorrelationRule& rule, size_t max_groups, size_t evidence_events,
                         size_t evidence_bytes, WindowCounters counters)
    : rule_(rule),
      state_words_(stateWords(rule)),
      evidence_bytes_(evidence_bytes),
      counters_(counters),
      groups_(max_groups),
      slab_(max_groups * state_words_, kNoTime),
      evidence_(std::max<size_t>(evidence_events, 1)),
      evidence_text_(evidence_.size() * (evidence_bytes + kHitBytes)) {
  free_.reserve(max_groups);
  for (size_t i = max_groups; i > 0; --i) free_.push_back(static_cast<uint32_t>(i - 1));
  for (Group& group : groups_) group.key.reserve(kKeyReserveBytes);
  size_t index_size = 4;
  while (index_size < max_groups * 2) index_size *= 2;
  index_.assign(index_size, 0);
  index_mask_ = index_size - 1;
}

uint32_t WindowTable::findSlot(std::string_view key, uint32_t hash) const {
  for (size_t i = hash & index_mask_; index_[i] != 0; i = (i + 1) & index_mask_) {
    const Group& group = groups_[index_[i] - 1];
    if (group.key_hash == hash && group.key == key) return index_[i] - 1;
  }
  return kNone;
}

void WindowTable::insertSlot(uint32_t slot) {
  size_t i = groups_[slot].key_hash & index_mask_;
  while (index_[i] != 0) i = (i + 1) & index_mask_;
  index_[i] = slot + 1;
  ++group_count_;
}

void WindowTable::eraseSlot(uint32_t slot) {
  size_t hole = groups_[slot].key_hash & index_mask_;
  while (index_[hole] != slot + 1) hole = (hole + 1) & index_mask_;
  // Backward-shift deletion: move each later entry of the probe run into the hole unless
  // its home position lies cyclically in (hole, j], where it is still reachable.
  for (size_t j = (hole + 1) & index_mask_; index_[j] != 0; j = (j + 1) & index_mask_) {
    size_t home = groups_[index_[j] - 1].key_hash & index_mask_;
    bool reachable = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (reachable) continue;
    index_[hole] = index_[j];
    hole = j;
  }
  index_[hole] = 0;
  --group_count_;
}

size_t WindowTable::bytesPerGroup() const {
  size_t index_bytes = index_.size() * sizeof(uint32_t) / std::max<size_t>(groups_.size(), 1);
  return sizeof(Group) + kKeyReserveBytes + state_words_ * sizeof(int64_t) + sizeof(uint32_t) +
         index_bytes;  // the uint32_t is the slot's free-list entry
}

size_t WindowTable::evidencePoolBytes() const {
  return evidence_.size() * sizeof(Evidence) + evidence_text_.size();
}

void WindowTable::unlink(uint32_t slot) {
  Group& group = groups_[slot];
  if (group.older != kNone) groups_[group.older].newer = group.newer;
  if (group.newer != kNone) groups_[group.newer].older = group.older;
  if (oldest_ == slot) oldest_ = group.newer;
  if (newest_ == slot) newest_ = group.older;
  group.older = group.newer = kNone;
}

void WindowTable::linkNewest(uint32_t slot) {
  Group& group = groups_[slot];
  group.older = newest_;
  group.newer = kNone;
  if (newest_ != kNone) groups_[newest_].newer = slot;
  newest_ = slot;
  if (oldest_ == kNone) oldest_ = slot;
}

uint32_t WindowTable::findOrCreate(std::string_view key) {
  const auto hash = static_cast<uint32_t>(std::hash<std::string_view>()(key));
  if (uint32_t found = findSlot(key, hash); found != kNone) {
    unlink(found);
    linkNewest(found);
    return found;
  }
  if (free_.empty()) {
    // Full: drop the group that was updated least recently.
    uint32_t victim = oldest_;
    unlink(victim);
    eraseSlot(victim);
    free_.push_back(victim);
    counters_.evictions->add();
    counters_.keys->add(-1);
  }
  uint32_t slot = free_.back();
  free_.pop_back();
  Group& group = groups_[slot];
  group.key.assign(key);
  group.key_hash = hash;
  group.first_seq = group.next_seq = 0;
  group.newest_ns = 0;
  group.generation = ++generations_;
  group.newest_evidence = kNone;
  restart(slot);
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
  std::fill(words, words + state_words_, kNoTime);
}

bool WindowTable::windowActive(const Group& group) const {
  return group.next_seq > group.first_seq;
}

void WindowTable::storeEvidence(uint32_t slot, const Event& event) {
  Group& group = groups_[slot];
  uint32_t entry = next_evidence_;
  next_evidence_ = static_cast<uint32_t>((next_evidence_ + 1) % evidence_.size());
  char* base = evidence_text_.data() + static_cast<size_t>(entry) * (evidence_bytes_ + kHitBytes);
  size_t raw_length = std::min(event.raw.size(), evidence_bytes_);
  if (raw_length > 0) std::memcpy(base, event.raw.data(), raw_length);
  Evidence& evidence = evidence_[entry];
  evidence.slot = slot;
  evidence.generation = group.generation;
  evidence.seq = group.next_seq;
  evidence.previous = group.newest_evidence;
  evidence.raw_length = static_cast<uint32_t>(raw_length);
  evidence.hit_length = static_cast<uint32_t>(writeHits(event, base + evidence_bytes_, kHitBytes));
  group.newest_evidence = entry;
}

bool WindowTable::add(std::string_view key, const WindowInput& input, const Event& event,
                      Alert& alert) {
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
  }
  return false;
}

// Both edges are inside the window: an event exactly `timespan` older than the newest
// still counts. NOTE: the ring is kept in arrival order, so an out-of-order event is
// pruned only once every event before it has left the window.
bool WindowTable::addEventCount(uint32_t slot, int64_t event_ns, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* times = state(slot);
  const size_t ring = state_words_;
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
  return true;
}

// State: `count` pairs of (value hash, newest time the value was seen).
bool WindowTable::addValueCount(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* pairs = state(slot);
  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  const auto hash = static_cast<int64_t>(input.value_hash);

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
  if (!found && input.event_ns >= oldest_allowed) {
    pairs[2 * group.count] = hash;
    pairs[2 * group.count + 1] = input.event_ns;
    ++group.count;
  }
  if (group.count < rule_.min_count) return false;

  alert.event_count = group.next_seq - group.first_seq;
  alert.first_event_ns = alert.last_event_ns = input.event_ns;
  for (uint32_t i = 0; i < group.count; ++i) {
    alert.first_event_ns = std::min(alert.first_event_ns, pairs[2 * i + 1]);
    alert.last_event_ns = std::max(alert.last_event_ns, pairs[2 * i + 1]);
  }
  fillAlert(slot, alert);
  restart(slot);
  return true;
}

// State: per referenced rule, the newest time it matched (kNoTime when it has not).
bool WindowTable::addTemporal(uint32_t slot, const WindowInput& input, Alert& alert) {
  Group& group = groups_[slot];
  int64_t* times = state(slot);
  times[input.position] = std::max(times[input.position], input.event_ns);

  const int64_t oldest_allowed = group.newest_ns - rule_.timespan_ns;
  uint32_t present = 0;
  int64_t first_ns = INT64_MAX;
  for (size_t r = 0; r < state_words_; ++r) {
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
  return true;
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
  return true;
}

void WindowTable::fillAlert(uint32_t slot, Alert& alert) const {
  const Group& group = groups_[slot];

  // The key contains the tenant and then the group-by values (see group_key.h).
  GroupKeyReader key(group.key);
  alert.tenant = std::string(key.nextPart());
  for (const std::string& field : rule_.group_by) {
    alert.group.emplace_back(field, std::string(key.nextPart()));
  }

  // Evidence: the group's most recent events of this window that the shared pool still
  // contains (the newest always is there). The walk goes newest first, and the alert
  // lists them oldest first.
  std::vector<uint32_t> entries;
  uint64_t next_seq = group.next_seq;
  for (uint32_t e = group.newest_evidence; e != kNone && entries.size() < Alert::kMaxEvidence;) {
    const Evidence& evidence = evidence_[e];
    if (evidence.slot != slot || evidence.generation != group.generation ||
        evidence.seq >= next_seq || evidence.seq < group.first_seq) {
      break;
    }
    entries.push_back(e);
    next_seq = evidence.seq;
    e = evidence.previous;
  }
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const Evidence& evidence = evidence_[*it];
    const char* base =
        evidence_text_.data() + static_cast<size_t>(*it) * (evidence_bytes_ + kHitBytes);
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

}  // namespace vigil::correlate::internal
