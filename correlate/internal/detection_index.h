// What Engine::detect() consults before it evaluates rules: the log source definitions an
// event belongs to, and a Hyperscan literal prefilter shared by every detection rule.
//
// Prefilter: at build, each rule's condition is checked for whether it can only be true
// when one of its string values matched, or when one of the fields it reads is present.
// Such a rule contributes the longest literal byte run of the values that make it true,
// each tied to the event field that value is read from; a field whose tests have no
// literal but cannot be true on an absent field (`re`, `cidr`, numbers, `fieldref`, an
// empty or wildcard-only value, `exists: true`) contributes its presence instead. Per
// event, each field that a literal or a presence is tied to is read once, the first
// field of that name as Event::get() would read it. The fields are scanned in groups,
// each with one Hyperscan block-mode database and, for most events, one call. The groups
// are the keyword text on its own, each field with many literals on its own, and the
// rest together, so a field is scanned only against literals that can count in it or in
// its group. The values of a group of several fields are copied back to back and scanned
// as one block.
// A literal counts only when it lies inside a field it is tied to. A prefiltered rule is
// evaluated when one of its
// literals counted or one of its presence fields was found; every other rule (a `not`,
// `exists: false`, `null` or indicator test can be true without either) is always
// evaluated. Literals and presences are necessary for a match, so skipping a rule never
// changes the result.
#pragma once

#include <hs.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event.h"
#include "correlate/internal/regex_table.h"
#include "correlate/rules.h"

namespace vigil::correlate::internal {

// Per-thread memory for DetectionIndex::scan(); sized by DetectionIndex::prepare(). The
// value tables hold one region per scan group, with room for one value per slot of it.
struct PrefilterScratch {
  // Bytes of `text`: a group's values are copied there back to back and scanned in one
  // block-mode call. Values that do not fit take further calls (see DetectionIndex::scan).
  static constexpr size_t kTextBytes = 8192;

  std::vector<const char*> data;              // the scanned field values
  std::vector<unsigned int> lengths;          // their lengths
  std::vector<uint64_t> begins;               // offset of each value in the scanned block
  std::vector<uint32_t> slots;                // slot of each value
  std::vector<char> text;                     // kTextBytes: the values of one block
  std::vector<uint32_t> group_values;         // values taken per group
  std::vector<uint64_t> seen;                 // one bit per slot: its value was taken
  std::vector<uint64_t> scanned;              // one bit per slot: its value was scanned
  std::vector<uint64_t> found;                // one bit per literal slot: it occurred
  std::vector<std::array<char, 64>> buffers;  // text of numeric canonical fields
  std::vector<uint64_t> candidates;           // one bit per rule: evaluate it
  std::vector<uint64_t> fired;                // one bit per rule: a literal of the rule counted
};

// Maps generic field names to prefilter slots. scan() looks up every field of every
// event, so the probe hashes only the name's length and its first and last eight bytes
// (one multiply each) instead of every byte, and compares the whole name on a hash hit.
class SlotNameTable {
 public:
  static constexpr uint32_t kNotFound = UINT32_MAX;

  // Adds `name` unless present. Control plane.
  void add(std::string_view name, uint32_t slot);
  // Returns the slot of `name`, or kNotFound. Never allocates.
  uint32_t find(std::string_view name) const {
    if (entries_.empty()) return kNotFound;
    const uint64_t hash = hashName(name);
    for (size_t at = hash & mask_;; at = (at + 1) & mask_) {
      const Entry& entry = entries_[at];
      if (entry.slot == kNotFound) return kNotFound;
      if (entry.hash == hash && entry.length == name.size() &&
          names_.compare(entry.offset, entry.length, name) == 0) {
        return entry.slot;
      }
    }
  }
  bool empty() const { return count_ == 0; }

