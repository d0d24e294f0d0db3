#include "correlate/pipeline.h"

#include <absl/container/flat_hash_map.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/event.h"
#include "common/log.h"
#include "correlate/checkpoint.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"
#include "intel/snapshot.h"

namespace vigil::correlate {
namespace {

constexpr size_t kMaxMatchesPerEvent = 32;

bool prefixContains(const IpPrefix& prefix, const IpAddr& addr) {
  size_t full_bytes = prefix.len / 8;
  for (size_t i = 0; i < full_bytes; ++i) {
    if (addr.bytes[i] != prefix.addr.bytes[i]) return false;
  }
  unsigned rest = prefix.len % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xFFu << (8 - rest));
  return (addr.bytes[full_bytes] & mask) == (prefix.addr.bytes[full_bytes] & mask);
}

constexpr double kNanosPerSecond = 1e9;
// Keeps next_ns_ + interval far below INT64_MAX for any rate and burst.
constexpr double kMaxToleranceNs = 0x1p62;

}  // namespace

QuotaBucket::QuotaBucket(double events_per_second, double burst) {
  const double interval = std::clamp(kNanosPerSecond / events_per_second, 1.0, kMaxToleranceNs);
  interval_ns_ = std::llround(interval);
  tolerance_ns_ = std::llround(std::min(std::max(burst, 1.0) * interval, kMaxToleranceNs));
}

bool QuotaBucket::tryTake(int64_t now_ns) {
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  while (true) {
    // An idle bucket restarts at now, so unused time never adds more than `burst` tokens.
    const int64_t after = std::max(next, now_ns) + interval_ns_;
    if (after - now_ns > tolerance_ns_) return false;
    if (next_ns_.compare_exchange_weak(next, after, std::memory_order_relaxed)) return true;
  }
}

// One (correlation rule, event) update, routed to the shard that owns the group.
struct WorkItem {
  uint32_t event = 0;
  uint32_t correlation = 0;
  uint32_t detection = 0;  // the detection rule whose match feeds the correlation
  uint32_t shard = 0;
};

struct Pipeline::Batch {
  size_t slot = 0;  // index in batches_, also the batch's reader slot in the snapshot store
  const intel::Snapshot* snapshot = nullptr;  // acquired in analyze, released in deliver
  std::shared_ptr<Engine> engine;              // set by the input stage, one per batch
  std::vector<std::unique_ptr<Event>> events;  // created once, reset per use
  std::vector<dataplane::Format> formats;      // the source format of each event
  std::vector<uint32_t> sources;               // index in sources_ of each event
  size_t count = 0;
  // The events that passed their tenant's quota, in event order: their indexes in
  // `events` and their addresses, for the batch call of the indicator matcher. All four
  // are sized at construction; kept_count are in use.
  std::vector<uint32_t> kept;
  std::vector<Event*> kept_events;
  std::vector<uint32_t> kept_tenants;      // tenant number of each kept event
  std::vector<size_t> kept_hits_before;    // its hit_count before matching
  size_t kept_count = 0;
  std::vector<WorkItem> work;  // fixed capacity; work_count are in use
  size_t work_count = 0;
  std::vector<Alert> alerts;  // cleared after delivery; keeps its capacity
  // Receive time of the event that raised each alert, by index in `alerts`: the source
  // of the receive-to-delivery latency counters.
  std::vector<int64_t> alert_receive_ns;
  // newest_ns[i]: the newest Engine::eventTime() of events 0..i, set by the admit step.
  // Shard stages without timer rules move their watermark to the last entry.
  std::vector<int64_t> newest_ns;
  // Events per (source, tenant) flow of this batch, added to the flow's counters once at
  // the end of the admit step instead of once per event. All zero between batches.
  struct FlowTally {
    uint32_t parsed = 0;
    uint32_t parse_errors = 0;
    uint32_t delivered = 0;
    uint32_t dropped_quota = 0;
  };
  std::vector<FlowTally> flow_tally;  // by flow index, sized at construction
  std::vector<uint32_t> flows_seen;   // flow indexes with a non-zero tally
  bool checkpoint = false;    // each stage saves its state after this batch
  // Set by the input stage when the batch enters, cleared by the deliver stage when it
  // leaves (release, so the next user sees every write of the last one).
  std::atomic<bool> in_use{false};
};

// Post-parse counters of one (source, tenant) pair.
struct Pipeline::FlowCounters {
  dataplane::ParseCounters parse;
  Counter* delivered = nullptr;      // passed on to matching and correlation
  Counter* dropped_quota = nullptr;  // over the tenant's quota, not correlated
};

// Hash of a tenant rule value: Event::fieldHash(), which mixes eight bytes per multiply
// over every byte. absl's string hash and its mixing took about 7% of a parse-only
// replay for these short host-name suffixes and names.
struct TenantValueHash {
  using is_transparent = void;
  size_t operator()(std::string_view value) const { return Event::fieldHash(value); }
};

struct TenantValueEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

