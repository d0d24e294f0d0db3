#include "correlate/internal/detection_index.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

#include "correlate/internal/text.h"

namespace vigil::correlate::internal {

struct DetectionIndex::Slot {
  ResolvedName name;     // the Event field name; unused for the keyword slot
  bool keyword = false;  // the message, or the raw text when the message is empty
  // The log sources of the rules tied to this slot: an event's value is taken here only
  // when one of those rules can run on it.
  bool any_logsource = false;
  uint64_t logsource_mask = 0;
  uint32_t group = kNoGroup;  // the scan group; kNoGroup when no literal is tied here
  uint32_t value = 0;         // position in the scratch value tables (within its group)
  // Rules that are candidates whenever the event has this field: into presence_rules_.
  uint32_t first_presence = 0;
  uint32_t presence_count = 0;

  static constexpr uint32_t kNoGroup = UINT32_MAX;

  bool applies(uint64_t event_logsources) const {
    return any_logsource || (logsource_mask & event_logsources) != 0;
  }
};

// One Hyperscan block-mode database and the slots whose values it scans. Its values sit
// in PrefilterScratch at [first_value, first_value + slot_count).
struct DetectionIndex::Group {
  hs_database_t* database = nullptr;
  uint32_t first_value = 0;
  uint32_t slot_count = 0;
};

// One (literal, slot) pair and the rules that it makes candidates.
struct DetectionIndex::LiteralSlot {
  uint32_t slot = 0;
  uint32_t first_rule = 0;  // into literal_rules_
  uint32_t rule_count = 0;
};

struct DetectionIndex::Literal {
  uint32_t length = 0;
  uint32_t first_slot = 0;  // into literal_slots_
  uint32_t slot_count = 0;
};

struct DetectionIndex::ScanContext {
  const DetectionIndex* index;
  PrefilterScratch* prefilter;
  uint32_t first_value;  // the group's region in the value tables
  uint32_t values;
};

// ---------------------------------------------------------------------------------------
// Build side: which literals a rule needs

namespace {

// A literal that must occur in one of the named fields (or the keyword text), or, when
// `presence` is set, one of the named fields that must be present.
struct LiteralUse {
  std::string text;
  bool cased = false;
  bool keyword = false;
  bool presence = false;
  std::vector<std::string> fields;
};

// Literals or presences of which at least one occurs whenever a condition part is true.
// `score` is the shortest literal's length, 0 with a presence: longer literals fire less
// often on benign events, and a presence fires on every event that has the field.
struct Need {
  std::vector<LiteralUse> uses;
  size_t score = 0;
};

// The fields a FieldTest may read: its Event name, the Sigma name it falls back to and
// the names log source mappings give it.
std::vector<std::string> fieldNames(const FieldTest& field) {
  std::vector<std::string> names = {field.event_name};
  if (field.sigma_name != field.event_name) names.push_back(field.sigma_name);
  for (const auto& [definition, name] : field.logsource_refs) names.push_back(name.name());
  return names;
}

// Shortest literal taken from a `re` value. A shorter one would occur in most values and
// save no evaluations, so the field's presence is used instead.
constexpr size_t kMinRegexLiteral = 4;

std::optional<LiteralUse> valueLiteral(const FieldTest& field, const ValueTest& test,
                                       const RegexTable* regexes) {
  std::string literal;
  bool cased = false;
  if (test.op == ValueTest::Op::kPattern) {
    literal = test.pattern.requiredLiteral();
    cased = test.pattern.cased();
  } else if (test.op == ValueTest::Op::kRegex && regexes != nullptr &&
             test.regex < regexes->size()) {
    // Folded and caseless: it is a superset of what a case-sensitive expression needs.
    literal = requiredRegexLiteral(regexes->expression(test.regex));
    if (literal.size() < kMinRegexLiteral) literal.clear();
  }
  if (literal.empty()) return std::nullopt;
  LiteralUse use;
  use.text = std::move(literal);
  use.cased = cased;
  use.keyword = field.source == FieldTest::Source::kKeyword;
  if (!use.keyword) use.fields = fieldNames(field);
  return use;
}

// Whether `test` is false on an event field that is absent (see matchOptional() in
// evaluate.cc): every test but `null` and `exists: false`.
bool needsPresence(const FieldTest& field, const ValueTest& test) {
  if (field.source != FieldTest::Source::kEvent) return false;
  if (test.op == ValueTest::Op::kNull) return false;
  return test.op != ValueTest::Op::kExists || test.expect_exists;
}

Need presenceNeed(const FieldTest& field) {
  LiteralUse use;
  use.presence = true;
  use.fields = fieldNames(field);
  Need need;
  need.uses.push_back(std::move(use));
  return need;
}

// A field without `all` needs a literal from each of its values; with `all`, the longest
// literal of any one value is enough, because every value must match. A value without a
// literal that is false on an absent field leaves the field's presence as the need.
std::optional<Need> fieldNeed(const FieldTest& field, const RegexTable* regexes) {
  if (field.source != FieldTest::Source::kEvent && field.source != FieldTest::Source::kKeyword) {
    return std::nullopt;
  }
  Need need;
  bool presence = false;
  for (const ValueTest& test : field.values) {
    std::optional<LiteralUse> use = valueLiteral(field, test, regexes);
    if (!use) {
      if (needsPresence(field, test)) {
        presence = true;
      } else if (!field.all) {
        return std::nullopt;
      }
      continue;
    }
    if (field.all) {
      if (use->text.size() <= need.score) continue;
      need.uses.clear();
    }
    need.score = need.uses.empty() ? use->text.size() : std::min(need.score, use->text.size());
    need.uses.push_back(std::move(*use));
  }
  // Without `all`, a literal of one value does not cover a value that has none; the
  // field's presence covers both.
  if (presence && (!field.all || need.uses.empty())) return presenceNeed(field);
  if (need.uses.empty()) return std::nullopt;
  return need;
}

// The better of two needs: the one whose shortest literal is longer.
std::optional<Need> better(std::optional<Need> a, std::optional<Need> b) {
  if (!a) return b;
  if (!b) return a;
  return b->score > a->score ? std::move(b) : std::move(a);
}

// Unites the needs of all parts: an OR is true only when one of its parts is, so each
// part must provide a literal.
std::optional<Need> unite(std::vector<std::optional<Need>> parts) {
  Need all;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i]) return std::nullopt;
    all.score = i == 0 ? parts[i]->score : std::min(all.score, parts[i]->score);
    for (LiteralUse& use : parts[i]->uses) all.uses.push_back(std::move(use));
  }
  if (all.uses.empty()) return std::nullopt;
  return all;
}

