// "vigilctl content push|versions|activations|show|diff|activate|delete" and "vigilctl config
// reload": the content and configuration routes of the vigild API.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
namespace {

struct ContentOptions {
  std::string kind;
  std::vector<std::string> paths;
  std::string tenant;
  std::string events;
  bool dry_run = false;
  int64_t version = 0;
  int64_t against = 0;
  std::string rule;      // content delete: one rule id instead of the whole set
  std::string playbook;  // content delete: one playbook name instead of the whole set
  bool item_given = false;  // content delete: --rule or --playbook was on the command line
  int limit = 50;    // content versions: page size, 1..500
  int64_t offset = 0;
  std::string sort;  // content versions: "version" (oldest first) or "-version"
  std::string action;        // content activations: only this action
  std::string activated_by;  // content activations: only this principal's subject
  std::string file;  // content show: print only this file's text
  bool json = false;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(absl::StrCat("cannot read ", path, "; check the path and its permissions"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The files of a push: a file under its own name, a folder's files under their path
// below the folder. Rules and playbooks take *.yml and *.yaml from folders; intel takes
// every file.
nlohmann::json collectFiles(const std::string& kind, const std::vector<std::string>& paths) {
  nlohmann::json files = nlohmann::json::object();
  auto add = [&files](const std::string& name, const std::string& path) {
    if (files.contains(name)) {
      fail(absl::StrCat("two files would be pushed as ", name, "; push them separately"));
    }
    files[name] = readFile(path);
  };
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::filesystem::path> found;
      for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        std::string ext = it->path().extension().string();
        if (!it->is_regular_file()) continue;
        if (kind != "intel" && ext != ".yml" && ext != ".yaml") continue;
        found.push_back(it->path());
      }
      if (ec) fail(absl::StrCat("cannot read folder ", path, ": ", ec.message()));
      std::sort(found.begin(), found.end());
      for (const auto& file : found) {
        add(std::filesystem::relative(file, path).generic_string(), file.string());
      }
    } else if (std::filesystem::is_regular_file(path, ec)) {
      add(std::filesystem::path(path).filename().string(), path);
    } else {
      fail(absl::StrCat(path, " is neither a file nor a folder"));
    }
  }
  if (files.empty()) fail("no file to push; give files or folders that contain them");
  return files;
}

// Dry-run sample: rules and intel take one raw log line per line; playbooks take alerts
// as JSON lines (what alerts.output writes) or one JSON array.
nlohmann::json readSample(const std::string& kind, const std::string& path) {
  std::string text = readFile(path);
  nlohmann::json sample = nlohmann::json::array();
  if (kind == "playbooks") {
    nlohmann::json whole = nlohmann::json::parse(text, nullptr, false);
    if (whole.is_array()) return whole;
  }
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (kind == "rules" || kind == "intel") {
      sample.push_back(line);
      continue;
    }
    nlohmann::json alert = nlohmann::json::parse(line, nullptr, false);
    if (!alert.is_object()) {
      fail(absl::StrCat(path, ":", number, ": not a JSON object; give one alert per line"));
    }
    sample.push_back(std::move(alert));
  }
  return sample;
}

QueryParams tenantParam(const ContentOptions& o) {
  QueryParams params;
  if (!o.tenant.empty()) params.emplace_back("tenant", o.tenant);
  return params;
}

std::string text(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const nlohmann::json& v = j[key];
  return printable(v.is_string() ? v.get<std::string>() : v.dump());
}

// Prints the error body of a failed call (with every content problem) and exits 1.
[[noreturn]] void failReply(const ApiReply& reply) {
  const nlohmann::json& body = reply.body;
  if (body.is_object() && body.contains("problems")) {
    for (const nlohmann::json& p : body["problems"]) {
      std::string where = text(p, "file");
      if (p.value("line", 0) > 0) where += absl::StrCat(":", p.value("line", 0));
      if (p.value("column", 0) > 0) where += absl::StrCat(":", p.value("column", 0));
      std::cerr << (where.empty() ? "" : where + ": ") << text(p, "message") << "\n";
    }
  }
  std::string message = absl::StrCat("HTTP ", reply.status);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    absl::StrAppend(&message, ": ", text(body["error"], "message"));
  }
  fail(message);
}

