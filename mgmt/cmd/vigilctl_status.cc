// "vigilctl status" and the API half of "vigilctl intel": vigild's sources and uptime,
// the analyst indicator lists, indicator sightings and feed reloads.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/time.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
namespace {

using json = nlohmann::json;

struct IntelApiOptions {
  std::string tenant;              // "" for the list of every tenant
  std::vector<std::string> values; // indicators given on the command line
  std::string file;                // indicators read from a file, one per line
  bool json = false;
};

void printJson(const json& body) {
  std::cout << body.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

json orFail(absl::StatusOr<json> body) {
  if (!body.ok()) fail(body.status().message());
  return *std::move(body);
}

QueryParams tenantParams(const IntelApiOptions& o) {
  QueryParams params;
  if (!o.tenant.empty()) params.emplace_back("tenant", o.tenant);
  return params;
}

std::string scopeName(const json& body) {
  return body.contains("tenant") && body["tenant"].is_string()
             ? absl::StrCat("tenant ", field(body, "tenant"))
             : std::string("every tenant");
}

// The plain-list body of an add or remove: the values, then the lines of --file.
std::string indicatorText(const IntelApiOptions& o) {
  std::string text;
  for (const std::string& value : o.values) absl::StrAppend(&text, value, "\n");
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) fail(absl::StrCat("cannot read ", o.file, "; check the path and its permissions"));
    std::stringstream contents;
    contents << in.rdbuf();
    text += contents.str();
  }
  if (text.empty()) fail("give indicators as arguments or with --file FILE", 2);
  return text;
}

void printRejections(const json& body) {
  for (const json& r : body.value("rejections", json::array())) {
    std::cerr << field(r, "location") << ": " << field(r, "reason") << ": " << field(r, "text")
              << "\n";
  }
}

void showStatus(const GlobalOptions& global, bool as_json) {
  json body = orFail(getJson(global.api_url, "/api/v1/status"));
  if (as_json) return printJson(body);
  std::cout << "vigild " << field(body, "version") << ", up " << field(body, "uptime_s")
            << " s, replay " << (body.value("replay_done", false) ? "done" : "running") << "\n";
  std::vector<std::vector<std::string>> rows = {{"SOURCE", "TYPE", "TENANT", "QUEUED", "STATE"}};
  for (const json& s : body.value("sources", json::array())) {
    rows.push_back({field(s, "name"), field(s, "type"), field(s, "tenant"), field(s, "queued"),
                    s.value("finished", false) ? "finished" : "running"});
  }
  printTable(rows, "  ");
}

void listIndicators(const GlobalOptions& global, const IntelApiOptions& o) {
  json body = orFail(getJson(global.api_url, "/api/v1/intel/indicators", tenantParams(o)));
  if (o.json) return printJson(body);
  for (const json& value : body.value("indicators", json::array())) {
    std::cout << printable(value.get<std::string>()) << "\n";
  }
  std::cout << field(body, "total") << " analyst indicators of " << scopeName(body) << "\n";
}

void changeIndicators(const GlobalOptions& global, const IntelApiOptions& o, bool add) {
  json body = orFail(sendJson(global.api_url, add ? "POST" : "DELETE",
                              "/api/v1/intel/indicators", tenantParams(o), indicatorText(o),
                              "text/plain"));
  if (o.json) return printJson(body);
  printRejections(body);
  if (add) {
    std::cout << "added " << field(body, "loaded") << " indicators to the analyst list of "
              << scopeName(body) << " (" << field(body, "duplicates") << " duplicates, "
              << field(body, "rejected") << " rejected)\n";
    return;
  }
  const json removed = body.value("removed", json::array());
  const json not_found = body.value("not_found", json::array());
  std::cout << "removed " << removed.size() << " indicators from the analyst list of "
            << scopeName(body) << " (" << not_found.size() << " not found, "
            << field(body, "rejected") << " rejected)\n";
  for (const json& value : not_found) {
    std::cout << "  not found  " << printable(value.get<std::string>()) << "\n";
  }
}

