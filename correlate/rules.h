// Sigma rules as the engine runs them: detection rules (selections plus a condition) and
// correlation rules (event_count, value_count, temporal, temporal_ordered, value_sum,
// value_avg, value_percentile, absence, possibly chained), loaded from
// YAML with yaml-cpp. Loading is all or
// nothing per rule: a rule that uses anything unsupported is rejected with its file,
// title/id and the reason, and no part of it is kept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event.h"
#include "common/ip.h"
#include "correlate/condition.h"
#include "correlate/pattern.h"

namespace vigil::correlate {

// A Sigma `logsource`: product, category and service. An empty member is unset.
struct LogSource {
  std::string product;
  std::string category;
  std::string service;
};

// One kind of event that rules may select by `logsource`, as configured: which events
// belong to it and how Sigma field names map to their fields.
struct LogSourceDefinition {
  std::string name;  // names the definition in messages and metrics
  LogSource logsource;
  // Event field (a name Event::get accepts) -> value. An event belongs to the definition
  // when every listed field is present and equals its value, ignoring ASCII letter case.
  // No entries: every event belongs to it.
  std::vector<std::pair<std::string, std::string>> conditions;
  // Sigma field name -> Event field name for events of this definition. Replaces the
  // global entry of the same Sigma name.
  std::vector<std::pair<std::string, std::string>> field_mapping;
};

// Largest number of log source definitions (the engine keeps one bit per definition).
inline constexpr size_t kMaxLogSources = 64;

// Maps Sigma field names to Event field names (the names Event::get accepts). Names
// without an entry are looked up unchanged, which reaches the event's generic fields.
// When a mapped name is absent from an event, matching falls back to the generic field
// that carries the Sigma name itself. Log source definitions add entries that apply only
// to the events of that definition.
class FieldMapping {
 public:
  // The built-in entries: src_ip/SourceIp/SourceIP -> source.ip, dst_ip/DestinationIp ->
  // destination.ip, user/User -> user.name, host/Computer/ComputerName -> host.name,
  // message -> message, and the other canonical names in docs/rules.md.
  static FieldMapping defaults();

  // Adds or replaces one entry.
  void set(std::string sigma_name, std::string event_name);
  // Returns the Event name for `sigma_name` (itself when unmapped).
  std::string_view resolve(std::string_view sigma_name) const;

  // Adds a log source definition. Returns InvalidArgument when it sets none of product,
  // category and service, when a condition or mapping entry has an empty name, or when
  // kMaxLogSources definitions exist already.
  absl::Status addLogSource(LogSourceDefinition definition);
  const std::vector<LogSourceDefinition>& logSources() const { return logsources_; }

 private:
  absl::flat_hash_map<std::string, std::string> names_;
  std::vector<LogSourceDefinition> logsources_;
};

// A field name together with its Event::resolve() result. Copies and moves resolve the
// name again, because the FieldRef points at the name's own bytes (which move with a
// short string).
class ResolvedName {
 public:
  ResolvedName() = default;
  explicit ResolvedName(std::string name) : name_(std::move(name)), ref_(Event::resolve(name_)) {}
  ResolvedName(const ResolvedName& other) : ResolvedName(other.name_) {}
  ResolvedName(ResolvedName&& other) noexcept : ResolvedName(std::move(other.name_)) {}
  ResolvedName& operator=(const ResolvedName& other) {
    if (this != &other) assign(other.name_);
    return *this;
  }
  ResolvedName& operator=(ResolvedName&& other) noexcept {
    if (this != &other) assign(std::move(other.name_));
    return *this;
  }

  const std::string& name() const { return name_; }
  const FieldRef& ref() const { return ref_; }

 private:
  void assign(std::string name) {
    name_ = std::move(name);
    ref_ = Event::resolve(name_);
  }

