// End-to-end tests of the built vigild: real listeners on loopback, real rules and
// indicators, the case store and the REST API.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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

bool sendTcp(int port, const std::string& stream) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return false;
  }
  size_t sent = 0;
  while (sent < stream.size()) {
    ssize_t n = send(fd, stream.data() + sent, stream.size() - sent, 0);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  close(fd);
  return sent == stream.size();
}

// Reads the number after `label` in a vigild summary file, or -1 when the label is absent.
long summaryValue(const std::string& summary, const std::string& label) {
  size_t at = summary.find("  " + label + " ");
  if (at == std::string::npos) return -1L;
  std::string digits;
  for (size_t i = at + label.size() + 2; i < summary.size() && summary[i] != '\n'; ++i) {
    if (summary[i] >= '0' && summary[i] <= '9') digits.push_back(summary[i]);
  }
  return digits.empty() ? -1L : std::stol(digits);
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-it");
    udp_port_ = freePort(SOCK_DGRAM);
    tcp_port_ = freePort(SOCK_STREAM);
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/watch.txt",
              "# test indicators\n203.0.113.66\nevil.example\nnot an indicator\n");
    writeFile(dir_ + "/rules.yml", R"(title: SSH password failure
name: ssh_failed
id: 11111111-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: SSH brute force
id: 11111111-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3}
level: high
---
title: Watchlist hit
id: 11111111-0000-4000-8000-000000000003
logsource: {category: any}
detection:
  selection:
    intel.list: watch
  condition: selection
level: medium
)");
    writeFile(dir_ + "/vigil.yaml", "state_dir: " + dir_ + "/state\n" +
                                        "sources:\n"
                                        "  - {name: udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                                        std::to_string(udp_port_) +
                                        "'}\n"
                                        "  - {name: tcp, type: tcp, tenant: acme, listen: '127.0.0.1:" +
                                        std::to_string(tcp_port_) +
                                        "', max_message_bytes: 512}\n"
                                        "intel:\n  lists: [{name: watch, path: watch.txt}]\n"
                                        "rules:\n  paths: [rules.yml]\n"
                                        "alerts: {output: alerts.jsonl}\n"
                                        "api: {listen: '127.0.0.1:" +
                                        std::to_string(api_port_) + "'}\n");
    mintAdminToken();
  }

  // Writes an admin token into <dir_>/state/auth.db, as 'vigilctl tokens bootstrap' does.
  void mintAdminToken() {
    std::filesystem::create_directories(dir_ + "/state");
    auto auth = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(dir_ + "/state"));
    ASSERT_TRUE(auth.ok()) << auth.status();
    mgmt::TokenRequest admin;
    admin.name = "integration-admin";
    admin.role = mgmt::Role::kAdmin;
    auto issued = (*auth)->createToken(admin);
    ASSERT_TRUE(issued.ok()) << issued.status();
    token_ = issued->token;
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DaemonProcess> startDaemon() {
    auto d = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    bool up = eventually([&] {
      auto res = client.Get("/healthz");
      return res && res->status == 200;
    });
    EXPECT_TRUE(up) << d->log();
    return d;
  }

  nlohmann::json getJson(const std::string& path) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get(path.c_str());
    if (!res || res->status != 200) return nullptr;
    return nlohmann::json::parse(res->body);
  }

  std::string metrics() {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get("/metrics");
    return res ? res->body : "";
  }

  // Starts vigild on `config` with a summary file, sends 20,000 lines over TCP and sends
  // SIGTERM once the source has read at least 1,000 of them, so the rings are likely not
  // empty when the daemon stops.
  void stopDuringBurst(const std::string& config) {
    DaemonProcess daemon({"--config", config, "--summary-file", dir_ + "/summary.txt"},
                         dir_ + "/vigild.log");
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    ASSERT_TRUE(waitHealthy(api_port_)) << daemon.log();
    std::string burst;
    for (int i = 0; i < 20000; ++i) {
      burst += "<13>Oct 11 22:14:15 host app: message " + std::to_string(i) + "\n";
    }
    ASSERT_TRUE(sendTcp(tcp_port_, burst));
    ASSERT_TRUE(eventually(
        [&] { return metricSum(metrics(), "vigil_source_received_total") >= 1000; }))
        << metrics();
    EXPECT_EQ(daemon.stop(), 0) << daemon.log();
  }

  std::string dir_;
  std::string token_;  // admin token minted in <dir_>/state/auth.db before vigild starts
  int udp_port_ = 0;
  int tcp_port_ = 0;
  int api_port_ = 0;
};

