// Content pushes against the built vigild while events flow: window state of unchanged
// rules survives a push, no alert mixes rule versions, failed pushes change nothing,
// rollback, the store winning over the configured files on restart, and configuration
// reloads with rollback. Also drives vigilctl content and config commands.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"
#include "mgmt/auth_store.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string failure(const std::string& ip) {
  return "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from " + ip +
         " port 40022 ssh2";
}

// A count of three failures, and a detection rule of its own whose title names the
// version (rules referenced by a correlation raise no alerts of their own).
std::string rules(const std::string& title) {
  return R"(title: SSH password failure
name: ssh_failed
id: ssh-failed
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: )" + title + R"(
id: ssh-failed-alert
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: SSH brute force
id: ssh-brute
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 1h
  condition: {gte: 3}
level: high
)";
}

class ContentPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-content");
    udp_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/rules.yml", rules("From file"));
    writeConfig("");
    token_ = mintAdminToken(dir_ + "/state", "content-admin");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void writeConfig(const std::string& extra) {
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" + "sources:\n  - {name: udp, type: udp, " +
                  "tenant: acme, listen: '127.0.0.1:" + std::to_string(udp_port_) + "'}\n" +
                  "rules:\n  paths: [rules.yml]\n" + "alerts: {output: alerts.jsonl}\n" +
                  "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n" + extra);
  }

  std::unique_ptr<DaemonProcess> startDaemon() {
    auto d = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    EXPECT_TRUE(waitHealthy(api_port_)) << d->log();
    return d;
  }

  httplib::Result post(const std::string& path, const nlohmann::json& body) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    client.set_read_timeout(60);
    return client.Post(path, body.dump(), "application/json");
  }
  nlohmann::json get(const std::string& path) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get(path);
    if (!res || res->status != 200) return nullptr;
    return nlohmann::json::parse(res->body);
  }
  std::string metrics() {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get("/metrics");
    return res ? res->body : "";
  }
  void waitEvents(double events) {
    ASSERT_TRUE(eventually([&] {
      return metricSum(metrics(), "vigil_pipeline_events_done_total") >= events;
    })) << metrics();
  }
  // Alerts written so far, one JSON object each.
  std::vector<nlohmann::json> alerts() {
    std::vector<nlohmann::json> out;
    std::istringstream in(readFile(dir_ + "/alerts.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  // Runs vigilctl with `args`; returns its exit status and fills `out` with stdout.
  int vigilctl(const std::string& args, std::string& out) {
    std::string command = std::string(VIGIL_BINARY_DIR) + "/mgmt/vigilctl --api http://127.0.0.1:" +
                          std::to_string(api_port_) + " --token " + token_ + " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    out.clear();
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string dir_;
  std::string token_;
  int udp_port_ = 0;
  int api_port_ = 0;
};

// Two failures before a push and one after raise the brute-force alert: the count did
// not change, so its window moved to the new engine.
TEST_F(ContentPushTest, PushKeepsWindowAndTagsVersion) {
  auto daemon = startDaemon();
  sendUdp(udp_port_, failure("198.51.100.7"));
  sendUdp(udp_port_, failure("198.51.100.7"));
  waitEvents(2);

  auto pushed = post("/api/v1/content/rules", {{"files", {{"ssh.yml", rules("Pushed v1")}}}});
  ASSERT_TRUE(pushed);
  ASSERT_EQ(pushed->status, 201) << pushed->body << daemon->log();
  EXPECT_EQ(nlohmann::json::parse(pushed->body)["version"], 1);

  sendUdp(udp_port_, failure("198.51.100.7"));
  std::vector<nlohmann::json> written;
  ASSERT_TRUE(eventually([&] {
    written = alerts();
    for (const auto& a : written) {
      if (a["rule_id"] == "ssh-brute") return true;
    }
    return false;
  })) << readFile(dir_ + "/alerts.jsonl") << daemon->log();
  for (const auto& a : written) {
    if (a["rule_id"] == "ssh-brute") {
      EXPECT_EQ(a["rules_version"], 1);
      EXPECT_EQ(a["event_count"], 3);
    }
  }
  std::string m = metrics();
  EXPECT_EQ(metricSum(m, "vigil_rules_reload_groups_total{outcome=\"kept\"}"), 1) << m;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A push with errors in two files reports both with file and line and changes nothing;
// the dry run shows alerts without activating.
TEST_F(ContentPushTest, BadPushAndDryRun) {
  auto daemon = startDaemon();
  auto bad = post("/api/v1/content/rules",
                  {{"files", {{"a.yml", "title: [unclosed\n"}, {"b.yml", "title: x\nid: y\n"}}}});
  ASSERT_TRUE(bad);
  ASSERT_EQ(bad->status, 422) << bad->body;
  nlohmann::json problems = nlohmann::json::parse(bad->body)["problems"];
  ASSERT_EQ(problems.size(), 2u) << bad->body;
  EXPECT_EQ(problems[0]["file"], "a.yml");
  EXPECT_GT(problems[0]["line"].get<int>(), 0);
  EXPECT_EQ(problems[1]["file"], "b.yml");
  EXPECT_EQ(get("/api/v1/content/rules/versions")["versions"].size(), 0u);

  auto dry = post("/api/v1/content/rules?dry_run=true",
                  {{"files", {{"ssh.yml", rules("Dry")}}},
                   {"events", {failure("192.0.2.1"), failure("192.0.2.1"), failure("192.0.2.1")}}});
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->status, 200) << dry->body;
  nlohmann::json result = nlohmann::json::parse(dry->body)["result"];
  // Three alerts of the detection rule and one of the count, raised by the third event.
  ASSERT_EQ(result["alerts"].size(), 4u) << dry->body;
  int detections = 0;
  for (const auto& a : result["alerts"]) {
    if (a["rule_id"] == "ssh-failed-alert") ++detections;
    if (a["rule_id"] == "ssh-brute") {
      EXPECT_EQ(a["event"], 2) << dry->body;
    }
  }
  EXPECT_EQ(detections, 3) << dry->body;
  EXPECT_EQ(get("/api/v1/content/rules/versions")["versions"].size(), 0u);
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// An intel dry run matches the sample against the pushed list only and leaves the live
// snapshot as it was: same generation, no sightings of the dry run's indicators, and
// live events still matched against the configured list alone.
TEST_F(ContentPushTest, IntelDryRunLeavesSnapshot) {
  writeFile(dir_ + "/watch.txt", "203.0.113.66\n");
  writeConfig("intel:\n  lists: [{name: watch, path: watch.txt}]\n");
  auto daemon = startDaemon();
  nlohmann::json before = get("/api/v1/intel/sightings");
  ASSERT_TRUE(before.is_object()) << daemon->log();

  nlohmann::json sample = {
      failure("198.51.100.23"),
      {{"raw", "<38>Oct 11 22:14:15 web1 proxy[7]: GET http://evil.example/x"}, {"tenant", "acme"}},
      failure("192.0.2.1"), failure("203.0.113.66")};
  auto dry = post("/api/v1/content/intel?dry_run=true",
                  {{"files", {{"a.txt", "198.51.100.23\n"}, {"b.txt", "# domains\nevil.example\n"}}},
                   {"events", sample}});
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->status, 200) << dry->body;
  nlohmann::json result = nlohmann::json::parse(dry->body)["result"];
  EXPECT_EQ(result["events"], 4) << dry->body;
  EXPECT_EQ(result["matched_events"], 2) << dry->body;
  EXPECT_TRUE(result["hits_overflow"].empty()) << dry->body;
  std::set<std::string> seen;
  for (const auto& m : result["matches"]) {
    EXPECT_EQ(m["feed"], "analyst") << m.dump();
    // Lines without a confidence get the builder's default of 50, which scores 50 while
    // the indicator is new.
    EXPECT_EQ(m["score"], 50) << m.dump();
    const std::string indicator = m["indicator"].get<std::string>();
    seen.insert(indicator);
    if (indicator == "198.51.100.23") {
      EXPECT_EQ(m["event"], 0) << m.dump();
      EXPECT_EQ(m["type"], "ipv4") << m.dump();
      EXPECT_EQ(m["field"], "source.ip") << m.dump();
    } else {
      EXPECT_EQ(indicator, "evil.example") << m.dump();
      EXPECT_EQ(m["event"], 1) << m.dump();
      EXPECT_EQ(m["type"], "domain") << m.dump();
    }
  }
  // 203.0.113.66 is only in the configured list, which the dry run leaves out.
  EXPECT_EQ(seen, (std::set<std::string>{"198.51.100.23", "evil.example"})) << dry->body;

  // A rejected line fails the dry run with its file and line, and nothing runs.
  auto bad = post("/api/v1/content/intel?dry_run=true",
                  {{"files", {{"a.txt", "198.51.100.23\nnot an indicator\n"}}},
                   {"events", sample}});
  ASSERT_TRUE(bad);
  ASSERT_EQ(bad->status, 422) << bad->body;
  nlohmann::json problems = nlohmann::json::parse(bad->body)["problems"];
  ASSERT_EQ(problems.size(), 1u) << bad->body;
  EXPECT_EQ(problems[0]["file"], "a.txt");
  EXPECT_EQ(problems[0]["line"], 2);

  // An entry that is neither a line nor a {"raw": ...} object is a 400 naming it.
  auto wrong = post("/api/v1/content/intel?dry_run=true",
                    {{"files", {{"a.txt", "198.51.100.23\n"}}}, {"events", {failure("192.0.2.1"), 42}}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 400) << wrong->body;
  EXPECT_NE(wrong->body.find("events[1]"), std::string::npos) << wrong->body;

  nlohmann::json after = get("/api/v1/intel/sightings");
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after["generation"], before["generation"]);
  EXPECT_TRUE(after["indicators"].empty()) << after.dump();
  EXPECT_EQ(get("/api/v1/content/intel/versions")["versions"].size(), 0u);

  // Live events: the configured indicator is sighted, the dry run's is not.
  sendUdp(udp_port_, failure("198.51.100.23"));
  sendUdp(udp_port_, failure("203.0.113.66"));
  waitEvents(2);
  nlohmann::json live = get("/api/v1/intel/sightings");
  ASSERT_TRUE(live.is_object());
  ASSERT_EQ(live["indicators"].size(), 1u) << live.dump();
  EXPECT_EQ(live["indicators"][0]["indicator"], "203.0.113.66");
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// Pushes one version after another while a sender floods failures. Every alert names the
// version whose rules raised it, and versions only grow in the order alerts are written.
TEST_F(ContentPushTest, PushesUnderLoadNeverMixVersions) {
  auto daemon = startDaemon();
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    for (int i = 0; !stop.load(); ++i) {
      sendUdp(udp_port_, failure("192.0.2." + std::to_string(i % 200)));
      if (i % 5 == 0) std::this_thread::sleep_for(milliseconds(1));
    }
  });
  // Stops the sender on every way out, so a failed assertion below fails the test
  // instead of destroying a running thread.
  auto stopSender = [&] {
    stop.store(true);
    if (sender.joinable()) sender.join();
  };
  struct Guard {
    std::function<void()> fn;
    ~Guard() { fn(); }
  } guard{stopSender};
  constexpr int kPushes = 6;
  for (int v = 1; v <= kPushes; ++v) {
    auto pushed = post("/api/v1/content/rules",
                       {{"files", {{"ssh.yml", rules("Pushed v" + std::to_string(v))}}}});
    ASSERT_TRUE(pushed);
    ASSERT_EQ(pushed->status, 201) << pushed->body;
    std::this_thread::sleep_for(milliseconds(200));
  }
  stopSender();
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  std::vector<nlohmann::json> written = alerts();
  ASSERT_GT(written.size(), 100u);
  int last = 0;
  std::set<int> versions;
  for (const auto& a : written) {
    int version = a["rules_version"].get<int>();
    ASSERT_GE(version, last) << a.dump();
    last = version;
    versions.insert(version);
    if (a["rule_id"] == "ssh-failed-alert") {
      std::string expected = version == 0 ? "From file" : "Pushed v" + std::to_string(version);
      ASSERT_EQ(a["rule_title"], expected) << a.dump();
    }
  }
  EXPECT_GE(versions.size(), 3u);
}

// Rollback, diff, the store winning over rules.yml after a restart, and vigilctl.
TEST_F(ContentPushTest, RollbackDiffRestartAndVigilctl) {
  std::filesystem::create_directories(dir_ + "/push");
  writeFile(dir_ + "/push/ssh.yml", rules("Pushed v1"));
  auto daemon = startDaemon();
  std::string out;
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/push", out), 0) << out;
  EXPECT_NE(out.find("rules version 1 (active)"), std::string::npos) << out;
  writeFile(dir_ + "/push/ssh.yml", rules("Pushed v2"));
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/push", out), 0) << out;

  writeFile(dir_ + "/bad.yml", "title: [broken\n");
  EXPECT_EQ(vigilctl("content push rules " + dir_ + "/bad.yml", out), 1) << out;
  // yaml-cpp places an unclosed flow sequence at the end of the text.
  EXPECT_NE(out.find("bad.yml:2: invalid YAML"), std::string::npos) << out;

  ASSERT_EQ(vigilctl("content diff rules 2", out), 0) << out;
  EXPECT_NE(out.find("-title: Pushed v1\n+title: Pushed v2"), std::string::npos) << out;
  ASSERT_EQ(vigilctl("content activate rules 1", out), 0) << out;
  ASSERT_EQ(vigilctl("content versions rules --json", out), 0) << out;
  nlohmann::json versions = nlohmann::json::parse(out)["versions"];
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0]["active"], false);
  EXPECT_EQ(versions[1]["active"], true);

  writeFile(dir_ + "/events.log", failure("192.0.2.5") + "\n");
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/push --dry-run --events " + dir_ +
                         "/events.log",
                     out),
            0)
      << out;
  EXPECT_NE(out.find("1 alerts from 1 events"), std::string::npos) << out;

  writeFile(dir_ + "/intel.txt", "192.0.2.5\n");
  ASSERT_EQ(vigilctl("content push intel " + dir_ + "/intel.txt --dry-run --events " + dir_ +
                         "/events.log",
                     out),
            0)
      << out;
  EXPECT_NE(out.find("1 matches in 1 of 1 events"), std::string::npos) << out;
  EXPECT_NE(out.find("event 0  ipv4  192.0.2.5  in source.ip  feed analyst"), std::string::npos)
      << out;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  // The stored active version (1) wins over rules.yml.
  daemon = startDaemon();
  sendUdp(udp_port_, failure("192.0.2.9"));
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : alerts()) {
      if (a["rule_title"] == "Pushed v1" && a["rules_version"] == 1) return true;
    }
    return false;
  })) << readFile(dir_ + "/alerts.jsonl") << daemon->log();
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// Rules pushed for a tenant run only on that tenant's events (the UDP source gives every
// event the tenant acme), next to the configured rules, and come back after a restart.
TEST_F(ContentPushTest, TenantRulesOnlyOwnEvents) {
  auto daemon = startDaemon();
  auto tenant_rule = [](const std::string& tenant) {
    return "title: Failure seen by " + tenant + "\nid: " + tenant + R"(-failure
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: medium
)";
  };
  // beta has no source, so it exists only once it is created.
  auto created = post("/api/v1/tenants", {{"name", "beta"}});
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  for (const std::string tenant : {"acme", "beta"}) {
    auto pushed = post("/api/v1/content/rules?tenant=" + tenant,
                       {{"files", {{"t.yml", tenant_rule(tenant)}}}});
    ASSERT_TRUE(pushed);
    ASSERT_EQ(pushed->status, 201) << pushed->body << daemon->log();
    EXPECT_EQ(nlohmann::json::parse(pushed->body)["tenant"], tenant);
  }
  EXPECT_EQ(get("/api/v1/content/rules/versions?tenant=acme")["versions"].size(), 1u);
  EXPECT_EQ(get("/api/v1/content/rules/versions")["versions"].size(), 0u);

  auto count = [&](const std::string& rule_id) {
    int n = 0;
    for (const auto& a : alerts()) n += a["rule_id"] == rule_id ? 1 : 0;
    return n;
  };
  sendUdp(udp_port_, failure("192.0.2.20"));
  ASSERT_TRUE(eventually([&] { return count("acme-failure") == 1; }))
      << readFile(dir_ + "/alerts.jsonl") << daemon->log();
  EXPECT_EQ(count("ssh-failed-alert"), 1) << "the configured rules still run";
  EXPECT_EQ(count("beta-failure"), 0) << readFile(dir_ + "/alerts.jsonl");
  for (const auto& a : alerts()) {
    if (a["rule_id"] != "acme-failure") continue;
    EXPECT_EQ(a["tenant"], "acme");
    EXPECT_EQ(a["rules_version"], 1);
  }
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  daemon = startDaemon();
  sendUdp(udp_port_, failure("192.0.2.21"));
  ASSERT_TRUE(eventually([&] { return count("acme-failure") == 2; }))
      << readFile(dir_ + "/alerts.jsonl") << daemon->log();
  EXPECT_EQ(count("beta-failure"), 0) << readFile(dir_ + "/alerts.jsonl");
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A tenant administrator pushes playbooks for its own tenant only (403 for another tenant
// or for every tenant). Playbooks pushed for a tenant run on that tenant's alerts only
// (the UDP source gives every event the tenant acme), a rollback swaps the version back,
// and after a restart the active versions run again.
TEST_F(ContentPushTest, TenantPlaybooksRunAndRollBack) {
  writeConfig("playbooks: {default_case: false}\n");
  std::string acme_admin;
  {
    auto auth = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(dir_ + "/state"));
    ASSERT_TRUE(auth.ok()) << auth.status();
    ASSERT_TRUE((*auth)->ensureTenant("acme").ok());
    ASSERT_TRUE((*auth)->ensureTenant("beta").ok());
    mgmt::TokenRequest request;
    request.name = "acme-admin";
    request.role = mgmt::Role::kTenantAdmin;
    request.tenants = {"acme"};
    auto issued = (*auth)->createToken(request);
    ASSERT_TRUE(issued.ok()) << issued.status();
    acme_admin = issued->token;
  }
  auto daemon = startDaemon();
  auto playbook = [](const std::string& note) {
    return "name: note-failure\ntrigger:\n  rule_ids: [ssh-failed-alert]\nsteps:\n  - log: \"" +
           note + "\"\n";
  };
  // Pushes as acme's tenant administrator; returns the HTTP status.
  auto push_as_acme = [&](const std::string& query, const std::string& note) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(acme_admin);
    nlohmann::json body = {{"files", {{"note.yml", playbook(note)}}}};
    auto res = client.Post("/api/v1/content/playbooks" + query, body.dump(), "application/json");
    return res ? res->status : 0;
  };
  EXPECT_EQ(push_as_acme("?tenant=beta", "acme's for beta"), 403);
  EXPECT_EQ(push_as_acme("", "acme's for every tenant"), 403);
  ASSERT_EQ(push_as_acme("?tenant=acme", "acme v1"), 201) << daemon->log();
  auto pushed = post("/api/v1/content/playbooks?tenant=beta",
                     {{"files", {{"note.yml", playbook("beta v1")}}}});
  ASSERT_TRUE(pushed);
  ASSERT_EQ(pushed->status, 201) << pushed->body << daemon->log();
  ASSERT_EQ(push_as_acme("?tenant=acme", "acme v2"), 201) << daemon->log();

  // The log steps of every run of playbook `name`, in run order.
  auto notes = [&](const std::string& name) {
    std::vector<std::string> out;
    nlohmann::json page = get("/api/v1/runs?limit=100&sort=id&playbook=" + name);
    if (!page.is_object()) return out;
    for (const auto& item : page["items"]) {
      nlohmann::json run = get("/api/v1/runs/" + std::to_string(item["id"].get<int64_t>()));
      if (!run.is_object()) continue;
      for (const auto& step : run["steps"]) {
        if (step["kind"] == "log") out.push_back(step["message"]);
      }
    }
    return out;
  };
  sendUdp(udp_port_, failure("192.0.2.30"));
  ASSERT_TRUE(eventually([&] { return notes("acme/note-failure").size() == 1; }))
      << daemon->log();
  EXPECT_EQ(notes("acme/note-failure"), std::vector<std::string>{"acme v2"});

  httplib::Client client("127.0.0.1", api_port_);
  client.set_bearer_token_auth(token_);
  auto rolled =
      client.Post("/api/v1/content/playbooks/versions/1/activate?tenant=acme", "", "application/json");
  ASSERT_TRUE(rolled);
  ASSERT_EQ(rolled->status, 200) << rolled->body;
  sendUdp(udp_port_, failure("192.0.2.31"));
  ASSERT_TRUE(eventually([&] { return notes("acme/note-failure").size() == 2; }))
      << daemon->log();
  EXPECT_EQ(notes("acme/note-failure"), (std::vector<std::string>{"acme v2", "acme v1"}));
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  daemon = startDaemon();
  sendUdp(udp_port_, failure("192.0.2.32"));
  ASSERT_TRUE(eventually([&] { return notes("acme/note-failure").size() == 3; }))
      << daemon->log();
  EXPECT_EQ(notes("acme/note-failure").back(), "acme v1");
  EXPECT_TRUE(notes("beta/note-failure").empty()) << "beta's playbook ran on acme's alerts";
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// vigilctl deletes one rule of a tenant, then all of them, each as a version that a
// rollback undoes; the live pipeline follows every step. The tenant's correlation counts
// the configured rule ssh-failed, which is for every tenant.
TEST_F(ContentPushTest, VigilctlDeletesTenantRules) {
  std::filesystem::create_directories(dir_ + "/acme");
  writeFile(dir_ + "/acme/a.yml", R"(title: Acme failure
id: acme-failure
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: medium
---
title: Acme pair of failures
id: acme-pair
correlation:
  type: event_count
  rules: [ssh-failed]
  group-by: [source.ip]
  timespan: 1h
  condition: {gte: 2}
level: high
)");
  auto daemon = startDaemon();
  auto count = [&](const std::string& rule_id) {
    int n = 0;
    for (const auto& a : alerts()) n += a["rule_id"] == rule_id ? 1 : 0;
    return n;
  };
  std::string out;
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/acme --tenant acme", out), 0) << out;
  sendUdp(udp_port_, failure("192.0.2.30"));
  sendUdp(udp_port_, failure("192.0.2.30"));
  ASSERT_TRUE(eventually([&] { return count("acme-pair") == 1 && count("acme-failure") == 2; }))
      << readFile(dir_ + "/alerts.jsonl") << daemon->log();

  ASSERT_EQ(vigilctl("content delete rules --tenant acme --rule acme-failure", out), 0) << out;
  EXPECT_NE(out.find("deleted rule acme-failure; activated rules version 2 (active)"),
            std::string::npos)
      << out;
  EXPECT_EQ(vigilctl("content delete rules --tenant acme --rule acme-failure", out), 1) << out;
  EXPECT_NE(out.find("acme-failure"), std::string::npos) << out;
  ASSERT_EQ(vigilctl("content delete rules --tenant acme", out), 0) << out;
  EXPECT_NE(out.find("deleted every rule; activated rules version 3"), std::string::npos) << out;
  EXPECT_EQ(vigilctl("content delete rules --tenant acme", out), 1) << out;
  EXPECT_NE(out.find("HTTP 404"), std::string::npos) << out;
  EXPECT_EQ(vigilctl("content delete rules", out), 1) << out;
  EXPECT_NE(out.find("cannot be deleted as a whole"), std::string::npos) << out;

  // Without the tenant's rules, new failures raise only the configured rules' alerts.
  sendUdp(udp_port_, failure("192.0.2.31"));
  sendUdp(udp_port_, failure("192.0.2.31"));
  ASSERT_TRUE(eventually([&] { return count("ssh-failed-alert") == 4; }))
      << readFile(dir_ + "/alerts.jsonl") << daemon->log();
  EXPECT_EQ(count("acme-pair"), 1);
  EXPECT_EQ(count("acme-failure"), 2);

  ASSERT_EQ(vigilctl("content versions rules --tenant acme --json", out), 0) << out;
  nlohmann::json versions = nlohmann::json::parse(out)["versions"];
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_EQ(versions[0]["version"], 3);
  EXPECT_EQ(versions[0]["active"], true);
  ASSERT_EQ(vigilctl("content activate rules 1 --tenant acme", out), 0) << out;
  sendUdp(udp_port_, failure("192.0.2.32"));
  sendUdp(udp_port_, failure("192.0.2.32"));
  ASSERT_TRUE(eventually([&] { return count("acme-pair") == 2 && count("acme-failure") == 4; }))
      << readFile(dir_ + "/alerts.jsonl") << daemon->log();
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// vigilctl deletes one pushed playbook of a tenant by name, then the tenant's whole set;
// the runner follows each step. A playbook pushed for every tenant runs on the same
// alerts, so its runs show that an alert went through the runner while the deleted
// playbooks stayed idle.
TEST_F(ContentPushTest, VigilctlDeletesTenantPlaybooks) {
  writeConfig("playbooks: {default_case: false}\n");
  auto playbook = [](const std::string& name) {
    return "name: " + name + "\ntrigger:\n  rule_ids: [ssh-failed-alert]\nsteps:\n  - log: \"" +
           name + "\"\n";
  };
  std::filesystem::create_directories(dir_ + "/acme-playbooks");
  writeFile(dir_ + "/acme-playbooks/note.yml", playbook("note"));
  writeFile(dir_ + "/acme-playbooks/tag.yml", playbook("tag"));
  std::filesystem::create_directories(dir_ + "/shared-playbooks");
  writeFile(dir_ + "/shared-playbooks/marker.yml", playbook("marker"));
  auto daemon = startDaemon();
  auto runs = [&](const std::string& name) {
    nlohmann::json page = get("/api/v1/runs?limit=100&playbook=" + name);
    return page.is_object() ? page["items"].size() : size_t{0};
  };
  std::string out;
  ASSERT_EQ(vigilctl("content push playbooks " + dir_ + "/acme-playbooks --tenant acme", out), 0)
      << out;
  ASSERT_EQ(vigilctl("content push playbooks " + dir_ + "/shared-playbooks", out), 0) << out;
  sendUdp(udp_port_, failure("192.0.2.40"));
  ASSERT_TRUE(eventually([&] {
    return runs("marker") == 1 && runs("acme/note") == 1 && runs("acme/tag") == 1;
  })) << daemon->log();

  EXPECT_EQ(vigilctl("content delete playbooks --tenant acme --rule note", out), 1) << out;
  EXPECT_NE(out.find("--rule deletes a rule"), std::string::npos) << out;
  // An empty name (an unset shell variable) and an empty tenant delete nothing.
  EXPECT_EQ(vigilctl("content delete playbooks --tenant acme --playbook ''", out), 1) << out;
  EXPECT_NE(out.find("--playbook '' is empty"), std::string::npos) << out;
  EXPECT_EQ(vigilctl("content delete rules --tenant acme --rule ''", out), 1) << out;
  EXPECT_NE(out.find("--rule '' is empty"), std::string::npos) << out;
  {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Delete("/api/v1/content/playbooks/items/marker?tenant=");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << res->body;
    EXPECT_NE(res->body.find("tenant name '' is invalid"), std::string::npos) << res->body;
  }
  ASSERT_EQ(vigilctl("content delete playbooks --tenant acme --playbook note", out), 0) << out;
  EXPECT_NE(out.find("deleted playbook note; activated playbooks version 2"), std::string::npos)
      << out;
  EXPECT_EQ(vigilctl("content delete playbooks --tenant acme --playbook note", out), 1) << out;
  EXPECT_NE(out.find("no active playbook is named 'note'"), std::string::npos) << out;
  sendUdp(udp_port_, failure("192.0.2.41"));
  ASSERT_TRUE(eventually([&] { return runs("marker") == 2; })) << daemon->log();
  ASSERT_TRUE(eventually([&] { return runs("acme/tag") == 2; })) << daemon->log();
  EXPECT_EQ(runs("acme/note"), 1u);

  ASSERT_EQ(vigilctl("content delete playbooks --tenant acme", out), 0) << out;
  EXPECT_NE(out.find("deleted every playbook; activated playbooks version 3"), std::string::npos)
      << out;
  EXPECT_EQ(vigilctl("content delete playbooks", out), 1) << out;
  EXPECT_NE(out.find("cannot be deleted as a whole"), std::string::npos) << out;
  sendUdp(udp_port_, failure("192.0.2.42"));
  ASSERT_TRUE(eventually([&] { return runs("marker") == 3; })) << daemon->log();
  EXPECT_EQ(runs("acme/tag"), 2u);

  // The deletion is what a restart restores.
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  daemon = startDaemon();
  sendUdp(udp_port_, failure("192.0.2.43"));
  ASSERT_TRUE(eventually([&] { return runs("marker") == 4; })) << daemon->log();
  EXPECT_EQ(runs("acme/tag"), 2u);
  EXPECT_EQ(runs("acme/note"), 1u);
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A broken configuration file keeps the running one; a valid one reports what it
// applied and what needs a restart. SIGHUP does the same as the API call.
TEST_F(ContentPushTest, ConfigReloadRollsBack) {
  auto daemon = startDaemon();
  writeFile(dir_ + "/vigil.yaml", "sources: [{name: x, type: tpc}]\n");
  auto rejected = post("/api/v1/config/reload", nlohmann::json::object());
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, 422) << rejected->body;
  EXPECT_NE(rejected->body.find("tpc"), std::string::npos) << rejected->body;

  writeFile(dir_ + "/rules.yml", rules("Reloaded"));
  // The cases and playbooks sections are read at start only, so a reload lists them.
  writeConfig(
      "pipeline: {workers: 3}\ndaemon: {log_level: debug}\n"
      "cases: {sla: {high: {acknowledge: 1h}}}\nplaybooks: {default_case: false}\n");
  std::string out;
  ASSERT_EQ(vigilctl("config reload --json", out), 0) << out;
  nlohmann::json report = nlohmann::json::parse(out);
  EXPECT_EQ(report["result"], "applied");
  EXPECT_EQ(report["applied"], nlohmann::json::array({"daemon.log_level"}));
  EXPECT_EQ(report["restart_required"],
            nlohmann::json::array({"pipeline.workers", "cases.sla", "playbooks"}));

  sendUdp(udp_port_, failure("192.0.2.9"));
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : alerts()) {
      if (a["rule_title"] == "Reloaded") return true;
    }
    return false;
  })) << readFile(dir_ + "/alerts.jsonl") << daemon->log();

  writeFile(dir_ + "/rules.yml", "title: [broken\n");
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_config_reloads_total{result=\"rejected\"}") == 2;
  })) << metrics() << daemon->log();
  EXPECT_EQ(metricSum(metrics(), "vigil_config_reloads_total{result=\"applied\"}"), 1);
  ASSERT_TRUE(daemon->running());
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// Pushes, dry runs, deletions, activations and analyst indicators must name a tenant that
// exists. Each is a 400 that names the value and how to create the tenant, and the unknown
// tenant gets no metric series.
TEST_F(ContentPushTest, UnknownTenantRejected) {
  auto daemon = startDaemon();
  httplib::Client client("127.0.0.1", api_port_);
  client.set_bearer_token_auth(token_);
  const nlohmann::json push = {{"files", {{"ssh.yml", rules("Tenant")}}}};
  const nlohmann::json dry = {{"files", {{"ssh.yml", rules("Tenant")}}},
                              {"events", {failure("192.0.2.1")}}};
  struct Call {
    std::string method;
    std::string path;
    std::string body;
  };
  const std::vector<Call> calls = {
      {"POST", "/api/v1/content/rules?tenant=nosuch3", push.dump()},
      {"POST", "/api/v1/content/rules?tenant=nosuch3&dry_run=true", dry.dump()},
      {"POST", "/api/v1/content/playbooks?tenant=nosuch3",
       nlohmann::json({{"files", {{"a.yml", "name: a\nsteps:\n  - log: x\n"}}}}).dump()},
      {"POST", "/api/v1/content/rules/versions/1/activate?tenant=nosuch3", ""},
      {"DELETE", "/api/v1/content/rules?tenant=nosuch3", ""},
      {"POST", "/api/v1/intel/indicators?tenant=nosuch3", "evil.example\n"},
      {"DELETE", "/api/v1/intel/indicators?tenant=nosuch3", "evil.example\n"},
  };
  for (const Call& call : calls) {
    const std::string type =
        call.path.find("/intel/") != std::string::npos ? "text/plain" : "application/json";
    httplib::Result res = call.method == "POST" ? client.Post(call.path, call.body, type)
                                                : client.Delete(call.path, call.body, type);
    ASSERT_TRUE(res) << call.method << " " << call.path;
    EXPECT_EQ(res->status, 400) << call.method << " " << call.path << ": " << res->body;
    EXPECT_NE(res->body.find("tenant nosuch3 does not exist"), std::string::npos)
        << call.method << " " << call.path << ": " << res->body;
    EXPECT_NE(res->body.find("POST /api/v1/tenants"), std::string::npos) << res->body;
  }
  auto malformed = post("/api/v1/content/rules?tenant=_x", push);
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400) << malformed->body;
  EXPECT_NE(malformed->body.find("'_x'"), std::string::npos) << malformed->body;
  EXPECT_EQ(metrics().find("nosuch3"), std::string::npos) << metrics();

  auto own = post("/api/v1/content/rules?tenant=acme", push);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 201) << own->body;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A rules dry run parses its sample as live ingest does. An RFC 3164 line gets the year of