  std::string name_;
  FieldRef ref_;
};

// One test of a field value. Values of one field are ORed unless the field carries `|all`.
struct ValueTest {
  enum class Op : uint8_t {
    kPattern,  // wildcard string match (default, contains, startswith, endswith, ...)
    kRegex,    // `re`: Hyperscan expression `regex` in the rule set's regex table
    kCidr,     // `cidr`: the value parses as an address inside `prefix`
    kExists,   // `exists`: presence of the field equals `expect_exists`
    kNull,     // YAML null: the field is absent or empty
    kLess,     // `lt`, `lte`, `gt`, `gte` compare the value as a number
    kLessEqual,
    kGreater,
    kGreaterEqual,
    kFieldRef,  // `fieldref`: equals the value of the field `ref_field`, folding ASCII
                // letters unless `ref_cased`
  };
  Op op = Op::kPattern;
  SigmaPattern pattern;
  uint32_t regex = 0;
  IpPrefix prefix;
  double number = 0;
  bool expect_exists = true;
  bool ref_cased = false;       // `fieldref|cased`: compare the bytes exactly
  std::string ref_field;        // Event name of the referenced field
  std::string ref_sigma_field;  // the referenced field as the rule names it
  ResolvedName ref_event;       // ref_field, resolved for Event::get
  ResolvedName ref_sigma;       // ref_sigma_field, resolved for Event::get
  // Filled by RuleLoader::finish(): the prefilter literal of a kPattern value
  // (pattern.requiredLiteral()), or UINT32_MAX when the prefilter has no such literal.
  uint32_t prefilter_literal = UINT32_MAX;
};

// One field with its value tests, after modifiers and the field mapping were applied.
struct FieldTest {
  enum class Source : uint8_t {
    kEvent,      // Event::get(event_name)
    kIntelList,  // `intel.list`: list name of any indicator hit on the event
    kIntelType,  // `intel.type`: indicator type name of any hit ("ipv4", "domain", ...)
    kKeyword,    // keyword list: the message, or the raw text when the message is empty
  };
  Source source = Source::kEvent;
  std::string sigma_name;
  std::string event_name;
  bool all = false;  // `|all`: every value must match
  std::vector<ValueTest> values;
  ResolvedName event_ref;  // event_name, resolved for Event::get
  ResolvedName sigma_ref;  // sigma_name, resolved for Event::get
  // Log source definitions whose field mapping maps sigma_name: definition index and the
  // Event name read instead of event_name for events of that definition.
  std::vector<std::pair<uint32_t, ResolvedName>> logsource_refs;
  // Filled by RuleLoader::finish(): the prefilter slots of event_ref (of the keyword text
  // for kKeyword), of sigma_ref and of each logsource_refs name, or UINT32_MAX for a name
  // the prefilter does not read. Detection uses them to skip values whose literal the
  // prefilter did not find in the field read.
  uint32_t event_slot = UINT32_MAX;
  uint32_t sigma_slot = UINT32_MAX;
  std::vector<uint32_t> logsource_slots;
};

// A named selection: a map of fields (AND) or a list of such maps (OR).
struct Selection {
  std::string name;
  std::vector<std::vector<FieldTest>> alternatives;
};

// One group-by field as read from one referenced rule's events: the Sigma name (the
// alias target when `aliases` maps it) and its Event name after the field mapping.
struct GroupField {
  ResolvedName sigma;
  ResolvedName event;
};

struct DetectionRule {
  std::string origin;   // file (or the caller's label) and document number
  std::string file;     // the file (or the caller's label) alone
  size_t line = 0;      // 1-based line of `file` where the rule's document starts
  size_t document = 0;  // 1-based number of the rule's document in `file`
  // The tenant whose events the rule sees, set by RuleLoader::setScope(); empty for a
  // rule that sees every tenant's events.
  std::string tenant;
  // Content version of the rule's scope, copied into Alert::rules_version; 0 means
  // EngineOptions::rules_version.
  uint64_t version = 0;
  std::string id;
  std::string name;  // Sigma `name`, used by correlation references
  std::string title;
  std::string level;  // Sigma level in lower case; "medium" when the rule has none
  std::string status;
  std::vector<std::string> tags;
  std::vector<std::pair<std::string, std::string>> logsource;
  // Filled by RuleLoader::finish() from the log source definitions. When logsource_any is
  // set the rule runs on every event; otherwise only on events of a definition whose bit
  // is set in logsource_mask (the definitions compatible with product/category/service).
  bool logsource_any = true;
  uint64_t logsource_mask = 0;
  std::vector<Selection> selections;
  std::vector<std::string> selection_names;
  Condition condition;
  // `suppress`: alerts within this much event time of the last delivered alert of the
  // same key (tenant and `suppress_fields` values) are suppressed. 0 turns it off.
  int64_t suppress_ns = 0;
  std::vector<std::string> suppress_by;  // Sigma names, as written
  std::vector<GroupField> suppress_fields;
  // Filled by RuleLoader::finish(): whether the rule raises an alert per matching event.
  // True unless a correlation references it without `generate: true`.
  bool generates_alerts = true;
};

enum class CorrelationType : uint8_t {
  kEventCount,       // matching events per group
  kValueCount,       // distinct values of `condition.field` per group
  kTemporal,         // distinct referenced rules matched per group, in any order
  kTemporalOrdered,  // every referenced rule matched in the order listed
  kAbsence,          // the first referenced rule matched and the second did not follow
  kValueSum,         // sum of the numeric `condition.field` values per group
  kValueAvg,         // average of the numeric `condition.field` values per group
  kValuePercentile,  // a percentile of the numeric `condition.field` values per group
};

// One comparison of a correlation condition: the metric (count, sum, average or
// percentile) compared with `value`. The comparisons of one condition are ANDed.
struct ConditionBound {
  enum class Op : uint8_t { kGt, kGte, kLt, kLte, kEq, kNeq };
  Op op = Op::kGte;
  double value = 0;
};

// Returns the Sigma name of `op` ("gt", ...).
std::string_view boundOpName(ConditionBound::Op op);

// Marks a position of CorrelationRule::detections or CorrelationRule::chained that
// refers to the other kind of rule.
inline constexpr uint32_t kNoRule = UINT32_MAX;

// Returns the Sigma name of `type` ("event_count", ...).
std::string_view correlationTypeName(CorrelationType type);

struct CorrelationRule {
  std::string origin;
  std::string file;      // as DetectionRule::file
  size_t line = 0;       // as DetectionRule::line
  size_t document = 0;   // as DetectionRule::document
  std::string tenant;    // as DetectionRule::tenant
  uint64_t version = 0;  // as DetectionRule::version
  std::string id;
  std::string name;
  std::string title;
  std::string level;  // Sigma level in lower case; "medium" when the rule has none
  std::vector<std::string> tags;
  CorrelationType type = CorrelationType::kEventCount;
  std::vector<std::string> rule_refs;     // as written: ids or names
  // Per entry of rule_refs: the 1-based line of `file` it is written on.
  std::vector<size_t> rule_ref_lines;
  // Per entry of rule_refs, resolved by RuleLoader::finish(): the index into
  // RuleSet::detections, or kNoRule when the entry names a correlation rule.
  std::vector<uint32_t> detections;
  // Per entry of rule_refs: the index into RuleSet::correlations when the entry names a
  // correlation rule (a chained correlation), else kNoRule. Alerts of that correlation
  // reach this one as events whose fields are its group-by values.
  std::vector<uint32_t> chained;
  // Longest chain of correlations below this one: 0 when it references detection rules
  // only. At most kMaxChainDepth.
  uint32_t chain_depth = 0;
  std::vector<std::string> group_by;      // Sigma names (or alias names), as written
  std::vector<std::string> group_fields;  // Event names after the field mapping
  // `aliases`: alias name -> (rule reference as written -> Sigma field name).
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> aliases;
  // Filled by RuleLoader::finish(): per entry of `detections`, the group-by fields to read
  // from that rule's events (aliases applied), in group_by order.
  std::vector<std::vector<GroupField>> group_by_rule;
  // value_count: the fields whose value tuple is counted (`condition.field`).
  std::vector<std::string> value_fields;  // Sigma names, as written
  std::vector<GroupField> value_refs;
  int64_t timespan_ns = 0;
  // The condition as written (ANDed). Empty for absence and for temporal types that
  // leave the condition out.
  std::vector<ConditionBound> bounds;
  // True when the condition has an upper bound or an exclusion (lt, lte, eq, neq). Such
  // a window is decided once, when it closes: it opens at the group's first event t0,
  // holds the group's events of [t0, t0 + timespan], and closes when the shard's
  // watermark passes t0 + timespan (see docs/rules.md). Otherwise the window slides and
  // the rule fires as soon as the condition holds.
  bool closes = false;
  // The smallest count that satisfies the lower bounds (count types; 1 when there are
  // none). Sliding event_count and value_count windows keep this many entries.
  uint64_t min_count = 0;
  // value_count windows that close: distinct values are counted exactly up to this many,
  // which is one more than any bound needs to tell apart.
  uint64_t count_cap = 0;
  // value_sum, value_avg and value_percentile: the strictest lower bound, kept for
  // callers that read it; the condition itself is `bounds`.
  double min_value = 0;
  bool min_value_inclusive = true;
  // value_percentile: which percentile (0 < p <= 100) of the window's values is compared.
  double percentile = 0;
  bool generate = false;
  // Filled by RuleLoader::finish(): whether this rule's alerts are delivered. False when
  // another correlation chains it without `generate: true`.
  bool generates_alerts = true;
  // Alerts of one group raised within this much event time of the group's last alert
  // are suppressed (counted, not delivered). 0 turns suppression off.
  int64_t suppress_ns = 0;

