// vigild killed in the middle of a playbook run: an alert over syslog on loopback starts a
// run that opens a case and then calls a webhook on loopback. The webhook server delays the
// first request until the test has sent SIGKILL to vigild, so the kill always lands after
// the case action and before the webhook's response. After a restart the run must run again
// and complete without opening a second case, and the webhook must see its second request
// with the key of the first.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using json = nlohmann::json;

constexpr const char* kRule = R"(title: SSH password failure
id: 11111111-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: high
)";

constexpr const char* kPlaybook = R"(name: case-then-page
trigger:
  rule_ids: [11111111-0000-4000-8000-000000000001]
steps:
  - action: case.open
    with: {title: "ssh password failure", severity: "high"}
  - action: pager.send
    with: {rule: alert.rule_id}
)";

// A webhook server that records each request's idempotency key. It delays the first
// request until release() is called and responds to later ones at once.
class HoldingHook {
 public:
  HoldingHook() {
    server_.Post("/page", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      keys_.push_back(req.get_header_value("Idempotency-Key"));
      cv_.notify_all();
      const size_t number = keys_.size();
      if (number == 1) {
        cv_.wait_for(lock, seconds(60), [this] { return released_; });
      } else if (number == hold_also_) {
        cv_.wait_for(lock, seconds(60), [this] { return released_also_; });
      }
      res.set_content(R"({"result": "paged"})", "application/json");
    });
    server_.set_keep_alive_max_count(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HoldingHook() {
    release();
    releaseAlso();
    server_.stop();
    thread_.join();
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  // Holds request `number` (2 or later) too, until releaseAlso().
  void holdAlso(size_t number) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_also_ = number;
  }
  void releaseAlso() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_also_ = true;
    }
    cv_.notify_all();
  }
  bool waitForRequests(size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(30), [&] { return keys_.size() >= count; });
  }
  std::vector<std::string> keys() {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_;
  }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> keys_;
  bool released_ = false;
  size_t hold_also_ = 0;
  bool released_also_ = false;
};

class PlaybookKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-pbkill");
    udp_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    std::filesystem::create_directories(dir_ + "/playbooks");
    writeFile(dir_ + "/rules.yml", kRule);
    writeFile(dir_ + "/playbooks/page.yml", kPlaybook);
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" +
                  "sources:\n  - {name: udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(udp_port_) + "'}\n" +
                  "rules:\n  paths: [rules.yml]\n" +
                  "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n" +
                  "playbooks:\n"
                  "  paths: [playbooks]\n"
                  "  default_case: false\n"
                  "  durability: full\n"
                  "  connectors:\n"
                  "    cases: {type: case}\n"
                  "    pager: {type: webhook, timeout_ms: 60000, url: 'http://127.0.0.1:" +
                  std::to_string(hook_.port()) + "/page'}\n" +
                  "  actions:\n"
                  "    case.*: cases\n"
                  "    pager.*: pager\n");
    token_ = mintAdminToken(dir_ + "/state", "soc-lead");
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DaemonProcess> startDaemon() {
    auto d = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    EXPECT_TRUE(eventually([&] { return getJson("/healthz") != nullptr; })) << d->log();
    return d;
  }

  json getJson(const std::string& path) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get(path.c_str());
    if (!res || res->status != 200) return nullptr;
    json parsed = json::parse(res->body, nullptr, false);
    return parsed.is_discarded() ? json(true) : parsed;
  }

  std::string metrics() {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get("/metrics");
    return res ? res->body : "";
  }

  HoldingHook hook_;
  std::string dir_;
  std::string token_;
  int udp_port_ = 0;
  int api_port_ = 0;
};

