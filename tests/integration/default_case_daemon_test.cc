// Alerts to cases in the built vigild: an alert from the pipeline starts a run of the
// built-in default-case playbook, the run is in the runs database, and the case it opened
// holds the alert with its evidence. With playbooks.default_case: false no case opens.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using json = nlohmann::json;

constexpr const char* kRule = R"(title: SSH password failure
id: 22222222-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: medium
)";

constexpr const char* kFailure =
    "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100.7 "
    "port 40022 ssh2";

class DefaultCaseDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-defcase");
    udp_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/rules.yml", kRule);
    token_ = mintAdminToken(dir_ + "/state", "soc-lead");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DaemonProcess> startDaemon(const std::string& extra_config) {
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" +
                  "sources:\n  - {name: udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(udp_port_) + "'}\n" + "rules:\n  paths: [rules.yml]\n" +
                  "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n" +
                  extra_config);
    auto d = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    EXPECT_TRUE(waitHealthy(api_port_)) << d->log();
    return d;
  }

  std::string get(const std::string& path) {
    httplib::Client client("127.0.0.1", api_port_);
    client.set_bearer_token_auth(token_);
    auto res = client.Get(path.c_str());
    if (!res || res->status != 200) return "";
    return res->body;
  }
  json getJson(const std::string& path) {
    std::string body = get(path);
    return body.empty() ? json(nullptr) : json::parse(body);
  }

  std::string dir_;
  std::string token_;
  int udp_port_ = 0;
  int api_port_ = 0;
};

TEST_F(DefaultCaseDaemonTest, AlertOpensCaseThroughRun) {
  auto daemon = startDaemon("");
  sendUdp(udp_port_, kFailure);

  json runs;
  ASSERT_TRUE(eventually([&] {
    runs = getJson("/api/v1/runs?playbook=default-case&state=succeeded");
    return runs != nullptr && runs["total"] == 1;
  })) << runs.dump() << getJson("/api/v1/runs").dump() << daemon->log();
  const json& run = runs["items"][0];
  EXPECT_EQ(run["tenant"], "acme");
  EXPECT_EQ(run["rule_id"], "22222222-0000-4000-8000-000000000001");
  const std::string alert_id = run["alert_id"];

  json detail = getJson("/api/v1/runs/" + std::to_string(run["id"].get<int64_t>()));
  ASSERT_NE(detail, nullptr);
  // The action's step records the id of the case it filed the alert in.
  std::string attached_case;
  for (const json& step : detail["steps"]) {
    if (step.value("name", "").rfind("case.attach_alert", 0) == 0 &&
        step.value("outcome", "") == "ok") {
      attached_case = step.value("message", "");
    }
  }
  EXPECT_FALSE(attached_case.empty()) << detail.dump();

  json cases = getJson("/api/v1/cases");
  ASSERT_NE(cases, nullptr);
  ASSERT_EQ(cases["total"], 1) << cases.dump();
  EXPECT_EQ(attached_case, std::to_string(cases["items"][0]["id"].get<int64_t>()));
  json one = getJson("/api/v1/cases/" + std::to_string(cases["items"][0]["id"].get<int64_t>()));
  ASSERT_NE(one, nullptr);
  ASSERT_EQ(one["alerts"].size(), 1u) << one.dump();
  EXPECT_EQ(one["alerts"][0]["alert_id"], alert_id);
  EXPECT_NE(one.dump().find("Failed password for root from 198.51.100.7"), std::string::npos)
      << one.dump();

  std::string metrics = get("/metrics");
  EXPECT_EQ(metricSum(metrics, "vigil_cases_opened_total"), 1) << metrics;
  EXPECT_EQ(metricSum(metrics, "vigil_alerts_stored_total"), 1) << metrics;
  // The alert counts under its source's tenant; "default" is exported at zero.
  EXPECT_NE(metrics.find("vigil_alerts_stored_total{tenant=\"acme\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vigil_alerts_stored_total{tenant=\"default\"} 0\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vigil_alerts_delivered_total{tenant=\"acme\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_EQ(metricSum(metrics, "vigil_playbook_queue_dropped_total"), 0) << metrics;
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

TEST_F(DefaultCaseDaemonTest, DisabledOpensNoCase) {
  auto daemon = startDaemon("playbooks:\n  default_case: false\n");
  sendUdp(udp_port_, kFailure);

  std::string metrics;
  ASSERT_TRUE(eventually([&] {
    metrics = get("/metrics");
    return metricSum(metrics, "vigil_alerts_stored_total") == 1;
  })) << metrics << daemon->log();
  // Give a run, if one were started, the time the enabled test needs to file the alert.
  std::this_thread::sleep_for(milliseconds(500));
  json cases = getJson("/api/v1/cases");
  ASSERT_NE(cases, nullptr);
  EXPECT_EQ(cases["total"], 0) << cases.dump();
  json runs = getJson("/api/v1/runs");
  ASSERT_NE(runs, nullptr);
  EXPECT_EQ(runs["total"], 0) << runs.dump();
  EXPECT_EQ(metricSum(get("/metrics"), "vigil_cases_opened_total"), 0);
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
}

}  // namespace
}  // namespace vigil::testing
