#include "correlate/engine.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <new>

#include "absl/container/flat_hash_map.h"
#include "common/utf8.h"
#include "correlate/checkpoint.h"
#include "correlate/internal/detection_index.h"
#include "correlate/internal/engine_parts.h"
#include "correlate/internal/evaluate.h"
#include "correlate/internal/group_key.h"
#include "correlate/internal/number.h"
#include "correlate/internal/regex_table.h"
#include "correlate/internal/text.h"
#include "correlate/internal/window_table.h"

namespace vigil::correlate {
namespace {

constexpr size_t kMaxMatchesPerEvent = 64;

// Metric labels of one rule: its label, and its tenant when the rule belongs to one, so
// two tenants' rules of the same id count apart.
template <typename Rule>
Labels ruleLabels(const Rule& rule) {
  Labels labels = {{"rule", ruleLabel(rule.id, rule.title)}};
  if (!rule.tenant.empty()) labels.emplace_back("tenant", rule.tenant);
  return labels;
}

// True when `rule` sees `event`: a rule for every tenant sees every event, a tenant's
// rule only the events of that tenant.
template <typename Rule>
bool seesTenant(const Rule& rule, const Event& event) {
  return rule.tenant.empty() || std::string_view(rule.tenant) == event.tenant;
}

// Reads one field the way detections do: the Event name, then the Sigma name when the
// mapping changed it and the event has no such member.
std::optional<std::string_view> readField(const GroupField& field, const Event& event,
                                          std::array<char, 64>& scratch) {
  std::optional<std::string_view> value = event.get(field.event.ref(), scratch);
  if (!value && field.event.name() != field.sigma.name())
    value = event.get(field.sigma.ref(), scratch);
  return value;
}

// Writes the group key of `event` for `rule`, as matched by the referenced rule at
// `position`, into `buffer`: the tenant, then each group-by value, encoded by
// GroupKeyWriter. An absent field counts as the empty value. Returns the key and sets
// `truncated` when it did not fit.
static_assert(kMaxGroupKeyBytes == internal::KeyArena::kMaxKeyBytes,
              "window tables store keys of up to kMaxGroupKeyBytes bytes");

std::string_view buildKey(const CorrelationRule& rule, uint32_t position, const Event& event,
                          std::array<char, kMaxGroupKeyBytes>& buffer, bool& truncated) {
  internal::GroupKeyWriter writer(buffer);
  writer.addPart(event.tenant);
  std::array<char, 64> scratch;
  for (const GroupField& field : rule.group_by_rule[position]) {
    writer.addPart(readField(field, event, scratch).value_or(std::string_view()));
  }
  const std::string_view key = writer.key();  // first: a full key gets its hash here
  truncated = writer.truncated();
  return key;
}

// Hashes the value_count field values of `event` (FNV-1a over each value's length and
// bytes). Returns nullopt when one of the fields is absent.
std::optional<uint64_t> hashValues(const CorrelationRule& rule, const Event& event) {
  uint64_t hash = 0xcbf29ce484222325ull;
  auto mix = [&](const void* data, size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      hash ^= bytes[i];
      hash *= 0x100000001b3ull;
    }
  };
  std::array<char, 64> scratch;
  for (const GroupField& field : rule.value_refs) {
    std::optional<std::string_view> value = readField(field, event, scratch);
    if (!value) return std::nullopt;
    uint64_t size = value->size();
    mix(&size, sizeof(size));
    mix(value->data(), value->size());
  }
  return hash;
}

// Reads `field` of `event` as a finite number, or nullopt when it is absent or not one.
std::optional<double> readNumber(const GroupField& field, const Event& event) {
  std::array<char, 64> scratch;
  std::optional<std::string_view> text = readField(field, event, scratch);
  if (!text) return std::nullopt;
  return internal::parseDecimal(*text);
}

// Returns where detection rule `detection` sits in `rule.detections`, or nullopt.
std::optional<uint32_t> positionOf(const CorrelationRule& rule, uint32_t detection) {
  auto it = std::find(rule.detections.begin(), rule.detections.end(), detection);
  if (it == rule.detections.end()) return std::nullopt;
  return static_cast<uint32_t>(it - rule.detections.begin());
}

}  // namespace

struct DetectScratch::Impl {
  hs_scratch_t* scratch = nullptr;
  internal::PrefilterScratch prefilter;
  uint64_t evaluations = 0;  // drives the sampling of rule evaluation times
};

