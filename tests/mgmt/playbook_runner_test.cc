// The playbook runner in process: alerts in through onAlert(), runs on worker threads with
// real connectors against servers and files on loopback, persisted runs, approvals,
// deadlines, restarts and the run API handlers with principals set by hand.
#include "mgmt/playbook_runner.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/case_store.h"
#include "mgmt/intel_manager.h"
#include "mgmt/internal/run_routes.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using testing::makeAlert;
using testing::TempDir;
using testing::waitFor;
using json = nlohmann::json;

constexpr int64_t kNow = testing::kT0;

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A local HTTP server whose first `failures` POSTs answer 500.
class HookServer {
 public:
  explicit HookServer(int failures = 0) : failures_(failures) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      keys_.push_back(req.get_header_value("Idempotency-Key"));
      if (static_cast<int>(bodies_.size()) <= failures_) {
        res.status = 500;
        res.set_content("try later", "text/plain");
        return;
      }
      res.set_content(R"({"result": "done"})", "application/json");
    });
    // One request per connection, so stop() does not wait for an idle keep-alive client.
    server_.set_keep_alive_max_count(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ~HookServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  // The Idempotency-Key header of each request, in order.
  std::vector<std::string> keys() {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  int failures_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> keys_;
};

ConnectorConfig webhook(const std::string& name, const std::string& url) {
  ConnectorConfig c;
  c.name = name;
  c.type = "webhook";
  c.url = url;
  c.timeout_ms = 2000;
  return c;
}

class PlaybookRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    cases_ = std::move(*store);
    config_.enabled = true;
    // These tests count runs of their own playbooks; default_case_test.cc covers the
    // built-in one.
    config_.default_case = false;
    config_.db = dir_.file("runs.db");
    config_.paths = {dir_.file("playbooks")};
    std::filesystem::create_directories(dir_.file("playbooks"));
  }
  void TearDown() override {
    if (runner_) runner_->stop();
  }

  void addPlaybook(const std::string& name, const std::string& yaml) {
    std::ofstream(dir_.file("playbooks/" + name + ".yml")) << yaml;
  }
  void addConnector(ConnectorConfig c) { config_.connectors.push_back(std::move(c)); }
  void route(const std::string& pattern, const std::string& connector) {
    config_.actions.push_back({pattern, connector});
  }

  void startRunner(intel::SnapshotStore* intel = nullptr) {
    auto runner = PlaybookRunner::create(config_, metrics_);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = std::move(*runner);
    ASSERT_TRUE(runner_->start(cases_.get(), intel).ok());
  }

  correlate::Alert alert(const std::string& tenant = "acme") {
    return makeAlert("r1", "high", tenant, {{"src_ip", "203.0.113.9"}, {"host", "ws-7"}}, kNow);
  }

  RunRecord onlyRun() {
    auto page = runner_->store()->list(RunFilter{});
    EXPECT_TRUE(page.ok());
    EXPECT_EQ(page->items.size(), 1u);
    auto run = runner_->store()->get(page->items.at(0).id);
    EXPECT_TRUE(run.ok());
    return *run;
  }

  RunRecord waitForState(int64_t id, RunState state) {
    RunRecord last;
    EXPECT_TRUE(waitFor([&] {
      auto run = runner_->store()->get(id);
      if (run.ok()) last = *run;
      return run.ok() && run->state == state;
    })) << "run " << id << " stayed " << runStateName(last.state) << " error=" << last.error;
    return last;
  }

  // Starts the runner with two playbooks on rule r1: "isolate" calls edr.isolate_host on
  // `edr`, and "page" calls chat.notify on `chat`.
  void startIsolateAndPage(const HookServer& edr, const HookServer& chat) {
    addPlaybook("isolate", R"(name: isolate
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
)");
    addPlaybook("page", R"(name: page
trigger: {rule_ids: [r1]}
steps:
  - action: chat.notify
    with: {text: alert.host}
)");
    addConnector(webhook("edr", edr.url()));
    addConnector(webhook("chat", chat.url()));
    route("edr.*", "edr");
    route("chat.*", "chat");
    startRunner();
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> cases_;
  PlaybookRunnerConfig config_;
  std::unique_ptr<PlaybookRunner> runner_;
};

ConnectorConfig blocklist(const std::string& name, const std::string& path) {
  ConnectorConfig c;
  c.name = name;
  c.type = "blocklist";
  c.path = path;
  return c;
}

// An alert that matches the trigger runs the playbook once, and the webhook gets the call.
TEST_F(PlaybookRunnerTest, MatchingAlertRunsPlaybookWithWebhook) {
  HookServer hook;
  addPlaybook("isolate", R"(name: isolate
trigger: {rule_ids: [r1], severity: medium}
steps:
  - action: edr.isolate_host
    with: {host: alert.host, ip: alert.src_ip}
    output: r
  - stop: r
)");
  addConnector(webhook("edr", hook.url()));
  route("edr.*", "edr");
  startRunner();

  correlate::Alert received = alert();
  // The raising event arrived 2 ms ago, so the event-to-action latency is at least that.
  received.receive_ns = RealClock::instance().nowNs() - 2'000'000;
  runner_->onAlert(received);
  runner_->onAlert(makeAlert("other-rule", "high", "acme", {}, kNow));  // no trigger match
  runner_->flush();

  RunRecord run = onlyRun();
  EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
  EXPECT_EQ(run.playbook, "isolate");
  EXPECT_EQ(run.tenant, "acme");
  EXPECT_EQ(run.result, "\"done\"");
  EXPECT_EQ(run.playbook_hash.size(), 64u);
  ASSERT_EQ(hook.bodies().size(), 1u);
  json body = json::parse(hook.bodies()[0]);
  EXPECT_EQ(body["action"], "edr.isolate_host");
  EXPECT_EQ(body["params"]["host"], "ws-7");
  EXPECT_EQ(body["params"]["ip"], "203.0.113.9");
  ASSERT_GE(run.steps.size(), 2u);
  EXPECT_EQ(run.steps[0].kind, "action");
  EXPECT_EQ(run.steps[0].outcome, "ok");
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_started_total"), 1u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total", {{"state", "succeeded"}}), 1u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "edr"}, {"outcome", "ok"}}),
            1u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_first_action_latency_us_count"), 1u);
  EXPECT_EQ(metrics_.sum("vigil_event_to_first_action_latency_us_count"), 1u);
  EXPECT_GE(metrics_.sum("vigil_event_to_first_action_latency_us_sum"), 2000u);
}