// Failed sshd logins over UDP and TCP raise the brute-force alert, open one case that the
// API serves with its evidence, and every event shows up in the counters.
TEST_F(DaemonTest, SyslogOverUdpAndTcpOpensCase) {
  auto daemon = startDaemon();
  ASSERT_TRUE(daemon->running());

  const std::string fail =
      "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100.7 "
      "port 40022 ssh2";
  sendUdp(udp_port_, fail);
  sendUdp(udp_port_, fail);
  // The third failure arrives over TCP with octet counting, then a watchlisted address
  // over LF framing, then a line the parser cannot read.
  std::string framed = std::to_string(fail.size()) + " " + fail;
  ASSERT_TRUE(sendTcp(tcp_port_, framed));
  ASSERT_TRUE(sendTcp(tcp_port_,
                      "<38>Oct 11 22:14:20 web1 sshd[4243]: Accepted password for bob from "
                      "203.0.113.66 port 51000 ssh2\n\x01\x02 garbage\n"));

  nlohmann::json cases;
  ASSERT_TRUE(eventually([&] {
    cases = getJson("/api/v1/cases?tenant=acme");
    return cases != nullptr && cases["total"] == 2;
  })) << cases.dump() << daemon->log();

  nlohmann::json brute;
  for (const auto& c : cases["items"]) {
    if (c["rule_id"] == "11111111-0000-4000-8000-000000000002") brute = c;
  }
  ASSERT_FALSE(brute.is_null()) << cases.dump();
  EXPECT_EQ(brute["severity"], "high");
  EXPECT_EQ(brute["status"], "new");
  EXPECT_EQ(brute["tenant"], "acme");
  EXPECT_EQ(brute["group"]["source.ip"], "198.51.100.7");

  nlohmann::json detail = getJson("/api/v1/cases/" + std::to_string(brute["id"].get<int64_t>()));
  ASSERT_FALSE(detail.is_null());
  ASSERT_EQ(detail["alerts"].size(), 1u) << detail.dump();
  EXPECT_EQ(detail["alerts"][0]["event_count"], 3);
  ASSERT_EQ(detail["evidence"].size(), 3u) << detail.dump();
  EXPECT_NE(detail["evidence"][0]["raw"].get<std::string>().find("Failed password"),
            std::string::npos);

  std::string m = metrics();
  EXPECT_EQ(metricSum(m, "vigil_source_received_total"), 5) << m;
  EXPECT_EQ(metricSum(m, "vigil_events_parsed_total") + metricSum(m, "vigil_parse_errors_total"),
            5);
  EXPECT_EQ(metricSum(m, "vigil_parse_errors_total"), 1);
  EXPECT_EQ(metricSum(m, "vigil_indicator_hits_total"), 1);
  EXPECT_EQ(metricSum(m, "vigil_alerts_delivered_total"), 2);
  EXPECT_EQ(metricSum(m, "vigil_cases_opened_total"), 2);
  EXPECT_EQ(metricSum(m, "vigil_source_dropped_total"), 0);

  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  std::string alerts = readFile(dir_ + "/alerts.jsonl");
  EXPECT_NE(alerts.find("SSH brute force"), std::string::npos) << alerts;
}