// its receive time and the zone of pipeline.default_utc_offset_s, so the dry run's alert
// has the same event time as the live alert of the same line.
TEST_F(ContentPushTest, RulesDryRunParsesLikeLiveIngest) {
  writeConfig("pipeline: {default_utc_offset_s: 3600}\n");
  auto daemon = startDaemon();
  auto dry = post("/api/v1/content/rules?dry_run=true",
                  {{"files", {{"ssh.yml", rules("Dry")}}}, {"events", {failure("192.0.2.1")}}});
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->status, 200) << dry->body;
  const nlohmann::json result = nlohmann::json::parse(dry->body);
  std::string dry_time;
  for (const auto& a : result["result"]["alerts"]) {
    if (a["rule_id"] == "ssh-failed-alert") dry_time = a["first_event"].get<std::string>();
  }
  ASSERT_FALSE(dry_time.empty()) << dry->body;

  sendUdp(udp_port_, failure("192.0.2.1"));
  std::string live_time;
  ASSERT_TRUE(eventually([&] {
    for (const auto& a : alerts()) {
      if (a["rule_id"] == "ssh-failed-alert") live_time = a["first_event"].get<std::string>();
    }
    return !live_time.empty();
  })) << readFile(dir_ + "/alerts.jsonl")
      << daemon->log();
  EXPECT_EQ(dry_time, live_time);
  // 22:14:15 at UTC+01:00.
  EXPECT_NE(dry_time.find("-10-11T21:14:15"), std::string::npos) << dry_time;
  EXPECT_FALSE(dry_time.starts_with("1969") || dry_time.starts_with("1970")) << dry_time;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A playbook dry run for one tenant applies the live rule: the tenant's playbooks do not
