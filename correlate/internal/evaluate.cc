#include "correlate/internal/evaluate.h"

#include <array>
#include <optional>
#include <string_view>

#include "correlate/internal/number.h"
#include "correlate/internal/text.h"

namespace vigil::correlate::internal {
namespace {

struct MatchContext {
  const Event& event;
  const RegexTable& regexes;
  hs_scratch_t* scratch;
  uint32_t logsource;
  PrefilterResult prefilter;
};

// The Event name that `field` reads: the log source definition's mapping when it has an
// entry, else the global one. Sets `slot` to that name's prefilter slot.
const ResolvedName& eventName(const FieldTest& field, uint32_t logsource, uint32_t& slot) {
  for (size_t i = 0; i < field.logsource_refs.size(); ++i) {
    if (field.logsource_refs[i].first == logsource) {
      slot = i < field.logsource_slots.size() ? field.logsource_slots[i] : UINT32_MAX;
      return field.logsource_refs[i].second;
    }
  }
  slot = field.event_slot;
  return field.event_ref;
}

bool inPrefix(const IpAddr& addr, const IpPrefix& prefix) {
  size_t full_bytes = prefix.len / 8;
  for (size_t i = 0; i < full_bytes; ++i) {
    if (addr.bytes[i] != prefix.addr.bytes[i]) return false;
  }
  unsigned rest_bits = prefix.len % 8;
  if (rest_bits == 0) return true;
  auto mask = static_cast<uint8_t>(0xFF << (8 - rest_bits));
  return (addr.bytes[full_bytes] & mask) == (prefix.addr.bytes[full_bytes] & mask);
}

bool compareNumber(const ValueTest& test, std::string_view value) {
  const std::optional<double> parsed = parseDecimal(value);
  if (!parsed) return false;
  const double number = *parsed;
  switch (test.op) {
    case ValueTest::Op::kLess:
      return number < test.number;
    case ValueTest::Op::kLessEqual:
      return number <= test.number;
    case ValueTest::Op::kGreater:
      return number > test.number;
    case ValueTest::Op::kGreaterEqual:
      return number >= test.number;
    default:
      return false;
  }
}

// Tests one present value.
bool matchValue(const ValueTest& test, std::string_view value, const MatchContext& context) {
  switch (test.op) {
    case ValueTest::Op::kPattern:
      return test.pattern.matches(value);
    case ValueTest::Op::kRegex:
      return context.scratch != nullptr &&
             context.regexes.matches(test.regex, value, context.scratch);
    case ValueTest::Op::kCidr: {
      std::optional<IpAddr> addr = parseIp(value);
      return addr && inPrefix(*addr, test.prefix);
    }
    case ValueTest::Op::kFieldRef: {
      std::array<char, 64> buffer;
      std::optional<std::string_view> other = context.event.get(test.ref_event.ref(), buffer);
      if (!other && test.ref_field != test.ref_sigma_field) {
        other = context.event.get(test.ref_sigma.ref(), buffer);
      }
      if (!other) return false;
      return test.ref_cased ? *other == value : equalsIgnoreCase(*other, value);
    }
    case ValueTest::Op::kNull:
      return value.empty();
    case ValueTest::Op::kExists:
      return test.expect_exists;
    default:
      return compareNumber(test, value);
  }
}

// One value test against a field that may be absent.
bool matchOptional(const ValueTest& test, std::optional<std::string_view> value,
                   const MatchContext& context) {
  if (test.op == ValueTest::Op::kExists) return value.has_value() == test.expect_exists;
  if (!value) return test.op == ValueTest::Op::kNull;
  return matchValue(test, *value, context);
}

// One value test against the indicator hits: true when any hit's list (or type) passes.
bool matchHits(const FieldTest& field, const ValueTest& test, const MatchContext& context) {
  const Event& event = context.event;
  if (test.op == ValueTest::Op::kExists) return (event.hit_count > 0) == test.expect_exists;
  if (test.op == ValueTest::Op::kNull) return event.hit_count == 0;
  for (size_t i = 0; i < event.hit_count; ++i) {
    const IndicatorHit& hit = event.hits[i];
    std::string_view value =
        field.source == FieldTest::Source::kIntelList ? hit.list : indicatorTypeName(hit.type);
    if (matchValue(test, value, context)) return true;
  }
  return false;
}

// A pattern test, using what the prefilter scan found in the value's slot when it looked
// for the pattern's literal there.
bool matchPattern(const ValueTest& test, std::string_view value, uint32_t slot,
                  const MatchContext& context) {
  const PrefilterResult& prefilter = context.prefilter;
  if (prefilter.index != nullptr && test.prefilter_literal != UINT32_MAX && slot != UINT32_MAX) {
    switch (prefilter.index->occurrence(test.prefilter_literal, slot, *prefilter.scan)) {
      case DetectionIndex::Occurrence::kAbsent:
        return false;
      case DetectionIndex::Occurrence::kPresent:
        if (test.pattern.containsLiteralOnly()) return true;
        break;
      case DetectionIndex::Occurrence::kUnknown:
        break;
    }
  }
  return test.pattern.matches(value);
}

bool matchField(const FieldTest& field, const MatchContext& context) {
  std::optional<std::string_view> value;
  std::array<char, 64> buffer;
  uint32_t slot = UINT32_MAX;  // the prefilter slot of the name read
  if (field.source == FieldTest::Source::kEvent) {
    const ResolvedName& name = eventName(field, context.logsource, slot);
    value = context.event.get(name.ref(), buffer);
    // A mapped name falls back to the generic field of the Sigma name, so "User" still
    // reaches a JSON member called User when the parser did not fill user.name.
    if (!value && name.name() != field.sigma_name) {
      value = context.event.get(field.sigma_ref.ref(), buffer);
      slot = field.sigma_slot;
    }
  } else if (field.source == FieldTest::Source::kKeyword) {
    value = context.event.message.empty() ? context.event.raw : context.event.message;
    slot = field.event_slot;
  }
  bool hits = field.source == FieldTest::Source::kIntelList ||
              field.source == FieldTest::Source::kIntelType;
  for (const ValueTest& test : field.values) {
    bool ok = false;
    if (hits) {
      ok = matchHits(field, test, context);
    } else if (test.op == ValueTest::Op::kPattern && value) {
      ok = matchPattern(test, *value, slot, context);
    } else {
      ok = matchOptional(test, value, context);
    }
    if (field.all && !ok) return false;
    if (!field.all && ok) return true;
  }
  return field.all;
}

bool matchSelection(const Selection& selection, const MatchContext& context) {
  for (const std::vector<FieldTest>& fields : selection.alternatives) {
    bool all = true;
    for (const FieldTest& field : fields) {
      if (!matchField(field, context)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

}  // namespace

bool matchesRule(const DetectionRule& rule, const Event& event, const RegexTable& regexes,
                 hs_scratch_t* scratch, uint32_t logsource, PrefilterResult prefilter) {
  MatchContext context{event, regexes, scratch, logsource, prefilter};
  return rule.condition.evaluate(
      [&](uint32_t selection) { return matchSelection(rule.selections[selection], context); });
}

}  // namespace vigil::correlate::internal