// SIGKILL while the webhook call is in flight, after the case opened. The restarted
// vigild runs the run again from the journal and does not open the case again. It sends
// the webhook request again with the same key and completes the run.
TEST_F(PlaybookKillTest, KilledRunResumesWithoutRepeatingDoneActions) {
  auto daemon = startDaemon();
  sendUdp(udp_port_,
          "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100.7 "
          "port 40022 ssh2");
  ASSERT_TRUE(hook_.waitForRequests(1)) << daemon->log();
  daemon->signal(SIGKILL);
  EXPECT_NE(daemon->waitExit(seconds(10)), 0);
  hook_.release();

  daemon = startDaemon();
  json runs;
  ASSERT_TRUE(eventually([&] {
    runs = getJson("/api/v1/runs");
    return runs != nullptr && runs.value("total", 0) == 1 &&
           runs["items"][0]["state"] == "succeeded";
  })) << runs.dump() << daemon->log();

  json cases = getJson("/api/v1/cases");
  ASSERT_NE(cases, nullptr);
  EXPECT_EQ(cases["total"], 1) << cases.dump();

  const std::vector<std::string> keys = hook_.keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].rfind("vigil-", 0), 0u) << keys[0];
  EXPECT_EQ(keys[1], keys[0]);

  const int64_t id = runs["items"][0]["id"];
  json run = getJson("/api/v1/runs/" + std::to_string(id));
  ASSERT_NE(run, nullptr);
  std::vector<std::string> kinds;
  std::string case_step;
  for (const json& step : run["steps"]) {
    kinds.push_back(step["kind"]);
    if (step["name"].get<std::string>().rfind("case.open", 0) == 0) {
      case_step = step["message"];
    }
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"recovery", "action", "action", "end"}))
      << run.dump();
  EXPECT_NE(case_step.find("not called again"), std::string::npos) << run.dump();

  // The case connector was not called by the second process; the webhook was.
  const std::string text = metrics();
  EXPECT_NE(text.find("vigil_playbook_actions_replayed_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_playbook_connector_calls_total{connector=\"cases\",outcome=\"ok\"} 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_playbook_connector_calls_total{connector=\"pager\",outcome=\"ok\"} 1"),
            std::string::npos)
      << text;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A run that finished while the next alert waited is kept for a later run store write,
// and stays in the run journal until then. SIGKILL before that write: the restarted
// vigild stores it from the journal without calling its connectors again.
TEST_F(PlaybookKillTest, DeferredFinishedRunSurvivesKill) {
  hook_.holdAlso(2);
  auto daemon = startDaemon();
  const std::string line =
      "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100.7 "
      "port 40022 ssh2";
  sendUdp(udp_port_, line);
  ASSERT_TRUE(hook_.waitForRequests(1)) << daemon->log();
  // The second alert waits in the queue while the first run's webhook call is held.
  sendUdp(udp_port_, line);
  ASSERT_TRUE(eventually([&] {
    return metrics().find("vigil_playbook_queue_depth 1\n") != std::string::npos;
  })) << metrics();
  hook_.release();
  ASSERT_TRUE(hook_.waitForRequests(2)) << daemon->log();
  // The first run has finished, and its row waits for the queue to run empty.
  json runs = getJson("/api/v1/runs");
  ASSERT_NE(runs, nullptr);
  EXPECT_EQ(runs.value("total", -1), 0) << runs.dump();
  daemon->signal(SIGKILL);
  EXPECT_NE(daemon->waitExit(seconds(10)), 0);
  hook_.releaseAlso();

  daemon = startDaemon();
  ASSERT_TRUE(eventually([&] {
    runs = getJson("/api/v1/runs");
    if (runs == nullptr || runs.value("total", 0) != 2) return false;
    for (const json& run : runs["items"]) {
      if (run["state"] != "succeeded") return false;
    }
    return true;
  })) << runs.dump()
      << daemon->log();
  // The first run's call is not made again; the second run's call, killed in flight, is.
  const std::vector<std::string> keys = hook_.keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_NE(keys[0], keys[1]);
  EXPECT_EQ(keys[2], keys[1]);
  // The second process called the case connector for neither run.
  const std::string text = metrics();
  EXPECT_NE(text.find("vigil_playbook_connector_calls_total{connector=\"cases\",outcome=\"ok\"} 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_playbook_connector_calls_total{connector=\"pager\",outcome=\"ok\"} 1"),
            std::string::npos)
      << text;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace vigil::testing