  uint64_t minCount() const { return min_count; }
  // Returns true when `metric` satisfies every bound.
  bool conditionHolds(double metric) const;
};

class RegexTable;  // Hyperscan databases of the `re` values (defined in internal/)
namespace internal {
class DetectionIndex;  // literal prefilter and log source table (defined in internal/)
}

// A finished, immutable rule set. Shared read-only by every worker.
struct RuleSet {
  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  std::vector<DetectionRule> detections;
  std::vector<CorrelationRule> correlations;
  std::vector<LogSourceDefinition> logsources;
  std::unique_ptr<RegexTable> regexes;
  // Built by RuleLoader::finish() for `detections` as they were then. Engine::detect()
  // evaluates every rule in turn when rules were added or removed afterwards.
  std::unique_ptr<internal::DetectionIndex> index;
};

// The rules of one scope as RuleLoader::addText() parsed them, before finish() resolved
// their references. A rule reload keeps one per scope, so a push parses only the files
// of the scope it changes (RuleLoader::addParsed()).
struct ParsedScope {
  ParsedScope();
  ~ParsedScope();
  ParsedScope(ParsedScope&&) noexcept;
  ParsedScope& operator=(ParsedScope&&) noexcept;

  std::vector<DetectionRule> detections;
  std::vector<CorrelationRule> correlations;
  // The `re` values of `detections`; ValueTest::regex indexes this table.
  std::shared_ptr<const RegexTable> regexes;
};

// The name a rule is shown under in alerts and metrics: its id, else its title.
std::string ruleLabel(const std::string& id, const std::string& title);

// The name a rule's window state and suppression keys are kept under in checkpoints and
// rule reloads: the label, preceded for a tenant's rule by the tenant and a 0x1f byte, so
// rules of the same id in two tenants keep separate state. Global rules keep their plain
// label, which checkpoints written before tenant rules existed use.
template <typename Rule>
std::string stateLabel(const Rule& rule) {
  std::string label = ruleLabel(rule.id, rule.title);
  if (rule.tenant.empty()) return label;
  return rule.tenant + '\x1f' + label;
}

// Largest accepted minimum count of an event_count or value_count condition. Each
// (rule, group) keeps this many timestamps (event_count) or value hashes (value_count)
// at most, so the bound caps the state memory of one group.
inline constexpr uint64_t kMaxCorrelationThreshold = 10000;

// Largest number of rules a temporal or temporal_ordered correlation may reference.
inline constexpr size_t kMaxTemporalRules = 32;

// Longest chain of correlations over correlations: a correlation may sit on at most this
// many levels of correlations below it.
inline constexpr uint32_t kMaxChainDepth = 4;

// Values a value_percentile window holds. When a window has more, the oldest value is
// dropped (counted in vigil_correlation_sample_dropped_total) and the percentile is
// computed over the newest kPercentileSample values.
inline constexpr size_t kPercentileSample = 64;

// Collects rules from YAML files or text, then resolves the correlation references.
class RuleLoader {
 public:
  explicit RuleLoader(FieldMapping mapping = FieldMapping::defaults());
  ~RuleLoader();