// Consecutive tenant rules that compare one field by equality, or by suffix, with
// different values. An MSSP may have a rule per tenant, so a run is matched by looking the
// value (for suffixes, its tail of each length the run has) up in a table, not by
// comparing it with every rule. The first matching rule still wins.
struct TenantRuleRun {
  size_t end = 0;  // one past the run's last rule in tenant_rules
  bool suffix = false;
  // value -> lowest rule index
  absl::flat_hash_map<std::string, uint32_t, TenantValueHash, TenantValueEq> first_rule;
  std::vector<size_t> lengths;  // suffix runs: the distinct value lengths, ascending
};

// The index of the run's first rule whose value `value` equals or ends with, or -1.
// Plain integers in and out: an optional passed and returned through the stack was
// written in parts and read whole, which stalled on store forwarding in perf.
int64_t matchRun(const TenantRuleRun& run, std::string_view value) {
  if (!run.suffix) {
    auto it = run.first_rule.find(value);
    return it == run.first_rule.end() ? -1 : static_cast<int64_t>(it->second);
  }
  int64_t best = -1;
  for (size_t length : run.lengths) {
    if (length > value.size()) break;
    auto it = run.first_rule.find(value.substr(value.size() - length));
    if (it != run.first_rule.end() && (best < 0 || it->second < best)) best = it->second;
  }
  return best;
}

// Tenants are numbered at construction. Everything per tenant or per (source, tenant) is
// a vector indexed by those numbers, so the analyze stage never looks a name up.
struct Pipeline::Counters {
  Counter* events_in = nullptr;
  Counter* events_done = nullptr;
  Counter* oversize = nullptr;
  Counter* updates_dropped = nullptr;
  std::vector<Counter*> indicator_hits;    // by tenant number
  std::vector<Counter*> alerts_delivered;  // by tenant number
  // Alerts whose tenant has no number. Every event gets a numbered tenant, so this stays
  // at zero unless an engine raises an alert for a tenant it made up.
  Counter* alerts_delivered_other = nullptr;
  // Alerts by latency from the raising event's receipt to delivery; bucket b counts the
  // latencies in (kLatencyBoundsUs[b-1], kLatencyBoundsUs[b]] microseconds, the last
  // bucket everything above.
  std::vector<Counter*> alert_latency;
  Counter* alert_latency_sum_us = nullptr;
  Counter* reload_groups_kept = nullptr;
  Counter* reload_groups_dropped = nullptr;
  std::vector<std::string> tenant_names;                 // by tenant number
  std::map<std::string, uint32_t, std::less<>> tenant_numbers;  // name -> tenant number
  std::vector<Counter*> tenant_events;                   // by tenant number
  std::vector<std::unique_ptr<QuotaBucket>> quotas;      // by tenant number; null = none
  std::vector<FlowCounters> flows;                       // [source * tenants + tenant]
  std::vector<uint32_t> source_tenant;                   // by index in sources_
  std::vector<uint32_t> rule_tenant;                     // by index in tenant_rules
  std::vector<FieldRef> rule_fields;                     // by index in tenant_rules
  // By index in tenant_rules: the per-event value slot of assignTenant() for the rule's
  // field, shared by every rule on that field, or kUncachedField past the slots.
  std::vector<uint8_t> rule_field_slot;
  std::vector<TenantRuleRun> rule_runs;
  std::vector<int32_t> rule_run;  // by index in tenant_rules: its run in rule_runs, or -1
};

// Distinct fields whose values assignTenant() reads once per event; rules on further
// fields read theirs for every rule.
constexpr size_t kTenantFieldSlots = 4;
constexpr uint8_t kUncachedField = 0xff;

// Per-thread detection memory, created on a thread's first batch and again when the
// thread meets a batch on another engine (after a rule reload). The intel scratch
// belongs to the snapshot, one per batch slot.
struct ThreadState {
  // The engine whose rules detect_scratch was made for. A weak pointer, so an idle thread
  // does not keep a replaced engine alive, and a new engine at the same address is not
  // mistaken for it (owners are compared, not addresses).
  std::weak_ptr<Engine> engine;
  std::unique_ptr<DetectScratch> detect_scratch;
};

struct Pipeline::ThreadStates {
  explicit ThreadStates(std::function<std::unique_ptr<ThreadState>()> make) : states(make) {}
  tbb::enumerable_thread_specific<std::unique_ptr<ThreadState>> states;
};

namespace {

// Latency bucket bounds: 10^(k/10) microseconds for k = 10..80 (10 us to 100 s), so a
// percentile read from the buckets is within 26 % of the true value.
const std::vector<int64_t>& latencyBoundsUs() {
  static const std::vector<int64_t> bounds = [] {
    std::vector<int64_t> b;
    for (int k = 10; k <= 80; ++k) b.push_back(std::llround(std::pow(10.0, k / 10.0)));
    return b;
  }();
  return bounds;
}

std::unique_ptr<intel::SnapshotStore> storeWith(std::shared_ptr<const intel::IndicatorSet> set,
                                                size_t batches) {
  if (set == nullptr) return nullptr;
  auto store = std::make_unique<intel::SnapshotStore>(std::max<size_t>(batches, 1));
  store->publish(std::move(set));
  return store;
}

}  // namespace

