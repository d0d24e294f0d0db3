#include "mgmt/case_connector.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "common/ip.h"
#include "intel/indicator_set.h"
#include "intel/snapshot.h"
#include "mgmt/action_router.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;
using json = nlohmann::json;

std::string_view verbOf(std::string_view action) {
  size_t dot = action.rfind('.');
  return dot == std::string_view::npos ? action : action.substr(dot + 1);
}

std::string text(const json& params, const char* key) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

absl::StatusOr<Severity> severityParam(const json& params, Severity fallback) {
  auto it = params.find("severity");
  if (it == params.end() || it->is_null()) return fallback;
  if (it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= 4) {
    return static_cast<Severity>(it->get<int64_t>());
  }
  return parseSeverity(it->is_string() ? it->get<std::string>() : it->dump());
}

absl::Status heapFull() { return absl::ResourceExhaustedError("run heap memory limit reached"); }

absl::Status missingParam(std::string_view action, const char* what) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(action), ": needs ", what));
}

// The tags of an update: a list of non-empty strings.
absl::StatusOr<std::vector<std::string>> tagList(std::string_view action, const json& value) {
  std::vector<std::string> tags;
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(action), ": tags must be a list of strings, not ", value.dump()));
  }
  for (const json& t : value) {
    if (!t.is_string() || t.get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(action), ": tag ", t.dump(), " is not a non-empty string"));
    }
    tags.push_back(t.get<std::string>());
  }
  return tags;
}

// The fields of an update action: title, description, severity, status, resolution,
// resolution_note and tags (which replace the case's tags). At least one is required.
absl::StatusOr<CaseUpdate> updateFromParams(std::string_view action, const json& params) {
  CaseUpdate update;
  bool any = false;
  if (params.contains("title")) {
    update.title = text(params, "title");
    any = true;
  }
  if (params.contains("description")) {
    update.description = text(params, "description");
    any = true;
  }
  if (params.contains("severity")) {
    absl::StatusOr<Severity> severity = severityParam(params, Severity::kMedium);
    if (!severity.ok()) return severity.status();
    update.severity = *severity;
    any = true;
  }
  if (params.contains("status")) {
    absl::StatusOr<CaseStatus> status = parseCaseStatus(text(params, "status"));
    if (!status.ok()) return status.status();
    update.status = *status;
    any = true;
  }
  if (params.contains("resolution")) {
    absl::StatusOr<Resolution> resolution = parseResolution(text(params, "resolution"));
    if (!resolution.ok()) return resolution.status();
    update.resolution = *resolution;
    any = true;
  }
  if (params.contains("resolution_note")) {
    update.resolution_note = text(params, "resolution_note");
    any = true;
  }
  if (params.contains("tags")) {
    absl::StatusOr<std::vector<std::string>> tags = tagList(action, params["tags"]);
    if (!tags.ok()) return tags.status();
    update.tags = std::move(*tags);
    any = true;
  }
  if (!any) {
    return missingParam(action, "at least one of title:, description:, severity:, status:, "
                           "resolution:, resolution_note: or tags:");
  }
  return update;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Case operations

CaseConnector::CaseConnector(const ConnectorConfig& config, CaseStore& store)
    : config_(config), store_(store) {}

absl::Status CaseConnector::attachAlert(const json& params, pb::HostCall& call,
                                        pb::Value& result) {
  RunContext& ctx = runContext(call);
  json id = params.value("inbox_id", json());
  pb::Value inbox_value;
  if (id.is_null() && ctx.alert_source != nullptr &&
      ctx.alert_source->field("inbox_id", call, inbox_value)) {
    id = pb::compiler::valueToJson(inbox_value);
  } else if (id.is_null() && ctx.alert != nullptr && ctx.alert->is_object()) {
    id = ctx.alert->value("inbox_id", json());
  }
  if (!id.is_number_integer() || id.get<int64_t>() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "case.attach_alert: inbox_id ", id.dump(),
        " is not a positive integer; pass inbox_id: alert.inbox_id, which vigild sets for "
        "alerts the case sink stored"));
  }
  const int64_t inbox_id = id.get<int64_t>();
  absl::StatusOr<IngestResult> filed = store_.attachQueuedAlert(
      inbox_id, ctx.tenant, inbox_id == ctx.inbox_alert_id ? ctx.inbox_alert : nullptr);
  if (!filed.ok()) return filed.status();
  // Counted by perform() once the filing is stored (inside a group commit, by the runner
  // once the group's commit succeeded).
  if (filed->opened_case) ++ctx.cases_opened_in_group;
  ctx.case_id = filed->case_id;
  result = pb::Value::integer(filed->case_id);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CaseConnector::targetCase(const json& params, pb::HostCall& call) {
  RunContext& ctx = runContext(call);
  int64_t id = 0;
  auto it = params.find("case_id");
  if (it != params.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("case_id ", it->dump(), " is not a positive integer"));
    }
    id = it->get<int64_t>();
  } else if (ctx.case_id != 0) {
    id = ctx.case_id;
  } else {
    absl::StatusOr<std::optional<int64_t>> found = store_.findCaseOfAlert(ctx.tenant, ctx.alert_id);
    if (!found.ok()) return found.status();
    if (!*found) {
      return absl::NotFoundError(absl::StrCat(
          "alert ", ctx.alert_id, " of tenant ", ctx.tenant,
          " is in no case yet; give case_id or open a case first with a case open action"));
    }
    id = **found;
  }
  absl::StatusOr<CaseDetail> detail = store_.getCase(id);
  if (!detail.ok()) return detail.status();
  // A playbook of one tenant never reaches another tenant's cases; the message does not
  // say whether the case exists.
  if (detail->info.tenant != ctx.tenant) {
    return absl::NotFoundError(absl::StrCat("case ", id, " is not a case of tenant ", ctx.tenant));
  }
  return id;
}

