#include "mgmt/internal/alert_view.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

#include "absl/strings/numbers.h"
#include "common/time.h"
#include "mgmt/internal/alert_json.h"
#include "nlohmann/json.hpp"
#include "playbook_vm/program.h"

namespace vigil::mgmt::internal {
namespace {

namespace pb = playbook_vm;
using Kind = AlertView::Kind;
using Member = AlertView::Member;

// The members every alert has or may have, sorted by key as nlohmann's object keeps them.
// "metric" and "inbox_id" are left out of an alert without them.
constexpr Member kFixedMembers[] = {
    {"detected", Kind::kDetected, {}},
    {"event_count", Kind::kEventCount, {}},
    {"events", Kind::kEvents, {}},
    {"evidence", Kind::kEvidence, {}},
    {"first_event", Kind::kFirstEvent, {}},
    {"group", Kind::kGroup, {}},
    {"id", Kind::kId, {}},
    {"inbox_id", Kind::kInboxId, {}},
    {"indicator_hits", Kind::kIndicatorHits, {}},
    {"last_event", Kind::kLastEvent, {}},
    {"level", Kind::kLevel, {}},
    {"metric", Kind::kMetric, {}},
    {"rule_id", Kind::kRuleId, {}},
    {"rule_title", Kind::kRuleTitle, {}},
    {"rules_version", Kind::kRulesVersion, {}},
    {"severity", Kind::kLevel, {}},
    {"tags", Kind::kTags, {}},
    {"tenant", Kind::kTenant, {}},
};

constexpr bool keysSorted(const Member* begin, const Member* end) {
  for (const Member* m = begin; m + 1 < end; ++m) {
    if (!(m->key < (m + 1)->key)) return false;
  }
  return true;
}
static_assert(keysSorted(std::begin(kFixedMembers), std::end(kFixedMembers)));

bool keyLess(const Member& member, std::string_view key) { return member.key < key; }

const Member* findSorted(const std::vector<Member>& members, std::string_view key) {
  auto it = std::lower_bound(members.begin(), members.end(), key, keyLess);
  return it != members.end() && it->key == key ? &*it : nullptr;
}

// A string as the alert host functions hand a JSON string to the VM: a view of the text,
// or a run-heap copy of its first kMaxStringConstant bytes when it is longer.
bool stringValue(std::string_view text, pb::HostCall& call, pb::Value& out) {
  if (text.size() > pb::kMaxStringConstant) {
    std::optional<pb::Value> copy = call.newString(text.substr(0, pb::kMaxStringConstant));
    if (!copy) return false;
    out = *copy;
    return true;
  }
  out = pb::Value::string(text);
  return true;
}

// An unsigned JSON number as the VM receives it: an integer, or a real past INT64_MAX.
pb::Value unsignedValue(uint64_t value) {
  return value <= uint64_t{INT64_MAX} ? pb::Value::integer(static_cast<int64_t>(value))
                                      : pb::Value::real(static_cast<double>(value));
}

bool stringList(const std::vector<std::string_view>& texts, pb::HostCall& call,
                pb::Value& out) {
  std::optional<pb::Value> list = call.newList();
  if (!list) return false;
  for (std::string_view text : texts) {
    pb::Value item;
    if (!stringValue(text, call, item) || !call.append(*list, item)) return false;
  }
  out = *list;
  return true;
}

// The texts are valid UTF-8 (AlertView::reset() replaced any that were not).
void appendStringArray(const std::vector<std::string_view>& texts, std::string& out) {
  out.push_back('[');
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i != 0) out.push_back(',');
    appendValidJsonString(texts[i], out);
  }
  out.push_back(']');
}

void appendEvent(std::string_view raw, std::string& out) {
  out += "{\"raw\":";
  appendValidJsonString(raw, out);
  out.push_back('}');
}

template <typename Integer>
void appendInteger(Integer value, std::string& out) {
  char digits[absl::numbers_internal::kFastToBufferSize];
  out.append(digits, absl::numbers_internal::FastIntToBuffer(value, digits));
}

}  // namespace

std::string_view AlertView::text(std::string_view raw) {
  if (validUtf8(raw)) return raw;
  // Rare: nlohmann's serializer replaces the invalid bytes, as for alertToJson().
  const std::string replaced = nlohmann::json(std::string(raw)).dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return replaced_.emplace_back(nlohmann::json::parse(replaced).get<std::string>());
}