// Real runs of a working and a failing playbook show up in the per-playbook, per-step and
// per-connector metrics with the right counts, and a connector is marked down after three
// failures in a row and up again after a success.
TEST_F(PlaybookRunnerTest, MetricsCountRunsStepsAndConnectors) {
  HookServer edr;
  HookServer chat(/*failures=*/3);
  startIsolateAndPage(edr, chat);

  for (int i = 0; i < 3; ++i) runner_->onAlert(alert());
  runner_->flush();
  const Labels isolate = {{"playbook", "isolate"}};
  const Labels page = {{"playbook", "page"}};
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_started_total", isolate), 3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_started_total", page), 3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total",
                         {{"playbook", "isolate"}, {"state", "succeeded"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total",
                         {{"playbook", "page"}, {"state", "failed"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_run_duration_seconds_count", isolate), 3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_run_duration_seconds_count", page), 3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_step_outcomes_total",
                         {{"playbook", "isolate"},
                          {"kind", "action"},
                          {"step", "edr.isolate_host via edr"},
                          {"outcome", "ok"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_step_outcomes_total",
                         {{"playbook", "page"}, {"step", "chat.notify via chat"}, {"outcome", "error"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_step_duration_seconds_count",
                         {{"playbook", "isolate"}, {"step", "edr.isolate_host via edr"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "chat"}, {"outcome", "error"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_latency_seconds_count", {{"connector", "edr"}}),
            3u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_dispatch_latency_us_count"), 6u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_first_action_latency_us_count"), 6u);
  auto gauge = [&](const std::string& name, const std::string& connector) {
    return metrics_.gauge(name, "", {{"connector", connector}}).value();
  };
  EXPECT_EQ(gauge("vigil_playbook_connector_up", "edr"), 1);
  EXPECT_EQ(gauge("vigil_playbook_connector_up", "chat"), 0);
  EXPECT_EQ(gauge("vigil_playbook_connector_consecutive_errors", "chat"), 3);

  std::string text = metrics_.renderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE vigil_playbook_run_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("vigil_playbook_run_duration_seconds_bucket{playbook=\"isolate\","
                              "le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("vigil_playbook_runs_finished_total{playbook=\"isolate\","
                              "state=\"failed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vigil_playbook_connector_up{connector=\"chat\"} 0\n"));

  // The fourth call to chat succeeds: the connector is up again.
  runner_->onAlert(alert());
  runner_->flush();
  EXPECT_EQ(gauge("vigil_playbook_connector_up", "chat"), 1);
  EXPECT_EQ(gauge("vigil_playbook_connector_consecutive_errors", "chat"), 0);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total",
                         {{"playbook", "page"}, {"state", "succeeded"}}),
            1u);
}

// vigil_playbook_tenant_runs_total counts each run under its alert's tenant: the
// playbook whose webhook fails its first three calls fails for both tenants.
TEST_F(PlaybookRunnerTest, TenantRunsCountedPerTenant) {
  HookServer edr;
  HookServer chat(/*failures=*/3);
  startIsolateAndPage(edr, chat);

  for (const char* tenant : {"acme", "globex", "acme"}) runner_->onAlert(alert(tenant));
  runner_->flush();
  auto runs = [&](const std::string& tenant, const std::string& state) {
    return metrics_.sum("vigil_playbook_tenant_runs_total", {{"tenant", tenant}, {"state", state}});
  };
  EXPECT_EQ(runs("acme", "started"), 4u);
  EXPECT_EQ(runs("globex", "started"), 2u);
  EXPECT_EQ(runs("acme", "succeeded"), 2u);
  EXPECT_EQ(runs("globex", "succeeded"), 1u);
  EXPECT_EQ(runs("acme", "failed"), 2u);
  EXPECT_EQ(runs("globex", "failed"), 1u);
  EXPECT_EQ(runs("acme", "denied"), 0u);
  EXPECT_EQ(runs("acme", "timed_out"), 0u);
  EXPECT_THAT(
      metrics_.renderPrometheus(),
      HasSubstr("vigil_playbook_tenant_runs_total{tenant=\"globex\",state=\"started\"} 2\n"));
}

// Past kMaxTenantSeries tenants, runs of further tenants count under tenant="_other",
// so the series stay bounded.
TEST_F(PlaybookRunnerTest, TenantSeriesCappedUnderOther) {
  addPlaybook("note", R"(name: note
trigger: {rule_ids: [r1]}
steps:
  - log: "seen"
)");
  startRunner();

  const size_t tenants = PlaybookRunner::kMaxTenantSeries + 2;
  for (size_t i = 0; i < tenants; ++i) runner_->onAlert(alert("t" + std::to_string(i)));
  runner_->flush();
  EXPECT_EQ(metrics_.sum("vigil_playbook_tenant_runs_total", {{"state", "started"}}), tenants);
  EXPECT_EQ(metrics_.sum("vigil_playbook_tenant_runs_total", {{"state", "succeeded"}}), tenants);
  EXPECT_EQ(metrics_.sum("vigil_playbook_tenant_runs_total",
                         {{"tenant", "_other"}, {"state", "started"}}),
            2u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_tenant_runs_total",
                         {{"tenant", "_other"}, {"state", "succeeded"}}),
            2u);
  EXPECT_EQ(
      metrics_.sum("vigil_playbook_tenant_runs_total", {{"tenant", "t0"}, {"state", "started"}}),
      1u);
}

// Run ids stay unique across restarts: a new start skips the ids the last one reserved.
TEST_F(PlaybookRunnerTest, RunIdsAreNotReusedAfterRestart) {
  HookServer hook;
  addPlaybook("isolate", R"(name: isolate
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
)");
  addConnector(webhook("edr", hook.url()));
  route("*", "edr");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  const int64_t first = onlyRun().id;
  runner_->stop();
  runner_.reset();

  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  auto page = runner_->store()->list(RunFilter{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  // Ids from first + 1 up to the block reserved by the first start stay unused.
  EXPECT_GE(page->items[0].id, first + PlaybookRunner::kRunIdBlock);
  EXPECT_EQ(page->items[1].id, first);
}

// Retries back off through persisted delays and succeed once the server recovers.
TEST_F(PlaybookRunnerTest, RetriesSurviveServerFailures) {
  HookServer hook(/*failures=*/2);
  addPlaybook("retry", R"(name: retry
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
    retry: {attempts: 3, backoff: 1s, factor: 1}
)");
  addConnector(webhook("edr", hook.url()));
  route("*", "edr");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  int64_t id = runner_->store()->list(RunFilter{})->items.at(0).id;
  RunRecord run = waitForState(id, RunState::kSucceeded);
  EXPECT_EQ(hook.bodies().size(), 3u);
  int errors = 0, delays = 0;
  for (const RunStep& s : run.steps) {
    errors += s.kind == "action" && s.outcome == "error";
    delays += s.kind == "delay" && s.outcome == "waiting";
  }
  EXPECT_EQ(errors, 2);
  EXPECT_EQ(delays, 2);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "edr"}, {"outcome", "error"}}),
            2u);
}

// A retry that resumes after a restart sends the idempotency key of the attempt before
// the restart, which the step log keeps; the next run sends a new key.
TEST_F(PlaybookRunnerTest, RetryAfterRestartKeepsIdempotencyKey) {
  HookServer hook(/*failures=*/1);
  addPlaybook("retry", R"(name: retry
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
    retry: {attempts: 2, backoff: 1s}
)");
  addConnector(webhook("edr", hook.url()));
  route("*", "edr");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord waiting = onlyRun();
  ASSERT_EQ(waiting.state, RunState::kDelayed) << waiting.error;
  runner_->stop();
  runner_.reset();
  ASSERT_EQ(hook.keys().size(), 1u);

  startRunner();
  RunRecord run = waitForState(waiting.id, RunState::kSucceeded);
  std::vector<std::string> keys = hook.keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_THAT(keys[0], ::testing::MatchesRegex("vigil-[0-9a-f]{32}"));
  EXPECT_EQ(keys[1], keys[0]);
  std::vector<std::string> stored;
  for (const RunStep& s : run.steps) {
    if (s.kind == "action") stored.push_back(s.idempotency_key);
  }
  EXPECT_THAT(stored, ::testing::ElementsAre(keys[0], keys[0]));

  runner_->onAlert(alert());
  runner_->flush();
  keys = hook.keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_NE(keys[2], keys[0]);
}

// When every attempt fails, on_error runs and the run still ends; with no route at all the
// failure names the missing route.
TEST_F(PlaybookRunnerTest, OnErrorHandlesConnectorFailure) {
  HookServer hook(/*failures=*/100);
  addPlaybook("onerror", R"(name: onerror
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
    on_error:
      - log: "isolation failed: ${error}"
  - action: unrouted.thing
)");
  addConnector(webhook("edr", hook.url()));
  route("edr.*", "edr");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_THAT(run.error, HasSubstr("no connector handles action unrouted.thing"));
  bool logged = false;
  for (const RunStep& s : run.steps) {
    logged = logged || (s.kind == "log" && s.message.find("HTTP 500") != std::string::npos);
  }
  EXPECT_TRUE(logged);
  EXPECT_EQ(metrics_.sum("vigil_playbook_actions_unrouted_total"), 1u);
}

// Counts the lines of `log` that contain `text`.
size_t countLines(const std::string& log, const std::string& text) {
  std::istringstream lines(log);
  size_t count = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find(text) != std::string::npos) ++count;
  }
  return count;
}