Pipeline::Pipeline(std::vector<dataplane::Source*> sources,
                   std::shared_ptr<const intel::IndicatorSet> intel, Engine& engine,
                   std::vector<AlertSink*> sinks, MetricsRegistry& metrics, PipelineOptions options)
    : Pipeline(std::move(sources), static_cast<intel::SnapshotStore*>(nullptr), engine,
               std::move(sinks), metrics, options) {
  own_store_ = storeWith(std::move(intel), options_.batches);
  intel_ = own_store_.get();
}

Pipeline::Pipeline(std::vector<dataplane::Source*> sources, intel::SnapshotStore* intel,
                   Engine& engine, std::vector<AlertSink*> sinks, MetricsRegistry& metrics,
                   PipelineOptions options)
    : Pipeline(std::move(sources), intel, static_cast<EngineSlot*>(nullptr), std::move(sinks),
               metrics, options) {
  // The caller owns the engine, so the slot's pointer must not delete it.
  own_slot_ = std::make_unique<EngineSlot>(std::shared_ptr<Engine>(&engine, [](Engine*) {}));
  engines_ = own_slot_.get();
  checkpoint_parts_.resize(engines_->shards());
}

Pipeline::Pipeline(std::vector<dataplane::Source*> sources, intel::SnapshotStore* intel,
                   EngineSlot* engines, std::vector<AlertSink*> sinks, MetricsRegistry& metrics,
                   PipelineOptions options)
    : sources_(std::move(sources)),
      intel_(intel),
      engines_(engines),
      sinks_(std::move(sinks)),
      options_(options),
      counters_(std::make_unique<Counters>()) {
  options_.batch_size = std::max<size_t>(options_.batch_size, 1);
  options_.batches = std::max<size_t>(options_.batches, 1);

  registerCounters(metrics);
  if (engines_ != nullptr) checkpoint_parts_.resize(engines_->shards());

  const size_t arena_bytes =
      dataplane::eventArenaBytes(options_.max_message_bytes, options_.arena_headroom_bytes);
  if (intel_ != nullptr && intel_->readers() < options_.batches) {
    VIGIL_LOG_WARN("pipeline batches lowered to the snapshot store's reader slots batches={} "
                   "reader_slots={}",
                   options_.batches, intel_->readers());
    options_.batches = intel_->readers();
  }
  for (size_t b = 0; b < options_.batches; ++b) {
    auto batch = std::make_unique<Batch>();
    batch->slot = b;
    for (size_t i = 0; i < options_.batch_size; ++i) {
      batch->events.push_back(std::make_unique<Event>(arena_bytes));
    }
    batch->formats.resize(options_.batch_size);
    batch->sources.resize(options_.batch_size);
    batch->kept.resize(options_.batch_size);
    batch->kept_events.resize(options_.batch_size);
    batch->kept_tenants.resize(options_.batch_size);
    batch->kept_hits_before.resize(options_.batch_size);
    batch->newest_ns.resize(options_.batch_size);
    batch->flow_tally.resize(counters_->flows.size());
    batch->flows_seen.reserve(counters_->flows.size());
    batch->work.resize(options_.batch_size * options_.max_correlation_updates_per_event);
    batches_.push_back(std::move(batch));
  }

  thread_states_ = std::make_unique<ThreadStates>([] { return std::make_unique<ThreadState>(); });
}

Pipeline::~Pipeline() = default;