absl::Status CaseConnector::perform(std::string_view action, const pb::List& list,
                                    pb::HostCall& call, pb::Value& result) {
  RunContext& ctx = runContext(call);
  const int64_t opened_before = ctx.cases_opened_in_group;
  if (ctx.action_key.empty()) {
    absl::Status st = performOnce(action, list, call, result);
    countOpenedCases(ctx, opened_before, st.ok(), false);
    return st;
  }
  bool replayed = false;
  absl::StatusOr<CaseStore::KeyedActionResult> done = store_.runKeyedAction(
      ctx.action_key, ctx.tenant, absl::string_view(action.data(), action.size()),
      [&]() -> absl::StatusOr<CaseStore::KeyedActionResult> {
        if (absl::Status st = performOnce(action, list, call, result); !st.ok()) return st;
        return CaseStore::KeyedActionResult{
            ctx.case_id,
            pb::compiler::valueToJson(result).dump(-1, ' ', false, json::error_handler_t::replace)};
      },
      &replayed);
  const bool in_group = store_.inGroupCommit();
  ctx.outcome_after_group_commit = in_group;
  countOpenedCases(ctx, opened_before, done.ok() && !replayed, in_group);
  if (!done.ok()) return done.status();
  if (!replayed) return absl::OkStatus();
  // Done before under this key, by an earlier attempt or by the run before a restart.
  if (done->case_id != 0) ctx.case_id = done->case_id;
  json value = json::parse(done->result_json, nullptr, false);
  if (value.is_discarded()) value = nullptr;
  if (!pb::compiler::jsonToHeapValue(value, call, result)) return heapFull();
  return absl::OkStatus();
}

void CaseConnector::countOpenedCases(RunContext& ctx, int64_t before, bool stored,
                                     bool in_group) {
  if (!stored) {
    ctx.cases_opened_in_group = before;  // rolled back, so nothing was opened
    return;
  }
  if (in_group) return;  // left in ctx for the runner
  if (ctx.cases_opened != nullptr) ctx.cases_opened->add(ctx.cases_opened_in_group - before);
  ctx.cases_opened_in_group = before;
}