void printVersion(const nlohmann::json& v) {
  std::cout << text(v, "kind") << " version " << text(v, "version")
            << (v.value("active", false) ? " (active)" : "") << "\n"
            << "  tenant        " << text(v, "tenant") << "\n"
            << "  author        " << text(v, "author") << "\n"
            << "  created       " << text(v, "created") << "\n";
  if (v.contains("activated")) {
    std::cout << "  activated     " << text(v, "activated") << "\n"
              << "  activated by  " << text(v, "activated_by") << "\n";
  }
  std::cout << "  sha256        " << text(v, "sha256") << "\n";
}

void printDryRun(const std::string& kind, const nlohmann::json& result) {
  if (kind == "rules") {
    const nlohmann::json& alerts = result["alerts"];
    std::cout << alerts.size() << " alerts from " << text(result, "events") << " events\n";
    for (const nlohmann::json& a : alerts) {
      std::cout << "  event " << text(a, "event") << "  " << text(a, "level") << "  "
                << text(a, "rule_id") << "  " << text(a, "rule_title") << "\n";
    }
    return;
  }
  if (kind == "intel") {
    const nlohmann::json& matches = result["matches"];
    std::cout << matches.size() << " matches in " << text(result, "matched_events") << " of "
              << text(result, "events") << " events\n";
    for (const nlohmann::json& m : matches) {
      std::cout << "  event " << text(m, "event") << "  " << text(m, "type") << "  "
                << text(m, "indicator") << "  in " << text(m, "field") << "  feed "
                << text(m, "feed") << "  score " << text(m, "score") << "\n";
    }
    return;
  }
  for (const nlohmann::json& run : result["runs"]) {
    std::cout << "alert " << text(run, "alert") << "  " << text(run, "playbook") << "  "
              << (run.value("trigger_matched", false) ? "trigger matched" : "trigger not matched")
              << (run.value("completed", false) ? "" : "  (did not complete)") << "\n";
    for (const nlohmann::json& step : run["steps"]) {
      std::cout << "    " << printable(step.get<std::string>()) << "\n";
    }
  }
}

void runPush(const GlobalOptions& global, const ContentOptions& o) {
  nlohmann::json body = {{"files", collectFiles(o.kind, o.paths)}};
  QueryParams params = tenantParam(o);
  if (o.dry_run) {
    if (o.events.empty()) fail("--dry-run needs --events FILE with the sample to run on");
    body["events"] = readSample(o.kind, o.events);
    params.emplace_back("dry_run", "true");
  } else if (!o.events.empty()) {
    fail("--events is only used with --dry-run");
  }
  absl::StatusOr<ApiReply> reply =
      postJsonReply(global.api_url, absl::StrCat("/api/v1/content/", o.kind), params, body);
  if (!reply.ok()) fail(reply.status().message());
  if (reply->status < 200 || reply->status >= 300) {
    if (o.json && reply->body.is_object()) std::cout << reply->body.dump(2) << "\n";
    failReply(*reply);
  }
  if (o.json) {
    std::cout << reply->body.dump(2) << "\n";
  } else if (o.dry_run) {
    printDryRun(o.kind, reply->body["result"]);
  } else {
    std::cout << "pushed and activated ";
    printVersion(reply->body);
  }
}