void AlertView::reset(const correlate::Alert& alert, int64_t inbox_id) {
  alert_ = &alert;
  inbox_id_ = inbox_id;
  has_metric_ = !std::isnan(alert.metric);
  replaced_.clear();
  id_ = text(alert.id);
  rule_id_ = text(alert.rule_id);
  rule_title_ = text(alert.rule_title);
  level_ = text(alert.level);
  tenant_ = text(alert.tenant);
  auto texts = [this](const std::vector<std::string>& from, std::vector<std::string_view>& to) {
    to.clear();
    for (const std::string& item : from) to.push_back(text(item));
  };
  texts(alert.tags, tags_);
  texts(alert.evidence, evidence_);
  texts(alert.indicator_hits, indicator_hits_);
  const int64_t times[3] = {alert.first_event_ns, alert.last_event_ns, alert.detect_ns};
  for (size_t i = 0; i < 3; ++i) {
    time_text_[i] = std::string_view(times_[i], formatRfc3339(times[i], times_[i], sizeof(times_[i])));
  }

  // One member per group-by field with its last value, as a JSON object keeps it.
  group_.clear();
  for (const auto& [field, value] : alert.group) {
    group_.push_back({field, Kind::kGroupValue, text(value)});
  }
  // An insertion sort: stable, and unlike std::stable_sort it needs no buffer, for the
  // few group-by fields an alert has.
  for (size_t i = 1; i < group_.size(); ++i) {
    const Member moving = group_[i];
    size_t j = i;
    for (; j > 0 && moving.key < group_[j - 1].key; --j) group_[j] = group_[j - 1];
    group_[j] = moving;
  }
  size_t unique = 0;
  for (size_t i = 0; i < group_.size(); ++i) {
    const bool overridden = i + 1 < group_.size() && group_[i + 1].key == group_[i].key;
    if (!overridden) group_[unique++] = group_[i];
  }
  group_.resize(unique);

  // The fixed members merged with the group-by fields that no present fixed member names.
  members_.clear();
  auto present = [this](const Member& fixed) {
    if (fixed.kind == Kind::kMetric) return has_metric_;
    if (fixed.kind == Kind::kInboxId) return inbox_id_ != 0;
    return true;
  };
  const Member* fixed = std::begin(kFixedMembers);
  const Member* fixed_end = std::end(kFixedMembers);
  auto group = group_.begin();
  while (fixed != fixed_end || group != group_.end()) {
    if (fixed != fixed_end && !present(*fixed)) {
      ++fixed;
    } else if (group == group_.end() || (fixed != fixed_end && fixed->key <= group->key)) {
      if (group != group_.end() && fixed->key == group->key) ++group;  // the fixed one wins
      members_.push_back(*fixed++);
    } else {
      members_.push_back(*group++);
    }
  }
}

const Member* AlertView::findMember(std::string_view key) const {
  return findSorted(members_, key);
}

const Member* AlertView::findGroup(std::string_view key) const { return findSorted(group_, key); }

bool AlertView::field(std::string_view path, pb::HostCall& call, pb::Value& out) const {
  out = pb::Value::null();
  if (const Member* member = findMember(path)) return memberValue(*member, call, out);
  // Split at dots. Only "group" is an object, and its values are strings, so a path
  // reaches a value only as "group.FIELD" with no dot in FIELD.
  const size_t dot = path.find('.');
  if (dot == std::string_view::npos) return true;
  const Member* top = findMember(path.substr(0, dot));
  if (top == nullptr || top->kind != Kind::kGroup) return true;
  const std::string_view rest = path.substr(dot + 1);
  if (rest.find('.') != std::string_view::npos) return true;
  const Member* value = findGroup(rest);
  return value == nullptr || stringValue(value->value, call, out);
}

bool AlertView::eventField(size_t index, std::string_view path, pb::HostCall& call,
                           pb::Value& out) const {
  // Each event is the object {"raw": TEXT}, so only the path "raw" reaches a value.
  out = pb::Value::null();
  return path != "raw" || stringValue(evidence_[index], call, out);
}