  // Inline because scan() calls it once per event field.
  static uint64_t hashName(std::string_view name) {
    uint64_t head = 0;
    uint64_t tail = 0;
    if (name.size() >= 8) {
      std::memcpy(&head, name.data(), 8);
      std::memcpy(&tail, name.data() + name.size() - 8, 8);
    } else if (!name.empty()) {
      std::memcpy(&head, name.data(), name.size());
    }
    const uint64_t mixed =
        head * 0x9E3779B97F4A7C15ULL ^ (tail + name.size()) * 0xC2B2AE3D27D4EB4FULL;
    return mixed ^ (mixed >> 29);
  }

 private:
  struct Entry {
    uint64_t hash = 0;
    uint32_t offset = 0;  // into names_
    uint32_t length = 0;
    uint32_t slot = kNotFound;  // kNotFound marks an empty entry
  };
  void insert(const Entry& entry);

  std::vector<Entry> entries_;  // open addressing, linear probing, at most half full
  size_t mask_ = 0;
  size_t count_ = 0;
  std::string names_;  // every name, back to back
};

class DetectionIndex {
 public:
  // Sentinel for "the event belongs to no definition that the rule could use".
  static constexpr uint32_t kNoLogSource = UINT32_MAX;

  // An empty index for an empty rule set.
  DetectionIndex();
  ~DetectionIndex();
  DetectionIndex(const DetectionIndex&) = delete;
  DetectionIndex& operator=(const DetectionIndex&) = delete;

  // Builds the prefilter for `rules` and the condition table of `logsources`, and fills
  // the prefilter ids of their tests (FieldTest::event_slot, sigma_slot, logsource_slots,
  // ValueTest::prefilter_literal). `regexes` contains the rules' `re` values. Without it, a
  // `re` value contributes its field's presence only. Returns Internal when Hyperscan
  // cannot compile the literals. Allocates (control plane).
  static absl::StatusOr<std::unique_ptr<DetectionIndex>> build(
      std::vector<DetectionRule>& rules, const std::vector<LogSourceDefinition>& logsources,
      const RegexTable* regexes = nullptr);

  // Number of rules the index was built for.
  size_t ruleCount() const { return rule_count_; }
  // Rules evaluated only when a literal of theirs is found, and the distinct literals.
  size_t prefilteredRuleCount() const { return prefiltered_count_; }
  size_t literalCount() const { return literal_count_; }
  // Scan groups (Hyperscan databases) the literals are split into.
  size_t groupCount() const;
  bool prefiltered(uint32_t rule) const { return (always_[rule / 64] >> (rule % 64) & 1) == 0; }

  // Grows `scratch` for the prefilter database and sizes `prefilter`. Returns false on
  // allocation failure. Control plane.
  bool prepare(hs_scratch_t** scratch, PrefilterScratch& prefilter) const;

  // What the last scan() into `prefilter` says about literal `literal` in the value of
  // `slot` (ids from ValueTest::prefilter_literal and FieldTest::event_slot, ...):
  // kPresent or kAbsent when it scanned that value for that literal, else kUnknown.
  // Never allocates.
  enum class Occurrence : uint8_t { kUnknown, kAbsent, kPresent };
  Occurrence occurrence(uint32_t literal, uint32_t slot, const PrefilterScratch& prefilter) const;

  // Returns the bit set of the definitions `event` belongs to (bit i: logsources[i]).
  // Never allocates.
  uint64_t eventLogSources(const Event& event) const;

  // Fills prefilter.candidates with the rules to evaluate for `event`: the rules that
  // are always evaluated, those with a literal in a field it is tied to, and those with a
  // presence field that the event has; sets the rules with a literal in prefilter.fired. Fields whose literals all belong to rules that cannot run
  // on an event of `event_logsources` (see eventLogSources()) are not scanned.
  // `scratch` is the calling thread's Hyperscan scratch. Never allocates. Returns false
  // when Hyperscan failed, in which case every rule is a candidate.
  bool scan(const Event& event, uint64_t event_logsources, hs_scratch_t* scratch,
            PrefilterScratch& prefilter) const;