void runVersions(const GlobalOptions& global, const ContentOptions& o) {
  QueryParams params = tenantParam(o);
  params.emplace_back("limit", std::to_string(o.limit));
  if (o.offset != 0) params.emplace_back("offset", std::to_string(o.offset));
  if (!o.sort.empty()) params.emplace_back("sort", o.sort);
  absl::StatusOr<nlohmann::json> body =
      getJson(global.api_url, absl::StrCat("/api/v1/content/", o.kind, "/versions"), params);
  if (!body.ok()) fail(body.status().message());
  if (o.json) {
    std::cout << body->dump(2) << "\n";
    return;
  }
  const nlohmann::json& versions = (*body)["versions"];
  if (versions.empty() && body->value("total", 0) == 0) {
    std::cout << "no " << o.kind << " versions stored; vigild runs the configured files\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "ACTIVE", "CREATED", "AUTHOR", "ACTIVATED", "ACTIVATED BY", "SHA256"}};
  for (const nlohmann::json& v : versions) {
    rows.push_back({text(v, "version"), v.value("active", false) ? "yes" : "",
                    text(v, "created"), text(v, "author"), text(v, "activated"),
                    text(v, "activated_by"), text(v, "sha256").substr(0, 16)});
  }
  printTable(rows, "");
  std::cout << versions.size() << " of " << text(*body, "total") << " versions shown (offset "
            << text(*body, "offset") << ")\n";
}

void runActivations(const GlobalOptions& global, const ContentOptions& o) {
  QueryParams params = tenantParam(o);
  params.emplace_back("limit", std::to_string(o.limit));
  if (o.offset != 0) params.emplace_back("offset", std::to_string(o.offset));
  if (!o.sort.empty()) params.emplace_back("sort", o.sort);
  if (o.version != 0) params.emplace_back("version", std::to_string(o.version));
  if (!o.action.empty()) params.emplace_back("action", o.action);
  if (!o.activated_by.empty()) params.emplace_back("activated_by", o.activated_by);
  absl::StatusOr<nlohmann::json> body =
      getJson(global.api_url, absl::StrCat("/api/v1/content/", o.kind, "/activations"), params);
  if (!body.ok()) fail(body.status().message());
  if (o.json) {
    std::cout << body->dump(2) << "\n";
    return;
  }

  const nlohmann::json& activations = (*body)["activations"];
  if (activations.empty() && body->value("total", 0) == 0) {
    std::cout << "no " << o.kind << " activations match\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "VERSION", "ACTION", "PREVIOUS", "ACTIVATED", "ACTIVATED BY", "SHA256"}};
  for (const nlohmann::json& a : activations) {
    rows.push_back({text(a, "seq"), text(a, "version"), text(a, "action"),
                    a["previous_version"].is_null() ? "-" : text(a, "previous_version"),
                    text(a, "activated"), text(a, "activated_by"),
                    text(a, "sha256").substr(0, 16)});
  }
  printTable(rows, "");
  std::cout << activations.size() << " of " << text(*body, "total")
            << " activations shown (offset " << text(*body, "offset") << ")\n";
}

void runShow(const GlobalOptions& global, const ContentOptions& o) {
  absl::StatusOr<nlohmann::json> body = getJson(
      global.api_url, absl::StrCat("/api/v1/content/", o.kind, "/versions/", o.version),
      tenantParam(o));
  if (!body.ok()) fail(body.status().message());
  const nlohmann::json& files = (*body)["files"];
  if (!o.file.empty()) {
    if (!files.is_object() || !files.contains(o.file)) {
      fail(absl::StrCat(o.kind, " version ", o.version, " has no file ", printable(o.file),
                        "; run without --file to list its files"));
    }
    // The text is printed as is, so it can be saved and pushed again.
    std::cout << files[o.file].get<std::string>();
    return;
  }
  if (o.json) {
    std::cout << body->dump(2) << "\n";
    return;
  }
  printVersion(*body);
  std::cout << "  files\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [path, content] : files.items()) {
    rows.push_back({printable(path), absl::StrCat(content.get<std::string>().size(), " bytes")});
  }
  printTable(rows, "    ");
}

void runDiff(const GlobalOptions& global, const ContentOptions& o) {
  QueryParams params = tenantParam(o);
  if (o.against > 0) params.emplace_back("against", std::to_string(o.against));
  absl::StatusOr<nlohmann::json> body = getJson(
      global.api_url, absl::StrCat("/api/v1/content/", o.kind, "/versions/", o.version, "/diff"),
      params);
  if (!body.ok()) fail(body.status().message());
  if (o.json) {
    std::cout << body->dump(2) << "\n";
    return;
  }
  if ((*body)["files"].empty()) std::cout << "no differences\n";
  for (const nlohmann::json& file : (*body)["files"]) {
    // The diff is printed as is, so it can be piped into patch or a pager.
    std::cout << file["diff"].get<std::string>();
  }
}

void runActivate(const GlobalOptions& global, const ContentOptions& o) {
  absl::StatusOr<ApiReply> reply = postJsonReply(
      global.api_url, absl::StrCat("/api/v1/content/", o.kind, "/versions/", o.version, "/activate"),
      tenantParam(o), nlohmann::json::object());
  if (!reply.ok()) fail(reply.status().message());
  if (reply->status != 200) failReply(*reply);
  if (o.json) {
    std::cout << reply->body.dump(2) << "\n";
    return;
  }
  std::cout << "activated ";
  printVersion(reply->body);
}

// Percent-encodes every byte of `text` outside RFC 3986's unreserved set, so a rule id
// or title can be one path segment.
std::string percentEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 0xf]};
    }
  }
  return out;
}

