// The correlation engine without the pipeline around it: evaluates events against the
// detection rules and keeps the correlation windows. Usable single-threaded from tests
// and offline tools; the pipeline calls the same pieces from its stages.
//
// Threads: detect() is const and may run on any number of threads, each with its own
// DetectScratch. Correlation state is split into shards, and updateCorrelation() for one
// shard must run on one thread at a time. The pipeline gives each shard its own serial
// stage, so the state needs no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/event.h"
#include "common/metrics.h"
#include "correlate/alert.h"
#include "correlate/rules.h"

namespace vigil::correlate {

struct EngineOptions {
  // Groups kept per correlation rule, over all shards. When a shard is full, the group
  // updated least recently is evicted (counted in vigil_correlation_evictions_total).
  size_t max_keys = 4096;
  // Number of correlation shards (the pipeline runs one serial stage per shard).
  size_t shards = 1;
  // Bytes of raw text kept per evidence event; longer events are cut at this size.
  size_t evidence_bytes = 512;
  // Evidence events kept per correlation rule, over all shards, in a pool that the rule's
  // groups share. Newer events overwrite older ones. An alert shows those of its events
  // that are still in the pool (at most Alert::kMaxEvidence), and always the event that
  // raised it.
  size_t evidence_events = 1024;
  // Source of Alert::detect_ns; null means RealClock::instance(). Not owned.
  const Clock* clock = nullptr;
  // Evaluate only the rules whose prefilter literals occur in the event (see
  // docs/rules.md). False evaluates every rule, which gives the same matches more slowly;
  // tests and benchmarks compare the two.
  bool prefilter = true;
};

// One in this many rule evaluations per DetectScratch is timed for
// vigil_detection_rule_sampled_ns_total.
inline constexpr uint64_t kRuleTimeSampleInterval = 64;

// Maximum length of an encoded group key: the tenant and the group-by values, each
// preceded by its length (1 byte per 7 bits of length). Longer keys are cut, so two
// groups whose keys agree on the first kMaxGroupKeyBytes bytes share one window, and the
// alert shows the cut values. Cuts are counted in
// vigil_correlation_group_key_truncated_total.
inline constexpr size_t kMaxGroupKeyBytes = 1024;

// Per-thread memory for detect(): Hyperscan scratch for the prefilter and the `re`
// values, and the prefilter's per-event tables. One thread uses one DetectScratch; create
// it for the rule set the engine runs.
class DetectScratch {
 public:
  explicit DetectScratch(const RuleSet& rules);
  ~DetectScratch();
  DetectScratch(const DetectScratch&) = delete;
  DetectScratch& operator=(const DetectScratch&) = delete;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

class Engine {
 public:
  // Builds the engine and preallocates every correlation window: per rule and shard,
  // ceil(max_keys / shards) groups with their window state (see stateSizes()), and an
  // evidence pool of ceil(evidence_events / shards) events of evidence_bytes. Registers its
  // counters in `metrics`, or in a private registry when `metrics` is null.
  Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options,
         MetricsRegistry* metrics = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const RuleSet& rules() const { return *rules_; }
  const EngineOptions& options() const { return options_; }

  // Evaluates `event` against the detection rules and writes the indices of the rules
  // that match to `out`, in rule order (at most out.size(); further matches are counted
  // in vigil_detection_matches_dropped_total). Rules whose logsource does not apply to
  // the event are skipped, and so are prefiltered rules none of whose literals occur in
  // the event; neither changes the result. Counts evaluations, prefilter hits and
  // matches per rule, and times one evaluation in kRuleTimeSampleInterval. Returns the
  // number written. Never allocates; thread-safe with one scratch per thread.
  size_t detect(const Event& event, DetectScratch& scratch, std::span<uint32_t> out) const;

  // The correlation rules that count matches of detection rule `detection`.
  std::span<const uint32_t> correlationsFor(uint32_t detection) const;

  // Builds the alert that detection rule `detection` raises for one matching event, and
  // counts it. Allocates (alerts are rare). Thread-safe.
  Alert detectionAlert(uint32_t detection, const Event& event) const;

  // Returns the shard that owns (correlation, group of `event` as matched by detection
  // rule `detection`). The group key depends on the detection rule only when the
  // correlation has `aliases`. Never allocates.
  uint32_t shardOf(uint32_t correlation, uint32_t detection, const Event& event) const;

  // Adds `event`, a match of detection rule `detection`, to the window of its group in
  // correlation rule `correlation`, which must live in `shard` (see shardOf). When the
  // rule's condition holds, fills `alert`, restarts the group's window empty and returns
  // true. A detection rule that the correlation does not reference is counted in
  // vigil_correlation_not_referenced_total, and a value_count event without the counted
  // field in vigil_correlation_value_missing_total. Allocates only when an alert is
  // raised. Call for one shard from one thread at a time.
  bool updateCorrelation(uint32_t shard, uint32_t correlation, uint32_t detection,
                         const Event& event, Alert& alert);

  // The same two calls without the detection rule, for callers that do not carry it.
  // updateCorrelation() then evaluates the referenced rules again to find the ones that
  // `event` matches, with a scratch the shard owns. NOTE: with `aliases`, shardOf() here
  // uses the group-by fields of the first referenced rule, so events of one group may
  // reach different shards. Run such rule sets with one shard, or use the overloads
  // that take the detection rule.
  uint32_t shardOf(uint32_t correlation, const Event& event) const;
  bool updateCorrelation(uint32_t shard, uint32_t correlation, const Event& event, Alert& alert);

  // Single-threaded convenience for tests and tools: runs detect(), raises detection
  // alerts and feeds every matching correlation, appending alerts to `out`.
  void process(const Event& event, DetectScratch& scratch, std::vector<Alert>& out);

  // Same as the correlation half of process(), for an event already known to match
  // detection rule `detection` (replays that carry the rule label). Returns NotFound
  // for an unknown rule id or name.
  absl::Status injectMatch(std::string_view rule_id_or_name, const Event& event,
                           std::vector<Alert>& out);

  // Size of the detection prefilter: detection rules, those evaluated only when one of
  // their literals occurs, and the distinct literals.
  struct PrefilterStats {
    size_t rules = 0;
    size_t prefiltered_rules = 0;
    size_t literals = 0;
  };
  PrefilterStats prefilterStats() const;

  // Groups currently held, over all rules and shards.
  int64_t keyCount() const;

  // Memory of one correlation rule's state: bytes per group slot (the slot, its key
  // reserve, its window state and its share of the index), and the evidence pool bytes
  // over all shards. The slots are preallocated, so this is also what an idle slot costs.
  struct StateSize {
    uint32_t correlation = 0;
    size_t bytes_per_group = 0;
    size_t evidence_pool_bytes = 0;
  };
  std::vector<StateSize> stateSizes() const;

 private:
  struct Counters;
  class Shard;

  std::shared_ptr<const RuleSet> rules_;
  EngineOptions options_;
  std::unique_ptr<MetricsRegistry> own_metrics_;
  std::unique_ptr<Counters> counters_;
  std::vector<std::vector<uint32_t>> correlations_for_;  // detection -> correlations
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace vigil::correlate