// SIGHUP rebuilds the indicator snapshot from the changed list, analyst indicators go
// live through the API at once, and the sightings dump counts their hits.
TEST_F(DaemonTest, SighupAndAnalystIndicators) {
  auto daemon = startDaemon();
  ASSERT_TRUE(daemon->running());
  writeFile(dir_ + "/watch.txt", "198.51.100.99\n");
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_intel_snapshot_generation") == 2;
  })) << daemon->log();
  EXPECT_NE(daemon->log().find("indicator snapshot published generation=2 reason=SIGHUP"),
            std::string::npos)
      << daemon->log();

  httplib::Client client("127.0.0.1", api_port_);
  client.set_bearer_token_auth(token_);
  auto added = client.Post("/api/v1/intel/indicators", "analyst.example\n", "text/plain");
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 200) << added->body;
  EXPECT_EQ(nlohmann::json::parse(added->body)["loaded"], 1);

  sendUdp(udp_port_, "<38>Oct 11 22:14:20 web1 sshd[4243]: Accepted password for bob from "
                     "198.51.100.99 port 51000 ssh2");
  sendUdp(udp_port_, "<38>Oct 11 22:14:21 web1 app: lookup analyst.example from "
                     "203.0.113.66");
  nlohmann::json sightings;
  ASSERT_TRUE(eventually([&] {
    sightings = getJson("/api/v1/intel/sightings");
    return sightings != nullptr && sightings["indicators"].size() == 2;
  })) << sightings.dump() << daemon->log();
  std::set<std::string> seen;
  for (const auto& indicator : sightings["indicators"]) {
    seen.insert(indicator["indicator"].get<std::string>());
    EXPECT_EQ(indicator["hits"], 1);
    EXPECT_GT(indicator["last_hit_ns"].get<int64_t>(), 0);
  }
  // 203.0.113.66 left the list with the rebuild, so it gives no hit.
  EXPECT_EQ(seen, (std::set<std::string>{"198.51.100.99", "analyst.example"}));
  EXPECT_EQ(metricSum(metrics(), "vigil_intel_reloads_total"), 2);
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// Counts the occurrences of `text` in `log`.
size_t countOccurrences(const std::string& log, const std::string& text) {
  size_t count = 0;
  for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++count;
  return count;
}

// A reload logs the reasons of rejections the list's previous load did not have, and
// counts the ones it had instead of logging them again.
TEST_F(DaemonTest, SighupLogsNewRejectionReasons) {
  auto daemon = startDaemon();
  ASSERT_TRUE(daemon->running());
  const std::string rejected = "indicator rejected list=watch at=";
  EXPECT_EQ(countOccurrences(daemon->log(), rejected), 1u) << daemon->log();
  writeFile(dir_ + "/watch.txt",
            "# test indicators\n203.0.113.66\nevil.example\nnot an indicator\n10.0.0.0/3\n");
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_intel_snapshot_generation") == 2;
  })) << daemon->log();
  std::string log = daemon->log();
  EXPECT_EQ(countOccurrences(log, rejected), 2u) << log;
  EXPECT_NE(log.find("/watch.txt:5 reason=\"over-broad CIDR"), std::string::npos) << log;
  EXPECT_NE(log.find("10.0.0.0/3"), std::string::npos) << log;
  EXPECT_NE(log.find("indicator rejections as in the previous load, not logged again list=watch "
                     "count=1"),
            std::string::npos)
      << log;
  // Unchanged, nothing is logged again.
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_intel_snapshot_generation") == 3;
  })) << daemon->log();
  EXPECT_EQ(countOccurrences(daemon->log(), rejected), 2u) << daemon->log();

  // Past the limit of 20 per load, rejections are counted; the next reload logs them.
  std::string list =
      "# test indicators\n203.0.113.66\nevil.example\nnot an indicator\n10.0.0.0/3\n";
  for (int i = 0; i < 24; ++i) list += "bad line " + std::to_string(i) + "\n";
  writeFile(dir_ + "/watch.txt", list);
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_intel_snapshot_generation") == 4;
  })) << daemon->log();
  log = daemon->log();
  EXPECT_EQ(countOccurrences(log, rejected), 22u) << log;
  EXPECT_NE(log.find("indicator rejections not logged list=watch count=4"), std::string::npos)
      << log;
  daemon->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_intel_snapshot_generation") == 5;
  })) << daemon->log();
  log = daemon->log();
  EXPECT_EQ(countOccurrences(log, rejected), 26u) << log;
  EXPECT_NE(log.find("not logged again list=watch count=22"), std::string::npos) << log;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// Every reload result is on /metrics at 0 before the first reload, so that
