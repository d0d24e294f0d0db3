// Playbooks in the built vigild: an alert from the pipeline starts a run that waits for
// approval, the run survives SIGTERM and a restart, and approving it over the API blocks
// the address in the nftables file and calls the webhook on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using json = nlohmann::json;

// Runs the built vigilctl with `args`, sending `token`; returns its exit status and stdout
// plus stderr.
std::pair<int, std::string> vigilctl(const std::string& token, const std::string& args) {
  const std::string command = std::string("env -u VIGIL_API -u VIGIL_TOKEN ") +
                              VIGIL_BINARY_DIR + "/mgmt/vigilctl --token " + token + " " + args +
                              " 2>&1";
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

constexpr const char* kRules = R"(title: SSH password failure
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
)";

constexpr const char* kPlaybook = R"(name: block-after-approval
trigger:
  rule_ids: [11111111-0000-4000-8000-000000000002]
  severity: medium
steps:
  - wait_for_approval: "Block ${alert.source.ip}?"
    timeout: 1h
    default: reject
    on_approve:
      - action: firewall.block_ip
        with: {ip: alert.source.ip, duration_s: 3600}
      - action: chat.notify
        with: {text: "blocked ${alert.source.ip}"}
    on_reject:
      - log: "left ${alert.source.ip} alone"
)";

class PlaybookDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-pb");
    udp_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    hook_.Post("/notify", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      res.set_content(R"({"ok": true})", "application/json");
    });
    hook_.set_keep_alive_max_count(1);
    hook_port_ = hook_.bind_to_any_port("127.0.0.1");
    hook_thread_ = std::thread([this] { hook_.listen_after_bind(); });
    std::filesystem::create_directories(dir_ + "/playbooks");
    writeFile(dir_ + "/rules.yml", kRules);
    writeFile(dir_ + "/playbooks/block.yml", kPlaybook);
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" +
                  "sources:\n  - {name: udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(udp_port_) + "'}\n" +
                  "rules:\n  paths: [rules.yml]\n" +
                  "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n" +
                  "playbooks:\n"
                  "  paths: [playbooks]\n"
                  "  connectors:\n"
                  "    fw: {type: blocklist, path: block.nft}\n"
                  "    soc: {type: notify, url: 'http://127.0.0.1:" +
                  std::to_string(hook_port_) + "/notify', channel: '#soc'}\n" +
                  "  actions:\n"
                  "    firewall.*: fw\n"
                  "    chat.notify: soc\n");
    token_ = mintAdminToken(dir_ + "/state", kApprover);
  }

  void TearDown() override {
    hook_.stop();
    hook_thread_.join();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<DaemonProcess> startDaemon() {
    auto d = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    EXPECT_TRUE(waitHealthy(api_port_)) << d->log();
    return d;
  }

  json getJson(const std::string& path) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get(path.c_str());
    if (!res || res->status != 200) return nullptr;
    return json::parse(res->body);
  }

  // The name of the admin token the test calls the API with; runs record it as approver.
  static constexpr const char* kApprover = "soc-lead";

  std::string dir_;
  std::string token_;
  int udp_port_ = 0;
  int api_port_ = 0;
  int hook_port_ = 0;
  httplib::Server hook_;
  std::thread hook_thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
};

