// The correlation engine without the pipeline around it: evaluates events against the
// detection rules and keeps the correlation windows. Usable single-threaded from tests
// and offline tools; the pipeline calls the same pieces from its stages.
//
// Threads: detect() is const and may run on any number of threads, each with its own
// DetectScratch. Correlation state is split into shards, and updateCorrelation() for one
// shard must run on one thread at a time. The pipeline gives each shard its own serial
// stage, so the state needs no locks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
  // Groups one tenant may hold per correlation rule, over all shards; 0 means max_keys.
  // A tenant at its limit evicts its own least recently updated group (counted in
  // vigil_correlation_tenant_evictions_total), so one tenant cannot push out the others.
  size_t max_keys_per_tenant = 0;
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
  // How far behind a shard's newest event time an event may be and still reach an
  // absence window. The shard's watermark is its newest event time minus this; absence
  // windows close when the watermark passes their deadline, and absence events older than
  // the watermark are late (vigil_correlation_late_events_total).
  int64_t allowed_lateness_ns = 0;
  // Keys kept per detection rule with `suppress` (each key stores the event time of its
  // last delivered alert). When full, expired keys are dropped first, then the oldest.
  size_t max_suppress_keys = 4096;
  // Evaluate only the rules whose prefilter literals or presence fields occur in the
  // event, and reuse the scan in their evaluation (see docs/rules.md). False evaluates
  // every rule in full, which gives the same matches more slowly; tests and benchmarks
  // compare the two.
  bool prefilter = true;
  // Version of the rule set, copied into Alert::rules_version of every alert, so each
  // alert names the content version that raised it. 0 when rules come from files only.
  uint64_t rules_version = 0;
  // Source of the sequence number in Alert::id. Engines that replace each other on a
  // rule reload share one, so alert ids stay unique over reloads. Null gives the engine
  // its own counter, starting at 1.
  std::shared_ptr<std::atomic<uint64_t>> alert_sequence;
};

// One in this many rule evaluations per DetectScratch is timed for
// vigil_detection_rule_sampled_ns_total.
inline constexpr uint64_t kRuleTimeSampleInterval = 64;