// Runs that fail the same way log on power-of-two repeats per playbook only, with the
// repeat count, so a failing connector cannot flood the log.
TEST_F(PlaybookRunnerTest, RepeatedRunFailuresAreRateLimited) {
  addPlaybook("unrouted", R"(name: unrouted
trigger: {rule_ids: [r1]}
steps:
  - action: unrouted.thing
)");
  startRunner();
  testing::LogCapture log;
  for (int i = 0; i < 20; ++i) runner_->onAlert(alert());
  runner_->flush();
  EXPECT_EQ(metrics_.sum("vigil_playbook_actions_unrouted_total"), 20u);
  const std::string text = log.text();
  // Repeats 1, 2, 4, 8 and 16 of 20.
  EXPECT_EQ(countLines(text, "playbook run failed"), 5u) << text;
  EXPECT_NE(text.find("playbook=unrouted"), std::string::npos) << text;
  EXPECT_NE(text.find("repeats=16"), std::string::npos) << text;
}

// A log line with a free-text error reads as key=value pairs: the error, which contains
// spaces, is quoted.
TEST_F(PlaybookRunnerTest, RunFailedLineIsKeyValue) {
  addPlaybook("unrouted", R"(name: unrouted
trigger: {rule_ids: [r1]}
steps:
  - action: unrouted.thing
)");
  startRunner();
  testing::LogCapture log;
  runner_->onAlert(alert());
  runner_->flush();
  const std::string text = log.text();
  const std::string message = "playbook run failed ";
  const size_t start = text.find(message);
  ASSERT_NE(start, std::string::npos) << text;
  const size_t end = text.find('\n', start);
  const std::string pairs = text.substr(start + message.size(), end - start - message.size());
  // Each pair is key=value, where a value with spaces or quotes is in double quotes.
  const std::regex key_value(
      R"re(\w+=("([^"\\]|\\.)*"|[^\s"]*)( \w+=("([^"\\]|\\.)*"|[^\s"]*))*)re");
  EXPECT_TRUE(std::regex_match(pairs, key_value)) << pairs;
  EXPECT_NE(pairs.find("error=\""), std::string::npos) << pairs;
  EXPECT_NE(pairs.find("no connector handles action unrouted.thing"), std::string::npos) << pairs;
}

// A run that exhausts its step budget fails with the budget and the setting that raises it.
TEST_F(PlaybookRunnerTest, StepBudgetErrorNamesSetting) {
  addPlaybook("spin", R"(name: spin
trigger: {rule_ids: [r1]}
steps:
  - for_each: a
    in: "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
    limit: 10
    do:
      - for_each: b
        in: "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
        limit: 10
        do:
          - for_each: c
            in: "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
            limit: 10
            do:
              - set: {x: a + b + c}
)");
  config_.max_steps = 1000;
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_THAT(run.error, HasSubstr("step budget exhausted (1000 steps per segment; raise "
                                   "playbooks.max_steps or bound the loop)"));
}

// A run that reaches its heap limit fails with the limit and the setting that raises it.
TEST_F(PlaybookRunnerTest, MemoryLimitErrorNamesSetting) {
  addPlaybook("grow", R"(name: grow
trigger: {rule_ids: [r1]}
vars: {s: "0123456789abcdef"}
steps:
  - for_each: i
    in: "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]"
    limit: 12
    do:
      - set: {s: s + s}
)");
  config_.max_memory_bytes = 4096;
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_THAT(run.error, HasSubstr("(4096 bytes; raise playbooks.max_memory_bytes or keep less in "
                                   "the run)"));
}

constexpr const char* kApprovalPlaybook = R"(name: approve-block
trigger: {rule_ids: [r1]}
steps:
  - wait_for_approval: "Block ${alert.src_ip}?"
    timeout: TIMEOUT
    default: DEFAULT
    on_approve:
      - action: firewall.block_ip
        with: {ip: alert.src_ip, duration_s: 3600}
    on_reject:
      - log: "not blocked"
)";

std::string approvalPlaybook(const std::string& timeout, const std::string& fallback) {
  std::string text = kApprovalPlaybook;
  text.replace(text.find("TIMEOUT"), 7, timeout);
  text.replace(text.find("DEFAULT"), 7, fallback);
  return text;
}

// Approve: the waiting run resumes, blocks the address in the nftables file and records
// the approver and comment.
TEST_F(PlaybookRunnerTest, ApprovalResumesRunAndBlocks) {
  addPlaybook("approve", approvalPlaybook("1h", "reject"));
  addConnector(blocklist("fw", dir_.file("block.nft")));
  route("firewall.*", "fw");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  ASSERT_EQ(run.state, RunState::kWaitingApproval);
  EXPECT_EQ(run.prompt, "Block 203.0.113.9?");
  EXPECT_GT(run.wake_ns, 0);

  Principal analyst{"alice", "tok-1", Role::kAnalyst, {"acme"}, "127.0.0.1"};
  auto decided = runner_->decide(run.id, true, analyst, "confirmed with the customer");
  ASSERT_TRUE(decided.ok()) << decided.status();
  RunRecord done = waitForState(run.id, RunState::kSucceeded);
  EXPECT_EQ(done.approver, "alice");
  EXPECT_EQ(done.comment, "confirmed with the customer");
  EXPECT_EQ(done.decision, "approved");
  std::string nft = readAll(dir_.file("block.nft"));
  EXPECT_THAT(nft, HasSubstr("add element inet vigil blocklist_v4"));
  EXPECT_THAT(nft, HasSubstr("203.0.113.9 timeout"));

  // A second decision on a finished run is a conflict.
  auto again = runner_->decide(run.id, false, analyst, "");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Deny: the reject branch runs and the run ends denied; other tenants and read-only
// principals cannot decide.
TEST_F(PlaybookRunnerTest, DenyAndPrincipalChecks) {
  addPlaybook("approve", approvalPlaybook("1h", "approve"));
  addConnector(blocklist("fw", dir_.file("block.nft")));
  route("firewall.*", "fw");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  Principal other{"mallory", "tok-2", Role::kAnalyst, {"globex"}, ""};
  EXPECT_EQ(runner_->decide(run.id, true, other, "").status().code(), absl::StatusCode::kNotFound);
  Principal reader{"rita", "tok-3", Role::kReadOnly, {"acme"}, ""};
  EXPECT_EQ(runner_->decide(run.id, true, reader, "").status().code(),
            absl::StatusCode::kPermissionDenied);
  Principal admin{"root", "tok-4", Role::kAdmin, {}, ""};
  ASSERT_TRUE(runner_->decide(run.id, false, admin, "false positive").ok());
  RunRecord done = waitForState(run.id, RunState::kDenied);
  EXPECT_EQ(done.approver, "root");
  EXPECT_FALSE(std::filesystem::exists(dir_.file("block.nft")));
}

// The deadline passes: the timer resumes the run with "timeout" and the default branch
// (approve here) blocks the address.
TEST_F(PlaybookRunnerTest, DeadlineRunsDefaultBranch) {
  addPlaybook("approve", approvalPlaybook("1s", "approve"));
  addConnector(blocklist("fw", dir_.file("block.nft")));
  route("firewall.*", "fw");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord done = waitForState(onlyRun().id, RunState::kTimedOut);
  EXPECT_EQ(done.decision, "timeout");
  EXPECT_THAT(readAll(dir_.file("block.nft")), HasSubstr("203.0.113.9"));
}

// A waiting run survives a restart of the runner, and approving it after the restart
// completes it.
TEST_F(PlaybookRunnerTest, WaitingRunSurvivesRestart) {
  addPlaybook("approve", approvalPlaybook("1h", "reject"));
  addConnector(blocklist("fw", dir_.file("block.nft")));
  route("firewall.*", "fw");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  int64_t id = onlyRun().id;
  runner_->stop();
  runner_.reset();

  startRunner();
  EXPECT_EQ(metrics_.gauge("vigil_playbook_runs_waiting", "", {{"state", "waiting_approval"}}).value(),
            1);
  Principal admin{"root", "tok-4", Role::kAdmin, {}, ""};
  ASSERT_TRUE(runner_->decide(id, true, admin, "").ok());
  waitForState(id, RunState::kSucceeded);
  EXPECT_THAT(readAll(dir_.file("block.nft")), HasSubstr("203.0.113.9"));
}

// A stopped runner counts an alert's run as dropped{reason="shutdown"} and returns at once.
TEST_F(PlaybookRunnerTest, StoppedRunnerCountsDrops) {
  addPlaybook("approve", approvalPlaybook("1h", "reject"));
  config_.queue_capacity = 1;
  config_.workers = 1;
  startRunner();
  runner_->stop();  // no worker takes jobs now
  runner_->onAlert(alert());
  EXPECT_EQ(metrics_.sum("vigil_playbook_queue_dropped_total", {{"reason", "shutdown"}}), 1u);
}

// Idle workers poll the queue for worker_spin_us before they sleep. Alerts sent right
// after the previous run ended are taken while polling, and every run still completes.
// With 0 no worker polls. stop() also ends workers that are polling.
TEST_F(PlaybookRunnerTest, IdleWorkersPollThenSleep) {
  addPlaybook("note", R"(name: note
trigger: {rule_ids: [r1]}
steps:
  - log: "seen"
)");
  for (uint32_t spin_us : {10'000u, 0u}) {
    SCOPED_TRACE(spin_us);
    MetricsRegistry metrics;
    config_.workers = 2;
    config_.worker_spin_us = spin_us;
    config_.db = dir_.file("runs-" + std::to_string(spin_us) + ".db");
    auto runner = PlaybookRunner::create(config_, metrics);
    ASSERT_TRUE(runner.ok()) << runner.status();
    ASSERT_TRUE((*runner)->start(nullptr, nullptr).ok());
    constexpr int kAlerts = 20;
    for (int i = 0; i < kAlerts; ++i) {
      (*runner)->onAlert(alert());
      (*runner)->flush();
    }
    EXPECT_EQ(metrics.sum("vigil_playbook_runs_finished_total", {{"state", "succeeded"}}),
              static_cast<uint64_t>(kAlerts));
    const uint64_t hits = metrics.sum("vigil_playbook_worker_spin_hits_total");
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    ASSERT_EQ(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
    if (spin_us == 0 || CPU_COUNT(&cpus) < 2) {  // on one CPU the runner never polls
      EXPECT_EQ(hits, 0u);
    } else {
      // Each alert follows the end of the previous run by microseconds, well inside the
      // 10 ms of polling, unless this thread lost its CPU for that long every time.
      EXPECT_GT(hits, 0u);
      EXPECT_LE(hits, static_cast<uint64_t>(kAlerts));
    }
    (*runner)->stop();
  }
}

// With the only worker busy and the queue full, the next alert's run is counted as
// dropped{reason="full"} and onAlert() returns; the queued one still runs.
TEST_F(PlaybookRunnerTest, FullQueueDropsAndCounts) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int requests = 0;
  httplib::Server slow;
  slow.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mu);
    ++requests;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    res.set_content(R"({"result": "ok"})", "application/json");
  });
  slow.set_keep_alive_max_count(1);
  int port = slow.bind_to_any_port("127.0.0.1");
  std::thread server([&] { slow.listen_after_bind(); });
  addPlaybook("slow", R"(name: slow
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
)");
  addConnector(webhook("edr", "http://127.0.0.1:" + std::to_string(port) + "/hook"));
  route("*", "edr");
  config_.queue_capacity = 1;
  config_.workers = 1;
  startRunner();

  runner_->onAlert(alert());  // taken by the worker, which blocks in the webhook call
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return requests == 1; }));
  }
  runner_->onAlert(alert());  // waits in the queue
  runner_->onAlert(alert());  // finds the queue full
  EXPECT_EQ(metrics_.sum("vigil_playbook_queue_dropped_total", {{"reason", "full"}}), 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  runner_->flush();
  auto page = runner_->store()->list(RunFilter{});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 2);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total", {{"state", "succeeded"}}), 2u);
  runner_->stop();
  slow.stop();
  server.join();
}