void runDelete(const GlobalOptions& global, const ContentOptions& o) {
  if (!o.rule.empty() && o.kind != "rules") fail("--rule deletes a rule; use it with 'rules'");
  if (!o.playbook.empty() && o.kind != "playbooks") {
    fail("--playbook deletes a playbook; use it with 'playbooks'");
  }
  const std::string& item = o.kind == "playbooks" ? o.playbook : o.rule;
  const char* noun = o.kind == "playbooks" ? "playbook" : "rule";
  // An empty value (an unset variable in a script) must not turn into "delete them all".
  if (o.item_given && item.empty()) {
    fail(absl::StrCat("--", noun, " '' is empty; give the ", noun,
                      " to delete, or leave the option out to delete every ", noun,
                      " of the tenant"));
  }
  std::string path = absl::StrCat("/api/v1/content/", o.kind);
  if (!item.empty()) absl::StrAppend(&path, "/items/", percentEncode(item));
  absl::StatusOr<ApiReply> reply = deleteReply(global.api_url, path, tenantParam(o));
  if (!reply.ok()) fail(reply.status().message());
  if (reply->status != 200) {
    if (o.json && reply->body.is_object()) std::cout << reply->body.dump(2) << "\n";
    failReply(*reply);
  }
  if (o.json) {
    std::cout << reply->body.dump(2) << "\n";
    return;
  }
  std::cout << (item.empty() ? absl::StrCat("deleted every ", noun, "; ")
                             : absl::StrCat("deleted ", noun, " ", printable(item), "; "))
            << "activated ";
  printVersion(reply->body);
}

void runConfigReload(const GlobalOptions& global, bool json) {
  absl::StatusOr<ApiReply> reply =
      postJsonReply(global.api_url, "/api/v1/config/reload", {}, nlohmann::json::object());
  if (!reply.ok()) fail(reply.status().message());
  if (json && reply->body.is_object()) std::cout << reply->body.dump(2) << "\n";
  if (reply->status != 200) failReply(*reply);
  if (json) return;
  auto list = [](const nlohmann::json& items) {
    std::string out;
    for (const nlohmann::json& item : items) {
      out += (out.empty() ? "" : ", ") + printable(item.get<std::string>());
    }
    return out.empty() ? std::string("none") : out;
  };
  std::cout << "configuration reloaded\n"
            << "  applied           " << list(reply->body["applied"]) << "\n"
            << "  restart required  " << list(reply->body["restart_required"]) << "\n";
}

}  // namespace

