// "vigilctl cases list" and "vigilctl cases show"; the commands that change cases are in
// vigilctl_case_work.cc.
#include <algorithm>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {

// Registers the commands that change cases (mgmt/cmd/vigilctl_case_work.cc).
void registerCaseWorkCommands(CLI::App& cases, const GlobalOptions& options);

namespace {

struct ListOptions {
  std::string tenant;
  std::string status;
  std::string severity;
  std::string sort;
  int limit = 50;
  int64_t offset = 0;
  bool json = false;
};

struct ShowOptions {
  int64_t id = 0;
  bool json = false;
};

nlohmann::json fetchOrFail(const GlobalOptions& global, const std::string& path,
                           const QueryParams& params) {
  absl::StatusOr<nlohmann::json> body = getJson(global.api_url, path, params);
  if (!body.ok()) fail(body.status().message());
  return *std::move(body);
}

void listCases(const GlobalOptions& global, const ListOptions& options) {
  QueryParams params = {{"limit", std::to_string(options.limit)}};
  if (options.offset != 0) params.emplace_back("offset", std::to_string(options.offset));
  if (!options.tenant.empty()) params.emplace_back("tenant", options.tenant);
  if (!options.status.empty()) params.emplace_back("status", options.status);
  if (!options.severity.empty()) params.emplace_back("severity", options.severity);
  if (!options.sort.empty()) params.emplace_back("sort", options.sort);
  nlohmann::json body = fetchOrFail(global, "/api/v1/cases", params);
  if (options.json) {
    std::cout << body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }

  const nlohmann::json& items = body.contains("items") ? body["items"] : nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {
      {"ID", "SEVERITY", "STATUS", "TENANT", "ALERTS", "DETECTED", "TITLE"}};
  for (const nlohmann::json& item : items) {
    rows.push_back({field(item, "id"), field(item, "severity"), field(item, "status"),
                    field(item, "tenant"), field(item, "alert_count"), field(item, "detected"),
                    field(item, "title")});
  }
  printTable(rows, "");
  std::cout << items.size() << " of " << field(body, "total") << " cases shown (offset "
            << field(body, "offset") << ")\n";
}

}  // namespace

void printCase(const nlohmann::json& c) {
  std::cout << "Case " << field(c, "id") << ": " << field(c, "title") << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"severity", field(c, "severity")},
      {"status", field(c, "status")},
      {"tenant", field(c, "tenant")},
      {"rule", field(c, "rule_id")},
      {"group", field(c, "group")},
      {"first event", field(c, "first_event")},
      {"detected", field(c, "detected")},
      {"updated", field(c, "updated")},
      {"alerts", field(c, "alert_count")},
      {"assignee", field(c, "assignee")},
      {"resolution", field(c, "resolution")},
      {"resolution note", field(c, "resolution_note")},
      {"tags", field(c, "tags")},
      {"acknowledged", field(c, "acknowledged")},
      {"resolved", field(c, "resolved")},
      {"merged into", field(c, "merged_into")},
  };
  if (c.contains("metrics") && c["metrics"].is_object()) {
    for (const char* key : {"mttd_s", "mtta_s", "mttr_s"}) {
      rows.push_back({absl::StrCat(std::string(key, 4), " (s)"), field(c["metrics"], key)});
    }
  }
  if (c.contains("sla") && c["sla"].is_object()) {
    const nlohmann::json& sla = c["sla"];
    rows.push_back({"sla acknowledge",
                    absl::StrCat(field(sla, "acknowledge_due"),
                                 field(sla, "acknowledge_breached") == "true" ? " BREACHED" : "")});
    rows.push_back(
        {"sla resolve", absl::StrCat(field(sla, "resolve_due"),
                                     field(sla, "resolve_breached") == "true" ? " BREACHED" : "")});
  }
  if (!field(c, "description").empty()) rows.push_back({"description", field(c, "description")});
  for (auto& row : rows) {
    if (row[1].empty() || row[1] == "null" || row[1] == "[]") row[1] = "-";
  }
  printTable(rows, "  ");
}