absl::Status CaseConnector::performOnce(std::string_view action, const pb::List& list,
                                        pb::HostCall& call, pb::Value& result) {
  RunContext& ctx = runContext(call);
  json params = paramsToJson(list);
  std::string_view verb = verbOf(action);
  const std::string author = absl::StrCat(config_.author, " (", ctx.playbook, " run ", ctx.run_id, ")");

  if (verb == "attach_alert") return attachAlert(params, call, result);
  if (verb == "open" || verb == "create") {
    std::string title = text(params, "title");
    if (title.empty()) title = absl::StrCat(ctx.playbook, ": alert ", ctx.alert_id);
    absl::StatusOr<Severity> severity = severityParam(params, Severity::kMedium);
    if (!severity.ok()) return severity.status();
    absl::StatusOr<int64_t> id =
        store_.createPlaybookCase(title, *severity, ctx.tenant, absl::StrCat("playbook:", ctx.playbook),
                          absl::StrCat("run-", ctx.run_id, "-", ctx.steps.size()));
    if (!id.ok()) return id.status();
    ctx.case_id = *id;
    std::string note = text(params, "note");
    if (!note.empty()) {
      if (absl::Status st = store_.addCaseNote(*id, author, note); !st.ok()) return st;
    }
    result = pb::Value::integer(*id);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> id = targetCase(params, call);
  if (!id.ok()) return id.status();
  absl::Status st;
  if (verb == "add_note" || verb == "annotate" || verb == "note") {
    std::string note = text(params, "text");
    if (note.empty()) note = text(params, "note");
    if (note.empty()) return absl::InvalidArgumentError(absl::StrCat(std::string(action), ": needs text:"));
    st = store_.addCaseNote(*id, author, note);
  } else if (verb == "add_tag" || verb == "tag") {
    std::vector<std::string> tags;
    if (params.contains("tags") && params["tags"].is_array()) {
      for (const json& t : params["tags"]) {
        if (t.is_string() && !t.get<std::string>().empty()) tags.push_back(t.get<std::string>());
      }
    }
    if (!text(params, "tag").empty()) tags.push_back(text(params, "tag"));
    if (tags.empty()) return absl::InvalidArgumentError(absl::StrCat(std::string(action), ": needs tag: or tags:"));
    st = store_.addCaseTags(*id, tags);
  } else if (verb == "set_severity") {
    if (!params.contains("severity")) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(action), ": needs severity:"));
    }
    absl::StatusOr<Severity> severity = severityParam(params, Severity::kMedium);
    if (!severity.ok()) return severity.status();
    st = store_.setCaseSeverity(*id, *severity);
  } else if (verb == "update") {
    absl::StatusOr<CaseUpdate> update = updateFromParams(action, params);
    if (!update.ok()) return update.status();
    st = store_.updatePlaybookCase(*id, *update, author);
  } else if (verb == "assign") {
    if (!params.contains("assignee")) return missingParam(action, "assignee: (\"\" unassigns)");
    CaseUpdate update;
    update.assignee = text(params, "assignee");
    st = store_.updatePlaybookCase(*id, update, author);
  } else if (verb == "close") {
    CaseUpdate update;
    update.status = CaseStatus::kClosed;
    if (params.contains("resolution")) {
      absl::StatusOr<Resolution> resolution = parseResolution(text(params, "resolution"));
      if (!resolution.ok()) return resolution.status();
      update.resolution = *resolution;
    }
    std::string note = text(params, "note");
    if (note.empty()) note = text(params, "resolution_note");
    if (!note.empty()) update.resolution_note = note;
    st = store_.updatePlaybookCase(*id, update, author);
  } else if (verb == "add_evidence" || verb == "attach") {
    return addEvidence(action, params, *id, author, call, result);
  } else if (verb == "escalate") {
    absl::StatusOr<Severity> severity = severityParam(params, Severity::kHigh);
    if (!severity.ok()) return severity.status();
    std::string summary = text(params, "summary");
    if (summary.empty()) summary = absl::StrCat("escalated by playbook ", ctx.playbook);
    if (!text(params, "tier").empty()) absl::StrAppend(&summary, " (tier ", text(params, "tier"), ")");
    st = store_.addCaseNote(*id, author, summary);
    if (st.ok()) st = store_.addCaseTags(*id, {std::string("escalated")});
    if (st.ok()) st = store_.setCaseSeverity(*id, *severity);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "case connector ", config_.name, " does not know action ", std::string(action),
        "; use a name ending in open, attach_alert, update, assign, close, add_note, add_tag, "
        "add_evidence, set_severity or escalate"));
  }
  if (!st.ok()) return st;
  result = pb::Value::integer(*id);
  return absl::OkStatus();
}