DetectScratch::DetectScratch(const RuleSet& rules) : impl_(std::make_unique<Impl>()) {
  // Running out of memory for a scratch at startup leaves nothing sensible to do.
  if (!rules.regexes->allocScratch(&impl_->scratch)) throw std::bad_alloc();
  if (!rules.index->prepare(&impl_->scratch, impl_->prefilter)) throw std::bad_alloc();
  // Room for every rule even when the index was built for fewer (see RuleSet::index).
  size_t words = (rules.detections.size() + 63) / 64;
  if (impl_->prefilter.candidates.size() < words) {
    impl_->prefilter.candidates.resize(words);
    impl_->prefilter.fired.resize(words);
  }
}

DetectScratch::~DetectScratch() {
  if (impl_->scratch != nullptr) hs_free_scratch(impl_->scratch);
}

Engine::Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options,
               MetricsRegistry* metrics, const Engine* previous)
    : rules_(std::move(rules)), options_(options), counters_(std::make_unique<Counters>()) {
  if (options_.shards == 0) options_.shards = 1;
  if (options_.max_keys == 0) options_.max_keys = 1;
  if (options_.clock == nullptr) options_.clock = &RealClock::instance();
  if (metrics == nullptr) {
    own_metrics_ = std::make_unique<MetricsRegistry>();
    metrics = own_metrics_.get();
  }
  metrics_ = metrics;

  Counters& c = *counters_;
  for (const DetectionRule& rule : rules_->detections) {
    Labels labels = ruleLabels(rule);
    c.detection_matches.push_back(&metrics->counter(
        "vigil_detection_matches_total", "Events that matched a detection rule", labels));
    c.detection_evaluations.push_back(
        &metrics->counter("vigil_detection_evaluations_total",
                          "Events a detection rule was evaluated against", labels));
    c.prefilter_hits.push_back(&metrics->counter(
        "vigil_detection_prefilter_hits_total",
        "Events in which a literal of a prefiltered detection rule occurred", labels));
    c.sampled_ns.push_back(&metrics->counter(
        "vigil_detection_rule_sampled_ns_total",
        "Nanoseconds spent in the sampled evaluations of a detection rule", labels));
    c.samples.push_back(&metrics->counter("vigil_detection_rule_samples_total",
                                          "Timed evaluations of a detection rule", labels));
    labels.emplace_back("kind", "detection");
    c.detection_alerts.push_back(
        &metrics->counter("vigil_alerts_total", "Alerts raised, per rule", labels));
    c.detection_suppressed.push_back(&metrics->counter(
        "vigil_alerts_suppressed_total",
        "Alerts held back by the rule's suppress option (same key within the period)", labels));
  }
  for (const CorrelationRule& rule : rules_->correlations) {
    Labels labels = ruleLabels(rule);
    c.evictions.push_back(&metrics->counter(
        "vigil_correlation_evictions_total",
        "Groups dropped from a full correlation table (least recently updated first)", labels));
    c.late_events.push_back(&metrics->counter(
        "vigil_correlation_late_events_total",
        "Events dropped by a correlation because they were older than the group's window",
        labels));
    c.tenant_evictions.push_back(&metrics->counter(
        "vigil_correlation_tenant_evictions_total",
        "Groups dropped because their tenant held its maximum (its least recently updated first)",
        labels));
    labels.emplace_back("kind", "correlation");
    c.correlation_alerts.push_back(
        &metrics->counter("vigil_alerts_total", "Alerts raised, per rule", labels));
    c.correlation_suppressed.push_back(&metrics->counter(
        "vigil_alerts_suppressed_total",
        "Alerts held back by the rule's suppress option (same key within the period)", labels));
  }
  c.sample_dropped =
      &metrics->counter("vigil_correlation_sample_dropped_total",
                        "Values a value_percentile window dropped because its sample was full (the "
                        "percentile is then computed over the newest values)");
  c.key_truncated = &metrics->counter(
      "vigil_correlation_group_key_truncated_total",
      "Group keys cut to the maximum key length (groups sharing the prefix merge)");
  c.matches_dropped =
      &metrics->counter("vigil_detection_matches_dropped_total",
                        "Detection matches beyond the per-event buffer, not evaluated further");
  c.value_missing = &metrics->counter(
      "vigil_correlation_value_missing_total",
      "Events a value_count, value_sum or value_avg correlation skipped because the counted "
      "field is absent (or, for the sums, not a number)");
  c.not_referenced = &metrics->counter(
      "vigil_correlation_not_referenced_total",
      "Correlation updates for a detection rule that the correlation does not reference");
  c.keys = &metrics->gauge("vigil_correlation_keys", "Correlation groups held in memory");
  c.suppress_evictions = &metrics->counter(
      "vigil_suppress_evictions_total",
      "Suppression keys dropped from a full table before their period ended");
  c.pending_timers = &metrics->gauge("vigil_correlation_pending_timers",
                                     "Absence windows waiting for the watermark to pass");
  c.state_bytes = &metrics->gauge(
      "vigil_correlation_state_bytes",
      "Memory of the correlation window state: group slots, keys, index and evidence pools");
  c.logsource_skipped = &metrics->counter(
      "vigil_detection_logsource_skipped_total",
      "Detection rule evaluations skipped because the rule's logsource does not apply");
  c.tenant_skipped = &metrics->counter(
      "vigil_detection_tenant_skipped_total",
      "Detection rule evaluations skipped because the rule belongs to another tenant");
  c.prefilter_errors =
      &metrics->counter("vigil_detection_prefilter_errors_total",
                        "Events whose prefilter scan failed, so every rule was evaluated");

  c.checkpoint_rejected = &metrics->counter(
      "vigil_checkpoint_rejected_total",
      "Correlation checkpoints not restored because they were corrupt, cut short or of "
      "another version");
  const char* rules_help = "Rules of a restored checkpoint, by outcome: restored, changed "
                           "(definition hash differs, started fresh) or removed";
  c.checkpoint_restored =
      &metrics->counter("vigil_checkpoint_rules_total", rules_help, {{"outcome", "restored"}});
  c.checkpoint_changed =
      &metrics->counter("vigil_checkpoint_rules_total", rules_help, {{"outcome", "changed"}});
  c.checkpoint_removed =
      &metrics->counter("vigil_checkpoint_rules_total", rules_help, {{"outcome", "removed"}});

  correlations_for_.resize(rules_->detections.size());
  chained_into_.resize(rules_->correlations.size());
  pinned_shard_.assign(rules_->correlations.size(), kUnpinned);
  // Chained correlations and the correlations they count form families, joined here with
  // a union-find; each family lives in one shard (see pinned_shard_).
  std::vector<uint32_t> family(rules_->correlations.size());
  for (uint32_t i = 0; i < family.size(); ++i) family[i] = i;
  auto root = [&](uint32_t i) {
    while (family[i] != i) i = family[i] = family[family[i]];
    return i;
  };
  for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
    const CorrelationRule& rule = rules_->correlations[i];
    for (uint32_t position = 0; position < rule.detections.size(); ++position) {
      if (rule.detections[position] != kNoRule) {
        correlations_for_[rule.detections[position]].push_back(i);
        continue;
      }
      const uint32_t inner = rule.chained[position];
      chained_into_[inner].emplace_back(i, position);
      const uint32_t a = root(inner);
      const uint32_t b = root(i);
      family[std::max(a, b)] = std::min(a, b);
    }
  }
  splitCorrelationsByTenant();
  for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
    const uint32_t r = root(i);
    const bool chained =
        !chained_into_[i].empty() ||
        std::any_of(rules_->correlations[i].chained.begin(), rules_->correlations[i].chained.end(),
                    [](uint32_t inner) { return inner != kNoRule; });
    if (chained) pinned_shard_[i] = static_cast<uint32_t>(r % options_.shards);
  }

  for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
    const CorrelationRule& rule = rules_->correlations[i];
    if (rule.type == CorrelationType::kAbsence || rule.closes) timer_rules_.push_back(i);
    rule_hashes_.push_back(correlationRuleHash(*rules_, i));
  }
  buildTables(previous);
  alert_sequence_ = options_.alert_sequence != nullptr
                        ? options_.alert_sequence
                        : std::make_shared<std::atomic<uint64_t>>(0);
  suppressor_ = std::make_unique<Suppressor>(*rules_, options_.max_suppress_keys, c);
}

