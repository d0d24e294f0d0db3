// The private parts of Engine, shared by engine.cc and engine_checkpoint.cc.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/internal/checkpoint_codec.h"
#include "correlate/internal/window_table.h"

namespace vigil::correlate {

struct Engine::Counters {
  std::vector<Counter*> detection_matches;  // per detection rule
  std::vector<Counter*> detection_evaluations;
  std::vector<Counter*> prefilter_hits;
  std::vector<Counter*> sampled_ns;
  std::vector<Counter*> samples;
  std::vector<Counter*> detection_alerts;
  std::vector<Counter*> correlation_alerts;  // per correlation rule
  std::vector<Counter*> evictions;
  std::vector<Counter*> tenant_evictions;
  std::vector<Counter*> late_events;  // per correlation rule
  Counter* sample_dropped = nullptr;
  Counter* key_truncated = nullptr;
  Counter* matches_dropped = nullptr;
  Counter* value_missing = nullptr;
  Counter* not_referenced = nullptr;
  std::vector<Counter*> detection_suppressed;    // per detection rule
  std::vector<Counter*> correlation_suppressed;  // per correlation rule
  Counter* suppress_evictions = nullptr;
  Counter* logsource_skipped = nullptr;
  Counter* tenant_skipped = nullptr;
  Counter* prefilter_errors = nullptr;
  Gauge* keys = nullptr;
  Gauge* pending_timers = nullptr;
  Gauge* state_bytes = nullptr;
  Counter* checkpoint_rejected = nullptr;  // checkpoints restore() did not apply
  Counter* checkpoint_restored = nullptr;  // rules whose state a checkpoint restored
  Counter* checkpoint_changed = nullptr;   // saved rules whose definition hash changed
  Counter* checkpoint_removed = nullptr;   // saved rules the rule set no longer has
};

// The correlation state one shard owns: one WindowTable per correlation rule, and the
// scratch that the overloads without a detection index use to find which referenced
// rules an event matches.
class Engine::Shard {
 public:
  // Shared with the engine this one replaced for rules whose label and definition hash
  // did not change (see the Engine constructor).
  std::vector<std::shared_ptr<internal::WindowTable>> tables;
  std::unique_ptr<DetectScratch> scratch;
  int64_t newest_ns = INT64_MIN;  // newest event time the shard has seen
  int64_t watermark_ns = INT64_MIN;
  std::vector<Alert> expired;  // advanceTime(): alerts of the windows one rule closed
};

// Per detection rule with `suppress`: the event time of the last delivered alert of each
// key. Used from one serial stage only.
class Engine::Suppressor {
 public:
  Suppressor(const RuleSet& rules, size_t max_keys, const Counters& counters)
      : rules_(rules), max_keys_(max_keys), counters_(counters), tables_(rules.detections.size()) {}

  bool admit(uint32_t detection, std::string_view key, int64_t event_ns) {
    const int64_t period = rules_.detections[detection].suppress_ns;
    absl::flat_hash_map<std::string, int64_t>& table = tables_[detection];
    // Debian's Abseil has its own string_view, which heterogeneous lookup needs.
    auto it = table.find(absl::string_view(key.data(), key.size()));
    if (it != table.end()) {
      if (event_ns >= it->second && event_ns - it->second < period) {
        counters_.detection_suppressed[detection]->add();
        return false;
      }
      it->second = std::max(it->second, event_ns);
      return true;
    }
    if (table.size() >= max_keys_) makeRoom(table, event_ns - period);
    table.emplace(std::string(key), event_ns);
    return true;
  }

  // The keys of `detection` and the event time of each one's last delivered alert, for
  // checkpoints.
  const absl::flat_hash_map<std::string, int64_t>& keys(uint32_t detection) const {
    return tables_[detection];
  }
  absl::flat_hash_map<std::string, int64_t>& keys(uint32_t detection) { return tables_[detection]; }

 private:
  // Drops the keys whose period ended before `expired_before`. If the table is still
  // full, drops the key with the oldest alert and counts it, because that key's next
  // alert will not be suppressed.
  void makeRoom(absl::flat_hash_map<std::string, int64_t>& table, int64_t expired_before) {
    absl::erase_if(table, [&](const auto& entry) { return entry.second < expired_before; });
    if (table.size() < max_keys_) return;
    auto oldest = table.begin();
    for (auto it = table.begin(); it != table.end(); ++it) {
      if (it->second < oldest->second) oldest = it;
    }
    table.erase(oldest);
    counters_.suppress_evictions->add();
  }

  const RuleSet& rules_;
  size_t max_keys_;
  const Counters& counters_;
  std::vector<absl::flat_hash_map<std::string, int64_t>> tables_;
};

}  // namespace vigil::correlate