void Pipeline::registerCounters(MetricsRegistry& metrics) {
  Counters& c = *counters_;
  c.events_in = &metrics.counter("vigil_pipeline_events_total",
                                 "Messages taken from the source rings into the pipeline");
  c.events_done = &metrics.counter("vigil_pipeline_events_done_total",
                                   "Events that have left the pipeline's last stage");
  c.oversize =
      &metrics.counter("vigil_pipeline_oversize_dropped_total",
                       "Messages dropped because they exceed the pipeline's max_message_bytes");
  c.updates_dropped =
      &metrics.counter("vigil_correlation_updates_dropped_total",
                       "Correlation updates dropped because an event exceeded the per-event limit");
  for (int64_t bound : latencyBoundsUs()) {
    c.alert_latency.push_back(&metrics.counter(
        "vigil_alert_latency_bucket_total",
        "Delivered alerts by latency from receipt of the raising event to delivery to the "
        "sinks: each bucket counts latencies above the next lower upper_us, up to its own",
        {{"upper_us", std::to_string(bound)}}));
  }
  c.alert_latency.push_back(&metrics.counter("vigil_alert_latency_bucket_total", "",
                                             {{"upper_us", "+Inf"}}));
  c.alert_latency_sum_us =
      &metrics.counter("vigil_alert_latency_sum_us_total",
                       "Sum of the receipt-to-delivery latencies of delivered alerts, in us");
  const char* reload_help =
      "Correlation groups at a rule reload: kept (rule unchanged) or dropped (rule changed "
      "or removed)";
  c.reload_groups_kept =
      &metrics.counter("vigil_rules_reload_groups_total", reload_help, {{"outcome", "kept"}});
  c.reload_groups_dropped =
      &metrics.counter("vigil_rules_reload_groups_total", reload_help, {{"outcome", "dropped"}});

  // Number the tenants: "default" first, then in order of first appearance.
  std::map<std::string, uint32_t, std::less<>>& numbers = c.tenant_numbers;
  auto number = [&](std::string_view tenant) {
    auto [it, inserted] =
        numbers.emplace(std::string(tenant), static_cast<uint32_t>(c.tenant_names.size()));
    if (inserted) c.tenant_names.push_back(it->first);
    return it->second;
  };
  number("default");
  for (dataplane::Source* source : sources_) c.source_tenant.push_back(number(source->tenant()));
  std::vector<std::string_view> slot_fields;
  for (const TenantRule& rule : options_.tenant_rules) {
    c.rule_tenant.push_back(number(rule.tenant));
    c.rule_fields.push_back(Event::resolve(rule.field));
    uint8_t slot = kUncachedField;
    if (rule.match == TenantRule::Match::kFieldEquals ||
        rule.match == TenantRule::Match::kFieldSuffix) {
      auto it = std::find(slot_fields.begin(), slot_fields.end(), std::string_view(rule.field));
      if (it != slot_fields.end()) {
        slot = static_cast<uint8_t>(it - slot_fields.begin());
      } else if (slot_fields.size() < kTenantFieldSlots) {
        slot = static_cast<uint8_t>(slot_fields.size());
        slot_fields.push_back(rule.field);
      }
    }
    c.rule_field_slot.push_back(slot);
  }
  const std::vector<TenantRule>& rules = options_.tenant_rules;
  c.rule_run.assign(rules.size(), -1);
  for (size_t r = 0; r < rules.size(); ++r) {
    const TenantRule& rule = rules[r];
    const bool suffix = rule.match == TenantRule::Match::kFieldSuffix;
    if (!suffix && rule.match != TenantRule::Match::kFieldEquals) continue;
    const bool extends = r > 0 && c.rule_run[r - 1] >= 0 && rules[r - 1].match == rule.match &&
                         rules[r - 1].field == rule.field;
    if (!extends) {
      c.rule_runs.emplace_back();
      c.rule_runs.back().suffix = suffix;
    }
    TenantRuleRun& run = c.rule_runs.back();
    c.rule_run[r] = static_cast<int32_t>(c.rule_runs.size() - 1);
    run.end = r + 1;
    // try_emplace keeps the first rule of a value that appears twice.
    run.first_rule.try_emplace(std::string(rule.value), static_cast<uint32_t>(r));
    const size_t length = rule.value.size();
    if (suffix && std::find(run.lengths.begin(), run.lengths.end(), length) == run.lengths.end()) {
      run.lengths.insert(std::upper_bound(run.lengths.begin(), run.lengths.end(), length), length);
    }
  }
  for (const TenantQuota& quota : options_.tenant_quotas) number(quota.tenant);

  const size_t tenants = c.tenant_names.size();
  c.quotas.resize(tenants);
  for (const TenantQuota& quota : options_.tenant_quotas) {
    c.quotas[number(quota.tenant)] =
        std::make_unique<QuotaBucket>(quota.max_events_per_second, quota.burst);
  }
  for (const std::string& tenant : c.tenant_names) {
    c.tenant_events.push_back(&metrics.counter("vigil_tenant_events_total",
                                               "Events analyzed, by the tenant they were assigned",
                                               {{"tenant", tenant}}));
    c.indicator_hits.push_back(&metrics.counter(
        "vigil_indicator_hits_total", "Indicator hits added to events, by the event's tenant",
        {{"tenant", tenant}}));
    c.alerts_delivered.push_back(&metrics.counter("vigil_alerts_delivered_total",
                                                  "Alerts handed to the alert sinks, by tenant",
                                                  {{"tenant", tenant}}));
  }
  c.alerts_delivered_other =
      &metrics.counter("vigil_alerts_delivered_total", "Alerts handed to the alert sinks, by tenant",
                       {{"tenant", std::string(kOtherTenantLabel)}});
  for (dataplane::Source* source : sources_) {
    for (const std::string& tenant : c.tenant_names) {
      const Labels labels{{"source", source->name()}, {"tenant", tenant}};
      FlowCounters flow;
      flow.parse.parsed =
          &metrics.counter("vigil_events_parsed_total", "Events in a known format", labels);
      flow.parse.parse_errors = &metrics.counter("vigil_parse_errors_total",
                                                 "Events in no known format, kept as raw", labels);
      flow.parse.truncated = &metrics.counter("vigil_events_truncated_total",
                                              "Events cut at the source's size limit", labels);
      flow.parse.invalid_utf8 = &metrics.counter(
          "vigil_events_invalid_utf8_total", "Events with invalid UTF-8 that was replaced", labels);
      flow.parse.missing_pri = &metrics.counter(
          "vigil_events_missing_pri_total",
          "RFC 3164 events without PRI, given PRI 13 (user.notice)", labels);
      flow.parse.zone_assumed = &metrics.counter(
          "vigil_events_zone_assumed_total",
          "RFC 5424 events whose TIMESTAMP had no UTC offset and was read as UTC", labels);
      flow.parse.fields_overflow = &metrics.counter(
          "vigil_events_fields_overflow_total",
          "Events with more generic fields than the field table holds; the rest went to the "
          "event's overflow area",
          labels);
      flow.parse.arena_full = &metrics.counter(
          "vigil_events_arena_full_total",
          "Events whose decoded values or overflow fields did not all fit the event arena",
          labels);
      flow.delivered = &metrics.counter("vigil_events_delivered_total",
                                        "Events passed on to indicator matching and correlation",
                                        labels);
      Labels dropped_labels = labels;
      dropped_labels.emplace_back("reason", "tenant_quota");
      flow.dropped_quota = &metrics.counter(
          "vigil_events_dropped_total", "Parsed events not correlated, by reason", dropped_labels);
      c.flows.push_back(flow);
    }
  }
}