// start on another tenant's alert, and do start on its own alert or one without a tenant.
TEST_F(ContentPushTest, PlaybookDryRunKeepsTenant) {
  auto daemon = startDaemon();
  const std::string playbook =
      "name: note\ntrigger:\n  rule_ids: [ssh-failed-alert]\nsteps:\n  - log: \"seen\"\n";
  const nlohmann::json alerts = {
      {{"rule_id", "ssh-failed-alert"}, {"level", "low"}, {"tenant", "globex"}},
      {{"rule_id", "ssh-failed-alert"}, {"level", "low"}, {"tenant", "acme"}},
      {{"rule_id", "ssh-failed-alert"}, {"level", "low"}}};
  auto dry = post("/api/v1/content/playbooks?tenant=acme&dry_run=true",
                  {{"files", {{"note.yml", playbook}}}, {"events", alerts}});
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->status, 200) << dry->body;
  nlohmann::json runs = nlohmann::json::parse(dry->body)["result"]["runs"];
  ASSERT_EQ(runs.size(), 3u) << dry->body;
  EXPECT_EQ(runs[0]["trigger_matched"], false) << dry->body;
  EXPECT_EQ(runs[0]["completed"], false) << dry->body;
  EXPECT_NE(runs[0]["message"].get<std::string>().find("tenant globex"), std::string::npos)
      << dry->body;
  EXPECT_TRUE(runs[0]["steps"].empty()) << dry->body;
  EXPECT_EQ(runs[1]["trigger_matched"], true) << dry->body;
  EXPECT_EQ(runs[2]["trigger_matched"], true) << dry->body;

  // Playbooks for every tenant run on any tenant's alert.
  auto every = post("/api/v1/content/playbooks?dry_run=true",
                    {{"files", {{"note.yml", playbook}}}, {"events", alerts}});
  ASSERT_TRUE(every);
  ASSERT_EQ(every->status, 200) << every->body;
  EXPECT_EQ(nlohmann::json::parse(every->body)["result"]["runs"][0]["trigger_matched"], true)
      << every->body;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// Content calls of an admin's token are recorded with the tenant of ?tenant=, failed ones