absl::Status CaseConnector::addEvidence(std::string_view action, const json& params, int64_t id,
                                        const std::string& author, pb::HostCall& call,
                                        pb::Value& result) {
  std::string name = text(params, "name");
  if (name.empty()) return missingParam(action, "name: (the evidence file name)");
  auto content = params.find("content");
  if (content == params.end() || content->is_null()) {
    return missingParam(action, "content: (text, or a value stored as JSON)");
  }
  std::string bytes = content->is_string() ? content->get<std::string>() : content->dump();
  std::string content_type = text(params, "content_type");
  if (content_type.empty()) content_type = content->is_string() ? "text/plain" : "application/json";
  absl::StatusOr<EvidenceFile> file =
      store_.addPlaybookEvidence(id, name, content_type, bytes, author);
  if (!file.ok()) return file.status();
  std::optional<pb::Value> sha = call.newString(file->sha256);
  if (!sha) return heapFull();
  result = *sha;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Intel lookups

namespace {

// The copy of group head `id` that a run of `tenant` gets: the tenant's own, else the
// copy of every tenant, else nullopt (another tenant's indicator).
std::optional<uint32_t> visibleCopy(const intel::IndicatorSet& set, uint32_t id,
                                    std::string_view tenant) {
  std::optional<uint32_t> global;
  for (uint32_t copy = id;; ++copy) {
    if (!set.tenant(copy).empty() && set.tenant(copy) == tenant) return copy;
    if (set.tenant(copy).empty()) global = copy;
    if (!set.hasNextCopy(copy)) break;
  }
  return global;
}

std::optional<uint32_t> findInSet(const intel::IndicatorSet& set, std::string_view value,
                                  std::string_view tenant) {
  if (std::optional<IpAddr> ip = parseIp(value)) {
    std::optional<uint32_t> head = set.lookupAddress(*ip, tenant);
    return head ? visibleCopy(set, *head, tenant) : std::nullopt;
  }
  std::string lower = absl::AsciiStrToLower(std::string(value));
  while (!lower.empty() && lower.back() == '.') lower.pop_back();
  if (set.hasDomains()) {
    std::string_view domain = lower;
    while (!domain.empty()) {
      if (std::optional<uint32_t> id = set.lookupDomain(domain)) {
        if (std::optional<uint32_t> copy = visibleCopy(set, *id, tenant)) return copy;
      }
      size_t dot = domain.find('.');
      if (dot == std::string_view::npos) break;
      domain.remove_prefix(dot + 1);
    }
  }
  if (set.hasFilenames()) {
    if (std::optional<uint32_t> id = set.lookupFilename(lower)) {
      if (std::optional<uint32_t> copy = visibleCopy(set, *id, tenant)) return copy;
    }
  }
  // Group heads come first in their group, so the walk meets each head before its copies.
  for (uint32_t id = 0; id < set.size(); ++id) {
    if (set.text(id) != value && set.text(id) != lower) continue;
    if (std::optional<uint32_t> copy = visibleCopy(set, id, tenant)) return copy;
  }
  return std::nullopt;
}

}  // namespace

std::optional<intel::Indicator> findIndicator(const intel::Snapshot& snapshot,
                                              std::string_view value, std::string_view tenant) {
  if (value.empty()) return std::nullopt;
  if (const intel::IndicatorSet* delta = snapshot.delta()) {
    if (std::optional<uint32_t> id = findInSet(*delta, value, tenant)) {
      return delta->indicator(*id);
    }
  }
  if (std::optional<uint32_t> id = findInSet(snapshot.base(), value, tenant)) {
    return snapshot.base().indicator(*id);
  }
  return std::nullopt;
}

IntelConnector::IntelConnector(const ConnectorConfig& config, intel::SnapshotStore& store)
    : config_(config), store_(store) {}

absl::Status IntelConnector::perform(std::string_view action, const pb::List& list,
                                     pb::HostCall& call, pb::Value& result) {
  std::string_view verb = verbOf(action);
  if (verb != "lookup" && verb != "query" && verb != "check") {
    return absl::InvalidArgumentError(absl::StrCat("intel connector ", config_.name,
                                                   " does not know action ", std::string(action),
                                                   "; use a name ending in lookup or query"));
  }
  json params = paramsToJson(list);
  json values = json::array();
  bool single = false;
  if (params.contains("indicators") && params["indicators"].is_array()) {
    values = params["indicators"];
  } else if (!text(params, "indicator").empty() || !text(params, "value").empty()) {
    values.push_back(!text(params, "indicator").empty() ? text(params, "indicator")
                                                         : text(params, "value"));
    single = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(action), ": needs indicator: VALUE or indicators: [VALUES]"));
  }
  std::shared_ptr<const intel::Snapshot> snapshot = store_.current();
  if (snapshot == nullptr) return absl::UnavailableError("no indicator snapshot is loaded yet");
  const bool detail = params.value("detail", json(false)) == json(true);
  json out = json::array();
  for (const json& v : values) {
    std::optional<intel::Indicator> found;
    if (v.is_string()) found = findIndicator(*snapshot, v.get<std::string>(), runContext(call).tenant);
    if (!detail) {
      out.push_back(found ? "malicious" : "unknown");
    } else if (!found) {
      out.push_back(nullptr);
    } else {
      out.push_back({{"value", found->text},
                     {"type", std::string(indicatorTypeName(found->type))},
                     {"lists", found->lists},
                     {"score", found->score},
                     {"tags", found->tags},
                     {"tenant", found->tenant.empty() ? json(nullptr) : json(found->tenant)}});
    }
  }
  if (!pb::compiler::jsonToHeapValue(single ? out[0] : out, call, result)) return heapFull();
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