bool Pipeline::anyRingReady() const {
  for (dataplane::Source* source : sources_) {
    if (source->ring().size() != 0) return true;
  }
  return false;
}

bool Pipeline::allSourcesDone() const {
  for (dataplane::Source* source : sources_) {
    // finished() first: a source publishes its last message before it reports finished.
    if (!source->finished() || source->ring().size() != 0) return false;
  }
  return true;
}

// Takes up to batch_size messages, one per source in turn, so a busy source cannot
// starve the others. Returns false when the ring set was empty.
bool Pipeline::fillBatch(Batch& batch) {
  batch.count = 0;
  batch.work_count = 0;
  size_t empty_in_a_row = 0;
  size_t taken = 0;  // messages popped, counted once per batch
  while (batch.count < options_.batch_size && empty_in_a_row < sources_.size()) {
    const size_t source_index = next_source_;
    dataplane::Source& source = *sources_[source_index];
    next_source_ = (next_source_ + 1) % sources_.size();
    dataplane::RawMessage* message = source.ring().front();
    if (message == nullptr) {
      ++empty_in_a_row;
      continue;
    }
    empty_in_a_row = 0;
    ++taken;
    if (message->len > options_.max_message_bytes) {
      counters_->oversize->add();
      source.ring().pop();
      continue;
    }
    Event& event = *batch.events[batch.count];
    event.reset();
    // Trades the slot's buffer for the arena's when their sizes match (the sources'
    // max_message_bytes equals options_.max_message_bytes and the headroom is the
    // default), so the message is not copied a second time.
    dataplane::moveToEvent(*message, event);
    event.receive_ns = message->receive_ns;
    event.peer = message->peer;
    event.vlan = message->vlan;
    event.source_id = message->source_id != 0 ? message->source_id : source.id();
    event.tenant = source.tenant();
    if (message->truncated) event.flags |= kFlagTruncated;
    batch.formats[batch.count] = source.format();
    batch.sources[batch.count] = static_cast<uint32_t>(source_index);
    ++batch.count;
    source.ring().pop();
  }
  if (taken != 0) counters_->events_in->add(taken);
  return batch.count > 0;
}

// The batch the input stage fills next: the free batch with the lowest index. Reusing
// the batch that left last, instead of cycling through all of them, keeps its events and
// arenas in the CPU cache. With one worker the pipeline then runs on one batch. The token
// count equals the number of batches, so one is always free when the input stage runs.
Pipeline::Batch* Pipeline::freeBatch() {
  while (true) {
    for (const auto& batch : batches_) {
      if (!batch->in_use.load(std::memory_order_acquire)) return batch.get();
    }
    std::this_thread::yield();
  }
}

void Pipeline::analyzeBatch(Batch& batch) {
  ThreadState& state = *thread_states_->states.local();
  if (state.engine.owner_before(batch.engine) || batch.engine.owner_before(state.engine) ||
      state.detect_scratch == nullptr) {
    state.detect_scratch = std::make_unique<DetectScratch>(batch.engine->rules());
    state.engine = batch.engine;
  }
  // One snapshot for the whole batch, held until deliverBatch() releases it.
  const intel::Snapshot* snapshot =
      intel_ != nullptr ? intel_->acquire(batch.slot) : nullptr;
  batch.snapshot = snapshot;

  // The steps run over the whole batch in turn, so the indicator matcher gets every kept
  // event at once and can overlap the cache misses of consecutive events.
  admitBatch(batch);
  if (snapshot != nullptr && batch.kept_count != 0) {
    const int64_t wall_ns = RealClock::instance().nowNs();
    const std::span<Event* const> kept(batch.kept_events.data(), batch.kept_count);
    snapshot->matchBatch(batch.slot, kept, wall_ns);
    // Hits are counted by the event's tenant.
    for (size_t k = 0; k < batch.kept_count; ++k) {
      const size_t added = batch.kept_events[k]->hit_count - batch.kept_hits_before[k];
      if (added != 0) counters_->indicator_hits[batch.kept_tenants[k]]->add(added);
    }
  }
  detectBatch(batch, *state.detect_scratch);
}

