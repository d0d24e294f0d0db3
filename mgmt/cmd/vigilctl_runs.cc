// "vigilctl runs list|show|approvals|approve|deny": playbook runs through the vigild API.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
namespace {

using json = nlohmann::json;

struct ListOptions {
  std::string state;
  std::string tenant;
  std::string playbook;
  int limit = 50;
  int64_t offset = 0;
  std::string sort;
  bool json = false;
};

struct RunOptions {
  int64_t id = 0;
  std::string comment;
  bool json = false;
};

std::string field(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "";
  const json& value = j[key];
  if (value.is_string()) return printable(value.get<std::string>());
  return printable(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

void printTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void printJson(const json& body) {
  std::cout << body.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

void listRuns(const GlobalOptions& global, const ListOptions& options, bool approvals) {
  QueryParams params = {{"limit", std::to_string(options.limit)}};
  if (options.offset != 0) params.emplace_back("offset", std::to_string(options.offset));
  if (!options.state.empty()) params.emplace_back("state", options.state);
  if (!options.tenant.empty()) params.emplace_back("tenant", options.tenant);
  if (!options.playbook.empty()) params.emplace_back("playbook", options.playbook);
  if (!options.sort.empty()) params.emplace_back("sort", options.sort);
  absl::StatusOr<json> body =
      getJson(global.api_url, approvals ? "/api/v1/approvals" : "/api/v1/runs", params);
  if (!body.ok()) fail(body.status().message());
  if (options.json) return printJson(*body);
  const json& items = body->contains("items") ? (*body)["items"] : json::array();
  std::vector<std::vector<std::string>> rows;
  if (approvals) {
    rows.push_back({"ID", "TENANT", "PLAYBOOK", "DEADLINE", "PROMPT"});
    for (const json& item : items) {
      rows.push_back({field(item, "id"), field(item, "tenant"), field(item, "playbook"),
                      field(item, "wake_at"), field(item, "prompt")});
    }
  } else {
    rows.push_back({"ID", "STATE", "TENANT", "PLAYBOOK", "ALERT", "CREATED"});
    for (const json& item : items) {
      rows.push_back({field(item, "id"), field(item, "state"), field(item, "tenant"),
                      field(item, "playbook"), field(item, "alert_id"), field(item, "created")});
    }
  }
  printTable(rows, "");
  std::cout << items.size() << " of " << field(*body, "total")
            << (approvals ? " runs waiting for approval" : " runs") << " shown (offset "
            << field(*body, "offset") << ")\n";
}

void showRun(const GlobalOptions& global, const RunOptions& options) {
  absl::StatusOr<json> body = getJson(global.api_url, absl::StrCat("/api/v1/runs/", options.id));
  if (!body.ok()) fail(body.status().message());
  if (options.json) return printJson(*body);
  const json& run = *body;
  std::cout << "Run " << field(run, "id") << ": playbook " << field(run, "playbook") << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"state", field(run, "state")},       {"tenant", field(run, "tenant")},
      {"alert", field(run, "alert_id")},    {"rule", field(run, "rule_id")},
      {"version", field(run, "playbook_hash")}, {"created", field(run, "created")},
      {"updated", field(run, "updated")},   {"finished", field(run, "finished")},
      {"wake at", field(run, "wake_at")},   {"prompt", field(run, "prompt")},
      {"decision", field(run, "decision")}, {"approver", field(run, "approver")},
      {"comment", field(run, "comment")},   {"result", field(run, "result")},
      {"error", field(run, "error")},
  };
  for (auto& row : rows) {
    if (row[1].empty()) row[1] = "-";
  }
  printTable(rows, "  ");
  const json& steps = run.contains("steps") ? run["steps"] : json::array();
  std::cout << "\nSteps (" << steps.size() << ")\n";
  std::vector<std::vector<std::string>> table = {
      {"#", "STARTED", "KIND", "NAME", "OUTCOME", "MS", "MESSAGE"}};
  for (const json& s : steps) {
    table.push_back({field(s, "seq"), field(s, "started"), field(s, "kind"), field(s, "name"),
                     field(s, "outcome"), field(s, "duration_ms"), field(s, "message")});
  }
  printTable(table, "  ");
}

void decide(const GlobalOptions& global, const RunOptions& options, bool approve) {
  json request = json::object();
  if (!options.comment.empty()) request["comment"] = options.comment;
  absl::StatusOr<json> body = postJson(
      global.api_url,
      absl::StrCat("/api/v1/runs/", options.id, approve ? "/approve" : "/deny"), request);
  if (!body.ok()) fail(body.status().message());
  if (options.json) return printJson(*body);
  std::cout << "run " << field(*body, "id") << " " << (approve ? "approved" : "denied") << " by "
            << field(*body, "approver") << "; it continues on a worker\n";
}

void addListOptions(CLI::App* cmd, ListOptions& o, bool with_state) {
  if (with_state) {
    cmd->add_option("--state", o.state,
                    "only runs in this state: running, waiting_approval, delayed, succeeded, "
                    "failed, denied or timed_out");
  }
  cmd->add_option("--tenant", o.tenant, "only runs of this tenant");
  cmd->add_option("--playbook", o.playbook, "only runs of this playbook");
  cmd->add_option("--limit", o.limit, "maximum number of runs to print, 1..500")
      ->check(CLI::Range(1, 500));
  cmd->add_option("--offset", o.offset, "number of runs to skip")->check(CLI::NonNegativeNumber);
  cmd->add_option("--sort", o.sort,
                  "order: -id (newest first, the default), id, created, -created, updated, "
                  "-updated")
      ->check(CLI::IsMember({"id", "-id", "created", "-created", "updated", "-updated"}));
  cmd->add_flag("--json", o.json, "print the API response as JSON");
}

}  // namespace

void registerRunsCommands(CLI::App& app, const GlobalOptions& options) {
  CLI::App* runs = app.add_subcommand("runs", "list playbook runs, show one, approve or deny");
  runs->require_subcommand(1);

  auto list_options = std::make_shared<ListOptions>();
  CLI::App* list = runs->add_subcommand("list", "print one page of runs, newest first unless --sort says otherwise");
  addListOptions(list, *list_options, true);
  list->callback([&options, list_options] { listRuns(options, *list_options, false); });

  auto wait_options = std::make_shared<ListOptions>();
  CLI::App* approvals = runs->add_subcommand("approvals", "print runs waiting for approval");
  addListOptions(approvals, *wait_options, false);
  approvals->callback([&options, wait_options] { listRuns(options, *wait_options, true); });

  auto show_options = std::make_shared<RunOptions>();
  CLI::App* show = runs->add_subcommand("show", "print one run with its steps");
  show->add_option("id", show_options->id, "run id, as printed by 'runs list'")
      ->required()
      ->check(integerAtLeast(1, "run id"));
  show->add_flag("--json", show_options->json, "print the API response as JSON");
  show->callback([&options, show_options] { showRun(options, *show_options); });

  for (bool approve : {true, false}) {
    auto o = std::make_shared<RunOptions>();
    CLI::App* cmd = runs->add_subcommand(approve ? "approve" : "deny",
                                         approve ? "approve a run waiting for approval"
                                                 : "deny a run waiting for approval");
    cmd->add_option("id", o->id, "run id, as printed by 'runs approvals'")
        ->required()
        ->check(integerAtLeast(1, "run id"));
    cmd->add_option("-m,--comment", o->comment, "why; recorded with the decision");
    cmd->add_flag("--json", o->json, "print the API response as JSON");
    cmd->callback([&options, o, approve] { decide(options, *o, approve); });
  }
}

}  // namespace vigil::ctl