// increase(...{result="rejected"}) also fires on the first rejected reload.
TEST_F(DaemonTest, ReloadCountersExportedAtZero) {
  auto daemon = startDaemon();
  const std::string text = metrics();
  for (const std::string line : {"vigil_config_reloads_total{result=\"applied\"} 0",
                                 "vigil_config_reloads_total{result=\"rejected\"} 0",
                                 "vigil_rules_reloads_total{result=\"ok\"} 0",
                                 "vigil_rules_reloads_total{result=\"failed\"} 0"}) {
    EXPECT_NE(text.find("\n" + line + "\n"), std::string::npos) << line << "\n" << text;
  }
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// With the API turned off, the exit summary names the files only.
TEST_F(DaemonTest, SummaryWithoutApi) {
  writeFile(dir_ + "/one.log", "<13>Oct 11 22:14:15 host app: hello\n");
  writeFile(dir_ + "/noapi.yaml", "state_dir: " + dir_ + "/state\n" +
                                      "sources:\n  - {name: replay, type: file, paths: [" + dir_ +
                                      "/one.log]}\n"
                                      "alerts: {output: " + dir_ + "/alerts.jsonl}\n"
                                      "api: {enabled: false}\n");
  DaemonProcess d({"--config", dir_ + "/noapi.yaml", "--exit-when-done", "--summary-file",
                   dir_ + "/summary.txt"},
                  dir_ + "/vigild.log");
  ASSERT_EQ(d.waitExit(std::chrono::seconds(60)), 0) << d.log();
  const std::string summary = readFile(dir_ + "/summary.txt");
  EXPECT_NE(summary.find("Where to look:\n"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("API"), std::string::npos) << summary;
  EXPECT_NE(summary.find("alerts     " + dir_ + "/alerts.jsonl"), std::string::npos) << summary;
}

// Cases survive a restart of the daemon: the store is reopened, not recreated.
// With alerts on stdout, stdout carries JSON lines only; the run summary goes to stderr.
TEST_F(DaemonTest, AlertsOnStdoutStayJsonLines) {
  std::string lines;
  for (int i = 0; i < 3; ++i) {
    lines += "<38>Oct 11 22:14:1" + std::to_string(i) +
             " bastion sshd[4242]: Failed password for root from 198.51.100.7 port 5000" +
             std::to_string(i) + " ssh2\n";
  }
  writeFile(dir_ + "/ssh.log", lines);
  writeFile(dir_ + "/stdout.yaml", "state_dir: " + dir_ + "/state\n"
                                   "sources:\n  - {name: replay, type: file, paths: [ssh.log]}\n"
                                   "rules:\n  paths: [rules.yml]\n"
                                   "alerts: {output: stdout}\n"
                                   "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n");
  DaemonProcess daemon({"--config", dir_ + "/stdout.yaml", "--exit-when-done"},
                       dir_ + "/vigild.log", dir_ + "/stdout.txt");
  ASSERT_EQ(daemon.waitExit(std::chrono::seconds(60)), 0) << daemon.log();
  const std::string out = readFile(dir_ + "/stdout.txt");
  std::istringstream stream(out);
  std::string line;
  int alerts = 0;
  while (std::getline(stream, line)) {
    ASSERT_TRUE(nlohmann::json::accept(line)) << "not a JSON line on stdout: " << line;
    ++alerts;
  }
  EXPECT_GE(alerts, 1) << out;
  EXPECT_THAT(daemon.log(), ::testing::HasSubstr("Vigil summary"));
}

TEST_F(DaemonTest, CasesSurviveRestart) {
  {
    auto daemon = startDaemon();
    sendUdp(udp_port_, "<38>Oct 11 22:14:20 web1 sshd[1]: Accepted password for bob from "
                       "203.0.113.66 port 51000 ssh2");
    ASSERT_TRUE(eventually([&] {
      auto c = getJson("/api/v1/cases");
      return c != nullptr && c["total"] == 1;
    })) << daemon->log();
    EXPECT_EQ(daemon->stop(), 0);
  }
  auto daemon = startDaemon();
  auto c = getJson("/api/v1/cases");
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(c["total"], 1);
}

// An oversize TCP message becomes one truncated event, not several.
TEST_F(DaemonTest, OversizeMessageIsTruncatedNotSplit) {
  auto daemon = startDaemon();
  std::string big = "<13>Oct 11 22:14:15 host app: " + std::string(2000, 'x') + "\n";
  ASSERT_TRUE(sendTcp(tcp_port_, big + "<13>Oct 11 22:14:16 host app: after\n"));
  ASSERT_TRUE(eventually([&] {
    return metricSum(metrics(), "vigil_source_received_total") == 2;
  })) << metrics();
  std::string m = metrics();
  EXPECT_EQ(metricSum(m, "vigil_source_truncated_total"), 1);
  ASSERT_TRUE(eventually([&] { return metricSum(metrics(), "vigil_events_truncated_total") == 1; }));
}

// SIGTERM while messages wait in the source rings: the daemon finishes them before it
// exits, so every message it read is parsed or kept as a parse error.
TEST_F(DaemonTest, StopFinishesQueuedMessages) {
  ASSERT_NO_FATAL_FAILURE(stopDuringBurst(dir_ + "/vigil.yaml"));

  std::string summary = readFile(dir_ + "/summary.txt");
  long read = summaryValue(summary, "events read");
  EXPECT_GE(read, 1000) << summary;
  EXPECT_EQ(read, summaryValue(summary, "parsed") + summaryValue(summary, "parse errors (kept)"))
      << summary;
  EXPECT_EQ(summaryValue(summary, "left at shutdown"), 0) << summary;
}

// SIGTERM while the TCP source has more received lines than its ring holds: the source
// stops reading, waits for ring slots within daemon.drain_timeout_s, and the pipeline
// finishes them, so no line is dropped at the source or left at shutdown.
TEST_F(DaemonTest, StopDrainsReceivedTcpLines) {
  std::string text = readFile(dir_ + "/vigil.yaml");
  const std::string from = "max_message_bytes: 512}";
  text.replace(text.find(from), from.size(), "max_message_bytes: 512, ring_capacity: 16}");
  writeFile(dir_ + "/smallring.yaml", text + "daemon: {drain_timeout_s: 30}\n");
  ASSERT_NO_FATAL_FAILURE(stopDuringBurst(dir_ + "/smallring.yaml"));

  std::string summary = readFile(dir_ + "/summary.txt");
  const long read = summaryValue(summary, "events read");
  EXPECT_GE(read, 1000) << summary;
  EXPECT_EQ(summaryValue(summary, "dropped at sources"), 0) << summary;
  EXPECT_EQ(summaryValue(summary, "left at shutdown"), 0) << summary;
  EXPECT_EQ(read, summaryValue(summary, "parsed") + summaryValue(summary, "parse errors (kept)"))
      << summary;
}

// With no drain time, what the pipeline did not reach is counted once, as left at
// shutdown, and not a second time as a source drop, so read = parsed + errors + left.
TEST_F(DaemonTest, StopWithoutDrainCountsLeftOnce) {
  writeFile(dir_ + "/nodrain.yaml",
            readFile(dir_ + "/vigil.yaml") + "daemon: {drain_timeout_s: 0}\n");
  ASSERT_NO_FATAL_FAILURE(stopDuringBurst(dir_ + "/nodrain.yaml"));

  std::string summary = readFile(dir_ + "/summary.txt");
  const long read = summaryValue(summary, "events read");
  const long left = summaryValue(summary, "left at shutdown");
  EXPECT_GE(read, 1000) << summary;
  EXPECT_GE(left, 0) << summary;
  EXPECT_EQ(read, summaryValue(summary, "parsed") + summaryValue(summary, "parse errors (kept)") +
                      left)
      << summary;
  // The source may also drop lines it read but could not publish, as shutdown. Those
  // were never received, so read + dropped stays within what was sent.
  EXPECT_LE(read + summaryValue(summary, "dropped at sources"), 20000) << summary;
}

// A second vigild on the same state_dir exits with status 2 before it opens any database,
// naming the running one's pid, while --check-config still works next to it.
TEST_F(DaemonTest, SecondDaemonOnStateDirRejected) {
  auto first = startDaemon();
  ASSERT_TRUE(first->running()) << first->log();

  DaemonProcess second({"--config", dir_ + "/vigil.yaml"}, dir_ + "/second.log");
  EXPECT_EQ(second.waitExit(seconds(20)), 2) << second.log();
  const std::string lock_pid = readFile(dir_ + "/state/vigild.lock");
  ASSERT_FALSE(lock_pid.empty());
  EXPECT_NE(second.log().find("state folder " + dir_ + "/state is in use by vigild pid " +
                              lock_pid.substr(0, lock_pid.find('\n')) +
                              "; stop it or use another state_dir"),
            std::string::npos)
      << second.log();

  DaemonProcess check({"--check-config", "--config", dir_ + "/vigil.yaml"}, dir_ + "/check.log");
  EXPECT_EQ(check.waitExit(seconds(20)), 0) << check.log();

  EXPECT_TRUE(first->running()) << first->log();
  EXPECT_EQ(first->stop(), 0) << first->log();
  // The lock goes with the process, so the next vigild starts.
  auto next = startDaemon();
  EXPECT_TRUE(next->running()) << next->log();
  EXPECT_EQ(next->stop(), 0) << next->log();
}

// A malformed config names the key and value, exits with status 2, and opens no listener.
TEST_F(DaemonTest, BadConfigExitsBeforeListening) {
  // SetUp minted a token into state/; start without it to see that vigild creates nothing.
  std::filesystem::remove_all(dir_ + "/state");
  writeFile(dir_ + "/bad.yaml", "sources:\n  - {name: u, type: udp, listen: '127.0.0.1:" +
                                    std::to_string(udp_port_) +
                                    "'}\n  - {name: t, type: tcp, framing: newline}\n"
                                    "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n");
  DaemonProcess d({"--config", dir_ + "/bad.yaml"}, dir_ + "/bad.log");
  EXPECT_EQ(d.waitExit(seconds(10)), 2);
  EXPECT_NE(d.log().find("sources[1].framing: 'newline' is not one of auto, lf, octet_counting"),
            std::string::npos)
      << d.log();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state"));
}

// A mistyped --log-level is rejected: spdlog would read an unknown level as "off" and
// hide every later error, including the one that explains a failed start.
TEST_F(DaemonTest, UnknownLogLevelRejected) {
  DaemonProcess d({"--config", dir_ + "/vigil.yaml", "--log-level", "bogus"}, dir_ + "/bad.log");
  const int status = d.waitExit(seconds(10));
  EXPECT_NE(status, 0);
  EXPECT_NE(status, -1);
  EXPECT_NE(d.log().find("--log-level: bogus not in {trace,debug,info,warn,error,critical}"),
            std::string::npos)
      << d.log();
}

// Writes a copy of vigil.yaml whose rules.paths is `rule_path` and returns its path.
std::string configWithRulePath(const std::string& dir, const std::string& rule_path) {
  std::string text = readFile(dir + "/vigil.yaml");
  const std::string from = "paths: [rules.yml]";
  text.replace(text.find(from), from.size(), "paths: [" + rule_path + "]");
  writeFile(dir + "/rules-folder.yaml", text);
  return dir + "/rules-folder.yaml";
}

// A rules folder is searched below its sub-folders too, as SigmaHQ nests its rules.
TEST_F(DaemonTest, RuleFolderSearchedRecursively) {
  std::filesystem::create_directories(dir_ + "/rules/linux/sshd");
  std::filesystem::copy_file(dir_ + "/rules.yml", dir_ + "/rules/linux/sshd/ssh.yml");
  DaemonProcess d({"--check-config", "--config", configWithRulePath(dir_, "rules")},
                  dir_ + "/check.log");
  EXPECT_EQ(d.waitExit(seconds(20)), 0) << d.log();
  EXPECT_NE(d.log().find("files=1 detections=2 correlations=1"), std::string::npos) << d.log();
}

// A rules folder without any rule file is a configuration error, not zero rules.
TEST_F(DaemonTest, EmptyRuleFolderRejected) {
  std::filesystem::create_directories(dir_ + "/empty/sub");
  DaemonProcess d({"--check-config", "--config", configWithRulePath(dir_, "empty")},
                  dir_ + "/check.log");
  EXPECT_EQ(d.waitExit(seconds(20)), 2) << d.log();
  EXPECT_NE(d.log().find("contains no *.yml or *.yaml file"), std::string::npos) << d.log();
}

// A file source whose file is missing fails --check-config with the path named.
TEST_F(DaemonTest, MissingReplayFileRejectedByCheck) {
  writeFile(dir_ + "/replay.yaml",
            "sources:\n  - {name: replay, type: file, paths: [nowhere.log]}\n");
  DaemonProcess d({"--check-config", "--config", dir_ + "/replay.yaml"}, dir_ + "/check.log");
  EXPECT_EQ(d.waitExit(seconds(20)), 2) << d.log();
  EXPECT_NE(d.log().find("nowhere.log"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("No such file"), std::string::npos) << d.log();
}

// A rule file that does not parse stops the daemon before any listener opens.
TEST_F(DaemonTest, BadRuleFileExitsBeforeListening) {
  writeFile(dir_ + "/rules.yml", "title: broken\ndetection:\n  sel: {a: 1}\n  condition: sel and\n");
  DaemonProcess d({"--config", dir_ + "/vigil.yaml"}, dir_ + "/bad.log");
  EXPECT_EQ(d.waitExit(seconds(20)), 2) << d.log();
  EXPECT_NE(d.log().find("rules.yml"), std::string::npos) << d.log();
  // The UDP port is still free: nothing was bound.
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(udp_port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
}

}  // namespace
}  // namespace vigil::testing

namespace vigil::testing {
namespace {

// Sends `count` failed sshd logins from each of the addresses 198.51.100.1..`hosts`.
void sendFailures(int port, int hosts, int count) {
  std::string stream;
  for (int i = 0; i < count; ++i) {
    for (int host = 1; host <= hosts; ++host) {
      stream += "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100." +
                std::to_string(host) + " port 40022 ssh2\n";
    }
  }
  ASSERT_TRUE(sendTcp(port, stream));
}

// vigild stopped with SIGTERM between the second and third failure of each address
// keeps its brute-force windows in the checkpoint, so after a restart it raises as many
// alerts as a daemon that ran through.
TEST_F(DaemonTest, CheckpointKeepsWindowsOverRestart) {
  constexpr int kHosts = 5;
  auto correlationAlerts = [&] {
    double total = 0;
    std::istringstream in(metrics());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("vigil_alerts_total{", 0) == 0 &&
          line.find("kind=\"correlation\"") != std::string::npos) {
        total += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return total;
  };
  auto received = [&](double at_least) {
    return eventually([&] { return metricSum(metrics(), "vigil_events_parsed_total") >= at_least; });
  };

  // Uninterrupted: all three failures per address in one run.
  double uninterrupted = 0;
  {
    auto daemon = startDaemon();
    sendFailures(tcp_port_, kHosts, 3);
    ASSERT_TRUE(received(3 * kHosts)) << metrics();
    ASSERT_TRUE(eventually([&] { return correlationAlerts() >= kHosts; })) << metrics();
    uninterrupted = correlationAlerts();
    EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  }
  EXPECT_EQ(uninterrupted, kHosts);
  std::filesystem::remove_all(dir_ + "/state");
  mintAdminToken();

  // Interrupted: two failures, SIGTERM, restart, the third failure.
  {
    auto daemon = startDaemon();
    sendFailures(tcp_port_, kHosts, 2);
    ASSERT_TRUE(received(2 * kHosts)) << metrics();
    EXPECT_EQ(correlationAlerts(), 0);
    EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  }
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/state/correlation.ckpt"));
  {
    auto daemon = startDaemon();
    EXPECT_NE(daemon->log().find("correlation checkpoint restored"), std::string::npos)
        << daemon->log();
    sendFailures(tcp_port_, kHosts, 1);
    ASSERT_TRUE(received(kHosts)) << metrics();
    EXPECT_TRUE(eventually([&] { return correlationAlerts() >= uninterrupted; })) << metrics();
    EXPECT_EQ(correlationAlerts(), uninterrupted);
    EXPECT_EQ(metricSum(metrics(), "vigil_checkpoint_rules_total"), 1);
    EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  }
}

// A corrupt checkpoint is logged, counted on /metrics and ignored.
TEST_F(DaemonTest, CorruptCheckpointIgnored) {
  std::filesystem::create_directories(dir_ + "/state");
  writeFile(dir_ + "/state/correlation.ckpt", "VIGILCKP but not a checkpoint");
  auto daemon = startDaemon();
  ASSERT_TRUE(daemon->running());
  EXPECT_EQ(metricSum(metrics(), "vigil_checkpoint_rejected_total"), 1) << metrics();
  EXPECT_NE(daemon->log().find("correlation checkpoint ignored"), std::string::npos)
      << daemon->log();
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace vigil::testing