// Parses each event, assigns its tenant and applies the tenant's quota. Events within the
// quota are counted as delivered and listed in batch.kept and batch.kept_events; the rest
// are counted as dropped and skip matching and detection.
void Pipeline::admitBatch(Batch& batch) {
  dataplane::ParseOptions parse_options;
  parse_options.default_utc_offset_s = options_.default_utc_offset_s;
  const Counters& c = *counters_;
  const size_t tenants = c.tenant_names.size();
  const int64_t now_ns = monotonicNs();  // one reading per batch for the quota buckets
  batch.kept_count = 0;
  int64_t newest_ns = INT64_MIN;
  for (size_t i = 0; i < batch.count; ++i) {
    Event& event = *batch.events[i];
    parse_options.format = batch.formats[i];
    dataplane::parseEvent(event, parse_options);
    newest_ns = std::max(newest_ns, Engine::eventTime(event));
    batch.newest_ns[i] = newest_ns;
    const uint32_t source = batch.sources[i];
    const uint32_t tenant = assignTenant(event, c.source_tenant[source]);
    const size_t flow_index = source * tenants + tenant;
    dataplane::countParseFlags(event, c.flows[flow_index].parse);
    Batch::FlowTally& tally = batch.flow_tally[flow_index];
    if (tally.parsed == 0 && tally.parse_errors == 0) {
      batch.flows_seen.push_back(static_cast<uint32_t>(flow_index));
    }
    ++(event.has(kFlagParseError) ? tally.parse_errors : tally.parsed);
    QuotaBucket* quota = c.quotas[tenant].get();
    if (quota != nullptr && !quota->tryTake(now_ns)) {
      ++tally.dropped_quota;
      continue;
    }
    ++tally.delivered;
    batch.kept[batch.kept_count] = static_cast<uint32_t>(i);
    batch.kept_events[batch.kept_count] = &event;
    batch.kept_tenants[batch.kept_count] = tenant;
    batch.kept_hits_before[batch.kept_count] = event.hit_count;
    ++batch.kept_count;
  }
  // One atomic add per flow and counter for the batch: per event they were about a tenth
  // of a parse-only replay's time.
  for (const uint32_t flow_index : batch.flows_seen) {
    Batch::FlowTally& tally = batch.flow_tally[flow_index];
    const FlowCounters& flow = c.flows[flow_index];
    if (tally.parsed != 0 && flow.parse.parsed != nullptr) flow.parse.parsed->add(tally.parsed);
    if (tally.parse_errors != 0 && flow.parse.parse_errors != nullptr) {
      flow.parse.parse_errors->add(tally.parse_errors);
    }
    c.tenant_events[flow_index % tenants]->add(tally.parsed + tally.parse_errors);
    if (tally.delivered != 0) flow.delivered->add(tally.delivered);
    if (tally.dropped_quota != 0) flow.dropped_quota->add(tally.dropped_quota);
    tally = {};
  }
  batch.flows_seen.clear();
}

// Runs the detection rules on the kept events in event order and queues their alerts and
// correlation updates.
void Pipeline::detectBatch(Batch& batch, DetectScratch& scratch) {
  Engine& engine = *batch.engine;
  const size_t max_updates = options_.max_correlation_updates_per_event;
  std::array<uint32_t, kMaxMatchesPerEvent> matches;
  for (size_t k = 0; k < batch.kept_count; ++k) {
    const uint32_t i = batch.kept[k];
    Event& event = *batch.events[i];
    size_t count = engine.detect(event, scratch, matches);
    size_t updates = 0;
    for (size_t m = 0; m < count; ++m) {
      uint32_t detection = matches[m];
      if (engine.rules().detections[detection].generates_alerts) {
        batch.alerts.push_back(engine.detectionAlert(detection, event));
        batch.alert_receive_ns.resize(batch.alerts.size(), 0);
        batch.alert_receive_ns.back() = event.receive_ns;
      }
      for (uint32_t correlation : engine.correlationsFor(detection, event)) {
        if (updates == max_updates || batch.work_count == batch.work.size()) {
          counters_->updates_dropped->add();
          continue;
        }
        ++updates;
        // The detection rule picks the group-by fields when the correlation has aliases,
        // so it decides the shard and is passed on to the update.
        batch.work[batch.work_count++] = {i, correlation, detection,
                                          engine.shardOf(correlation, detection, event)};
      }
    }
  }
}

// Applies the first matching tenant rule and returns the event's tenant number, which is
// `source_tenant` when no rule matches. Field values are compared as Event::get() returns
// them, so numbers and addresses compare in their canonical text. Each field is looked up
// once per event, however many rules test it (a tenant per host-name suffix is common).
uint32_t Pipeline::assignTenant(Event& event, uint32_t source_tenant) const {
  std::array<std::array<char, 64>, kTenantFieldSlots + 1> scratch;  // the last: uncached
  std::array<std::string_view, kTenantFieldSlots> values;
  uint32_t looked_up = 0;  // bit per slot
  uint32_t present = 0;    // bit per slot: the field exists
  // Sets `value` to the field of rule r and returns whether the event has it.
  auto fieldValue = [&](size_t r, std::string_view& value) -> bool {
    const uint8_t slot = counters_->rule_field_slot[r];
    if (slot == kUncachedField) {
      std::optional<std::string_view> found = event.get(counters_->rule_fields[r], scratch.back());
      if (found) value = *found;
      return found.has_value();
    }
    if ((looked_up & (1u << slot)) == 0) {
      looked_up |= 1u << slot;
      if (std::optional<std::string_view> found =
              event.get(counters_->rule_fields[r], scratch[slot])) {
        values[slot] = *found;
        present |= 1u << slot;
      }
    }
    value = values[slot];
    return (present & (1u << slot)) != 0;
  };
  const std::vector<TenantRule>& rules = options_.tenant_rules;
  for (size_t r = 0; r < rules.size();) {
    const TenantRule& rule = rules[r];
    size_t matched = rules.size();
    if (const int32_t run = counters_->rule_run[r]; run >= 0) {
      const TenantRuleRun& field_run = counters_->rule_runs[static_cast<size_t>(run)];
      std::string_view value;
      if (fieldValue(r, value)) {
        if (const int64_t first = matchRun(field_run, value); first >= 0) {
          matched = static_cast<size_t>(first);
        }
      }
      r = field_run.end;
    } else {
      switch (rule.match) {
        case TenantRule::Match::kPeerCidr:
          if (event.peer.has_value() && prefixContains(rule.prefix, *event.peer)) matched = r;
          break;
        case TenantRule::Match::kVlan:
          if (event.vlan != 0 && event.vlan == rule.vlan) matched = r;
          break;
        case TenantRule::Match::kFieldEquals:
        case TenantRule::Match::kFieldSuffix:
          break;  // always part of a run
      }
      ++r;
    }
    if (matched < rules.size()) {
      event.tenant = rules[matched].tenant;
      return counters_->rule_tenant[matched];
    }
  }
  return source_tenant;
}