// Case operations: open a case, note, tag, severity; a case of another tenant is refused.
TEST_F(PlaybookRunnerTest, CaseConnectorWorksOnTenantCases) {
  auto foreign = cases_->createPlaybookCase("other tenant", Severity::kLow, "globex", "x", "t");
  ASSERT_TRUE(foreign.ok());
  addPlaybook("cases", R"(name: cases
trigger: {rule_ids: [r1]}
vars: {err: ""}
steps:
  - action: case.open
    with: {title: "Brute force from ${alert.src_ip}", severity: "low", note: "opened by playbook"}
    output: id
  - action: case.add_tag
    with: {tags: ["brute-force", "auto"]}
  - action: case.escalate
    with: {summary: "needs a human", tier: 2}
  - action: case.add_note
    with: {text: "poke", case_id: FOREIGN}
    on_error:
      - set: {err: error}
  - stop: err
)");
  std::string text = readAll(dir_.file("playbooks/cases.yml"));
  text.replace(text.find("FOREIGN"), 7, std::to_string(*foreign));
  std::ofstream(dir_.file("playbooks/cases.yml")) << text;
  ConnectorConfig c;
  c.name = "cases";
  c.type = "case";
  addConnector(c);
  route("case.*", "cases");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  ASSERT_EQ(run.state, RunState::kSucceeded) << run.error;
  EXPECT_THAT(run.result, HasSubstr("is not a case of tenant acme"));

  auto page = cases_->listCases(CaseFilter{});
  ASSERT_TRUE(page.ok());
  int64_t opened = 0;
  for (const Case& c2 : page->items) {
    if (c2.tenant == "acme") opened = c2.id;
  }
  ASSERT_NE(opened, 0);
  auto detail = cases_->getCase(opened);
  EXPECT_EQ(detail->info.title, "Brute force from 203.0.113.9");
  EXPECT_EQ(detail->info.severity, Severity::kHigh);  // escalated from low
  EXPECT_THAT(*cases_->caseTags(opened),
              ::testing::ElementsAre("auto", "brute-force", "escalated"));
  auto notes = cases_->caseNotes(opened);
  ASSERT_EQ(notes->size(), 2u);
  EXPECT_EQ((*notes)[1].second, "needs a human (tier 2)");
  EXPECT_TRUE(cases_->caseNotes(*foreign)->empty());
}