void Engine::buildTables(const Engine* previous) {
  Counters& c = *counters_;
  // Per correlation rule: the rule index in `previous` whose tables this engine shares.
  std::vector<uint32_t> shared(rules_->correlations.size(), kNoRule);
  const bool can_share = previous != nullptr && own_metrics_ == nullptr &&
                         previous->metrics_ == metrics_ &&
                         previous->options_.shards == options_.shards &&
                         previous->options_.max_keys == options_.max_keys &&
                         previous->options_.max_keys_per_tenant == options_.max_keys_per_tenant &&
                         previous->options_.evidence_events == options_.evidence_events &&
                         previous->options_.evidence_bytes == options_.evidence_bytes;
  if (can_share) {
    absl::flat_hash_map<std::string, uint32_t> before;
    for (uint32_t i = 0; i < previous->rules_->correlations.size(); ++i) {
      before.emplace(stateLabel(previous->rules_->correlations[i]), i);
    }
    for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
      auto it = before.find(stateLabel(rules_->correlations[i]));
      if (it != before.end() && previous->rule_hashes_[it->second] == rule_hashes_[i]) {
        shared[i] = it->second;
      }
    }
  }

  size_t groups_per_shard = (options_.max_keys + options_.shards - 1) / options_.shards;
  size_t tenant_groups_per_shard =
      options_.max_keys_per_tenant == 0 || options_.max_keys_per_tenant >= options_.max_keys
          ? 0
          : (options_.max_keys_per_tenant + options_.shards - 1) / options_.shards;
  size_t evidence_per_shard = (options_.evidence_events + options_.shards - 1) / options_.shards;
  std::vector<std::shared_ptr<const CorrelationRule>> copies(rules_->correlations.size());
  for (size_t s = 0; s < options_.shards; ++s) {
    auto shard = std::make_unique<Shard>();
    shard->tables.reserve(rules_->correlations.size());
    for (size_t i = 0; i < rules_->correlations.size(); ++i) {
      if (shared[i] != kNoRule) {
        shard->tables.push_back(previous->shards_[s]->tables[shared[i]]);
        continue;
      }
      internal::WindowCounters window_counters;
      window_counters.evictions = c.evictions[i];
      window_counters.late_events = c.late_events[i];
      window_counters.suppressed = c.correlation_suppressed[i];
      window_counters.tenant_evictions = c.tenant_evictions[i];
      window_counters.sample_dropped = c.sample_dropped;
      window_counters.keys = c.keys;
      window_counters.state_bytes = c.state_bytes;
      window_counters.pending_timers = c.pending_timers;
      if (copies[i] == nullptr) {
        copies[i] = std::make_shared<const CorrelationRule>(rules_->correlations[i]);
      }
      shard->tables.push_back(std::make_shared<internal::WindowTable>(
          copies[i], groups_per_shard, tenant_groups_per_shard, evidence_per_shard,
          options_.evidence_bytes, window_counters));
    }
    shard->scratch = std::make_unique<DetectScratch>(*rules_);
    shards_.push_back(std::move(shard));
  }
}