void listSightings(const GlobalOptions& global, const IntelApiOptions& o) {
  json body = orFail(getJson(global.api_url, "/api/v1/intel/sightings", tenantParams(o)));
  if (o.json) return printJson(body);
  std::vector<std::vector<std::string>> rows = {
      {"INDICATOR", "TYPE", "TENANT", "LISTS", "SCORE", "HITS", "LAST HIT"}};
  for (const json& s : body.value("indicators", json::array())) {
    std::vector<std::string> lists;
    for (const json& list : s.value("lists", json::array())) {
      lists.push_back(printable(list.get<std::string>()));
    }
    const int64_t last_hit_ns = s.value("last_hit_ns", int64_t{0});
    rows.push_back({field(s, "indicator"), field(s, "type"),
                    s.contains("tenant") && s["tenant"].is_string() ? field(s, "tenant") : "*",
                    lists.empty() ? "-" : absl::StrJoin(lists, ","), field(s, "score"),
                    field(s, "hits"), last_hit_ns == 0 ? "-" : formatRfc3339(last_hit_ns)});
  }
  printTable(rows, "");
  std::cout << rows.size() - 1 << " indicators with hits in snapshot generation "
            << field(body, "generation") << "\n";
}

void requestReload(const GlobalOptions& global, bool as_json) {
  json body = orFail(
      sendJson(global.api_url, "POST", "/api/v1/intel/reload", QueryParams{}, "", "text/plain"));
  if (as_json) return printJson(body);
  std::cout << "intel reload requested; vigild rebuilds every feed in the background\n";
}

void addScopeOptions(CLI::App* command, IntelApiOptions& o) {
  command->add_option("--tenant", o.tenant,
                      "the analyst list of this tenant (default: the list of every tenant)");
  command->add_flag("--json", o.json, "print the API's JSON");
}

}  // namespace

void registerStatusCommands(CLI::App& app, const GlobalOptions& global) {
  auto status_json = std::make_shared<bool>(false);
  CLI::App* status =
      app.add_subcommand("status", "show vigild's version, uptime and sources (admin token)");
  status->add_flag("--json", *status_json, "print the API's JSON");
  status->callback([&global, status_json] { showStatus(global, *status_json); });

  // "intel" itself is registered by registerIntelCommands (vigilctl_intel.cc).
  CLI::App* intel = app.get_subcommand("intel");

  CLI::App* indicators = intel->add_subcommand(
      "indicators", "list, add or remove the analyst indicators of a running vigild");
  indicators->require_subcommand(1);
  auto list = std::make_shared<IntelApiOptions>();
  CLI::App* l = indicators->add_subcommand("list", "print the analyst list");
  addScopeOptions(l, *list);
  l->callback([&global, list] { listIndicators(global, *list); });
  for (bool add : {true, false}) {
    auto o = std::make_shared<IntelApiOptions>();
    CLI::App* command = indicators->add_subcommand(
        add ? "add" : "remove",
        add ? "add indicators to the analyst list; vigild matches them at once"
            : "remove indicators from the analyst list (compared after normalization)");
    command->add_option("VALUE", o->values, "indicators: IP addresses, CIDRs, domains, URLs, hashes");
    command->add_option("--file", o->file, "read indicators from this file, one per line");
    addScopeOptions(command, *o);
    command->callback([&global, o, add] { changeIndicators(global, *o, add); });
  }

  auto sightings = std::make_shared<IntelApiOptions>();
  CLI::App* s = intel->add_subcommand(
      "sightings", "print the indicators that matched events, most hits first");
  s->add_option("--tenant", sightings->tenant, "only the indicators of this tenant");
  s->add_flag("--json", sightings->json, "print the API's JSON");
  s->callback([&global, sightings] { listSightings(global, *sightings); });

  auto reload_json = std::make_shared<bool>(false);
  CLI::App* reload =
      intel->add_subcommand("reload", "make vigild rebuild every intel feed now (admin token)");
  reload->add_flag("--json", *reload_json, "print the API's JSON");
  reload->callback([&global, reload_json] { requestReload(global, *reload_json); });
}

}  // namespace vigil::ctl