 private:
  struct Slot;
  struct Group;
  struct LiteralSlot;
  struct Literal;
  struct ScanContext;
  class Builder;

  static int onMatch(unsigned int id, unsigned long long from, unsigned long long to,
                     unsigned int flags, void* context);
  // Scans the values [first, first + count) of the scratch value tables, which lie back
  // to back at `text`, with `database`. Returns false when Hyperscan failed.
  bool scanBlock(const hs_database_t* database, const char* text, uint32_t first,
                 uint32_t count, hs_scratch_t* scratch, PrefilterScratch& prefilter) const;
  // Scans the values that take() collected for group `group`. Returns false when
  // Hyperscan failed.
  bool scanGroup(uint32_t group, hs_scratch_t* scratch, PrefilterScratch& prefilter) const;
  // Records the value of `slot` for this event, unless the slot has one already.
  void take(std::string_view value, uint32_t slot, uint64_t event_logsources,
            PrefilterScratch& prefilter) const;

  size_t rule_count_ = 0;
  size_t prefiltered_count_ = 0;
  size_t literal_count_ = 0;
  std::vector<uint64_t> always_;  // one bit per rule: no prefilter, always evaluate

  // Slots are the field names that literals and presences are tied to. Generic event
  // fields find their slot by name; canonical fields and the keyword text are read per
  // event.
  std::vector<Slot> slots_;
  SlotNameTable generic_slots_;
  std::vector<uint32_t> canonical_slots_;
  uint32_t keyword_slot_ = UINT32_MAX;
  std::vector<Group> groups_;            // scan groups, each with its own database
  std::vector<uint32_t> presence_rules_;  // per slot with presence rules, see Slot

  std::vector<Literal> literals_;           // by Hyperscan id (shared by all groups)
  std::vector<LiteralSlot> literal_slots_;  // per literal, sorted by slot
  std::vector<uint32_t> literal_rules_;     // per literal slot

  // Log source conditions. Definitions share fields (Channel, EventID, ...) and whole conditions
  // (the Sysmon channel), so per event each field is read once and each distinct
  // condition tested once: the first kCachedConditionFields fields and
  // kCachedConditions conditions through a cache.
  static constexpr size_t kCachedConditionFields = 16;
  static constexpr size_t kCachedConditions = 64;
  struct LogSourceCondition {
    uint32_t field = 0;  // into condition_fields_
    std::string value;
  };
  std::vector<ResolvedName> condition_fields_;
  std::vector<LogSourceCondition> conditions_;               // distinct conditions
  std::vector<std::vector<uint32_t>> logsource_conditions_;  // per definition, into conditions_
};

// Returns the longest run of bytes that every text matched by the Hyperscan expression
// `expression` contains, with ASCII letters folded to lower case, or "" when it has none
// or uses a construct this reading does not follow: alternation outside a group, an
// escape of a letter or digit other than \d \D \w \W \s \S \b \B, a `{` that is not a
// repeat count, `(*` verbs, `(?x)` or `(?#`. Groups, classes and bytes above 0x7F end a
// run, and a byte under `*`, `?` or `{...}` is dropped. Allocates (control plane).
std::string requiredRegexLiteral(std::string_view expression);

// Returns the definition whose field mapping `rule` uses for an event that belongs to
// `event_logsources`: the lowest definition the rule is allowed to run on, or
// DetectionIndex::kNoLogSource. Never allocates.
uint32_t logSourceFor(const DetectionRule& rule, uint64_t event_logsources);

// Returns whether `rule` runs on an event that belongs to `event_logsources`.
inline bool logSourceApplies(const DetectionRule& rule, uint64_t event_logsources) {
  return rule.logsource_any || (rule.logsource_mask & event_logsources) != 0;
}

// Fills logsource_any and logsource_mask of every rule from its `logsource` and the
// definitions. Without definitions every rule runs on every event.
void assignLogSources(std::vector<DetectionRule>& rules,
                      const std::vector<LogSourceDefinition>& logsources);

}  // namespace vigil::correlate::internal