std::optional<Need> selectionNeed(const Selection& selection, const RegexTable* regexes) {
  std::vector<std::optional<Need>> alternatives;
  for (const std::vector<FieldTest>& fields : selection.alternatives) {
    std::optional<Need> best;
    for (const FieldTest& field : fields) {
      best = better(std::move(best), fieldNeed(field, regexes));
    }
    alternatives.push_back(std::move(best));
  }
  return unite(std::move(alternatives));
}

std::optional<Need> nodeNeed(const DetectionRule& rule, uint32_t index,
                             const RegexTable* regexes) {
  const Condition& condition = rule.condition;
  const Condition::Node& node = condition.nodes()[index];
  auto child = [&](uint32_t i) { return condition.children()[node.first_child + i]; };
  switch (node.kind) {
    case Condition::Kind::kSelection:
      return selectionNeed(rule.selections[node.selection], regexes);
    case Condition::Kind::kNot:
      return std::nullopt;
    case Condition::Kind::kAnd: {
      std::optional<Need> best;
      for (uint32_t i = 0; i < node.child_count; ++i) {
        best = better(std::move(best), nodeNeed(rule, child(i), regexes));
      }
      return best;
    }
    case Condition::Kind::kOr: {
      std::vector<std::optional<Need>> parts;
      for (uint32_t i = 0; i < node.child_count; ++i) {
        parts.push_back(nodeNeed(rule, child(i), regexes));
      }
      return unite(std::move(parts));
    }
  }
  return std::nullopt;
}

bool logSourceCompatible(const LogSource& rule, const LogSource& definition) {
  auto same = [](const std::string& wanted, const std::string& offered) {
    return wanted.empty() || equalsIgnoreCase(wanted, offered);
  };
  return same(rule.product, definition.product) && same(rule.category, definition.category) &&
         same(rule.service, definition.service);
}

LogSource ruleLogSource(const DetectionRule& rule) {
  LogSource logsource;
  for (const auto& [key, value] : rule.logsource) {
    if (key == "product") logsource.product = value;
    if (key == "category") logsource.category = value;
    if (key == "service") logsource.service = value;
  }
  return logsource;
}

}  // namespace

// Collects (literal, slot, rule) triples and (slot, rule) presences, then flattens them
// into the index tables and compiles one database per scan group.
class DetectionIndex::Builder {
 public:
  explicit Builder(DetectionIndex& index) : index_(index) {}

