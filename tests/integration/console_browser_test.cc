// End-to-end test of the web console: a real vigild with cases from replayed syslog, a
// headless Chromium driven over WebDriver (Debian's chromium and chromium-driver), all on
// loopback. An analyst signs in, filters the queue, pages, opens a case whose evidence
// and title carry HTML payloads, adds a note, changes status and assignee, and visits the
// approvals and metrics pages.
//
// Every step checks that the console shows and changes the same data the API reports
// (whoami, PATCH, notes, timeline, approvals, case metrics all exist in this vigild). The
// test prints which steps ran.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "daemon_process.h"
#include "webdriver.h"

#if __has_include("mgmt/auth_store.h")
#include "mgmt/auth_store.h"
#define VIGIL_CONSOLE_TEST_HAS_AUTH_STORE 1
#endif

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using nlohmann::json;

// The user name in these log lines is markup; it reaches the case title (the rule groups
// by user.name) and the raw evidence. Either would set window.vigilXss if the console
// parsed it as HTML.
constexpr char kXssUser[] =
    "<img src=x onerror=\"window.vigilXss=1\"><script>window.vigilXss=2</script>";
constexpr char kRuleBrute[] = "22222222-0000-4000-8000-000000000002";

constexpr char kRules[] = R"(title: SSH password failure
name: ssh_failed
id: 22222222-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: SSH brute force
id: 22222222-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip, user.name]
  timespan: 60s
  condition: {gte: 3}
level: high
---
title: Watchlist hit
id: 22222222-0000-4000-8000-000000000003
logsource: {category: any}
detection:
  selection:
    intel.list: watch
  condition: selection
level: medium
)";

// Each brute force waits for an analyst's approval, so the approvals page has runs to
// decide. Both branches only log, so the run needs no connector.
constexpr char kPlaybook[] = R"(name: approve-brute-force
trigger:
  rule_ids: [22222222-0000-4000-8000-000000000002]
  severity: medium
steps:
  - wait_for_approval: "Block ${alert.source.ip}?"
    timeout: 1h
    default: reject
    on_approve:
      - log: "analyst approved blocking ${alert.source.ip}"
    on_reject:
      - log: "left ${alert.source.ip} alone"
)";

// A JavaScript string literal for `text`.
std::string jsString(const std::string& text) { return json(text).dump(); }

// Returns the token the browser signs in with. With a token store in this build, it is a
// new admin token in the store that vigild opens in `state_dir`. Without one, vigild
// checks no tokens, so any text works.
std::string issueToken(const std::string& state_dir) {
#ifdef VIGIL_CONSOLE_TEST_HAS_AUTH_STORE
  auto store = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(state_dir));
  if (!store.ok()) throw std::runtime_error("cannot open the token store: " + store.status().ToString());
  mgmt::TokenRequest request;
  request.name = "console-browser-test";
  request.role = mgmt::Role::kAdmin;
  request.created_by = "console-browser-test";
  auto issued = (*store)->createToken(request);
  if (!issued.ok()) throw std::runtime_error("cannot create a token: " + issued.status().ToString());
  return issued->token;
#else
  (void)state_dir;
  return "vgl_console_browser_test";
#endif
}

// Which steps ran, and in which form, for the summary printed at the end.
class StepLog {
 public:
  void ran(const std::string& step, const std::string& how) {
    lines_.push_back("  ran     " + step + ": " + how);
  }
  std::string summary() const {
    std::string text = "console browser steps:\n";
    for (const std::string& line : lines_) text += line + "\n";
    return text;
  }

 private:
  std::vector<std::string> lines_;
};

class ConsoleBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = findInPath("chromium");
    chromedriver_ = findInPath("chromedriver");
    if (chromium_.empty() || chromedriver_.empty()) {
      GTEST_SKIP() << "the browser test needs Debian's chromium and chromium-driver packages "
                      "(chromium and chromedriver in PATH); scripts/install-deps.sh installs "
                      "them. Found chromium='"
                   << chromium_ << "' chromedriver='" << chromedriver_ << "'";
    }
    dir_ = makeTempDir("vigil-console");
    std::filesystem::create_directories(dir_ + "/state");
    std::filesystem::create_directories(dir_ + "/playbooks");
    writeFile(dir_ + "/playbooks/approve.yml", kPlaybook);
    acme_port_ = freePort(SOCK_DGRAM);
    globex_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/watch.txt", "203.0.113.66\n");
    writeFile(dir_ + "/rules.yml", kRules);
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" +
                  "sources:\n"
                  "  - {name: acme, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(acme_port_) +
                  "'}\n"
                  "  - {name: globex, type: udp, tenant: globex, listen: '127.0.0.1:" +
                  std::to_string(globex_port_) +
                  "'}\n"
                  "intel:\n  lists: [{name: watch, path: watch.txt}]\n"
                  "rules:\n  paths: [rules.yml]\n"
                  "playbooks:\n  paths: [playbooks]\n"
                  "api: {listen: '127.0.0.1:" +
                  std::to_string(api_port_) + "'}\n");
    token_ = issueToken(dir_ + "/state");
    base_ = "http://127.0.0.1:" + std::to_string(api_port_);
  }

  void TearDown() override {
    driver_.reset();
    if (daemon_) {
      EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    }
    daemon_.reset();
    if (!IsSkipped()) {
      std::cout << steps_.summary();
      RecordProperty("console_steps", steps_.summary());
    }
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
    if (HasFailure() && !dir_.empty()) std::cout << "test files kept in " << dir_ << "\n";
  }

  httplib::Client api() {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_default_headers({{"Authorization", "Bearer " + token_}});
    return client;
  }

  json getJson(const std::string& path) {
    auto res = api().Get(path);
    if (!res || res->status != 200) return nullptr;
    return json::parse(res->body, nullptr, false);
  }

  // HTTP status of GET `path`, 0 without a response.
  int getStatus(const std::string& path) {
    auto res = api().Get(path);
    return res ? res->status : 0;
  }

  void startDaemon() {
    daemon_ = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    ASSERT_TRUE(waitHealthy(api_port_)) << daemon_->log();
  }

  // Sends the events behind three cases: a brute force from 198.51.100.7 with the markup
  // user name (acme, high), a watchlisted address (acme, medium) and a brute force from
  // 192.0.2.44 (globex, high).
  void replayEvents() {
    const std::string xss_fail = std::string("<38>Oct 11 22:14:15 web1 sshd[4242]: Failed ") +
                                 "password for " + kXssUser +
                                 " from 198.51.100.7 port 40022 ssh2";
    const std::string globex_fail =
        "<38>Oct 11 22:15:15 db2 sshd[77]: Failed password for admin from 192.0.2.44 port "
        "50100 ssh2";
    for (int i = 0; i < 3; ++i) sendUdp(acme_port_, xss_fail);
    sendUdp(acme_port_,
            "<38>Oct 11 22:14:20 web1 sshd[4243]: Accepted password for bob from 203.0.113.66 "
            "port 51000 ssh2");
    for (int i = 0; i < 3; ++i) sendUdp(globex_port_, globex_fail);
  }

  // Waits until the console finished rendering `view` at least once after render number
  // `after`.
  void waitForView(const std::string& view, int after = 0) {
    const std::string condition = "document.body.dataset.view === " + jsString(view) +
                                  " && document.body.dataset.state === 'ready' && "
                                  "Number(document.body.dataset.render || 0) > " +
                                  std::to_string(after);
    ASSERT_TRUE(driver_->waitFor(condition))
        << "view " << view << " did not finish rendering; body is "
        << driver_->execute("return document.body.outerHTML.slice(0, 3000);").dump();
  }

  int renderCount() {
    return std::stoi(
        driver_->execute("return document.body.dataset.render || '0';").get<std::string>());
  }

  int countOf(const std::string& selector) {
    return driver_->execute("return document.querySelectorAll(arguments[0]).length;", {selector})
        .get<int>();
  }

  std::vector<std::string> textsOf(const std::string& selector) {
    return driver_
        ->execute("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);",
                  {selector})
        .get<std::vector<std::string>>();
  }

  // Picks `value` in the <select> matched by `selector` with a real click on the option.
  void choose(const std::string& selector, const std::string& value) {
    driver_->click(selector + " option[value=" + jsString(value) + "]");
  }

  // Submits the queue filters with the given values and waits for the new page.
  void applyQueueFilters(const std::map<std::string, std::string>& values) {
    int before = renderCount();
    for (const auto& [name, value] : values) {
      if (name == "status" || name == "severity") {
        choose("#queue-filters select[name=" + name + "]", value);
      } else {
        driver_->type("#queue-filters input[name=" + name + "]", value);
      }
    }
    driver_->click("#apply-filters");
    waitForView("cases", before);
  }

  // Reads the browser log and keeps policy violations and uncaught errors.
  void collectLogProblems() {
    for (const json& entry : driver_->browserLog()) {
      const std::string message = entry.value("message", "");
      if (message.find("Content Security Policy") != std::string::npos ||
          message.find("Uncaught") != std::string::npos ||
          message.find("TrustedHTML") != std::string::npos) {
        log_problems_.push_back(message);
      }
    }
  }

  std::string chromium_;
  std::string chromedriver_;
  std::vector<std::string> log_problems_;
  std::string dir_;
  std::string token_;
  std::string base_;
  int acme_port_ = 0;
  int globex_port_ = 0;
  int api_port_ = 0;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<WebDriver> driver_;
  StepLog steps_;
};