// too, so the tenant's administrators see them in the audit log.
TEST_F(ContentPushTest, ContentAuditNamesTenant) {
  std::string acme_admin;
  {
    auto auth = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(dir_ + "/state"));
    ASSERT_TRUE(auth.ok()) << auth.status();
    ASSERT_TRUE((*auth)->ensureTenant("acme").ok());
    mgmt::TokenRequest request;
    request.name = "acme-admin";
    request.role = mgmt::Role::kTenantAdmin;
    request.tenants = {"acme"};
    auto issued = (*auth)->createToken(request);
    ASSERT_TRUE(issued.ok()) << issued.status();
    acme_admin = issued->token;
  }
  auto daemon = startDaemon();
  httplib::Client client("127.0.0.1", api_port_);
  client.set_bearer_token_auth(token_);
  auto deleted = client.Delete("/api/v1/content/intel?tenant=acme");
  ASSERT_TRUE(deleted);
  auto pushed = post("/api/v1/content/rules?tenant=acme", {{"files", {{"ssh.yml", rules("A")}}}});
  ASSERT_TRUE(pushed);
  ASSERT_EQ(pushed->status, 201) << pushed->body;

  nlohmann::json log = get("/api/v1/audit?limit=100");
  ASSERT_TRUE(log.is_object());
  ASSERT_EQ(log["items"].size(), 2u) << log.dump();
  for (const auto& item : log["items"]) {
    EXPECT_EQ(item["tenants"], nlohmann::json::array({"acme"})) << item.dump();
  }
  httplib::Client scoped("127.0.0.1", api_port_);
  scoped.set_bearer_token_auth(acme_admin);
  auto seen = scoped.Get("/api/v1/audit?limit=100");
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->status, 200) << seen->body;
  EXPECT_EQ(nlohmann::json::parse(seen->body)["items"].size(), 2u) << seen->body;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace vigil::testing
