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

}  // namespace

WindowTable::WindowTable(const CorrelationRule& rule, size_t max_groups, size_t evidence_bytes,
                         WindowCounters counters)
    : rule_(rule),
      ring_size_(rule.minCount()),
      evidence_size_(std::min<size_t>(ring_size_, Alert::kMaxEvidence)),
      evidence_bytes_(evidence_bytes),
      counters_(counters),
      groups_(max_groups),
      times_(max_groups * ring_size_),
      evidence_(max_groups * evidence_size_ * (evidence_bytes + kHitBytes)),
      evidence_length_(max_groups * evidence_size_ * 2) {
  free_.reserve(max_groups);
  for (size_t i = max_groups; i > 0; --i) free_.push_back(static_cast<uint32_t>(i - 1));
  for (Group& group : groups_) group.key.reserve(64);
  // Twice the groups keeps the index at most half full, so Abseil (20220623) cleans the
  // tombstones left by evictions in place instead of growing the table. Tables of 16
  // slots or fewer are the exception: Abseil always rehashes those into a new array.
  index_.reserve(max_groups * 2);
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
  if (auto it = index_.find(key); it != index_.end()) {
    unlink(it->second);
    linkNewest(it->second);
    return it->second;
  }
  if (free_.empty()) {
    // Full: drop the group that was updated least recently.
    uint32_t victim = oldest_;
    unlink(victim);
    index_.erase(std::string_view(groups_[victim].key));
    free_.push_back(victim);
    counters_.evictions->add();
    counters_.keys->add(-1);
  }
  uint32_t slot = free_.back();
  free_.pop_back();
  Group& group = groups_[slot];
  group.key.assign(key);
  group.count = 0;
  group.head_seq = 0;
  group.newest_ns = 0;
  index_.emplace(std::string_view(group.key), slot);
  linkNewest(slot);
  counters_.keys->add(1);
  return slot;
}

void WindowTable::storeEvidence(uint32_t slot, uint64_t seq, const Event& event) {
  size_t entry = static_cast<size_t>(slot) * evidence_size_ + seq % evidence_size_;
  char* base = evidence_.data() + entry * (evidence_bytes_ + kHitBytes);
  size_t raw_length = std::min(event.raw.size(), evidence_bytes_);
  std::memcpy(base, event.raw.data(), raw_length);
  evidence_length_[entry * 2] = static_cast<uint32_t>(raw_length);
  evidence_length_[entry * 2 + 1] =
      static_cast<uint32_t>(writeHits(event, base + evidence_bytes_, kHitBytes));
}

bool WindowTable::add(std::string_view key, int64_t event_ns, const Event& event, Alert& alert) {
  uint32_t slot = findOrCreate(key);
  Group& group = groups_[slot];
  const int64_t span = rule_.timespan_ns;
  if (group.count > 0 && event_ns < group.newest_ns - span) {
    // Older than every window this group can still form: it can never count.
    counters_.late_events->add();
    return false;
  }
  group.newest_ns = group.count == 0 ? event_ns : std::max(group.newest_ns, event_ns);

  // Both edges are inside the window: an event exactly `span` older than the newest
  // still counts. NOTE: the ring is kept in arrival order, so an out-of-order event is
  // pruned only once every event before it has left the window.
  while (group.count > 0 && timeAt(slot, group.head_seq) < group.newest_ns - span) {
    ++group.head_seq;
    --group.count;
  }
  uint64_t seq = group.head_seq + group.count;
  timeAt(slot, seq) = event_ns;
  storeEvidence(slot, seq, event);
  ++group.count;
  if (group.count < ring_size_) return false;

  fillAlert(slot, alert);
  group.head_seq += group.count;
  group.count = 0;
  return true;
}

void WindowTable::fillAlert(uint32_t slot, Alert& alert) const {
  const Group& group = groups_[slot];
  alert.event_count = group.count;
  alert.first_event_ns = timeAt(slot, group.head_seq);
  alert.last_event_ns = alert.first_event_ns;
  for (uint64_t seq = group.head_seq; seq < group.head_seq + group.count; ++seq) {
    alert.first_event_ns = std::min(alert.first_event_ns, timeAt(slot, seq));
    alert.last_event_ns = std::max(alert.last_event_ns, timeAt(slot, seq));
  }

  // The key contains the tenant and then the group-by values (see group_key.h).
  GroupKeyReader key(group.key);
  alert.tenant = std::string(key.nextPart());
  for (const std::string& field : rule_.group_by) {
    alert.group.emplace_back(field, std::string(key.nextPart()));
  }

  // Evidence of the most recent events still in the window, oldest first.
  uint64_t evidence_count = std::min<uint64_t>(group.count, evidence_size_);
  for (uint64_t seq = group.head_seq + group.count - evidence_count;
       seq < group.head_seq + group.count; ++seq) {
    size_t entry = static_cast<size_t>(slot) * evidence_size_ + seq % evidence_size_;
    const char* base = evidence_.data() + entry * (evidence_bytes_ + kHitBytes);
    alert.evidence.emplace_back(base, evidence_length_[entry * 2]);
    std::string_view hits(base + evidence_bytes_, evidence_length_[entry * 2 + 1]);
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