// An analyst signs in, works the queue and a case, and visits approvals and metrics. Case
// data with HTML in it shows up as text everywhere.
TEST_F(ConsoleBrowserTest, AnalystWorksCase) {
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  replayEvents();
  json all;
  ASSERT_TRUE(eventually([&] {
    all = getJson("/api/v1/cases?sort=id");
    return all != nullptr && all.value("total", 0) == 3;
  })) << (all == nullptr ? "no case list" : all.dump()) << daemon_->log();
  json xss_case;
  for (const json& c : all["items"]) {
    if (c["rule_id"] == kRuleBrute && c["tenant"] == "acme") xss_case = c;
  }
  ASSERT_FALSE(xss_case.is_null()) << all.dump();
  const std::string case_id = std::to_string(xss_case["id"].get<int64_t>());
  json detail = getJson("/api/v1/cases/" + case_id);
  ASSERT_FALSE(detail.is_null());
  ASSERT_NE(xss_case["title"].get<std::string>().find(kXssUser), std::string::npos)
      << "the case title should carry the markup user name: " << xss_case.dump();

  driver_ = std::make_unique<WebDriver>(chromedriver_, chromium_, dir_ + "/profile",
                                        dir_ + "/chromedriver.log");

  // --- sign in
  driver_->navigate(base_ + "/");
  waitForView("signin");
  {
    auto res = httplib::Client("127.0.0.1", api_port_)
                   .Get("/api/v1/cases?limit=1", {{"Authorization", "Bearer vgl_wrong"}});
    ASSERT_TRUE(res && res->status == 401) << "vigild should reject a wrong token";
    driver_->type("#token-input", "vgl_wrong");
    driver_->click("#signin-form button[type=submit]");
    ASSERT_TRUE(driver_->waitFor(
        "document.querySelector('#signin-message')?.textContent.includes('rejected')"));
    EXPECT_EQ(driver_->execute("return sessionStorage.length;").get<int>(), 0);
    steps_.ran("sign-in-bad-token", "a wrong token is rejected with a message");
  }
  {
    int before = renderCount();
    driver_->type("#token-input", token_);
    driver_->click("#signin-form button[type=submit]");
    waitForView("cases", before);
    EXPECT_EQ(driver_->execute("return sessionStorage.getItem('vigil.console.token');"), token_);
    EXPECT_TRUE(driver_->execute("return !document.getElementById('nav').hidden;").get<bool>());
    json who = getJson("/api/v1/whoami");
    ASSERT_FALSE(who.is_null()) << "GET /api/v1/whoami failed";
    EXPECT_EQ(who.value("subject", ""), "console-browser-test");
    EXPECT_NE(driver_->text("#identity").find("console-browser-test"), std::string::npos)
        << driver_->text("#identity");
    steps_.ran("sign-in", "token kept in sessionStorage, identity from /api/v1/whoami shown");
  }

  // --- queue, filters, paging
  {
    EXPECT_EQ(countOf("#case-table tbody tr"), 3);
    std::set<std::string> shown;
    for (const std::string& id : textsOf("#case-table tbody tr td:first-child")) shown.insert(id);
    std::set<std::string> expected;
    for (const json& c : all["items"]) expected.insert(std::to_string(c["id"].get<int64_t>()));
    EXPECT_EQ(shown, expected);
    EXPECT_EQ(driver_->text("#page-range"), "1-3 of 3");
    steps_.ran("queue", "3 cases listed, ids match the API");
  }
  {
    applyQueueFilters({{"severity", "high"}});
    EXPECT_EQ(countOf("#case-table tbody tr"), 2);
    for (const std::string& severity : textsOf("#case-table tbody td:nth-child(2)")) {
      EXPECT_EQ(severity, "high");
    }
    applyQueueFilters({{"severity", ""}, {"tenant", "globex"}});
    EXPECT_EQ(countOf("#case-table tbody tr"), 1);
    EXPECT_EQ(textsOf("#case-table tbody td:nth-child(5)"), std::vector<std::string>{"globex"});
    steps_.ran("filter", "severity=high shows 2 cases, tenant=globex shows 1");
  }
  {
    applyQueueFilters({{"tenant", ""}, {"assignee", "nobody-has-this"}});
    EXPECT_EQ(getStatus("/api/v1/cases?assignee=nobody-has-this"), 200);
    EXPECT_EQ(countOf("#queue-empty"), 1);
    steps_.ran("filter-assignee", "an unknown assignee shows the empty queue message");
    applyQueueFilters({{"assignee", ""}});
  }
  {
    int before = renderCount();
    driver_->navigate(base_ + "/#/cases?sort=id&limit=2");
    waitForView("cases", before);
    EXPECT_EQ(countOf("#case-table tbody tr"), 2);
    EXPECT_EQ(driver_->text("#page-range"), "1-2 of 3");
    EXPECT_FALSE(driver_->execute("return document.getElementById('page-next').disabled;").get<bool>());
    before = renderCount();
    driver_->click("#page-next");
    waitForView("cases", before);
    EXPECT_EQ(countOf("#case-table tbody tr"), 1);
    EXPECT_EQ(driver_->text("#page-range"), "3-3 of 3");
    EXPECT_TRUE(driver_->execute("return document.getElementById('page-next').disabled;").get<bool>());
    steps_.ran("paging", "limit=2 splits 3 cases into pages of 2 and 1");
  }

  // --- case detail with markup in the title and evidence
  {
    int before = renderCount();
    driver_->navigate(base_ + "/#/cases?sort=id");
    waitForView("cases", before);
    before = renderCount();
    driver_->click("#case-table tr[data-case-id='" + case_id + "'] td.title a");
    waitForView("case", before);
    EXPECT_EQ(driver_->execute("return document.getElementById('case-title').textContent;"),
              xss_case["title"]);
    EXPECT_EQ(countOf("#alerts tbody tr"), static_cast<int>(detail["alerts"].size()));
    std::vector<std::string> raws;
    for (const json& e : detail["evidence"]) raws.push_back(e["raw"]);
    ASSERT_EQ(raws.size(), 3u) << detail.dump();
    EXPECT_EQ(textsOf("#evidence pre.raw"), raws);
    steps_.ran("case-detail", "title, 1 alert and 3 evidence lines match the API");

    for (const std::string& raw : textsOf("#evidence pre.raw")) {
      EXPECT_NE(raw.find(kXssUser), std::string::npos) << raw;
    }
    EXPECT_EQ(countOf("main img, main script, main [onerror]"), 0);
    EXPECT_TRUE(driver_->execute("return window.vigilXss === undefined;").get<bool>());
    // The probe below makes the browser log a Trusted Types violation on purpose, so the
    // log is checked before it and the probe's entries are dropped after it.
    collectLogProblems();
    EXPECT_EQ(driver_->execute("try { document.createElement('div').innerHTML = '<b>x</b>'; "
                               "return 'assigned'; } catch (e) { return e.name; }"),
              "TypeError")
        << "Trusted Types should reject HTML strings under the console's policy";
    driver_->browserLog();
    steps_.ran("xss-as-text",
               "<img onerror>/<script> in title and evidence shown as text; no element made");
  }

  // --- timeline
  const std::string case_path = "/api/v1/cases/" + case_id;
  {
    json timeline = getJson(case_path + "/timeline");
    ASSERT_FALSE(timeline.is_null()) << "GET " << case_path << "/timeline failed";
    ASSERT_GE(timeline["items"].size(), 1u) << timeline.dump();
    EXPECT_EQ(countOf("#timeline li"), static_cast<int>(timeline["items"].size()));
    steps_.ran("timeline", std::to_string(timeline["items"].size()) + " entries shown");
  }

  // --- add a note
  {
    const std::string note = "Checked <b>web1</b> with @alice";
    driver_->type("#note-text", note);
    driver_->click("#note-add");
    ASSERT_TRUE(
        driver_->waitFor("[...document.querySelectorAll('#notes .note-text')]"
                         ".some(e => e.textContent === " +
                         jsString(note) + ")"))
        << daemon_->log();
    EXPECT_EQ(countOf("#notes b"), 0);
    json notes = getJson(case_path).value("notes", json::array());
    ASSERT_EQ(notes.size(), 1u) << notes.dump();
    EXPECT_EQ(notes[0].value("body", ""), note);
    EXPECT_EQ(notes[0].value("author", ""), "console-browser-test");
    EXPECT_EQ(notes[0]["mentions"], json({"alice"}));
    steps_.ran("add-note", "note posted, shown as text, stored by vigild with its author");
  }

  // --- change status and assignee
  {
    choose("#work-status", "in_progress");
    driver_->type("#work-assignee", "alice");
    int before = renderCount();
    driver_->click("#work-save");
    waitForView("case", before);
    EXPECT_EQ(driver_->text("#case-status"), "in progress");
    EXPECT_EQ(driver_->text("#case-assignee"), "alice");
    json changed = getJson(case_path);
    EXPECT_EQ(changed.value("status", ""), "in_progress");
    EXPECT_EQ(changed.value("assignee", ""), "alice");
    steps_.ran("change-status", "PATCH set in_progress and alice; page and API agree");

    before = renderCount();
    driver_->navigate(base_ + "/#/cases?status=in_progress");
    waitForView("cases", before);
    EXPECT_EQ(textsOf("#case-table tbody td:first-child"), std::vector<std::string>{case_id});
    EXPECT_EQ(textsOf("#case-table tbody td:nth-child(6)"), std::vector<std::string>{"alice"});
    steps_.ran("filter-status", "status=in_progress lists only the changed case");
  }

  // --- approvals: both brute forces (acme and globex) start a run that waits
  {
    json waiting_now;
    ASSERT_TRUE(eventually([&] {
      waiting_now = getJson("/api/v1/approvals");
      return waiting_now != nullptr && waiting_now.value("total", 0) == 2;
    })) << (waiting_now == nullptr ? "no approvals list" : waiting_now.dump())
        << daemon_->log();
    int before = renderCount();
    driver_->click("#nav a[data-nav=approvals]");
    waitForView("approvals", before);
    json items = waiting_now.value("items", json::array());
    EXPECT_EQ(countOf("#approvals tbody tr"), static_cast<int>(items.size()));
    before = renderCount();
    driver_->type("#approvals tbody tr:first-child input.comment", "looks right");
    driver_->click("#approvals tbody tr:first-child button.approve");
    waitForView("approvals", before);
    EXPECT_NE(driver_->text("#flash").find("approved"), std::string::npos);
    const std::string first = std::to_string(items[0]["id"].get<int64_t>());
    EXPECT_TRUE(eventually([&] {
      json run = getJson("/api/v1/runs/" + first);
      return run != nullptr && run.value("decision", "") == "approved";
    })) << getJson("/api/v1/runs/" + first).dump();
    EXPECT_EQ(getJson("/api/v1/runs/" + first).value("comment", ""), "looks right");
    EXPECT_EQ(countOf("#approvals tbody tr"), static_cast<int>(items.size()) - 1);
    steps_.ran("approvals", std::to_string(items.size()) + " waiting runs listed");
    steps_.ran("approve", "first run approved with a comment");
  }

  // --- metrics
  {
    int before = renderCount();
    driver_->click("#nav a[data-nav=metrics]");
    waitForView("metrics", before);
    json metrics = getJson("/api/v1/metrics/cases");
    ASSERT_FALSE(metrics.is_null()) << "GET /api/v1/metrics/cases failed";
    // One row per tenant: acme and globex.
    EXPECT_EQ(countOf("#metrics tbody tr"), 2);
    EXPECT_EQ(countOf("#metrics tbody tr[data-tenant='acme']"), 1);
    EXPECT_EQ(countOf("#metrics tbody tr[data-tenant='globex']"), 1);
    for (const json& group : metrics["groups"]) {
      if (group["tenant"] == "acme" && group["severity"] == "all") {
        EXPECT_EQ(textsOf("#metrics tbody tr[data-tenant='acme'] td:nth-child(2)"),
                  std::vector<std::string>{std::to_string(group["cases"].get<int>())});
      }
    }
    steps_.ran("metrics", "one MTTD/MTTA/MTTR row per tenant, case counts match the API");
  }

  // --- the page never broke its own policy or threw
  {
    collectLogProblems();
    std::string joined;
    for (const std::string& problem : log_problems_) joined += problem + "\n";
    EXPECT_TRUE(log_problems_.empty()) << joined;
    steps_.ran("browser-log", "no policy violation and no uncaught error");
  }

  // --- sign out
  {
    int before = renderCount();
    driver_->click("#signout");
    waitForView("signin", before);
    EXPECT_TRUE(driver_->execute("return sessionStorage.getItem('vigil.console.token') === null;")
                    .get<bool>());
    steps_.ran("sign-out", "token removed from sessionStorage, sign-in form shown");
  }
}

}  // namespace
}  // namespace vigil::testing