  // Sets the scope of the rules added from now on: `tenant` (empty for every tenant) and
  // their content `version`. A tenant's rules see only that tenant's events. finish()
  // resolves a tenant correlation's references among the rules of the same tenant
  // first, then among the detection rules for every tenant. Such a correlation still
  // counts only its own tenant's events. Rule ids must be unique per scope. The scope
  // starts as every tenant, version 0.
  void setScope(std::string tenant, uint64_t version);

  // Parses every YAML document in `yaml` (documents are separated by `---`). `origin`
  // names the text in error messages (a file path). On error nothing from `yaml` is kept
  // and the status names origin, document number, rule title/id and the reason. A text
  // without any rule (empty, or only comments and `---` lines) loads and adds a warning.
  absl::Status addText(std::string_view yaml, std::string_view origin);
  // Reads `path` and calls addText(). NotFound when the file cannot be read.
  absl::Status addFile(const std::string& path);

  // Moves the rules added so far out as a ParsedScope and empties the loader. Use it
  // with one scope set, so the result contains one scope's rules.
  ParsedScope takeParsed();
  // Appends copies of the rules of `scope`, keeping their tenant and version, as if
  // addText() had parsed them again. The `re` databases are shared, not compiled again.
  void addParsed(const ParsedScope& scope);