bool AlertView::memberValue(const Member& member, pb::HostCall& call, pb::Value& out) const {
  const correlate::Alert& alert = *alert_;
  switch (member.kind) {
    case Kind::kId:
      return stringValue(id_, call, out);
    case Kind::kRuleId:
      return stringValue(rule_id_, call, out);
    case Kind::kRuleTitle:
      return stringValue(rule_title_, call, out);
    case Kind::kLevel:
      return stringValue(level_, call, out);
    case Kind::kTenant:
      return stringValue(tenant_, call, out);
    case Kind::kGroupValue:
      return stringValue(member.value, call, out);
    case Kind::kFirstEvent:
      return stringValue(time_text_[0], call, out);
    case Kind::kLastEvent:
      return stringValue(time_text_[1], call, out);
    case Kind::kDetected:
      return stringValue(time_text_[2], call, out);
    case Kind::kRulesVersion:
      out = unsignedValue(alert.rules_version);
      return true;
    case Kind::kEventCount:
      out = unsignedValue(alert.event_count);
      return true;
    case Kind::kMetric:
      out = pb::Value::real(alert.metric);
      return true;
    case Kind::kInboxId:
      out = pb::Value::integer(inbox_id_);
      return true;
    case Kind::kTags:
      return stringList(tags_, call, out);
    case Kind::kEvidence:
      return stringList(evidence_, call, out);
    case Kind::kIndicatorHits:
      return stringList(indicator_hits_, call, out);
    case Kind::kGroup: {
      // An object reaches the VM as its JSON text.
      scratch_.clear();
      writeGroup(scratch_);
      std::optional<pb::Value> copy = call.newString(scratch_);
      if (!copy) return false;
      out = *copy;
      return true;
    }
    case Kind::kEvents: {
      std::optional<pb::Value> list = call.newList();
      if (!list) return false;
      for (std::string_view raw : evidence_) {
        scratch_.clear();
        appendEvent(raw, scratch_);
        std::optional<pb::Value> item = call.newString(scratch_);
        if (!item || !call.append(*list, *item)) return false;
      }
      out = *list;
      return true;
    }
  }
  return true;
}

void AlertView::writeGroup(std::string& out) const {
  out.push_back('{');
  for (size_t i = 0; i < group_.size(); ++i) {
    if (i != 0) out.push_back(',');
    appendJsonString(group_[i].key, out);
    out.push_back(':');
    appendValidJsonString(group_[i].value, out);
  }
  out.push_back('}');
}

void AlertView::writeMember(const Member& member, std::string& out) const {
  const correlate::Alert& alert = *alert_;
  switch (member.kind) {
    case Kind::kId:
      return appendValidJsonString(id_, out);
    case Kind::kRuleId:
      return appendValidJsonString(rule_id_, out);
    case Kind::kRuleTitle:
      return appendValidJsonString(rule_title_, out);
    case Kind::kLevel:
      return appendValidJsonString(level_, out);
    case Kind::kTenant:
      return appendValidJsonString(tenant_, out);
    case Kind::kGroupValue:
      return appendValidJsonString(member.value, out);
    case Kind::kFirstEvent:
      return appendValidJsonString(time_text_[0], out);
    case Kind::kLastEvent:
      return appendValidJsonString(time_text_[1], out);
    case Kind::kDetected:
      return appendValidJsonString(time_text_[2], out);
    case Kind::kRulesVersion:
      return appendInteger(alert.rules_version, out);
    case Kind::kEventCount:
      return appendInteger(alert.event_count, out);
    case Kind::kMetric:
      return appendJsonValue(nlohmann::json(alert.metric), out);
    case Kind::kInboxId:
      return appendInteger(inbox_id_, out);
    case Kind::kTags:
      return appendStringArray(tags_, out);
    case Kind::kEvidence:
      return appendStringArray(evidence_, out);
    case Kind::kIndicatorHits:
      return appendStringArray(indicator_hits_, out);
    case Kind::kGroup:
      return writeGroup(out);
    case Kind::kEvents:
      out.push_back('[');
      for (size_t i = 0; i < evidence_.size(); ++i) {
        if (i != 0) out.push_back(',');
        appendEvent(evidence_[i], out);
      }
      out.push_back(']');
      return;
  }
}

void AlertView::writeJson(std::string& out) const {
  out.clear();
  out.push_back('{');
  for (size_t i = 0; i < members_.size(); ++i) {
    if (i != 0) out.push_back(',');
    appendJsonString(members_[i].key, out);
    out.push_back(':');
    writeMember(members_[i], out);
  }
  out.push_back('}');
}

}  // namespace vigil::mgmt::internal