// The run waits for approval across SIGTERM and a restart; approving it after the restart
// completes it with the block list file and the webhook call.
TEST_F(PlaybookDaemonTest, ApprovalSurvivesRestart) {
  auto daemon = startDaemon();
  const std::string fail =
      "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100.7 "
      "port 40022 ssh2";
  for (int i = 0; i < 3; ++i) sendUdp(udp_port_, fail);

  json approvals;
  ASSERT_TRUE(eventually([&] {
    approvals = getJson("/api/v1/approvals");
    return approvals != nullptr && approvals["total"] == 1;
  })) << approvals.dump() << daemon->log();
  const int64_t id = approvals["items"][0]["id"];
  EXPECT_EQ(approvals["items"][0]["prompt"], "Block 198.51.100.7?");
  EXPECT_EQ(approvals["items"][0]["tenant"], "acme");
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();

  daemon = startDaemon();
  approvals = getJson("/api/v1/approvals");
  ASSERT_EQ(approvals["total"], 1) << approvals.dump();

  httplib::Client client("127.0.0.1", api_port_);
  client.set_bearer_token_auth(token_);
  auto bad = client.Post(("/api/v1/runs/" + std::to_string(id) + "/approve").c_str(),
                         "{not json", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["code"], "invalid_argument");
  const std::string api = "--api http://127.0.0.1:" + std::to_string(api_port_);
  auto [listed, listing] = vigilctl(token_, api + " runs approvals");
  EXPECT_EQ(listed, 0) << listing;
  EXPECT_NE(listing.find("Block 198.51.100.7?"), std::string::npos) << listing;
  auto [approved, said] =
      vigilctl(token_, api + " runs approve " + std::to_string(id) + " -m 'known attacker'");
  ASSERT_EQ(approved, 0) << said;
  EXPECT_NE(said.find(std::string("approved by ") + kApprover), std::string::npos) << said;

  json run;
  ASSERT_TRUE(eventually([&] {
    run = getJson("/api/v1/runs/" + std::to_string(id));
    return run != nullptr && run["state"] == "succeeded";
  })) << run.dump() << daemon->log();
  EXPECT_EQ(run["decision"], "approved");
  EXPECT_EQ(run["approver"], kApprover);
  EXPECT_EQ(run["comment"], "known attacker");
  EXPECT_NE(readFile(dir_ + "/block.nft").find("198.51.100.7 timeout"), std::string::npos);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_EQ(bodies_.size(), 1u);
    json body = json::parse(bodies_[0]);
    EXPECT_EQ(body["text"], "blocked 198.51.100.7");
    EXPECT_EQ(body["channel"], "#soc");
  }
  auto again = client.Post(("/api/v1/runs/" + std::to_string(id) + "/deny").c_str(), "",
                           "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);
  auto [shown, detail] = vigilctl(token_, api + " runs show " + std::to_string(id));
  EXPECT_EQ(shown, 0) << detail;
  EXPECT_NE(detail.find("succeeded"), std::string::npos) << detail;
  EXPECT_NE(detail.find("firewall.block_ip via fw"), std::string::npos) << detail;
  auto [denied, refused] = vigilctl(token_, api + " runs deny " + std::to_string(id));
  EXPECT_EQ(denied, 1) << refused;
  EXPECT_NE(refused.find("not waiting_approval"), std::string::npos) << refused;
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("vigil_playbook_runs_finished_total"), std::string::npos);
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

// A playbook that does not compile stops vigild at start with exit status 2 and the
// playbook's file and line.
TEST_F(PlaybookDaemonTest, BadPlaybookExitsWithTwo) {
  writeFile(dir_ + "/playbooks/broken.yml", "name: broken\ntrigger: {}\nsteps:\n  - stop: nope\n");
  DaemonProcess d({"--config", dir_ + "/vigil.yaml"}, dir_ + "/bad.log");
  EXPECT_EQ(d.waitExit(seconds(20)), 2) << d.log();
  EXPECT_NE(d.log().find("broken.yml:4:"), std::string::npos) << d.log();

  writeFile(dir_ + "/bad.yaml", readFile(dir_ + "/vigil.yaml") + "");
  std::string text = readFile(dir_ + "/vigil.yaml");
  text.replace(text.find("type: blocklist"), 15, "type: firewall");
  writeFile(dir_ + "/bad.yaml", text);
  DaemonProcess c({"--check-config", "--config", dir_ + "/bad.yaml"}, dir_ + "/bad2.log");
  EXPECT_EQ(c.waitExit(seconds(20)), 2) << c.log();
  EXPECT_NE(c.log().find("bad.yaml:"), std::string::npos) << c.log();
  EXPECT_NE(c.log().find("'firewall' is not one of"), std::string::npos) << c.log();
}

}  // namespace
}  // namespace vigil::testing