  // Resolves `correlation.rules` against the rules of the same scope added so far
  // (detection rules by id, then by name, then correlation rules by id, then by name),
  // and for a tenant's correlation then against the detection rules for every tenant
  // (by id, then by name). Applies `aliases`, marks which rules raise their own alerts
  // and returns the rule set. A tenant correlation that references a rule for every
  // tenant does not change whether that rule raises alerts. Rejects references that
  // name no loaded rule, with a message that starts with "FILE:LINE:" of the entry. Also
  // rejects references from a tenant to a correlation for every tenant, chains that
  // form a cycle (the message lists it) or are deeper than kMaxChainDepth, and aliases
  // that name a rule outside `correlation.rules`. The loader is empty afterwards.
  absl::StatusOr<RuleSet> finish();

  // Problems that do not stop the load, in the order addText() found them, each starting
  // with the origin ("FILE: ..."). finish() and takeParsed() keep them.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  FieldMapping mapping_;
  RuleSet pending_;
  std::vector<std::string> warnings_;
  std::string tenant_;
  uint64_t version_ = 0;
};

// Returns `yaml` without the documents whose rule label (ruleLabel(): id, else title) is
// `label`, and sets `removed` to how many documents went. The other documents keep their
// text, joined by "---" lines. InvalidArgument, naming `origin` and the line, when a
// document is not valid YAML.
absl::StatusOr<std::string> withoutRule(std::string_view yaml, std::string_view origin,
                                        std::string_view label, size_t& removed);

// Parses a Sigma timespan ("30s", "5m", "1h", "2d") into nanoseconds.
absl::StatusOr<int64_t> parseTimespan(std::string_view text);

}  // namespace vigil::correlate