// Update, assign, evidence and close against the case store, with the failures that a
// bad parameter or a missing resolution give.
TEST_F(PlaybookRunnerTest, CaseConnectorUpdateAssignEvidenceClose) {
  addPlaybook("lifecycle", R"(name: lifecycle
trigger: {rule_ids: [r1]}
vars: {e1: "", e2: "", e3: ""}
steps:
  - action: case.open
    with: {title: "first title"}
  - action: case.update
    with: {title: "Host ${alert.host} beaconing", severity: "critical", status: "in_progress",
           tags: ["c2", "beacon"], description: "seen by the proxy"}
  - action: case.update
    with: {}
    on_error: [{set: {e1: error}}]
  - action: case.update
    with: {status: "sleeping"}
    on_error: [{set: {e2: error}}]
  - action: case.assign
    with: {assignee: "alice"}
  - action: case.add_evidence
    with: {name: "beacon.txt", content: "GET /c2 from ${alert.host}"}
    output: sha
  - action: case.attach
    with: {name: "alert.json", content: [alert.host, alert.src_ip]}
  - action: case.close
    on_error: [{set: {e3: error}}]
  - action: case.close
    with: {resolution: "true_positive", note: "host reimaged"}
  - stop: [sha, e1, e2, e3]
)");
  ConnectorConfig c;
  c.name = "cases";
  c.type = "case";
  c.author = "bot";
  addConnector(c);
  route("case.*", "cases");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  ASSERT_EQ(run.state, RunState::kSucceeded) << run.error;
  EXPECT_THAT(run.result, HasSubstr("case.update: needs at least one of title:"));
  EXPECT_THAT(run.result, HasSubstr("sleeping"));
  EXPECT_THAT(run.result, HasSubstr("resolution"));

  auto page = cases_->listCases(CaseFilter{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  int64_t id = page->items[0].id;
  auto detail = cases_->getCase(id);
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_EQ(detail->info.tenant, "acme");
  EXPECT_EQ(detail->info.title, "Host ws-7 beaconing");
  EXPECT_EQ(detail->info.description, "seen by the proxy");
  EXPECT_EQ(detail->info.severity, Severity::kCritical);
  EXPECT_THAT(detail->info.tags, ::testing::ElementsAre("beacon", "c2"));
  EXPECT_EQ(detail->info.assignee, "alice");
  EXPECT_EQ(detail->info.status, CaseStatus::kClosed);
  EXPECT_EQ(detail->info.resolution, "true_positive");
  EXPECT_EQ(detail->info.resolution_note, "host reimaged");
  ASSERT_EQ(detail->files.size(), 2u);
  EXPECT_EQ(detail->files[0].name, "beacon.txt");
  EXPECT_EQ(detail->files[0].content_type, "text/plain");
  EXPECT_EQ(detail->files[0].sha256.size(), 64u);
  EXPECT_THAT(run.result, HasSubstr(detail->files[0].sha256));
  EXPECT_EQ(detail->files[1].content_type, "application/json");
  EvidenceFile meta;
  auto bytes = cases_->readEvidenceFile(id, detail->files[0].sha256, &meta);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, "GET /c2 from ws-7");
  bytes = cases_->readEvidenceFile(id, detail->files[1].sha256, &meta);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, R"(["ws-7","203.0.113.9"])");

  // The timeline names the playbook's author as the non-human actor of the assignment.
  auto timeline = cases_->timeline(id);
  ASSERT_TRUE(timeline.ok());
  bool assigned_by_bot = false;
  for (const TimelineEntry& e : *timeline) {
    if (e.action == "updated" && e.field == "assignee") {
      assigned_by_bot = e.actor.rfind("bot (lifecycle run ", 0) == 0 && !e.human;
    }
  }
  EXPECT_TRUE(assigned_by_bot);
}

