#include "mgmt/internal/case_json.h"

#include <optional>
#include <string>

#include "common/time.h"

namespace vigil::mgmt::internal {
namespace {

// Group keys and group columns are JSON objects written by the store. A value that does
// not parse, as in a hand-edited database, is shown as the raw string instead of failing.
nlohmann::json parseStoredJson(const std::string& text) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return text;
  return parsed;
}

nlohmann::json alertToApiJson(const StoredAlert& alert) {
  nlohmann::json j = {
      {"id", alert.id},
      {"alert_id", alert.alert_id},
      {"rule_id", alert.rule_id},
      {"level", alert.level},
      {"tenant", alert.tenant},
      {"group", parseStoredJson(alert.group_json)},
      {"first_event", formatRfc3339(alert.first_event_ns)},
      {"last_event", formatRfc3339(alert.last_event_ns)},
      {"detected", formatRfc3339(alert.detect_ns)},
      {"event_count", alert.event_count},
  };
  // The stored alert JSON carries the fields that have no column of their own.
  nlohmann::json full = parseStoredJson(alert.json);
  if (full.is_object()) {
    for (const char* key : {"rule_title", "tags", "indicator_hits"}) {
      if (full.contains(key)) j[key] = full[key];
    }
  }
  return j;
}

nlohmann::json timeOrNull(int64_t ns) {
  return ns == 0 ? nlohmann::json(nullptr) : nlohmann::json(formatRfc3339(ns));
}

nlohmann::json secondsOrNull(const std::optional<int64_t>& ns) {
  return ns ? nlohmann::json(static_cast<double>(*ns) / 1e9) : nlohmann::json(nullptr);
}

nlohmann::json summaryToJson(const DurationSummary& s) {
  return {{"count", s.count}, {"mean_s", s.mean_s}, {"p50_s", s.p50_s}, {"p90_s", s.p90_s}};
}

}  // namespace

nlohmann::json caseToJson(const Case& c, const SlaPolicy& sla, int64_t now_ns) {
  const CaseMetrics m = caseMetrics(c, sla, now_ns);
  return {
      {"id", c.id},
      {"title", c.title},
      {"description", c.description},
      {"severity", std::string(severityName(c.severity))},
      {"status", std::string(caseStatusName(c.status))},
      {"resolution", c.resolution},
      {"resolution_note", c.resolution_note},
      {"assignee", c.assignee},
      {"tags", c.tags},
      {"tenant", c.tenant},
      {"rule_id", c.rule_id},
      {"group", parseStoredJson(c.group_key)},
      {"created_by", c.created_by},
      {"first_event", formatRfc3339(c.first_event_ns)},
      {"detected", formatRfc3339(c.detect_ns)},
      {"updated", formatRfc3339(c.updated_ns)},
      {"acknowledged", timeOrNull(c.ack_ns)},
      {"resolved", timeOrNull(c.resolved_ns)},
      {"merged_into", c.merged_into == 0 ? nlohmann::json(nullptr) : nlohmann::json(c.merged_into)},
      {"alert_count", c.alert_count},
      {"metrics",
       {{"mttd_s", secondsOrNull(m.mttd_ns)},
        {"mtta_s", secondsOrNull(m.mtta_ns)},
        {"mttr_s", secondsOrNull(m.mttr_ns)}}},
      {"sla",
       {{"acknowledge_due", timeOrNull(m.acknowledge_due_ns)},
        {"acknowledge_breached", m.acknowledge_breached},
        {"resolve_due", timeOrNull(m.resolve_due_ns)},
        {"resolve_breached", m.resolve_breached}}},
  };
}

nlohmann::json taskToJson(const CaseTask& task) {
  return {{"id", task.id},
          {"case_id", task.case_id},
          {"title", task.title},
          {"assignee", task.assignee},
          {"status", std::string(taskStatusName(task.status))},
          {"created_by", task.created_by},
          {"created", formatRfc3339(task.created_ns)},
          {"updated", formatRfc3339(task.updated_ns)}};
}

nlohmann::json noteToJson(const CaseNote& note) {
  return {{"id", note.id},
          {"case_id", note.case_id},
          {"author", note.author},
          {"body", note.body},
          {"mentions", note.mentions},
          {"created", formatRfc3339(note.created_ns)}};
}

nlohmann::json fileToJson(const EvidenceFile& file) {
  return {{"case_id", file.case_id},
          {"sha256", file.sha256},
          {"name", file.name},
          {"content_type", file.content_type},
          {"size_bytes", file.size_bytes},
          {"added_by", file.added_by},
          {"added", formatRfc3339(file.added_ns)}};
}

nlohmann::json timelineEntryToJson(const TimelineEntry& entry) {
  return {{"id", entry.id},         {"at", formatRfc3339(entry.at_ns)},
          {"actor", entry.actor},   {"human", entry.human},
          {"action", entry.action}, {"field", entry.field},
          {"old", entry.old_value}, {"new", entry.new_value}};
}

nlohmann::json metricsGroupToJson(const CaseMetricsGroup& group) {
  return {{"tenant", group.tenant},
          {"severity", group.severity},
          {"cases", group.cases},
          {"mttd", summaryToJson(group.mttd)},
          {"mtta", summaryToJson(group.mtta)},
          {"mttr", summaryToJson(group.mttr)},
          {"sla_breaches",
           {{"acknowledge", group.acknowledge_breaches}, {"resolve", group.resolve_breaches}}}};
}

nlohmann::json caseDetailToJson(const CaseDetail& detail, const SlaPolicy& sla, int64_t now_ns) {
  nlohmann::json j = caseToJson(detail.info, sla, now_ns);
  nlohmann::json alerts = nlohmann::json::array();
  for (const StoredAlert& alert : detail.alerts) alerts.push_back(alertToApiJson(alert));
  nlohmann::json evidence = nlohmann::json::array();
  for (const Evidence& item : detail.evidence) {
    evidence.push_back({{"alert", item.alert_id}, {"position", item.position}, {"raw", item.raw}});
  }
  nlohmann::json files = nlohmann::json::array();
  for (const EvidenceFile& file : detail.files) files.push_back(fileToJson(file));
  nlohmann::json tasks = nlohmann::json::array();
  for (const CaseTask& task : detail.tasks) tasks.push_back(taskToJson(task));
  nlohmann::json notes = nlohmann::json::array();
  for (const CaseNote& note : detail.notes) notes.push_back(noteToJson(note));
  j["alerts"] = std::move(alerts);
  j["evidence"] = std::move(evidence);
  j["files"] = std::move(files);
  j["tasks"] = std::move(tasks);
  j["notes"] = std::move(notes);
  return j;
}

std::string dumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vigil::mgmt::internal