void Engine::splitCorrelationsByTenant() {
  tenant_correlations_for_.resize(rules_->detections.size());
  shared_correlations_for_.resize(rules_->detections.size());
  for (uint32_t d = 0; d < rules_->detections.size(); ++d) {
    if (!rules_->detections[d].tenant.empty()) continue;
    std::map<std::string, std::vector<uint32_t>> by_tenant;
    for (uint32_t c : correlations_for_[d]) {
      const std::string& tenant = rules_->correlations[c].tenant;
      if (tenant.empty()) {
        shared_correlations_for_[d].push_back(c);
      } else {
        by_tenant[tenant].push_back(c);
      }
    }
    for (auto& [tenant, own] : by_tenant) {
      std::vector<uint32_t> merged = shared_correlations_for_[d];
      merged.insert(merged.end(), own.begin(), own.end());
      std::sort(merged.begin(), merged.end());
      tenant_correlations_for_[d].push_back({tenant, std::move(merged)});
    }
  }
}

// The window tables take back their gauges when the last engine that holds them goes.
Engine::~Engine() = default;

size_t Engine::detect(const Event& event, DetectScratch& scratch, std::span<uint32_t> out) const {
  DetectScratch::Impl& state = scratch.impl();
  internal::PrefilterScratch& prefilter = state.prefilter;
  const internal::DetectionIndex& index = *rules_->index;
  const size_t rule_count = rules_->detections.size();
  const uint64_t logsources = index.eventLogSources(event);
  internal::PrefilterResult scanned;
  if (options_.prefilter && index.ruleCount() == rule_count) {
    if (!index.scan(event, logsources, state.scratch, prefilter)) {
      counters_->prefilter_errors->add();
    }
    scanned = {&index, &prefilter};
  } else {
    std::fill(prefilter.candidates.begin(), prefilter.candidates.end(), ~uint64_t{0});
    std::fill(prefilter.fired.begin(), prefilter.fired.end(), 0);
  }

  size_t found = 0;
  uint64_t skipped = 0;
  uint64_t other_tenant = 0;
  const RegexTable& regexes = *rules_->regexes;
  const size_t words = (rule_count + 63) / 64;
  for (size_t word = 0; word < words; ++word) {
    for (uint64_t bits = prefilter.candidates[word]; bits != 0; bits &= bits - 1) {
      const auto i = static_cast<uint32_t>(word * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
      if (i >= rule_count) break;
      const DetectionRule& rule = rules_->detections[i];
      if (!seesTenant(rule, event)) {
        ++other_tenant;
        continue;
      }
      if (!internal::logSourceApplies(rule, logsources)) {
        ++skipped;
        continue;
      }
      // NOTE: these counters are shared by every worker, so the cache lines of rules that
      // run on most events (those without a literal) move between the workers' cores.
      if ((prefilter.fired[word] >> (i % 64) & 1) != 0) counters_->prefilter_hits[i]->add();
      counters_->detection_evaluations[i]->add();
      const uint32_t logsource = internal::logSourceFor(rule, logsources);
      bool matched = false;
      if (++state.evaluations % kRuleTimeSampleInterval == 0) {
        int64_t begin = monotonicNs();
        matched = internal::matchesRule(rule, event, regexes, state.scratch, logsource, scanned);
        counters_->sampled_ns[i]->add(static_cast<uint64_t>(monotonicNs() - begin));
        counters_->samples[i]->add();
      } else {
        matched = internal::matchesRule(rule, event, regexes, state.scratch, logsource, scanned);
      }
      if (!matched) continue;
      counters_->detection_matches[i]->add();
      if (found == out.size()) {
        counters_->matches_dropped->add();
        continue;
      }
      out[found++] = i;
    }
  }
  if (skipped != 0) counters_->logsource_skipped->add(skipped);
  if (other_tenant != 0) counters_->tenant_skipped->add(other_tenant);
  return found;
}

std::span<const uint32_t> Engine::correlationsFor(uint32_t detection) const {
  return correlations_for_[detection];
}

std::span<const uint32_t> Engine::correlationsFor(uint32_t detection,
                                                  const Event& event) const {
  const std::vector<TenantCorrelations>& tenants = tenant_correlations_for_[detection];
  if (tenants.empty()) return correlations_for_[detection];
  auto it = std::lower_bound(
      tenants.begin(), tenants.end(), event.tenant,
      [](const TenantCorrelations& entry, std::string_view tenant) { return entry.tenant < tenant; });
  if (it != tenants.end() && it->tenant == event.tenant) return it->correlations;
  return shared_correlations_for_[detection];
}

Alert Engine::detectionAlert(uint32_t detection, const Event& event) const {
  const DetectionRule& rule = rules_->detections[detection];
  Alert alert;
  alert.rule_id = ruleLabel(rule.id, rule.title);
  alert.id = internal::concat(alert.rule_id, "-", alert_sequence_->fetch_add(1) + 1);
  alert.rule_title = rule.title;
  alert.rules_version = rule.version != 0 ? rule.version : options_.rules_version;
  alert.level = rule.level;
  alert.tags = rule.tags;
  alert.tenant = std::string(event.tenant);
  alert.first_event_ns = alert.last_event_ns = eventTime(event);
  alert.detect_ns = options_.clock->nowNs();
  alert.event_count = 1;
  alert.evidence.emplace_back(
      event.raw.substr(0, utf8PrefixLength(event.raw, options_.evidence_bytes)));
  for (size_t i = 0; i < event.hit_count; ++i) {
    const IndicatorHit& hit = event.hits[i];
    alert.indicator_hits.push_back(internal::concat(hit.list, ":", hit.indicator, "@", hit.field));
  }
  counters_->detection_alerts[detection]->add();
  if (rule.suppress_ns > 0) {
    std::array<char, kMaxGroupKeyBytes> buffer;
    internal::GroupKeyWriter writer(buffer);
    writer.addPart(event.tenant);
    std::array<char, 64> scratch;
    for (const GroupField& field : rule.suppress_fields) {
      writer.addPart(readField(field, event, scratch).value_or(std::string_view()));
    }
    alert.suppress_key = std::string(writer.key());
    if (writer.truncated()) counters_->key_truncated->add();
    alert.suppress_rule = detection;
  }
  return alert;
}

bool Engine::admitAlert(const Alert& alert) {
  if (alert.suppress_rule == UINT32_MAX) return true;
  return suppressor_->admit(alert.suppress_rule, alert.suppress_key, alert.last_event_ns);
}

int64_t Engine::watermark(uint32_t shard) const { return shards_[shard]->watermark_ns; }

void Engine::advanceTime(uint32_t shard, const Event& event, std::vector<Alert>& out) {
  advanceTimeTo(shard, eventTime(event), out);
}

void Engine::advanceTimeTo(uint32_t shard, int64_t t, std::vector<Alert>& out) {
  Shard& state = *shards_[shard];
  if (t <= state.newest_ns) return;
  state.newest_ns = t;
  // Saturates instead of wrapping for times near INT64_MIN.
  state.watermark_ns = t < INT64_MIN + options_.allowed_lateness_ns
                           ? INT64_MIN
                           : std::max(state.watermark_ns, t - options_.allowed_lateness_ns);
  for (uint32_t correlation : timer_rules_) {
    internal::WindowTable& table = *state.tables[correlation];
    if (table.pendingTimers() == 0) continue;
    const size_t pending_before = table.pendingTimers();
    std::vector<Alert>& expired = state.expired;
    expired.clear();
    table.expire(state.watermark_ns, expired);
    counters_->pending_timers->add(static_cast<int64_t>(table.pendingTimers()) -
                                   static_cast<int64_t>(pending_before));
    for (Alert& alert : expired) {
      finishAlert(correlation, alert);
      route(shard, correlation, alert, out);
    }
  }
}

void Engine::route(uint32_t shard, uint32_t correlation, Alert& alert, std::vector<Alert>& out) {
  const CorrelationRule& rule = rules_->correlations[correlation];
  if (chained_into_[correlation].empty()) {
    if (rule.generates_alerts) out.push_back(std::move(alert));
    return;
  }
  if (rule.generates_alerts) out.push_back(alert);
  // The alert as an event for the correlations that chain this one: its tenant, the
  // event time of its newest event, its group-by values as fields named like the
  // group-by entries, and as raw text (the outer alert's evidence) the alert as JSON
  // without evidence, hits or wall-clock times, so a replay gives the same text.
  Alert summary;
  summary.rule_id = alert.rule_id;
  summary.rule_title = alert.rule_title;
  summary.level = alert.level;
  summary.tenant = alert.tenant;
  summary.group = alert.group;
  summary.first_event_ns = alert.first_event_ns;
  summary.last_event_ns = alert.last_event_ns;
  summary.event_count = alert.event_count;
  summary.metric = alert.metric;
  const std::string raw = alertToJson(summary);
  size_t bytes = raw.size() + alert.tenant.size() + 64;
  for (const auto& [name, value] : alert.group) bytes += name.size() + value.size() + 16;
  Event event(bytes);
  event.raw = event.arena.copy(raw);
  event.tenant = event.arena.copy(alert.tenant);
  event.timestamp_ns = alert.last_event_ns;
  for (const auto& [name, value] : alert.group) {
    event.addField(event.arena.copy(name), event.arena.copy(value));
  }
  for (const auto& [outer, position] : chained_into_[correlation]) {
    Alert outer_alert;
    // Inner alerts are never late for the outer window: they come out in watermark order.
    if (updateAt(shard, outer, position, event, INT64_MIN, outer_alert)) {
      route(shard, outer, outer_alert, out);
    }
  }
}

void Engine::correlate(uint32_t shard, uint32_t correlation, uint32_t detection, const Event& event,
                       std::vector<Alert>& out) {
  Alert alert;
  if (updateCorrelation(shard, correlation, detection, event, alert)) {
    route(shard, correlation, alert, out);
  }
}

void Engine::finishAlert(uint32_t correlation, Alert& alert) const {
  const CorrelationRule& rule = rules_->correlations[correlation];
  alert.rule_id = ruleLabel(rule.id, rule.title);
  alert.id = internal::concat(alert.rule_id, "-", alert_sequence_->fetch_add(1) + 1);
  alert.rule_title = rule.title;
  alert.rules_version = rule.version != 0 ? rule.version : options_.rules_version;
  alert.level = rule.level;
  alert.tags = rule.tags;
  alert.detect_ns = options_.clock->nowNs();
  counters_->correlation_alerts[correlation]->add();
}

uint32_t Engine::shardOf(uint32_t correlation, const Event& event) const {
  return shardOf(correlation, rules_->correlations[correlation].detections.front(), event);
}

uint32_t Engine::shardOf(uint32_t correlation, uint32_t detection, const Event& event) const {
  if (shards_.size() == 1) return 0;
  if (pinned_shard_[correlation] != kUnpinned) return pinned_shard_[correlation];
  const CorrelationRule& rule = rules_->correlations[correlation];
  std::array<char, kMaxGroupKeyBytes> buffer;
  bool truncated = false;
  std::string_view key =
      buildKey(rule, positionOf(rule, detection).value_or(0), event, buffer, truncated);
  return shardOfKey(correlation, key);
}

uint32_t Engine::shardOfKey(uint32_t correlation, std::string_view key) const {
  if (shards_.size() == 1) return 0;
  if (pinned_shard_[correlation] != kUnpinned) return pinned_shard_[correlation];
  size_t hash =
      std::hash<std::string_view>()(key) ^ (rule_hashes_[correlation] * 0x9E3779B97F4A7C15ull);
  return static_cast<uint32_t>(hash % shards_.size());
}

bool Engine::updateCorrelation(uint32_t shard, uint32_t correlation, const Event& event,
                               Alert& alert) {
  const CorrelationRule& rule = rules_->correlations[correlation];
  if (rule.detections.size() == 1) {
    return updateCorrelation(shard, correlation, rule.detections.front(), event, alert);
  }
  // Several referenced rules: find the ones this event matches. event_count, value_sum
  // and value_avg take the first (the caller calls once per matching rule). The other
  // types apply every match, which is idempotent, so the repeated calls for one event
  // change nothing further.
  const RegexTable& regexes = *rules_->regexes;
  hs_scratch_t* scratch = shards_[shard]->scratch->impl().scratch;
  for (uint32_t detection : rule.detections) {
    if (detection == kNoRule) continue;  // a chained correlation, fed by route()
    if (!internal::matchesRule(rules_->detections[detection], event, regexes, scratch)) continue;
    if (updateCorrelation(shard, correlation, detection, event, alert)) return true;
    if (rule.type == CorrelationType::kEventCount || rule.type == CorrelationType::kValueSum ||
        rule.type == CorrelationType::kValueAvg || rule.type == CorrelationType::kValuePercentile ||
        rule.closes) {
      return false;
    }
  }
  return false;
}

bool Engine::updateCorrelation(uint32_t shard, uint32_t correlation, uint32_t detection,
                               const Event& event, Alert& alert) {
  const CorrelationRule& rule = rules_->correlations[correlation];
  std::optional<uint32_t> position =
      detection == kNoRule ? std::nullopt : positionOf(rule, detection);
  if (!position) {
    counters_->not_referenced->add();
    return false;
  }
  return updateAt(shard, correlation, *position, event, shards_[shard]->watermark_ns, alert);
}

bool Engine::updateAt(uint32_t shard, uint32_t correlation, uint32_t position, const Event& event,
                      int64_t watermark_ns, Alert& alert) {
  const CorrelationRule& rule = rules_->correlations[correlation];
  // A tenant's correlation counts only its tenant's events. The pipeline feeds it only
  // matches of the tenant's own detections; this check covers callers that pass others.
  if (!seesTenant(rule, event)) return false;
  internal::WindowInput input{eventTime(event), position, 0, watermark_ns};
  if (rule.type == CorrelationType::kValueSum || rule.type == CorrelationType::kValueAvg ||
      rule.type == CorrelationType::kValuePercentile) {
    std::optional<double> number = readNumber(rule.value_refs.front(), event);
    if (!number) {
      counters_->value_missing->add();
      return false;
    }
    input.number = *number;
  }
  if (rule.type == CorrelationType::kValueCount) {
    std::optional<uint64_t> hash = hashValues(rule, event);
    if (!hash) {
      counters_->value_missing->add();
      return false;
    }
    input.value_hash = *hash;
  }
  std::array<char, kMaxGroupKeyBytes> buffer;
  bool truncated = false;
  std::string_view key = buildKey(rule, position, event, buffer, truncated);
  if (truncated) counters_->key_truncated->add();
  internal::WindowTable& table = *shards_[shard]->tables[correlation];
  const size_t pending_before = table.pendingTimers();
  const bool fired = table.add(key, input, event, alert);
  if (table.pendingTimers() != pending_before) {
    counters_->pending_timers->add(static_cast<int64_t>(table.pendingTimers()) -
                                   static_cast<int64_t>(pending_before));
  }
  if (!fired) return false;
  finishAlert(correlation, alert);
  return true;
}

void Engine::process(const Event& event, DetectScratch& scratch, std::vector<Alert>& out) {
  for (uint32_t shard = 0; shard < shards_.size(); ++shard) advanceTime(shard, event, out);
  std::array<uint32_t, kMaxMatchesPerEvent> matches;
  size_t count = detect(event, scratch, matches);
  for (size_t i = 0; i < count; ++i) {
    if (rules_->detections[matches[i]].generates_alerts) {
      Alert alert = detectionAlert(matches[i], event);
      if (admitAlert(alert)) out.push_back(std::move(alert));
    }
    for (uint32_t correlation : correlationsFor(matches[i], event)) {
      correlate(shardOf(correlation, matches[i], event), correlation, matches[i], event, out);
    }
  }
}

absl::Status Engine::injectMatch(std::string_view rule_id_or_name, const Event& event,
                                 std::vector<Alert>& out) {
  // The event's tenant's own rule of that id or name comes before a rule for every tenant.
  std::optional<uint32_t> found;
  for (uint32_t i = 0; i < rules_->detections.size(); ++i) {
    const DetectionRule& rule = rules_->detections[i];
    if (rule.id != rule_id_or_name && rule.name != rule_id_or_name) continue;
    if (!seesTenant(rule, event)) continue;
    if (!found || !rule.tenant.empty()) found = i;
    if (!rule.tenant.empty()) break;
  }
  if (!found) {
    return absl::NotFoundError(internal::concat(
        "no detection rule has id or name '", rule_id_or_name, "'",
        event.tenant.empty() ? "" : internal::concat(" for tenant '", event.tenant, "'")));
  }
  const uint32_t i = *found;
  const DetectionRule& rule = rules_->detections[i];
  counters_->detection_matches[i]->add();
  for (uint32_t shard = 0; shard < shards_.size(); ++shard) advanceTime(shard, event, out);
  if (rule.generates_alerts) {
    Alert alert = detectionAlert(i, event);
    if (admitAlert(alert)) out.push_back(std::move(alert));
  }
  for (uint32_t correlation : correlationsFor(i, event)) {
    correlate(shardOf(correlation, i, event), correlation, i, event, out);
  }
  return absl::OkStatus();
}

std::vector<Engine::StateSize> Engine::stateSizes() const {
  std::vector<StateSize> sizes;
  for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
    const internal::WindowTable& table = *shards_.front()->tables[i];
    StateSize size{i, table.bytesPerGroup(), 0, 0, 0};
    for (const auto& shard : shards_) {
      size.evidence_pool_bytes += shard->tables[i]->evidencePoolBytes();
      size.key_bytes += shard->tables[i]->keyBytes();
      size.groups += shard->tables[i]->groupCount();
    }
    sizes.push_back(size);
  }
  return sizes;
}

size_t Engine::stateBytes() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    for (const auto& table : shard->tables) total += table->totalBytes();
  }
  return total;
}

Engine::PrefilterStats Engine::prefilterStats() const {
  const internal::DetectionIndex& index = *rules_->index;
  return {rules_->detections.size(), index.prefilteredRuleCount(), index.literalCount()};
}

int64_t Engine::keyCount() const {
  int64_t total = 0;
  for (const auto& shard : shards_) {
    for (const auto& table : shard->tables) {
      total += static_cast<int64_t>(table->groupCount());
    }
  }
  return total;
}

}  // namespace vigil::correlate