// The syslog connector sends RFC 5424 over UDP and CEF over TCP to local collectors.
TEST_F(PlaybookRunnerTest, SyslogForwardOverUdpAndTcp) {
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  int tcp = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(tcp, 4), 0);
  auto portOf = [](int fd) {
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    return ntohs(bound.sin_port);
  };
  ConnectorConfig u;
  u.name = "siem-udp";
  u.type = "syslog";
  u.address = "127.0.0.1:" + std::to_string(portOf(udp));
  addConnector(u);
  ConnectorConfig t = u;
  t.name = "siem-tcp";
  t.transport = "tcp";
  t.format = "cef";
  t.address = "127.0.0.1:" + std::to_string(portOf(tcp));
  addConnector(t);
  route("siem.forward", "siem-udp");
  route("siem.cef", "siem-tcp");
  addPlaybook("fwd", R"(name: fwd
trigger: {rule_ids: [r1]}
steps:
  - action: siem.forward
    with: {src_ip: alert.src_ip, note: "a \"quoted\" note"}
  - action: siem.cef
    with: {src_ip: alert.src_ip, note: "x=y"}
)");
  startRunner();
  runner_->onAlert(alert());
  runner_->flush();
  EXPECT_EQ(onlyRun().state, RunState::kSucceeded) << onlyRun().error;

  char buf[4096];
  ssize_t n = recv(udp, buf, sizeof(buf), MSG_DONTWAIT);
  ASSERT_GT(n, 0);
  std::string datagram(buf, static_cast<size_t>(n));
  EXPECT_EQ(datagram.rfind("<37>1 ", 0), 0u) << datagram;
  EXPECT_THAT(datagram, HasSubstr(" vigil - siem.forward [vigil@32473 run=\""));
  EXPECT_THAT(datagram, HasSubstr("tenant=\"acme\" playbook=\"fwd\""));
  EXPECT_THAT(datagram, HasSubstr(R"("src_ip":"203.0.113.9")"));

  int conn = accept(tcp, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  n = recv(conn, buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  std::string stream(buf, static_cast<size_t>(n));
  size_t space = stream.find(' ');
  ASSERT_NE(space, std::string::npos);
  EXPECT_EQ(std::stoul(stream.substr(0, space)), stream.size() - space - 1) << stream;
  EXPECT_THAT(stream, HasSubstr("CEF:0|Vigil|vigild|"));
  EXPECT_THAT(stream, HasSubstr("|siem.cef|siem.cef|5|"));
  EXPECT_THAT(stream, HasSubstr("srcip=203.0.113.9"));
  EXPECT_THAT(stream, HasSubstr("note=x\\=y"));
  close(conn);
  close(udp);
  close(tcp);
}

// The run list sorts by id, creation or update time, either way; a bad sort, limit or
// offset is 400 naming the value.
TEST_F(PlaybookRunnerTest, RunListSorts) {
  addPlaybook("approve", approvalPlaybook("1h", "reject"));
  startRunner();
  for (const char* tenant : {"acme", "globex", "acme"}) runner_->onAlert(alert(tenant));
  runner_->flush();
  Principal admin{"root", "tok", Role::kAdmin, {}, ""};

  auto ids = [&](const std::string& sort) {
    ApiRequest request;
    request.query.emplace("sort", sort);
    auto response = internal::listRunsHandler(*runner_->store(), request, admin, std::nullopt);
    EXPECT_TRUE(response.ok()) << response.status();
    std::vector<int64_t> out;
    if (!response.ok()) return out;
    json body = json::parse(response->body);
    EXPECT_EQ(body["total"], 3);
    for (const json& item : body["items"]) out.push_back(item["id"].get<int64_t>());
    return out;
  };
  const std::vector<int64_t> ascending = ids("id");
  ASSERT_EQ(ascending.size(), 3u);
  EXPECT_LT(ascending[0], ascending[1]);
  EXPECT_LT(ascending[1], ascending[2]);
  const std::vector<int64_t> descending(ascending.rbegin(), ascending.rend());
  EXPECT_EQ(ids("-id"), descending);
  EXPECT_EQ(ids("created"), ascending);
  EXPECT_EQ(ids("-created"), descending);

  ApiRequest approvals;
  approvals.query.emplace("sort", "id");
  approvals.query.emplace("limit", "1");
  approvals.query.emplace("offset", "1");
  auto page = internal::listRunsHandler(*runner_->store(), approvals, admin,
                                        RunState::kWaitingApproval);
  ASSERT_TRUE(page.ok()) << page.status();
  json body = json::parse(page->body);
  EXPECT_EQ(body["total"], 3);
  ASSERT_EQ(body["items"].size(), 1u);
  EXPECT_EQ(body["items"][0]["id"], ascending[1]);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"sort", "tenant"}, {"limit", "0"}, {"limit", "x"}, {"offset", "-2"}};
  for (const auto& [name, value] : bad) {
    ApiRequest request;
    request.query.emplace(name, value);
    auto response = internal::listRunsHandler(*runner_->store(), request, admin, std::nullopt);
    ASSERT_FALSE(response.ok()) << name << "=" << value;
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(response.status().message()), HasSubstr(name + "=" + value));
  }
}