// Maximum length of an encoded group key: the tenant and the group-by values, each
// preceded by its length (1 byte per 7 bits of length). A longer key is cut and ends in a
// hash of the whole key (internal/group_key.h), so groups that differ only after the cut
// still get windows of their own. The alert shows the cut values, and the fields after
// the cut as empty. Cuts are counted in vigil_correlation_group_key_truncated_total.
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
  //
  // With `previous` (the engine this one will replace, using the same `metrics` and the
  // same shard count, key limits and evidence sizes), the window tables of correlation
  // rules whose label and definition hash are unchanged are shared with `previous`
  // instead of allocated, so a rule reload allocates only for new and changed rules.
  // Such a table holds whatever `previous` has written to it; takeOverShard() leaves it
  // as it is. Safe in the pipeline because a shard's stage runs the batches of the old
  // engine before the first batch of the new one, so one engine at a time uses a shared
  // table. An engine built this way must not run next to `previous` in other ways.
  Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options,
         MetricsRegistry* metrics = nullptr, const Engine* previous = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const RuleSet& rules() const { return *rules_; }
  const EngineOptions& options() const { return options_; }

  // Evaluates `event` against the detection rules and writes the indices of the rules
  // that match to `out`, in rule order (at most out.size(); further matches are counted
  // in vigil_detection_matches_dropped_total). Rules whose logsource does not apply to
  // the event are skipped, and so are prefiltered rules none of whose literals or
  // presence fields occur in the event; neither changes the result. Counts evaluations, prefilter hits and
  // matches per rule, and times one evaluation in kRuleTimeSampleInterval. Returns the
  // number written. Never allocates; thread-safe with one scratch per thread.
  size_t detect(const Event& event, DetectScratch& scratch, std::span<uint32_t> out) const;

  // The correlation rules that count matches of detection rule `detection`.
  std::span<const uint32_t> correlationsFor(uint32_t detection) const;
  // The correlation rules that count this match of `detection` by `event`: those for
  // every tenant and those of the event's tenant. A rule for every tenant may be
  // counted by many tenants' correlations, and each event reaches only its own tenant's.
  // Never allocates.
  std::span<const uint32_t> correlationsFor(uint32_t detection, const Event& event) const;

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

  // updateCorrelation() and then delivery of the result: appends the rule's alert to `out`
  // unless a chaining correlation without `generate: true` suppresses it, and feeds it to
  // the correlations that chain this rule (in the same shard: chained rules are pinned to
  // one shard), appending their alerts too. Use this rather than updateCorrelation()
  // when the rule set may chain correlations. Call for one shard from one thread at a time.
  void correlate(uint32_t shard, uint32_t correlation, uint32_t detection, const Event& event,
                 std::vector<Alert>& out);

  // The same two calls without the detection rule, for callers that do not carry it.
  // updateCorrelation() then evaluates the referenced rules again to find the ones that
  // `event` matches, with a scratch the shard owns. NOTE: with `aliases`, shardOf() here
  // uses the group-by fields of the first referenced rule, so events of one group may
  // reach different shards. Run such rule sets with one shard, or use the overloads
  // that take the detection rule.
  uint32_t shardOf(uint32_t correlation, const Event& event) const;
  bool updateCorrelation(uint32_t shard, uint32_t correlation, const Event& event, Alert& alert);

  // Moves the watermark of `shard` to at least `event_ns` minus the allowed lateness and
  // appends the alerts of the windows it closes (absence, and rules whose condition has an
  // upper bound) to `out`, delivered as correlate() delivers them. Call it with the time
  // of every event, in arrival order, before the event's updates, so windows close on
  // event time alone and a replay raises the same alerts as live traffic. Allocates only
  // when an alert is raised. Call for one shard from one thread at a time.
  void advanceTime(uint32_t shard, const Event& event, std::vector<Alert>& out);
  // The same with the time in nanoseconds, as eventTime() gives it for an event.
  void advanceTimeTo(uint32_t shard, int64_t event_ns, std::vector<Alert>& out);
  // Whether any rule (absence, or a window with an upper bound) reads the watermark.
  // Without such rules nothing depends on the watermark between events, so a caller may
  // move it once to the newest time of a run of events instead of once per event.
  bool hasTimerRules() const { return !timer_rules_.empty(); }
  // The time that windows and the watermark use for `event`: its own timestamp, or its
  // receive time when it has none.
  static int64_t eventTime(const Event& event) {
    return event.timestamp_ns != 0 ? event.timestamp_ns : event.receive_ns;
  }
  // The shard's watermark (INT64_MIN before its first event).
  int64_t watermark(uint32_t shard) const;

  // Applies the `suppress` option of the detection rule that raised `alert`: returns
  // false (and counts it in vigil_alerts_suppressed_total) when the same key alerted
  // within the rule's suppress timespan of event time, else records it and returns true.
  // Alerts without Alert::suppress_key always pass. Not thread-safe: call it from one
  // serial stage (the pipeline's deliver stage).
  bool admitAlert(const Alert& alert);

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
  // Bytes allocated for correlation state over all rules and shards (the value of
  // vigil_correlation_state_bytes).
  size_t stateBytes() const;

  // Memory of one correlation rule's state: bytes per group slot (the slot, its window
  // state, its timer entry and its share of the index), the evidence pool bytes and the
  // key bytes in use over all shards. The slots are preallocated, so bytes_per_group is
  // also what an idle slot costs; a group's key takes a block of 8 to 1024 bytes more.
  struct StateSize {
    uint32_t correlation = 0;
    size_t bytes_per_group = 0;
    size_t evidence_pool_bytes = 0;
    size_t key_bytes = 0;  // key blocks in use, over all shards (8 to 1024 bytes per group)
    size_t groups = 0;     // groups held, over all shards
  };
  std::vector<StateSize> stateSizes() const;

  // Checkpoints (file layout in correlate/checkpoint.h). saveShard() appends the state
  // of `shard`: its watermark and, per correlation rule, the rule's label, definition
  // hash and groups. Call it from the thread that owns the shard (its serial stage).
  void saveShard(uint32_t shard, std::string& out) const;
  // Appends the suppression keys of the detection rules with `suppress`. Call it from
  // the thread that calls admitAlert() (the deliver stage).
  void saveSuppression(std::string& out) const;
  // Returns a whole checkpoint file. Only while no other thread uses the engine.
  std::string checkpoint() const;

  struct RestoreSummary {
    size_t rules_restored = 0;  // state restored (label and definition hash match)
    size_t rules_changed = 0;   // same label, other definition: started fresh
    size_t rules_removed = 0;   // saved but no longer loaded
    size_t groups = 0;          // correlation groups restored
    size_t suppress_keys = 0;   // suppression keys of detection rules restored
  };
  // Restores a checkpoint into this engine, which must not have seen events yet. Rules
  // are matched by label (id, else title); a rule whose definition hash differs starts
  // fresh. Groups move to the shard that owns them under this engine's shard count.
  // Returns InvalidArgument (and counts it in vigil_checkpoint_rejected_total) for a
  // corrupt, cut or other-version file, and then changes nothing.
  absl::StatusOr<RestoreSummary> restore(std::string_view bytes);

  // Rule reloads (engine_handover.cc). A new engine takes over the state of the engine
  // it replaces shard by shard, so the shard's serial stage can do it between two
  // batches without stopping the others. Both engines need the same shard count.
  struct HandoverSummary {
    size_t groups_kept = 0;     // groups of rules with the same label and definition hash
    size_t groups_dropped = 0;  // groups of changed or removed rules
  };
  // Copies the windows of `shard` from `previous` for every correlation rule whose label
  // and definition hash are unchanged, and the shard's newest event time and watermark.
  // Call it from the thread that owns the shard, before this engine sees events there.
  HandoverSummary takeOverShard(uint32_t shard, const Engine& previous);
  // Copies the suppression keys of the detection rules whose label, suppress period and
  // fields are unchanged. Call it from the thread that calls admitAlert().
  size_t takeOverSuppression(const Engine& previous);

  // How the rules of this engine relate to those of `previous`, by label and definition
  // hash: correlation rules kept as they were, changed, removed and added.
  struct RuleDiff {
    size_t kept = 0;
    size_t changed = 0;
    size_t removed = 0;
    size_t added = 0;
  };
  RuleDiff diffCorrelations(const Engine& previous) const;

 private:
  struct Counters;
  class Shard;
  class Suppressor;

  // Creates the window tables of every shard, sharing those of `previous` (may be null)
  // as the constructor describes.
  void buildTables(const Engine* previous);
  // Fills tenant_correlations_for_ and shared_correlations_for_ from correlations_for_.
  void splitCorrelationsByTenant();
  // Fills the rule part of a correlation alert and counts it.
  void finishAlert(uint32_t correlation, Alert& alert) const;
  // Returns the shard of a stored group key, as shardOf() computes it.
  uint32_t shardOfKey(uint32_t correlation, std::string_view key) const;
  // Adds `event` at `position` of `correlation` (after the caller resolved it); events
  // older than `watermark_ns` are late for windows that close on the watermark.
  bool updateAt(uint32_t shard, uint32_t correlation, uint32_t position, const Event& event,
                int64_t watermark_ns, Alert& alert);
  // Delivers a finished correlation alert: to `out` when the rule generates alerts, and
  // as an event to every correlation that chains the rule.
  void route(uint32_t shard, uint32_t correlation, Alert& alert, std::vector<Alert>& out);

  static constexpr uint32_t kUnpinned = UINT32_MAX;

  std::shared_ptr<const RuleSet> rules_;
  EngineOptions options_;
  std::unique_ptr<MetricsRegistry> own_metrics_;
  MetricsRegistry* metrics_ = nullptr;  // where the counters live (own_metrics_ or the caller's)
  std::unique_ptr<Counters> counters_;
  std::vector<std::vector<uint32_t>> correlations_for_;  // detection -> correlations
  // Per detection rule for every tenant that tenants' correlations count, sorted by
  // tenant: the tenant and the correlations for every tenant plus that tenant's. Empty
  // for the other detection rules.
  struct TenantCorrelations {
    std::string tenant;
    std::vector<uint32_t> correlations;
  };
  std::vector<std::vector<TenantCorrelations>> tenant_correlations_for_;
  // Per detection rule: the correlations for every tenant that count it.
  std::vector<std::vector<uint32_t>> shared_correlations_for_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<uint32_t> timer_rules_;  // absence correlations and those whose windows close
  // Per correlation: the (correlation, position) pairs that chain it.
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> chained_into_;
  // Per correlation: the shard that contains all its groups when it takes part in a chain
  // (so an inner alert reaches the outer rule on the same thread, at the same point of
  // the event stream), else kUnpinned (the shard follows the group key).
  std::vector<uint32_t> pinned_shard_;
  // correlationRuleHash() of each correlation rule. It seeds the shard of a group key, so
  // an unchanged rule keeps its groups in the same shards when the rule set is reloaded.
  std::vector<uint64_t> rule_hashes_;
  std::shared_ptr<std::atomic<uint64_t>> alert_sequence_;
  std::unique_ptr<Suppressor> suppressor_;
};

}  // namespace vigil::correlate
