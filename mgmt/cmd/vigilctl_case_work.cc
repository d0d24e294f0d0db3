// "vigilctl cases" commands that change cases or read their history: create, update,
// assign, status, resolve, note, task add|update, evidence add|get, timeline, merge and
// metrics. Each prints a short human summary, or the API's JSON reply with --json.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
namespace {

constexpr const char* kSeverities = "informational, low, medium, high or critical";
constexpr const char* kResolutions = "true_positive, false_positive, benign or duplicate";

// Options shared by every command here: the case id and --json.
struct CaseCommand {
  int64_t id = 0;
  bool json = false;
};

void printJson(const nlohmann::json& body) {
  std::cout << body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

nlohmann::json sendOrFail(const GlobalOptions& global, const std::string& method,
                          const std::string& path, const nlohmann::json& body) {
  absl::StatusOr<nlohmann::json> reply =
      sendJson(global.api_url, method, path, {},
               body.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict));
  if (!reply.ok()) fail(reply.status().message());
  return *std::move(reply);
}

std::string casePath(int64_t id, const std::string& rest = "") {
  return absl::StrCat("/api/v1/cases/", id, rest);
}

// Prints the case reply of create, update and merge.
void showCaseReply(const nlohmann::json& reply, bool json) {
  if (json) {
    printJson(reply);
  } else {
    printCase(reply);
  }
}

CLI::App* addCaseId(CLI::App* command, CaseCommand& target) {
  command->add_option("id", target.id, "case id, as printed by 'cases list'")
      ->required()
      ->check(integerAtLeast(1, "case id"));
  command->add_flag("--json", target.json, "print the API response as JSON");
  return command;
}

// ---------------------------------------------------------------------------------------
// create, update, assign, status, resolve

struct CreateOptions {
  std::string title, tenant, description, severity, assignee;
  std::vector<std::string> tags;
  bool json = false;
};

void registerCreate(CLI::App& cases, const GlobalOptions& global) {
  auto o = std::make_shared<CreateOptions>();
  CLI::App* create = cases.add_subcommand("create", "open a case by hand");
  create->add_option("--title", o->title, "one-line summary")->required();
  create->add_option("--tenant", o->tenant, "tenant that owns the case")->required();
  create->add_option("--description", o->description, "longer text");
  create->add_option("--severity", o->severity, absl::StrCat(kSeverities, " (default medium)"));
  create->add_option("--assignee", o->assignee, "analyst to assign");
  create->add_option("--tag", o->tags, "tag; repeat for several");
  create->add_flag("--json", o->json, "print the API response as JSON");
  create->callback([&global, o] {
    nlohmann::json body = {{"title", o->title}, {"tenant", o->tenant}};
    if (!o->description.empty()) body["description"] = o->description;
    if (!o->severity.empty()) body["severity"] = o->severity;
    if (!o->assignee.empty()) body["assignee"] = o->assignee;
    if (!o->tags.empty()) body["tags"] = o->tags;
    showCaseReply(sendOrFail(global, "POST", "/api/v1/cases", body), o->json);
  });
}

struct UpdateOptions {
  CaseCommand target;
  std::string title, description, severity, status, resolution, note, assignee;
  std::vector<std::string> tags;
  bool clear_tags = false;
};

nlohmann::json updateBody(const UpdateOptions& o) {
  nlohmann::json body = nlohmann::json::object();
  const std::pair<const char*, const std::string*> fields[] = {
      {"title", &o.title},      {"description", &o.description}, {"severity", &o.severity},
      {"status", &o.status},    {"resolution", &o.resolution},   {"resolution_note", &o.note},
      {"assignee", &o.assignee}};
  for (const auto& [name, value] : fields) {
    if (!value->empty()) body[name] = *value;
  }
  if (!o.tags.empty() || o.clear_tags) body["tags"] = o.tags;
  return body;
}

void runUpdate(const GlobalOptions& global, const UpdateOptions& o) {
  nlohmann::json body = updateBody(o);
  if (body.empty()) fail("nothing to change; give at least one option such as --status");
  showCaseReply(sendOrFail(global, "PATCH", casePath(o.target.id), body), o.target.json);
}

void registerUpdate(CLI::App& cases, const GlobalOptions& global) {
  auto o = std::make_shared<UpdateOptions>();
  CLI::App* update =
      addCaseId(cases.add_subcommand("update", "change fields of a case"), o->target);
  update->add_option("--title", o->title, "new title");
  update->add_option("--description", o->description, "new description");
  update->add_option("--severity", o->severity, kSeverities);
  update->add_option("--status", o->status, "new, in_progress, resolved or closed");
  update->add_option("--resolution", o->resolution, kResolutions);
  update->add_option("--resolution-note", o->note, "text kept with the resolution");
  update->add_option("--assignee", o->assignee, "analyst to assign");
  update->add_option("--tag", o->tags, "replace the tags; repeat for several");
  update->add_flag("--clear-tags", o->clear_tags, "remove every tag");
  update->callback([&global, o] { runUpdate(global, *o); });

  auto a = std::make_shared<UpdateOptions>();
  CLI::App* assign =
      addCaseId(cases.add_subcommand("assign", "assign a case to an analyst"), a->target);
  assign->add_option("assignee", a->assignee, "analyst name")->required();
  assign->callback([&global, a] { runUpdate(global, *a); });

  auto s = std::make_shared<UpdateOptions>();
  CLI::App* status =
      addCaseId(cases.add_subcommand("status", "move a case to another status"), s->target);
  status->add_option("status", s->status, "new, in_progress, resolved or closed")->required();
  status->add_option("--resolution", s->resolution, kResolutions);
  status->add_option("--note", s->note, "text kept with the resolution");
  status->callback([&global, s] { runUpdate(global, *s); });

  auto r = std::make_shared<UpdateOptions>();
  auto close = std::make_shared<bool>(false);
  CLI::App* resolve =
      addCaseId(cases.add_subcommand("resolve", "resolve (or close) a case"), r->target);
  resolve->add_option("resolution", r->resolution, kResolutions)->required();
  resolve->add_option("--note", r->note, "text kept with the resolution");
  resolve->add_flag("--close", *close, "close the case instead of resolving it");
  resolve->callback([&global, r, close] {
    r->status = *close ? "closed" : "resolved";
    runUpdate(global, *r);
  });
}

// ---------------------------------------------------------------------------------------
// note, task

void registerNoteAndTask(CLI::App& cases, const GlobalOptions& global) {
  auto n = std::make_shared<std::pair<CaseCommand, std::string>>();
  CLI::App* note =
      addCaseId(cases.add_subcommand("note", "add a note; @name mentions an analyst"), n->first);
  note->add_option("text", n->second, "note text")->required();
  note->callback([&global, n] {
    nlohmann::json reply =
        sendOrFail(global, "POST", casePath(n->first.id, "/notes"), {{"body", n->second}});
    if (n->first.json) return printJson(reply);
    std::cout << "note " << field(reply, "id") << " added to case " << n->first.id;
    if (!reply.value("mentions", nlohmann::json::array()).empty()) {
      std::cout << "; mentions " << field(reply, "mentions");
    }
    std::cout << "\n";
  });

  CLI::App* task = cases.add_subcommand("task", "add or change tasks of a case");
  task->require_subcommand(1);
  struct TaskOptions {
    CaseCommand target;
    int64_t task_id = 0;
    std::string title, assignee, status;
  };
  auto add_options = std::make_shared<TaskOptions>();
  CLI::App* add = addCaseId(task->add_subcommand("add", "add a task"), add_options->target);
  add->add_option("title", add_options->title, "what needs doing")->required();
  add->add_option("--assignee", add_options->assignee, "analyst to do it");
  add->callback([&global, add_options] {
    nlohmann::json body = {{"title", add_options->title}};
    if (!add_options->assignee.empty()) body["assignee"] = add_options->assignee;
    nlohmann::json reply =
        sendOrFail(global, "POST", casePath(add_options->target.id, "/tasks"), body);
    if (add_options->target.json) return printJson(reply);
    std::cout << "task " << field(reply, "id") << " added: " << field(reply, "title") << "\n";
  });
  auto upd = std::make_shared<TaskOptions>();
  CLI::App* update = addCaseId(task->add_subcommand("update", "change a task"), upd->target);
  update->add_option("task", upd->task_id, "task id")
      ->required()
      ->check(integerAtLeast(1, "task id"));
  update->add_option("--title", upd->title, "new title");
  update->add_option("--assignee", upd->assignee, "analyst to do it");
  update->add_option("--status", upd->status, "open or done");
  update->callback([&global, upd] {
    nlohmann::json body = nlohmann::json::object();
    if (!upd->title.empty()) body["title"] = upd->title;
    if (!upd->assignee.empty()) body["assignee"] = upd->assignee;
    if (!upd->status.empty()) body["status"] = upd->status;
    if (body.empty()) fail("nothing to change; give --title, --assignee or --status");
    nlohmann::json reply = sendOrFail(
        global, "PATCH", casePath(upd->target.id, absl::StrCat("/tasks/", upd->task_id)), body);
    if (upd->target.json) return printJson(reply);
    std::cout << "task " << field(reply, "id") << " is " << field(reply, "status") << ": "
              << field(reply, "title") << "\n";
  });
}

// ---------------------------------------------------------------------------------------
// evidence

void registerEvidence(CLI::App& cases, const GlobalOptions& global) {
  CLI::App* evidence = cases.add_subcommand("evidence", "upload or download evidence files");
  evidence->require_subcommand(1);
  struct EvidenceOptions {
    CaseCommand target;
    std::string file, name, content_type, sha256, output;
  };
  auto a = std::make_shared<EvidenceOptions>();
  CLI::App* add = addCaseId(evidence->add_subcommand("add", "upload a file to a case"), a->target);
  add->add_option("file", a->file, "file to upload")->required()->check(CLI::ExistingFile);
  add->add_option("--name", a->name, "name to store (default: the file's base name)");
  add->add_option("--content-type", a->content_type, "media type to record");
  add->callback([&global, a] {
    std::ifstream in(a->file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) fail(absl::StrCat("cannot read ", a->file));
    const std::string name =
        a->name.empty() ? std::string(CLI::detail::split(a->file, '/').back()) : a->name;
    absl::StatusOr<nlohmann::json> reply = sendJson(
        global.api_url, "POST", casePath(a->target.id, "/evidence"), {{"name", name}}, bytes.str(),
        a->content_type.empty() ? "application/octet-stream" : a->content_type);
    if (!reply.ok()) fail(reply.status().message());
    if (a->target.json) return printJson(*reply);
    std::cout << "evidence " << field(*reply, "sha256") << " (" << field(*reply, "size_bytes")
              << " bytes) attached to case " << a->target.id << "\n";
  });
  auto g = std::make_shared<EvidenceOptions>();
  CLI::App* get = evidence->add_subcommand("get", "download an evidence file");
  get->add_option("id", g->target.id, "case id")
      ->required()
      ->check(integerAtLeast(1, "case id"));
  get->add_option("sha256", g->sha256, "file hash, as shown by 'cases show'")->required();
  get->add_option("-o,--output", g->output, "file to write; '-' writes to stdout")->required();
  get->callback([&global, g] {
    absl::StatusOr<std::string> bytes =
        getBytes(global.api_url, casePath(g->target.id, "/evidence/" + g->sha256));
    if (!bytes.ok()) fail(bytes.status().message());
    if (g->output == "-") {
      std::cout << *bytes;
      return;
    }
    std::ofstream out(g->output, std::ios::binary | std::ios::trunc);
    out << *bytes;
    out.close();
    if (!out) fail(absl::StrCat("cannot write ", g->output));
    std::cerr << "wrote " << bytes->size() << " bytes to " << g->output << "\n";
  });
}

// ---------------------------------------------------------------------------------------
// timeline, merge, metrics

void registerHistory(CLI::App& cases, const GlobalOptions& global) {
  auto t = std::make_shared<CaseCommand>();
  CLI::App* timeline =
      addCaseId(cases.add_subcommand("timeline", "print every change to a case"), *t);
  timeline->callback([&global, t] {
    absl::StatusOr<nlohmann::json> reply = getJson(global.api_url, casePath(t->id, "/timeline"));
    if (!reply.ok()) fail(reply.status().message());
    if (t->json) return printJson(*reply);
    std::vector<std::vector<std::string>> rows = {{"AT", "ACTOR", "ACTION", "FIELD", "OLD", "NEW"}};
    for (const nlohmann::json& e : reply->value("items", nlohmann::json::array())) {
      rows.push_back({field(e, "at"), field(e, "actor"), field(e, "action"), field(e, "field"),
                      field(e, "old"), field(e, "new")});
    }
    printTable(rows, "");
  });

  auto m = std::make_shared<std::pair<CaseCommand, int64_t>>();
  CLI::App* merge = addCaseId(
      cases.add_subcommand("merge", "move a case's alerts and work into another, closing it"),
      m->first);
  merge->add_option("--into", m->second, "target case id")
      ->required()
      ->check(integerAtLeast(1, "case id"));
  merge->callback([&global, m] {
    nlohmann::json reply =
        sendOrFail(global, "POST", casePath(m->first.id, "/merge"), {{"into", m->second}});
    if (m->first.json) return printJson(reply);
    std::cout << "case " << m->first.id << " merged into case " << m->second << "\n";
    printCase(reply);
  });

  struct MetricsOptions {
    std::string tenant, from, to;
    bool json = false;
  };
  auto o = std::make_shared<MetricsOptions>();
  CLI::App* metrics = cases.add_subcommand("metrics", "MTTD, MTTA, MTTR and SLA breaches");
  metrics->add_option("--tenant", o->tenant, "only this tenant");
  metrics->add_option("--from", o->from, "cases detected at or after this RFC 3339 time");
  metrics->add_option("--to", o->to, "cases detected before this RFC 3339 time");
  metrics->add_flag("--json", o->json, "print the API response as JSON");
  metrics->callback([&global, o] {
    QueryParams params;
    if (!o->tenant.empty()) params.emplace_back("tenant", o->tenant);
    if (!o->from.empty()) params.emplace_back("from", o->from);
    if (!o->to.empty()) params.emplace_back("to", o->to);
    absl::StatusOr<nlohmann::json> reply = getJson(global.api_url, "/api/v1/metrics/cases", params);
    if (!reply.ok()) fail(reply.status().message());
    if (o->json) return printJson(*reply);
    std::vector<std::vector<std::string>> rows = {{"TENANT", "SEVERITY", "CASES", "MTTD P50",
                                                   "MTTA P50", "MTTA P90", "MTTR P50", "MTTR P90",
                                                   "ACK BREACH", "RES BREACH"}};
    for (const nlohmann::json& g : reply->value("groups", nlohmann::json::array())) {
      auto seconds = [&g](const char* metric, const char* key) {
        if (!g.contains(metric) || g[metric].value("count", 0) == 0) return std::string("-");
        return absl::StrCat(g[metric].value(key, 0.0), "s");
      };
      const nlohmann::json breaches = g.value("sla_breaches", nlohmann::json::object());
      rows.push_back({field(g, "tenant"), field(g, "severity"), field(g, "cases"),
                      seconds("mttd", "p50_s"), seconds("mtta", "p50_s"), seconds("mtta", "p90_s"),
                      seconds("mttr", "p50_s"), seconds("mttr", "p90_s"),
                      field(breaches, "acknowledge"), field(breaches, "resolve")});
    }
    printTable(rows, "");
  });
}

}  // namespace

void registerCaseWorkCommands(CLI::App& cases, const GlobalOptions& options) {
  registerCreate(cases, options);
  registerUpdate(cases, options);
  registerNoteAndTask(cases, options);
  registerEvidence(cases, options);
  registerHistory(cases, options);
}

}  // namespace vigil::ctl