  void add(uint32_t index, const DetectionRule& rule, const Need& need) {
    auto tie = [&](std::vector<uint32_t>& rules, uint32_t slot) {
      rules.push_back(index);
      index_.slots_[slot].any_logsource |= rule.logsource_any;
      index_.slots_[slot].logsource_mask |= rule.logsource_mask;
    };
    for (const LiteralUse& use : need.uses) {
      if (use.presence) {
        for (const std::string& name : use.fields) {
          uint32_t slot = fieldSlot(name);
          tie(presence_[slot], slot);
        }
        continue;
      }
      auto& by_slot = literals_[{use.text, use.cased}];
      if (use.keyword) {
        uint32_t slot = keywordSlot();
        tie(by_slot[slot], slot);
        continue;
      }
      for (const std::string& name : use.fields) {
        uint32_t slot = fieldSlot(name);
        tie(by_slot[slot], slot);
      }
    }
  }

  absl::Status finish() {
    for (auto& [slot, rules] : presence_) {
      std::sort(rules.begin(), rules.end());
      rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
      Slot& entry = index_.slots_[slot];
      entry.first_presence = static_cast<uint32_t>(index_.presence_rules_.size());
      entry.presence_count = static_cast<uint32_t>(rules.size());
      index_.presence_rules_.insert(index_.presence_rules_.end(), rules.begin(), rules.end());
    }

    std::vector<uint32_t> slot_literals(index_.slots_.size(), 0);
    for (auto& [key, by_slot] : literals_) {
      Literal literal;
      literal.length = static_cast<uint32_t>(key.first.size());
      literal.first_slot = static_cast<uint32_t>(index_.literal_slots_.size());
      for (auto& [slot, rules] : by_slot) {
        std::sort(rules.begin(), rules.end());
        rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
        LiteralSlot entry{slot, static_cast<uint32_t>(index_.literal_rules_.size()),
                          static_cast<uint32_t>(rules.size())};
        index_.literal_rules_.insert(index_.literal_rules_.end(), rules.begin(), rules.end());
        index_.literal_slots_.push_back(entry);
        ++slot_literals[slot];
      }
      literal.slot_count = static_cast<uint32_t>(by_slot.size());
      literal_ids_.emplace(key, static_cast<uint32_t>(index_.literals_.size()));
      index_.literals_.push_back(literal);
    }
    index_.literal_count_ = index_.literals_.size();
    assignGroups(slot_literals);

    for (uint32_t group = 0; group < index_.groups_.size(); ++group) {
      absl::Status status = compile(group);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  // The keyword text gets a group of its own: it is the longest value, and field
  // literals that occur in it could never count there. So does each field with at least
  // kOwnGroupLiterals literals, so its value is not scanned for the literals of other
  // fields and theirs not for its own. The other fields share one group.
  static constexpr uint32_t kOwnGroupLiterals = 64;

  void assignGroups(const std::vector<uint32_t>& slot_literals) {
    std::vector<Group>& groups = index_.groups_;
    uint32_t values = 0;
    auto open = [&]() {
      groups.push_back(Group{nullptr, values, 0});
      return static_cast<uint32_t>(groups.size() - 1);
    };
    auto join = [&](uint32_t slot, uint32_t group) {
      index_.slots_[slot].group = group;
      index_.slots_[slot].value = groups[group].first_value + groups[group].slot_count++;
      ++values;
    };
    uint32_t shared = Slot::kNoGroup;
    for (uint32_t slot = 0; slot < index_.slots_.size(); ++slot) {
      if (slot_literals[slot] == 0) continue;
      if (index_.slots_[slot].keyword || slot_literals[slot] >= kOwnGroupLiterals) {
        join(slot, open());
      }
    }
    for (uint32_t slot = 0; slot < index_.slots_.size(); ++slot) {
      if (slot_literals[slot] == 0 || index_.slots_[slot].group != Slot::kNoGroup) continue;
      if (shared == Slot::kNoGroup) shared = open();
      join(slot, shared);
    }
  }

  // Compiles the literals tied to a slot of `group` into its database.
  absl::Status compile(uint32_t group) {
    std::vector<const char*> texts;
    std::vector<size_t> lengths;
    std::vector<unsigned int> flags;
    std::vector<unsigned int> ids;
    uint32_t id = 0;
    for (const auto& [key, by_slot] : literals_) {
      bool tied = std::any_of(by_slot.begin(), by_slot.end(), [&](const auto& entry) {
        return index_.slots_[entry.first].group == group;
      });
      if (tied) {
        ids.push_back(id);
        texts.push_back(key.first.data());
        lengths.push_back(key.first.size());
        flags.push_back(key.second ? 0u : static_cast<unsigned int>(HS_FLAG_CASELESS));
      }
      ++id;
    }
    hs_compile_error_t* error = nullptr;
    if (hs_compile_lit_multi(texts.data(), flags.data(), ids.data(), lengths.data(),
                             static_cast<unsigned int>(texts.size()), HS_MODE_BLOCK, nullptr,
                             &index_.groups_[group].database, &error) != HS_SUCCESS) {
      std::string message = error != nullptr ? error->message : "unknown error";
      hs_free_compile_error(error);
      return absl::InternalError(
          concat("compiling the ", texts.size(), " prefilter literals failed: ", message));
    }
    return absl::OkStatus();
  }

  // Stores the slot and literal ids of `rule`'s tests (see FieldTest::event_slot).
 public:
  void annotate(DetectionRule& rule) const {
    auto slotOf = [&](const std::string& name) {
      auto it = slot_ids_.find(name);
      return it == slot_ids_.end() ? UINT32_MAX : it->second;
    };
    for (Selection& selection : rule.selections) {
      for (std::vector<FieldTest>& fields : selection.alternatives) {
        for (FieldTest& field : fields) {
          field.event_slot = field.sigma_slot = UINT32_MAX;
          field.logsource_slots.clear();
          if (field.source == FieldTest::Source::kKeyword) {
            field.event_slot = index_.keyword_slot_;
          } else if (field.source == FieldTest::Source::kEvent) {
            field.event_slot = slotOf(field.event_name);
            field.sigma_slot = slotOf(field.sigma_name);
            for (const auto& [definition, name] : field.logsource_refs) {
              field.logsource_slots.push_back(slotOf(name.name()));
            }
          }
          for (ValueTest& test : field.values) {
            test.prefilter_literal = UINT32_MAX;
            if (test.op != ValueTest::Op::kPattern) continue;
            auto it = literal_ids_.find({test.pattern.requiredLiteral(), test.pattern.cased()});
            if (it != literal_ids_.end()) test.prefilter_literal = it->second;
          }
        }
      }
    }
  }

 private:
  uint32_t keywordSlot() {
    if (index_.keyword_slot_ == UINT32_MAX) {
      index_.keyword_slot_ = static_cast<uint32_t>(index_.slots_.size());
      Slot slot;
      slot.keyword = true;
      index_.slots_.push_back(std::move(slot));
    }
    return index_.keyword_slot_;
  }

  uint32_t fieldSlot(const std::string& name) {
    auto [it, added] = slot_ids_.emplace(name, static_cast<uint32_t>(index_.slots_.size()));
    if (!added) return it->second;
    Slot slot;
    slot.name = ResolvedName(name);
    index_.slots_.push_back(std::move(slot));
    if (index_.slots_.back().name.ref().canonical != CanonicalField::kNone) {
      index_.canonical_slots_.push_back(it->second);
    } else {
      index_.generic_slots_.add(name, it->second);
    }
    return it->second;
  }

  DetectionIndex& index_;
  std::map<std::string, uint32_t> slot_ids_;
  // (text, cased) -> slot -> rules. Ordered maps keep the ids stable between builds.
  std::map<std::pair<std::string, bool>, std::map<uint32_t, std::vector<uint32_t>>> literals_;
  std::map<uint32_t, std::vector<uint32_t>> presence_;  // slot -> rules
  std::map<std::pair<std::string, bool>, uint32_t> literal_ids_;
};

// ---------------------------------------------------------------------------------------
// SlotNameTable

void SlotNameTable::add(std::string_view name, uint32_t slot) {
  if (find(name) != kNotFound) return;
  if ((count_ + 1) * 2 > entries_.size()) {
    std::vector<Entry> old = std::move(entries_);
    entries_.assign(std::max<size_t>(16, old.size() * 2), Entry{});
    mask_ = entries_.size() - 1;
    for (const Entry& entry : old) {
      if (entry.slot != kNotFound) insert(entry);
    }
  }
  Entry entry;
  entry.hash = hashName(name);
  entry.offset = static_cast<uint32_t>(names_.size());
  entry.length = static_cast<uint32_t>(name.size());
  entry.slot = slot;
  names_.append(name);
  insert(entry);
  ++count_;
}

void SlotNameTable::insert(const Entry& entry) {
  size_t at = entry.hash & mask_;
  while (entries_[at].slot != kNotFound) at = (at + 1) & mask_;
  entries_[at] = entry;
}

// ---------------------------------------------------------------------------------------
// DetectionIndex

DetectionIndex::DetectionIndex() = default;

DetectionIndex::~DetectionIndex() {
  for (Group& group : groups_) {
    if (group.database != nullptr) hs_free_database(group.database);
  }
}

absl::StatusOr<std::unique_ptr<DetectionIndex>> DetectionIndex::build(
    std::vector<DetectionRule>& rules, const std::vector<LogSourceDefinition>& logsources,
    const RegexTable* regexes) {
  auto index = std::make_unique<DetectionIndex>();
  index->rule_count_ = rules.size();
  index->always_.assign((rules.size() + 63) / 64, 0);
  Builder builder(*index);
  for (uint32_t i = 0; i < rules.size(); ++i) {
    std::optional<Need> need;
    if (!rules[i].condition.nodes().empty()) {
      need = nodeNeed(rules[i], rules[i].condition.root(), regexes);
    }
    if (!need) {
      index->always_[i / 64] |= uint64_t{1} << (i % 64);
      continue;
    }
    builder.add(i, rules[i], *need);
    ++index->prefiltered_count_;
  }
  absl::Status status = builder.finish();
  if (!status.ok()) return status;
  for (DetectionRule& rule : rules) builder.annotate(rule);

  for (const LogSourceDefinition& definition : logsources) {
    std::vector<uint32_t> conditions;
    for (const auto& entry : definition.conditions) {
      // Named references, not a structured binding: clang 14 rejects lambdas that capture
      // a binding, and the fuzz preset builds with clang.
      const auto& field = entry.first;
      const auto& value = entry.second;
      std::vector<ResolvedName>& fields = index->condition_fields_;
      auto known = std::find_if(fields.begin(), fields.end(),
                                [&](const ResolvedName& name) { return name.name() == field; });
      if (known == fields.end()) known = fields.insert(fields.end(), ResolvedName(field));
      LogSourceCondition condition{static_cast<uint32_t>(known - fields.begin()), value};
      std::vector<LogSourceCondition>& all = index->conditions_;
      auto same = std::find_if(all.begin(), all.end(), [&](const LogSourceCondition& other) {
        return other.field == condition.field && equalsIgnoreCase(other.value, value);
      });
      if (same == all.end()) same = all.insert(all.end(), std::move(condition));
      conditions.push_back(static_cast<uint32_t>(same - all.begin()));
    }
    index->logsource_conditions_.push_back(std::move(conditions));
  }
  return index;
}

size_t DetectionIndex::groupCount() const { return groups_.size(); }

bool DetectionIndex::prepare(hs_scratch_t** scratch, PrefilterScratch& prefilter) const {
  size_t values = 0;
  for (const Group& group : groups_) {
    if (hs_alloc_scratch(group.database, scratch) != HS_SUCCESS) return false;
    values += group.slot_count;
  }
  prefilter.data.resize(values);
  prefilter.lengths.resize(values);
  prefilter.begins.resize(values);
  prefilter.slots.resize(values);
  prefilter.text.resize(PrefilterScratch::kTextBytes);
  prefilter.group_values.resize(groups_.size());
  prefilter.seen.resize((slots_.size() + 63) / 64);
  prefilter.scanned.resize((slots_.size() + 63) / 64);
  prefilter.found.resize((literal_slots_.size() + 63) / 64);
  prefilter.buffers.resize(canonical_slots_.size());
  prefilter.candidates.resize(always_.size());
  prefilter.fired.resize(always_.size());
  return true;
}

uint64_t DetectionIndex::eventLogSources(const Event& event) const {
  if (logsource_conditions_.empty()) return 0;
  std::array<std::optional<std::string_view>, kCachedConditionFields> values;
  std::array<std::array<char, 64>, kCachedConditionFields> buffers;
  std::array<bool, kCachedConditionFields> read{};
  std::array<char, 64> buffer;
  auto valueOf = [&](uint32_t field) {
    if (field >= kCachedConditionFields) return event.get(condition_fields_[field].ref(), buffer);
    if (!read[field]) {
      values[field] = event.get(condition_fields_[field].ref(), buffers[field]);
      read[field] = true;
    }
    return values[field];
  };

  // Per cached condition: 0 not tested yet, 1 holds, 2 does not hold.
  std::array<uint8_t, kCachedConditions> results{};
  auto holds = [&](uint32_t index) {
    const LogSourceCondition& condition = conditions_[index];
    if (index < kCachedConditions && results[index] != 0) return results[index] == 1;
    std::optional<std::string_view> value = valueOf(condition.field);
    bool result = value && equalsIgnoreCase(*value, condition.value);
    if (index < kCachedConditions) results[index] = result ? 1 : 2;
    return result;
  };

  uint64_t found = 0;
  for (size_t i = 0; i < logsource_conditions_.size(); ++i) {
    bool all = true;
    for (uint32_t condition : logsource_conditions_[i]) {
      if (!holds(condition)) {
        all = false;
        break;
      }
    }
    if (all) found |= uint64_t{1} << i;
  }
  return found;
}

void DetectionIndex::take(std::string_view value, uint32_t slot, uint64_t event_logsources,
                          PrefilterScratch& prefilter) const {
  uint64_t& seen = prefilter.seen[slot / 64];
  const uint64_t bit = uint64_t{1} << (slot % 64);
  if ((seen & bit) != 0) return;  // the first field of a name wins, as in Event::get()
  seen |= bit;
  const Slot& entry = slots_[slot];
  if (!entry.applies(event_logsources)) return;
  prefilter.scanned[slot / 64] |= bit;
  const uint32_t* presence = presence_rules_.data() + entry.first_presence;
  for (uint32_t i = 0; i < entry.presence_count; ++i) {
    prefilter.candidates[presence[i] / 64] |= uint64_t{1} << (presence[i] % 64);
  }
  if (value.empty() || entry.group == Slot::kNoGroup) return;
  const uint32_t at = groups_[entry.group].first_value + prefilter.group_values[entry.group]++;
  prefilter.data[at] = value.data();
  prefilter.lengths[at] = static_cast<unsigned int>(value.size());
  prefilter.slots[at] = slot;
}

bool DetectionIndex::scan(const Event& event, uint64_t event_logsources, hs_scratch_t* scratch,
                          PrefilterScratch& prefilter) const {
  std::copy(always_.begin(), always_.end(), prefilter.candidates.begin());
  std::fill(prefilter.fired.begin(), prefilter.fired.end(), 0);
  if (slots_.empty()) return true;
  std::fill(prefilter.seen.begin(), prefilter.seen.end(), 0);
  std::fill(prefilter.scanned.begin(), prefilter.scanned.end(), 0);
  std::fill(prefilter.found.begin(), prefilter.found.end(), 0);
  std::fill(prefilter.group_values.begin(), prefilter.group_values.end(), 0);

  for (size_t i = 0; i < canonical_slots_.size(); ++i) {
    uint32_t slot = canonical_slots_[i];
    std::optional<std::string_view> value =
        event.get(slots_[slot].name.ref(), prefilter.buffers[i]);
    if (value) take(*value, slot, event_logsources, prefilter);
  }
  if (!generic_slots_.empty()) {
    event.visitFields([&](const Field& field) {
      const uint32_t slot = generic_slots_.find(field.name);
      if (slot != SlotNameTable::kNotFound) take(field.value, slot, event_logsources, prefilter);
      return true;
    });
  }
  if (keyword_slot_ != UINT32_MAX) {
    take(event.message.empty() ? event.raw : event.message, keyword_slot_, event_logsources,
         prefilter);
  }

  for (uint32_t group = 0; group < groups_.size(); ++group) {
    if (!scanGroup(group, scratch, prefilter)) {
      std::fill(prefilter.candidates.begin(), prefilter.candidates.end(), ~uint64_t{0});
      // What was found so far is incomplete: occurrence() must not rule anything out.
      std::fill(prefilter.scanned.begin(), prefilter.scanned.end(), 0);
      return false;
    }
  }
  return true;
}

bool DetectionIndex::scanGroup(uint32_t group, hs_scratch_t* scratch,
                               PrefilterScratch& prefilter) const {
  const uint32_t count = prefilter.group_values[group];
  if (count == 0) return true;
  const hs_database_t* database = groups_[group].database;
  const uint32_t first = groups_[group].first_value;
  const uint32_t end = first + count;
  if (count == 1) {
    prefilter.begins[first] = 0;
    return scanBlock(database, prefilter.data[first], first, 1, scratch, prefilter);
  }
  // One hs_scan() call cost about 800 cycles even for a value of 40 bytes (measured, see
  // docs/benchmarks.md), far more than copying a typical field value. So the values are
  // copied back to back and scanned together.
  // onMatch() rejects a literal that spans two values. When the buffer is full, the
  // values copied so far are scanned and the buffer starts again. A value longer than
  // the whole buffer is scanned where it lies.
  char* text = prefilter.text.data();
  uint32_t block_first = first;
  size_t used = 0;
  for (uint32_t value = first; value < end; ++value) {
    const size_t length = prefilter.lengths[value];
    if (length > PrefilterScratch::kTextBytes) {
      if (value > block_first &&
          !scanBlock(database, text, block_first, value - block_first, scratch, prefilter)) {
        return false;
      }
      prefilter.begins[value] = 0;
      if (!scanBlock(database, prefilter.data[value], value, 1, scratch, prefilter)) return false;
      block_first = value + 1;
      used = 0;
      continue;
    }
    if (used + length > PrefilterScratch::kTextBytes) {
      if (!scanBlock(database, text, block_first, value - block_first, scratch, prefilter)) {
        return false;
      }
      block_first = value;
      used = 0;
    }
    std::memcpy(text + used, prefilter.data[value], length);
    prefilter.begins[value] = used;
    used += length;
  }
  if (block_first == end) return true;
  return scanBlock(database, text, block_first, end - block_first, scratch, prefilter);
}

bool DetectionIndex::scanBlock(const hs_database_t* database, const char* text, uint32_t first,
                               uint32_t count, hs_scratch_t* scratch,
                               PrefilterScratch& prefilter) const {
  const uint32_t last = first + count - 1;
  const auto length =
      static_cast<unsigned int>(prefilter.begins[last] + prefilter.lengths[last]);
  ScanContext context{this, &prefilter, first, count};
  return hs_scan(database, text, length, 0, scratch, onMatch, &context) == HS_SUCCESS;
}

DetectionIndex::Occurrence DetectionIndex::occurrence(uint32_t literal, uint32_t slot,
                                                      const PrefilterScratch& prefilter) const {
  if (literal >= literals_.size() || slot >= slots_.size()) return Occurrence::kUnknown;
  if ((prefilter.scanned[slot / 64] >> (slot % 64) & 1) == 0) return Occurrence::kUnknown;
  const Literal& entry = literals_[literal];
  const LiteralSlot* first = literal_slots_.data() + entry.first_slot;
  const LiteralSlot* last = first + entry.slot_count;
  const LiteralSlot* found = std::lower_bound(
      first, last, slot, [](const LiteralSlot& a, uint32_t b) { return a.slot < b; });
  // Without an entry the literal was not looked for in this slot.
  if (found == last || found->slot != slot) return Occurrence::kUnknown;
  const auto position = static_cast<size_t>(found - literal_slots_.data());
  return (prefilter.found[position / 64] >> (position % 64) & 1) != 0 ? Occurrence::kPresent
                                                                      : Occurrence::kAbsent;
}

int DetectionIndex::onMatch(unsigned int id, unsigned long long /*from*/, unsigned long long to,
                            unsigned int /*flags*/, void* context) {
  const auto& scan = *static_cast<const ScanContext*>(context);
  const DetectionIndex& index = *scan.index;
  PrefilterScratch& prefilter = *scan.prefilter;
  const Literal& literal = index.literals_[id];

  // The value the literal starts in; a literal that runs past its end spans two fields.
  const uint64_t start = to - literal.length;
  const uint64_t* begins = prefilter.begins.data() + scan.first_value;
  size_t value =
      static_cast<size_t>(std::upper_bound(begins, begins + scan.values, start) - begins) - 1;
  value += scan.first_value;
  if (to > prefilter.begins[value] + prefilter.lengths[value]) return 0;
  const uint32_t slot = prefilter.slots[value];

  const LiteralSlot* first = index.literal_slots_.data() + literal.first_slot;
  const LiteralSlot* last = first + literal.slot_count;
  const LiteralSlot* entry = std::lower_bound(
      first, last, slot, [](const LiteralSlot& a, uint32_t b) { return a.slot < b; });
  if (entry == last || entry->slot != slot) return 0;
  const auto position = static_cast<size_t>(entry - index.literal_slots_.data());
  prefilter.found[position / 64] |= uint64_t{1} << (position % 64);
  const uint32_t* rules = index.literal_rules_.data() + entry->first_rule;
  for (uint32_t i = 0; i < entry->rule_count; ++i) {
    uint64_t bit = uint64_t{1} << (rules[i] % 64);
    prefilter.candidates[rules[i] / 64] |= bit;
    prefilter.fired[rules[i] / 64] |= bit;
  }
  return 0;  // keep scanning: other literals may belong to other rules
}

// ---------------------------------------------------------------------------------------
// Literals of regular expressions

namespace {

constexpr size_t kNotFound = std::string_view::npos;

// Returns the position of the `]` that closes the class opened at `open`, or kNotFound.
size_t classEnd(std::string_view expression, size_t open) {
  size_t i = open + 1;
  if (i < expression.size() && expression[i] == '^') ++i;
  if (i < expression.size() && expression[i] == ']') ++i;  // a leading `]` is a member
  while (i < expression.size()) {
    if (expression[i] == '\\') {
      i += 2;
    } else if (expression.substr(i, 2) == "[:") {
      const size_t close = expression.find(":]", i + 2);
      if (close == kNotFound) return kNotFound;
      i = close + 2;
    } else if (expression[i] == ']') {
      return i;
    } else {
      ++i;
    }
  }
  return kNotFound;
}

// Returns the position of the `)` that closes the group opened at `open`, or kNotFound
// for a group whose contents this reading does not follow.
size_t groupEnd(std::string_view expression, size_t open) {
  const std::string_view rest = expression.substr(open);
  if (rest.substr(0, 2) == "(*" || rest.substr(0, 3) == "(?#") return kNotFound;
  if (rest.substr(0, 2) == "(?") {
    // Inline options: `(?x)` changes what spaces and `#` mean.
    for (size_t i = 2; i < rest.size() && rest[i] != ')' && rest[i] != ':'; ++i) {
      if (rest[i] == 'x') return kNotFound;
    }
  }
  size_t depth = 0;
  size_t i = open;
  while (i < expression.size()) {
    const char c = expression[i];
    if (c == '\\') {
      i += 2;
      continue;
    }
    if (c == '[') {
      i = classEnd(expression, i);
      if (i == kNotFound) return kNotFound;
    } else if (c == '(') {
      if (expression.substr(i, 2) == "(*" || expression.substr(i, 3) == "(?#") return kNotFound;
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i;
    }
    ++i;
  }
  return kNotFound;
}

// Returns the position after the repeat count `{n}`, `{n,}` or `{n,m}` at `open`, or
// kNotFound when the braces do not hold one.
size_t repeatEnd(std::string_view expression, size_t open) {
  const size_t close = expression.find('}', open);
  if (close == kNotFound || close == open + 1) return kNotFound;
  size_t commas = 0;
  for (size_t i = open + 1; i < close; ++i) {
    if (expression[i] == ',') {
      ++commas;
    } else if (expression[i] < '0' || expression[i] > '9') {
      return kNotFound;
    }
  }
  return commas <= 1 ? close + 1 : kNotFound;
}

bool isAsciiAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::string requiredRegexLiteral(std::string_view expression) {
  std::string best;
  std::string run;
  auto endRun = [&]() {
    if (run.size() > best.size()) best = run;
    run.clear();
  };
  size_t i = 0;
  const size_t size = expression.size();
  while (i < size) {
    const char c = expression[i];
    bool literal = false;
    char byte = 0;
    if (c == '\\') {
      if (i + 1 >= size) return "";
      const char escaped = expression[i + 1];
      if (isAsciiAlnum(escaped)) {
        if (std::string_view("dDwWsSbB").find(escaped) == kNotFound) return "";
      } else {
        literal = true;
        byte = escaped;
      }
      i += 2;
    } else if (c == '[') {
      i = classEnd(expression, i);
      if (i == kNotFound) return "";
      ++i;
    } else if (c == '(') {
      i = groupEnd(expression, i);
      if (i == kNotFound) return "";
      ++i;
    } else if (c == '|' || c == ')' || c == '*' || c == '+' || c == '?' || c == '{') {
      return "";  // alternation, or a repeat with nothing to repeat
    } else if (c == '.' || c == '^' || c == '$') {
      ++i;
    } else {
      literal = true;
      byte = c;
      ++i;
    }
    // Bytes above 0x7F end a run: they are not folded like the literal scan folds letters.
    if (literal && static_cast<unsigned char>(byte) < 0x80) {
      run += (byte >= 'A' && byte <= 'Z') ? static_cast<char>(byte - 'A' + 'a') : byte;
    } else {
      literal = false;
      endRun();
    }
    if (i >= size) break;
    const char repeat = expression[i];
    if (repeat == '*' || repeat == '?' || repeat == '{') {
      if (repeat == '{') {
        i = repeatEnd(expression, i);
        if (i == kNotFound) return "";
      } else {
        ++i;
      }
      if (literal) run.pop_back();  // the byte may occur zero times
      endRun();
    } else if (repeat == '+') {
      ++i;
      endRun();  // the byte occurs at least once, but what follows need not be next to it
    } else {
      continue;
    }
    if (i < size && (expression[i] == '?' || expression[i] == '+')) ++i;  // lazy, possessive
  }
  endRun();
  return best;
}

// ---------------------------------------------------------------------------------------
// Log sources

uint32_t logSourceFor(const DetectionRule& rule, uint64_t event_logsources) {
  uint64_t usable = rule.logsource_any ? event_logsources : event_logsources & rule.logsource_mask;
  if (usable == 0) return DetectionIndex::kNoLogSource;
  return static_cast<uint32_t>(__builtin_ctzll(usable));
}

void assignLogSources(std::vector<DetectionRule>& rules,
                      const std::vector<LogSourceDefinition>& logsources) {
  for (DetectionRule& rule : rules) {
    LogSource wanted = ruleLogSource(rule);
    rule.logsource_mask = 0;
    rule.logsource_any = logsources.empty() || (wanted.product.empty() && wanted.category.empty() &&
                                                wanted.service.empty());
    for (size_t i = 0; i < logsources.size(); ++i) {
      if (logSourceCompatible(wanted, logsources[i].logsource)) {
        rule.logsource_mask |= uint64_t{1} << i;
      }
    }
  }
}

}  // namespace vigil::correlate::internal