void Pipeline::handOverShard(uint32_t shard, const std::shared_ptr<Engine>& engine) {
  std::shared_ptr<Engine>& previous = shard_engines_[shard];
  if (previous == engine) return;
  if (previous != nullptr) {
    Engine::HandoverSummary summary = engine->takeOverShard(shard, *previous);
    counters_->reload_groups_kept->add(summary.groups_kept);
    counters_->reload_groups_dropped->add(summary.groups_dropped);
    VIGIL_LOG_INFO("correlation shard handed over shard={} rules_version={} groups_kept={} "
                   "groups_dropped={}",
                   shard, engine->options().rules_version, summary.groups_kept,
                   summary.groups_dropped);
  }
  previous = engine;
}

void Pipeline::handOverSuppression(const std::shared_ptr<Engine>& engine) {
  if (deliver_engine_ == engine) return;
  if (deliver_engine_ != nullptr) engine->takeOverSuppression(*deliver_engine_);
  deliver_engine_ = engine;
}

void Pipeline::correlateBatch(Batch& batch, uint32_t shard) {
  handOverShard(shard, batch.engine);
  Engine& engine = *batch.engine;
  if (!engine.hasTimerRules()) {
    // Only absence and closing rules read the watermark, so without them it need not
    // move per event. The updates run in order, and then the watermark moves once to
    // where the per-event loop would leave it, for checkpoints and later rule sets.
    for (size_t w = 0; w < batch.work_count; ++w) {
      if (batch.work[w].shard == shard) correlateItem(batch, shard, w);
    }
    if (batch.count != 0) {
      engine.advanceTimeTo(shard, batch.newest_ns[batch.count - 1], batch.alerts);
    }
  } else {
    correlateEachEvent(batch, shard);
  }
  // The shard's state after this batch: the stages of the other shards keep running.
  if (batch.checkpoint) {
    checkpoint_parts_[shard].clear();
    engine.saveShard(shard, checkpoint_parts_[shard]);
  }
}

void Pipeline::correlateEachEvent(Batch& batch, uint32_t shard) {
  Engine& engine = *batch.engine;
  // Work items are in event order. Every event moves the shard's watermark before its own
  // updates, so absence windows close at the same event whatever the batch boundaries.
  size_t w = 0;
  for (size_t i = 0; i < batch.count; ++i) {
    const size_t before = batch.alerts.size();
    engine.advanceTime(shard, *batch.events[i], batch.alerts);
    batch.alert_receive_ns.resize(batch.alerts.size(), 0);
    for (size_t a = before; a < batch.alerts.size(); ++a) {
      batch.alert_receive_ns[a] = batch.events[i]->receive_ns;
    }
    for (; w < batch.work_count && batch.work[w].event == i; ++w) {
      if (batch.work[w].shard == shard) correlateItem(batch, shard, w);
    }
  }
}

void Pipeline::correlateItem(Batch& batch, uint32_t shard, size_t w) {
  const WorkItem& item = batch.work[w];
  batch.alert_receive_ns.resize(batch.alerts.size(), 0);
  batch.engine->correlate(shard, item.correlation, item.detection, *batch.events[item.event],
                          batch.alerts);
  // A chained rule may raise several alerts for one event; all share its receive time.
  batch.alert_receive_ns.resize(batch.alerts.size(), batch.events[item.event]->receive_ns);
}

void Pipeline::finishCheckpoint(Engine& engine) {
  std::string suppression;
  engine.saveSuppression(suppression);
  std::string file = assembleCheckpoint(checkpoint_parts_, suppression);
  std::lock_guard<std::mutex> lock(checkpoint_mutex_);
  checkpoint_ready_ = std::move(file);
}

std::optional<std::string> Pipeline::takeCheckpoint() {
  std::lock_guard<std::mutex> lock(checkpoint_mutex_);
  std::optional<std::string> file = std::move(checkpoint_ready_);
  checkpoint_ready_.reset();
  return file;
}