void registerContentCommands(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<ContentOptions>();
  CLI::App* content = app.add_subcommand(
      "content", "Push, list, compare and activate versions of rules, intel and playbooks");
  content->require_subcommand(1);
  auto kind = [&o](CLI::App* command) {
    command->add_option("KIND", o->kind, "rules, intel or playbooks")
        ->required()
        ->check(CLI::IsMember({"rules", "intel", "playbooks"}));
    command->add_option("--tenant", o->tenant,
                        "the tenant whose rules, analyst list or playbooks to manage; leave "
                        "out for the content for every tenant");
    command->add_flag("--json", o->json, "print the API's JSON response");
  };

  CLI::App* push = content->add_subcommand(
      "push", "Validate, compile and activate files as a new version (folders: their files)");
  kind(push);
  push->add_option("PATH", o->paths, "files or folders to push")->required();
  push->add_flag("--dry-run", o->dry_run,
                 "run the content on --events and print what it would produce; store nothing");
  push->add_option("--events", o->events,
                   "dry-run sample: raw log lines (rules, intel) or alert JSON lines (playbooks)");
  push->callback([&global, o] { runPush(global, *o); });

  CLI::App* versions = content->add_subcommand("versions", "List the stored versions");
  kind(versions);
  versions->add_option("--limit", o->limit, "maximum number of versions to print, 1..500")
      ->check(CLI::Range(1, 500));
  versions->add_option("--offset", o->offset, "number of versions to skip")
      ->check(CLI::NonNegativeNumber);
  versions->add_option("--sort", o->sort, "-version (newest first, the default) or version")
      ->check(CLI::IsMember({"version", "-version"}));
  versions->callback([&global, o] { runVersions(global, *o); });

  CLI::App* activations = content->add_subcommand(
      "activations", "List every push, activation and rollback, newest first");
  kind(activations);
  activations->add_option("--limit", o->limit, "maximum number of activations to print, 1..500")
      ->check(CLI::Range(1, 500));
  activations->add_option("--offset", o->offset, "number of activations to skip")
      ->check(CLI::NonNegativeNumber);
  activations->add_option("--sort", o->sort, "-seq (newest first, the default) or seq")
      ->check(CLI::IsMember({"seq", "-seq"}));
  activations->add_option("--version", o->version, "only activations of this version")
      ->check(integerAtLeast(1, "version"));
  activations->add_option("--action", o->action, "only activations of this action")
      ->check(CLI::IsMember({"activate", "rollback", "reactivate", "imported"}));
  activations->add_option("--by", o->activated_by,
                          "only activations by this principal (token subject)");
  activations->callback([&global, o] { runActivations(global, *o); });

  CLI::App* show = content->add_subcommand(
      "show", "Show one stored version: who pushed and activated it, and its files");
  kind(show);
  show->add_option("VERSION", o->version, "version to show")
      ->required()
      ->check(integerAtLeast(1, "version"));
  show->add_option("--file", o->file, "print only the text of this file of the version");
  show->callback([&global, o] { runShow(global, *o); });

  CLI::App* diff = content->add_subcommand("diff", "Show a unified diff between two versions");
  kind(diff);
  diff->add_option("VERSION", o->version, "the newer version")
      ->required()
      ->check(integerAtLeast(1, "version"));
  diff->add_option("--against", o->against, "the version to compare with (default VERSION - 1)")
      ->check(integerAtLeast(1, "version"));
  diff->callback([&global, o] { runDiff(global, *o); });

  CLI::App* activate = content->add_subcommand(
      "activate", "Activate a stored version (an older one rolls back)");
  kind(activate);
  activate->add_option("VERSION", o->version, "version to activate")
      ->required()
      ->check(integerAtLeast(1, "version"));
  activate->callback([&global, o] { runActivate(global, *o); });

  CLI::App* remove = content->add_subcommand(
      "delete",
      "Delete a tenant's rules or playbooks (--tenant), or one rule (--rule) or playbook "
      "(--playbook), as a new version that activate can roll back");
  kind(remove);
  remove->add_option("--rule", o->rule, "delete only the rule with this id (or title, for a "
                                        "rule without an id)");
  remove->add_option("--playbook", o->playbook, "delete only the playbook with this name");
  remove->callback([&global, o, remove] {
    o->item_given = remove->count("--rule") > 0 || remove->count("--playbook") > 0;
    runDelete(global, *o);
  });

  auto json = std::make_shared<bool>(false);
  CLI::App* config = app.add_subcommand("config", "Configuration of the running vigild");
  config->require_subcommand(1);
  CLI::App* reload = config->add_subcommand(
      "reload", "Re-read and validate the configuration file and apply what can change live");
  reload->add_flag("--json", *json, "print the API's JSON response");
  reload->callback([&global, json] { runConfigReload(global, *json); });
}

}  // namespace vigil::ctl