// The run API: lists filter by the principal's tenants, a foreign run is 404, bad queries
// are 400, and approve takes a JSON comment.
TEST_F(PlaybookRunnerTest, RunRoutesFilterByTenant) {
  addPlaybook("approve", approvalPlaybook("1h", "reject"));
  startRunner();
  runner_->onAlert(alert("acme"));
  runner_->onAlert(alert("globex"));
  runner_->flush();

  Principal acme{"alice", "tok", Role::kAnalyst, {"acme"}, ""};
  ApiRequest list;
  auto response = internal::listRunsHandler(*runner_->store(), list, acme, std::nullopt);
  ASSERT_TRUE(response.ok());
  json body = json::parse(response->body);
  ASSERT_EQ(body["total"], 1);
  EXPECT_EQ(body["items"][0]["tenant"], "acme");
  int64_t acme_id = body["items"][0]["id"];

  Principal admin{"root", "tok", Role::kAdmin, {}, ""};
  ApiRequest approvals;
  approvals.query.emplace("tenant", "globex");
  response = internal::listRunsHandler(*runner_->store(), approvals, admin,
                                       RunState::kWaitingApproval);
  body = json::parse(response->body);
  ASSERT_EQ(body["total"], 1);
  int64_t globex_id = body["items"][0]["id"];

  ApiRequest bad;
  bad.query.emplace("state", "sleeping");
  EXPECT_THAT(std::string(internal::listRunsHandler(*runner_->store(), bad, admin, std::nullopt)
                              .status()
                              .message()),
              HasSubstr("state=sleeping is not a run state"));
  ApiRequest limit;
  limit.query.emplace("limit", "0");
  EXPECT_FALSE(internal::listRunsHandler(*runner_->store(), limit, admin, std::nullopt).ok());

  ApiRequest get;
  get.path_params["id"] = std::to_string(globex_id);
  EXPECT_EQ(internal::getRunHandler(*runner_->store(), get, acme).status().code(),
            absl::StatusCode::kNotFound);
  get.path_params["id"] = std::to_string(acme_id);
  response = internal::getRunHandler(*runner_->store(), get, acme);
  ASSERT_TRUE(response.ok());
  body = json::parse(response->body);
  EXPECT_EQ(body["state"], "waiting_approval");
  EXPECT_EQ(body["alert"]["src_ip"], "203.0.113.9");
  EXPECT_EQ(body["steps"].back()["kind"], "approval");

  ApiRequest deny;
  deny.path_params["id"] = std::to_string(acme_id);
  deny.body = R"({"comment": 5})";
  EXPECT_EQ(internal::decideRunHandler(*runner_, deny, acme, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  deny.body = R"({"comment": "benign", "extra": 1})";
  EXPECT_EQ(internal::decideRunHandler(*runner_, deny, acme, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A comment of 100,000 nested arrays is rejected before parsing (it once crashed vigild).
  deny.body = R"({"comment": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(std::string(internal::decideRunHandler(*runner_, deny, acme, false).status().message()),
              HasSubstr("nests arrays and objects deeper than 128 levels"));
  deny.body = R"({"comment": "benign"})";
  response = internal::decideRunHandler(*runner_, deny, acme, false);
  ASSERT_TRUE(response.ok()) << response.status();
  waitForState(acme_id, RunState::kDenied);
}

// The intel connector and intel() read the live indicator snapshot: an address by CIDR,
// a domain through its parent, and an unknown value.
TEST_F(PlaybookRunnerTest, IntelLookupsUseLiveSnapshot) {
  std::ofstream(dir_.file("watch.txt")) << "203.0.113.0/24\nevil.example\n";
  DaemonConfig daemon;
  daemon.state_dir.clear();  // nothing saved or read under the default /var/lib/vigil
  IntelListConfig list;
  list.name = "watch";
  list.path = dir_.file("watch.txt");
  daemon.intel_lists.push_back(list);
  IntelManager intel(daemon, metrics_, 1);
  ASSERT_TRUE(intel.loadInitial().ok());
  addPlaybook("intel", R"(name: intel
trigger: {rule_ids: [r1]}
steps:
  - action: intel.query
    with: {indicators: [alert.src_ip, "login.evil.example", "example.org"]}
    output: verdicts
  - action: intel.lookup
    with: {indicator: alert.src_ip, detail: true}
    output: detail
  - stop: [verdicts, intel(alert.src_ip), intel('example.org'), detail]
)");
  ConnectorConfig c;
  c.name = "ti";
  c.type = "intel";
  addConnector(c);
  route("intel.*", "ti");
  startRunner(&intel.store());
  runner_->onAlert(alert());
  runner_->flush();
  RunRecord run = onlyRun();
  ASSERT_EQ(run.state, RunState::kSucceeded) << run.error;
  EXPECT_THAT(run.result, HasSubstr(R"([["malicious", "malicious", "unknown"], true, false, )"));
  EXPECT_THAT(run.result, HasSubstr("watch"));
  EXPECT_THAT(run.result, HasSubstr("203.0.113.0/24"));
}

// A run sees the indicators of its alert's tenant and of every tenant: acme's run finds
// acme's and the global indicator, globex's run finds neither of acme's.
TEST_F(PlaybookRunnerTest, IntelLookupsSeeOnlyRunTenant) {
  std::ofstream(dir_.file("acme.txt")) << "203.0.113.0/24\nacme-only.example\n";
  std::ofstream(dir_.file("all.txt")) << "shared.example\n";
  DaemonConfig daemon;
  daemon.state_dir.clear();  // nothing saved or read under the default /var/lib/vigil
  IntelListConfig acme;
  acme.name = "acme-feed";
  acme.path = dir_.file("acme.txt");
  acme.tenant = "acme";
  IntelListConfig all;
  all.name = "all";
  all.path = dir_.file("all.txt");
  daemon.intel_lists = {acme, all};
  IntelManager intel(daemon, metrics_, 1);
  ASSERT_TRUE(intel.loadInitial().ok());
  addPlaybook("intel", R"(name: intel
trigger: {rule_ids: [r1]}
steps:
  - action: intel.query
    with: {indicators: [alert.src_ip, "acme-only.example", "shared.example"]}
    output: verdicts
  - stop: [verdicts, intel(alert.src_ip), intel('acme-only.example')]
)");
  ConnectorConfig c;
  c.name = "ti";
  c.type = "intel";
  addConnector(c);
  route("intel.*", "ti");
  startRunner(&intel.store());
  runner_->onAlert(alert("acme"));
  runner_->onAlert(alert("globex"));
  runner_->flush();
  std::map<std::string, std::string> results;
  auto page = runner_->store()->list(RunFilter{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  for (const auto& item : page->items) {
    auto run = runner_->store()->get(item.id);
    ASSERT_TRUE(run.ok());
    ASSERT_EQ(run->state, RunState::kSucceeded) << run->error;
    results[run->tenant] = run->result;
  }
  EXPECT_THAT(results["acme"],
              HasSubstr(R"([["malicious", "malicious", "malicious"], true, true])"));
  EXPECT_THAT(results["globex"],
              HasSubstr(R"([["unknown", "unknown", "malicious"], false, false])"));
}

// Startup validation: a playbook that does not compile names its file, line and column;
// an unknown connector type names the config line.
TEST_F(PlaybookRunnerTest, BadPlaybookFailsCreate) {
  addPlaybook("broken", "name: broken\ntrigger: {}\nsteps:\n  - set: {x: nope + 1}\n");
  auto runner = PlaybookRunner::create(config_, metrics_);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(std::string(runner.status().message()), HasSubstr("broken.yml:4:"));
  EXPECT_THAT(std::string(runner.status().message()), HasSubstr("undefined variable 'nope'"));
}

}  // namespace
}  // namespace vigil::mgmt