namespace {

void showCase(const GlobalOptions& global, const ShowOptions& options) {
  nlohmann::json body = fetchOrFail(global, absl::StrCat("/api/v1/cases/", options.id), {});
  if (options.json) {
    std::cout << body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  printCase(body);

  const nlohmann::json& alerts = body.contains("alerts") ? body["alerts"] : nlohmann::json::array();
  std::cout << "\nAlerts (" << alerts.size() << ")\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ALERT ID", "LEVEL", "EVENTS", "FIRST EVENT", "LAST EVENT", "DETECTED"}};
  for (const nlohmann::json& alert : alerts) {
    rows.push_back({field(alert, "id"), field(alert, "alert_id"), field(alert, "level"),
                    field(alert, "event_count"), field(alert, "first_event"),
                    field(alert, "last_event"), field(alert, "detected")});
  }
  printTable(rows, "  ");

  const nlohmann::json& evidence =
      body.contains("evidence") ? body["evidence"] : nlohmann::json::array();
  std::cout << "\nEvidence (" << evidence.size() << ")\n";
  for (const nlohmann::json& item : evidence) {
    std::cout << "  [alert " << field(item, "alert") << " #" << field(item, "position") << "] "
              << field(item, "raw") << "\n";
  }

  auto list = [&body](const char* key) {
    return body.contains(key) && body[key].is_array() ? body[key] : nlohmann::json::array();
  };
  const nlohmann::json files = list("files");
  std::cout << "\nFiles (" << files.size() << ")\n";
  rows = {{"SHA256", "BYTES", "NAME", "ADDED BY"}};
  for (const nlohmann::json& f : files) {
    rows.push_back(
        {field(f, "sha256"), field(f, "size_bytes"), field(f, "name"), field(f, "added_by")});
  }
  if (!files.empty()) printTable(rows, "  ");
  const nlohmann::json tasks = list("tasks");
  std::cout << "\nTasks (" << tasks.size() << ")\n";
  rows = {{"ID", "STATUS", "ASSIGNEE", "TITLE"}};
  for (const nlohmann::json& t : tasks) {
    rows.push_back({field(t, "id"), field(t, "status"), field(t, "assignee"), field(t, "title")});
  }
  if (!tasks.empty()) printTable(rows, "  ");
  const nlohmann::json notes = list("notes");
  std::cout << "\nNotes (" << notes.size() << ")\n";
  for (const nlohmann::json& n : notes) {
    std::cout << "  " << field(n, "created") << " " << field(n, "author") << ": "
              << field(n, "body") << "\n";
  }
}

}  // namespace

void registerCasesCommands(CLI::App& app, const GlobalOptions& options) {
  CLI::App* cases = app.add_subcommand("cases", "list and show cases in the case store");
  cases->require_subcommand(1);

  auto list_options = std::make_shared<ListOptions>();
  CLI::App* list = cases->add_subcommand("list", "print one page of cases, newest first");
  list->add_option("--tenant", list_options->tenant, "only cases of this tenant");
  list->add_option("--status", list_options->status,
                   "only cases in this status: new, in_progress, resolved or closed");
  list->add_option("--severity", list_options->severity,
                   "only cases of this severity: informational, low, medium, high or critical");
  list->add_option("--sort", list_options->sort,
                   "order: detected, -detected (default), severity, -severity, updated, "
                   "-updated, id or -id");
  list->add_option("--limit", list_options->limit, "maximum number of cases to print, 1..500")
      ->check(CLI::Range(1, 500));
  list->add_option("--offset", list_options->offset, "number of cases to skip")
      ->check(integerAtLeast(0, "offset"));
  list->add_flag("--json", list_options->json, "print the API response as JSON");
  list->callback([&options, list_options] { listCases(options, *list_options); });

  auto show_options = std::make_shared<ShowOptions>();
  CLI::App* show = cases->add_subcommand("show", "print one case with its alerts and evidence");
  show->add_option("id", show_options->id, "case id, as printed by 'cases list'")
      ->required()
      ->check(integerAtLeast(1, "case id"));
  show->add_flag("--json", show_options->json, "print the API response as JSON");
  show->callback([&options, show_options] { showCase(options, *show_options); });

  registerCaseWorkCommands(*cases, options);
}

}  // namespace vigil::ctl