void Pipeline::deliverBatch(Batch& batch) {
  handOverSuppression(batch.engine);
  const Counters& c = *counters_;
  const std::vector<int64_t>& bounds = latencyBoundsUs();
  batch.alert_receive_ns.resize(batch.alerts.size(), 0);
  for (size_t a = 0; a < batch.alerts.size(); ++a) {
    Alert& alert = batch.alerts[a];
    if (!batch.engine->admitAlert(alert)) continue;  // suppressed and counted
    alert.receive_ns = batch.alert_receive_ns[a];
    for (AlertSink* sink : sinks_) sink->onAlert(alert);
    // The map compares without copying the name, so the lookup allocates nothing.
    auto number = c.tenant_numbers.find(std::string_view(alert.tenant));
    Counter* delivered = number != c.tenant_numbers.end() ? c.alerts_delivered[number->second]
                                                          : c.alerts_delivered_other;
    delivered->add();
    if (batch.alert_receive_ns[a] != 0) {
      const int64_t us = std::max<int64_t>(
          0, (RealClock::instance().nowNs() - batch.alert_receive_ns[a]) / 1000);
      const size_t bucket = static_cast<size_t>(
          std::lower_bound(bounds.begin(), bounds.end(), us) - bounds.begin());
      c.alert_latency[bucket]->add();
      c.alert_latency_sum_us->add(static_cast<uint64_t>(us));
    }
  }
  batch.alerts.clear();
  batch.alert_receive_ns.clear();
  // Alerts copied the hit strings, so the batch no longer needs its snapshot.
  if (intel_ != nullptr) intel_->release(batch.slot);
  batch.snapshot = nullptr;
  counters_->events_done->add(batch.count);
  if (batch.checkpoint) finishCheckpoint(*batch.engine);
  batch.in_use.store(false, std::memory_order_release);
}

void Pipeline::run() {
  const size_t shards = engines_->shards();
  input_generation_ = engines_->generation();
  input_engine_ = engines_->current();
  shard_engines_.assign(shards, input_engine_);
  deliver_engine_ = input_engine_;
  VIGIL_LOG_INFO("pipeline started sources={} batches={} batch_size={} shards={} rules={}",
                 sources_.size(), batches_.size(), options_.batch_size, shards,
                 input_engine_->rules().detections.size() +
                     input_engine_->rules().correlations.size());

  for (dataplane::Source* source : sources_) source->ring().setConsumerWake(&input_wake_);
  // With as many tokens as batches, a batch that enters is one that has left: the deliver
  // stage marks it free as its last step (freeBatch()).
  auto input = tbb::make_filter<void, Batch*>(
      tbb::filter_mode::serial_in_order, [this](tbb::flow_control& control) -> Batch* {
        Batch& batch = *freeBatch();
        std::chrono::microseconds idle = options_.idle_min;
        while (true) {
          if (stop_.load(std::memory_order_relaxed) || sources_.empty()) break;
          if (fillBatch(batch)) {
            // A reload publishes a new engine; batches entering from now on run on it.
            if (engines_->generation() != input_generation_) {
              input_generation_ = engines_->generation();
              input_engine_ = engines_->current();
            }
            batch.engine = input_engine_;
            batch.checkpoint = checkpoint_requested_.exchange(false, std::memory_order_acq_rel);
            batch.in_use.store(true, std::memory_order_relaxed);
            return &batch;
          }
          if (allSourcesDone()) break;
          input_wake_.waitFor(
              idle, [this] { return stop_.load(std::memory_order_relaxed) || anyRingReady(); });
          idle = std::min(idle * 2, options_.idle_max);
        }
        control.stop();
        return nullptr;
      });
  auto analyze = tbb::make_filter<Batch*, Batch*>(tbb::filter_mode::parallel, [this](Batch* b) {
    analyzeBatch(*b);
    return b;
  });
  tbb::filter<void, Batch*> chain = input & analyze;
  for (uint32_t shard = 0; shard < shards; ++shard) {
    chain = chain & tbb::make_filter<Batch*, Batch*>(tbb::filter_mode::serial_in_order,
                                                     [this, shard](Batch* b) {
                                                       correlateBatch(*b, shard);
                                                       return b;
                                                     });
  }
  auto deliver = tbb::make_filter<Batch*, void>(tbb::filter_mode::serial_in_order,
                                                [this](Batch* b) { deliverBatch(*b); });
  tbb::parallel_pipeline(batches_.size(), chain & deliver);
  for (dataplane::Source* source : sources_) source->ring().setConsumerWake(nullptr);

  // Stages that saw no batch since the last reload still hold state in the old engine.
  std::shared_ptr<Engine> latest = engines_->current();
  for (uint32_t shard = 0; shard < shards; ++shard) handOverShard(shard, latest);
  handOverSuppression(latest);
  for (auto& batch : batches_) batch->engine.reset();
  input_engine_.reset();

  for (AlertSink* sink : sinks_) sink->flush();
  uint64_t alerts = counters_->alerts_delivered_other->value();
  for (const Counter* counter : counters_->alerts_delivered) alerts += counter->value();
  VIGIL_LOG_INFO("pipeline stopped events={} alerts={} stop_requested={}",
                 counters_->events_in->value(), alerts,
                 stop_.load(std::memory_order_relaxed));
}

}  // namespace vigil::correlate
