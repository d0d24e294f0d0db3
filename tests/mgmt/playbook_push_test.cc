// Pushed playbooks in process: a real ContentService with the playbooks activator wired
// to a real PlaybookRunner as vigild wires them, alerts in through onAlert(), runs read
// from the run store. Covers activation, rollback, rejected pushes, tenant scoping, runs
// that keep their version across pushes and restarts, and pushes while alerts arrive.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/case_store.h"
#include "mgmt/content_activators.h"
#include "mgmt/content_service.h"
#include "mgmt/content_store.h"
#include "mgmt/mgmt_test_util.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using testing::makeAlert;
using testing::TempDir;
using testing::waitFor;

// A playbook named NAME that logs NOTE on every alert of rule r1.
std::string loggingPlaybook(const std::string& name, const std::string& note,
                            const std::string& extra_trigger = "") {
  return "name: " + name + "\ntrigger:\n  rule_ids: [r1]\n" + extra_trigger +
         "steps:\n  - log: \"" + note + "\"\n";
}

// A playbook that waits for approval, then logs "NOTE approved".
std::string approvalPlaybook(const std::string& note) {
  return "name: ask\ntrigger:\n  rule_ids: [r1]\nsteps:\n"
         "  - wait_for_approval: \"Act?\"\n    timeout: 1h\n    default: reject\n"
         "    on_approve:\n      - log: \"" + note + " approved\"\n"
         "    on_reject:\n      - log: \"" + note + " rejected\"\n";
}

class PlaybookPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cases = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(cases.ok()) << cases.status();
    cases_ = std::move(*cases);
    config_.enabled = true;
    config_.section = true;
    config_.default_case = false;
    config_.db = dir_.file("runs.db");
    config_.queue_capacity = 4096;
    config_.enqueue_wait_ms = 10000;
    std::filesystem::create_directories(dir_.file("playbooks"));
    std::ofstream(dir_.file("playbooks/configured.yml"))
        << loggingPlaybook("configured", "from the file", "  tenants: [nobody]\n");
    config_.paths = {dir_.file("playbooks")};
  }
  void TearDown() override { stopAll(); }

  // Builds the runner and the content service, restores the stored active versions as
  // vigild does at start, then starts the runner.
  void startAll() {
    auto runner = PlaybookRunner::create(config_, metrics_);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = std::move(*runner);
    auto store = ContentStore::open(dir_.file("content.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    content_store_ = std::move(*store);
    content_ = std::make_unique<ContentService>(*content_store_, metrics_);
    PlaybookActivation activation;
    activation.tenant_scoped = true;
    activation.all_tenants_scope = true;
    PlaybookRunner* runner_ptr = runner_.get();
    activation.check = [runner_ptr](const PlaybookBundle& bundle,
                                    std::vector<ContentProblem>& problems) {
      runner_ptr->checkPushed(bundle, problems);
    };
    activation.listener = [runner_ptr](std::shared_ptr<const PlaybookBundle> bundle) {
      return runner_ptr->activatePushed(*bundle);
    };
    content_->setActivator(ContentKind::kPlaybooks, playbooksActivator(std::move(activation)));
    content_->restoreActive(ContentKind::kPlaybooks);
    ASSERT_TRUE(runner_->start(cases_.get(), nullptr).ok());
  }

  void stopAll() {
    if (runner_) runner_->stop();
    runner_.reset();
    content_.reset();
    content_store_.reset();
  }

  // Pushes `files` for `tenant` and expects it accepted; returns the version.
  int64_t push(const std::string& tenant, const ContentFiles& files) {
    auto result = content_->push(ContentKind::kPlaybooks, tenant, "alice", files);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return 0;
    EXPECT_TRUE(result->problems.empty()) << result->problems[0].message;
    EXPECT_TRUE(result->version.has_value());
    return result->version ? result->version->version : 0;
  }

  // Pushes `files` and returns the problems of the rejected push.
  std::vector<ContentProblem> pushRejected(const std::string& tenant, const ContentFiles& files) {
    auto result = content_->push(ContentKind::kPlaybooks, tenant, "alice", files);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    EXPECT_FALSE(result->version.has_value());
    return result->problems;
  }

  // Pushes approvalPlaybook(note) for acme and sends one alert of acme. Returns the run,
  // which waits for approval.
  RunRecord waitingRun(const std::string& note) {
    push("acme", {{"ask.yml", approvalPlaybook(note)}});
    runner_->onAlert(alert("acme"));
    runner_->flush();
    std::vector<RunRecord> all = runs();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? RunRecord{} : all[0];
  }

  correlate::Alert alert(const std::string& tenant) {
    return makeAlert("r1", "high", tenant, {{"src_ip", "203.0.113.9"}}, testing::kT0);
  }

  // Every run, newest first, with its steps.
  std::vector<RunRecord> runs() {
    RunFilter filter;
    filter.limit = RunFilter::kMaxLimit;
    auto page = runner_->store()->list(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<RunRecord> out;
    if (!page.ok()) return out;
    for (const RunRecord& item : page->items) {
      auto run = runner_->store()->get(item.id);
      EXPECT_TRUE(run.ok()) << run.status();
      if (run.ok()) out.push_back(*run);
    }
    return out;
  }

  // The messages of the run's log steps, in order.
  static std::vector<std::string> logs(const RunRecord& run) {
    std::vector<std::string> out;
    for (const RunStep& step : run.steps) {
      if (step.kind == "log") out.push_back(step.message);
    }
    return out;
  }

  RunRecord waitForState(int64_t id, RunState state) {
    RunRecord last;
    bool reached = waitFor([&] {
      auto run = runner_->store()->get(id);
      if (!run.ok()) return false;
      last = *run;
      return run->state == state;
    });
    EXPECT_TRUE(reached) << "run " << id << " is " << runStateName(last.state);
    return last;
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  PlaybookRunnerConfig config_;
  std::unique_ptr<CaseStore> cases_;
  std::unique_ptr<PlaybookRunner> runner_;
  std::unique_ptr<ContentStore> content_store_;
  std::unique_ptr<ContentService> content_;
};

TEST_F(PlaybookPushTest, PushedPlaybookStartsRuns) {
  startAll();
  push("acme", {{"notify.yml", loggingPlaybook("notify", "v1")}});
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::vector<RunRecord> all = runs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].playbook, "acme/notify");
  EXPECT_EQ(all[0].tenant, "acme");
  EXPECT_EQ(all[0].state, RunState::kSucceeded);
  EXPECT_THAT(logs(all[0]), ::testing::ElementsAre("v1"));
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_started_total", {{"playbook", "acme/notify"}}), 1u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total",
                         {{"playbook", "acme/notify"}, {"state", "succeeded"}}),
            1u);
}

TEST_F(PlaybookPushTest, RollbackSwapsBack) {
  startAll();
  const int64_t v1 = push("acme", {{"notify.yml", loggingPlaybook("notify", "v1")}});
  push("acme", {{"notify.yml", loggingPlaybook("notify", "v2")}});
  runner_->onAlert(alert("acme"));
  runner_->flush();
  ASSERT_TRUE(content_->activate(ContentKind::kPlaybooks, "acme", v1, "alice").ok());
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::vector<RunRecord> all = runs();  // newest first
  ASSERT_EQ(all.size(), 2u);
  EXPECT_THAT(logs(all[1]), ::testing::ElementsAre("v2"));
  EXPECT_THAT(logs(all[0]), ::testing::ElementsAre("v1"));
  EXPECT_NE(all[0].playbook_hash, all[1].playbook_hash);
}

TEST_F(PlaybookPushTest, FailedPushChangesNothing) {
  startAll();
  push("acme", {{"notify.yml", loggingPlaybook("notify", "v1")}});

  std::vector<ContentProblem> broken =
      pushRejected("acme", {{"notify.yml", "name: notify\nsteps:\n  - nonsense: [\n"}});
  ASSERT_FALSE(broken.empty());
  EXPECT_EQ(broken[0].file, "notify.yml");

  std::vector<ContentProblem> twice =
      pushRejected("acme", {{"a.yml", loggingPlaybook("notify", "a")},
                            {"b.yml", loggingPlaybook("notify", "b")}});
  ASSERT_EQ(twice.size(), 1u);
  EXPECT_EQ(twice[0].file, "b.yml");
  EXPECT_THAT(twice[0].message, HasSubstr("'notify' is also the name of a.yml"));

  // Only versions that were accepted are stored.
  auto versions = content_store_->list(ContentKind::kPlaybooks, "acme");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 1u);
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::vector<RunRecord> all = runs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_THAT(logs(all[0]), ::testing::ElementsAre("v1"));
}

TEST_F(PlaybookPushTest, EveryTenantNameClashRejected) {
  startAll();
  std::vector<ContentProblem> clash = pushRejected(
      std::string(kAllTenants), {{"mine.yml", loggingPlaybook("configured", "pushed")}});
  ASSERT_EQ(clash.size(), 1u);
  EXPECT_EQ(clash[0].file, "mine.yml");
  EXPECT_THAT(clash[0].message, HasSubstr("'configured' is the name of a configured playbook"));
  EXPECT_THAT(clash[0].message, HasSubstr("?tenant=NAME"));
  auto versions = content_store_->list(ContentKind::kPlaybooks, kAllTenants);
  ASSERT_TRUE(versions.ok());
  EXPECT_TRUE(versions->empty());

  // For one tenant the same name runs under the tenant's prefix, next to the configured
  // playbook.
  push("acme", {{"mine.yml", loggingPlaybook("configured", "pushed")}});
  std::shared_ptr<const PlaybookSet> set = runner_->activePlaybooks();
  ASSERT_EQ(set->tenants.count("acme"), 1u);
  EXPECT_EQ(set->tenants.at("acme").at(0)->loaded.name, "acme/configured");
  ASSERT_EQ(set->configured.size(), 1u);
  EXPECT_EQ(set->configured[0]->loaded.name, "configured");
}

TEST_F(PlaybookPushTest, TenantPlaybookSkipsOtherTenants) {
  startAll();
  // The trigger names globex, but a playbook acme pushed runs only on acme's alerts.
  push("acme", {{"grab.yml", loggingPlaybook("grab", "acme's", "  tenants: [globex]\n")},
                {"own.yml", loggingPlaybook("own", "acme's")}});
  push("globex", {{"own.yml", loggingPlaybook("own", "globex's")}});
  runner_->onAlert(alert("globex"));
  runner_->onAlert(alert("initech"));
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::map<std::string, std::set<std::string>> playbooks_by_tenant;
  for (const RunRecord& run : runs()) playbooks_by_tenant[run.tenant].insert(run.playbook);
  EXPECT_EQ(playbooks_by_tenant["acme"], (std::set<std::string>{"acme/own"}));
  EXPECT_EQ(playbooks_by_tenant["globex"], (std::set<std::string>{"globex/own"}));
  EXPECT_EQ(playbooks_by_tenant.count("initech"), 0u);
}

TEST_F(PlaybookPushTest, EveryTenantPlaybookRunsForAll) {
  startAll();
  push(std::string(kAllTenants), {{"all.yml", loggingPlaybook("all", "shared")}});
  runner_->onAlert(alert("acme"));
  runner_->onAlert(alert("globex"));
  runner_->flush();
  std::set<std::string> tenants;
  for (const RunRecord& run : runs()) {
    EXPECT_EQ(run.playbook, "all");
    tenants.insert(run.tenant);
  }
  EXPECT_EQ(tenants, (std::set<std::string>{"acme", "globex"}));
}

TEST_F(PlaybookPushTest, SuspendedRunKeepsItsVersion) {
  startAll();
  RunRecord waiting = waitingRun("v1");
  ASSERT_EQ(waiting.state, RunState::kWaitingApproval);

  push("acme", {{"ask.yml", approvalPlaybook("v2")}});
  ASSERT_TRUE(runner_->decide(waiting.id, true, testing::adminPrincipal(), "").ok());
  RunRecord done = waitForState(waiting.id, RunState::kSucceeded);
  EXPECT_THAT(logs(done), ::testing::ElementsAre("v1 approved"));
  EXPECT_EQ(done.playbook_hash, waiting.playbook_hash);
}

// Deleting one playbook by name activates a version with the other files; deleting the
// tenant's set leaves none; rolling back brings them back.
TEST_F(PlaybookPushTest, DeletedPlaybookStopsRunning) {
  startAll();
  const int64_t v1 = push("acme", {{"notify.yml", loggingPlaybook("notify", "n")},
                                   {"page.yml", loggingPlaybook("page", "p")}});
  auto removed = content_->remove(ContentKind::kPlaybooks, "acme", "alice", "notify");
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_TRUE(removed->problems.empty()) << removed->problems[0].message;
  ASSERT_TRUE(removed->version.has_value());
  EXPECT_EQ(removed->version->version, v1 + 1);
  ASSERT_EQ(removed->version->files.size(), 1u);
  EXPECT_EQ(removed->version->files.begin()->first, "page.yml");
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::vector<RunRecord> all = runs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].playbook, "acme/page");

  auto missing = content_->remove(ContentKind::kPlaybooks, "acme", "alice", "notify");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("'notify'"));

  auto everything = content_->remove(ContentKind::kPlaybooks, "acme", "alice", "");
  ASSERT_TRUE(everything.ok()) << everything.status();
  ASSERT_TRUE(everything->version.has_value());
  EXPECT_TRUE(everything->version->files.empty());
  runner_->onAlert(alert("acme"));
  runner_->flush();
  EXPECT_EQ(runs().size(), 1u);

  auto again = content_->remove(ContentKind::kPlaybooks, "acme", "alice", "");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(content_->activate(ContentKind::kPlaybooks, "acme", v1, "alice").ok());
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::set<std::string> names;
  for (const RunRecord& run : runs()) names.insert(run.playbook);
  EXPECT_EQ(names, (std::set<std::string>{"acme/notify", "acme/page"}));
  EXPECT_EQ(runs().size(), 3u);
}

// The playbooks for every tenant are deleted one by one, never as a whole.
TEST_F(PlaybookPushTest, EveryTenantPlaybooksDeletedByName) {
  startAll();
  push(std::string(kAllTenants), {{"notify.yml", loggingPlaybook("notify", "n")}});
  auto whole = content_->remove(ContentKind::kPlaybooks, std::string(kAllTenants), "alice", "");
  ASSERT_FALSE(whole.ok());
  EXPECT_EQ(whole.status().code(), absl::StatusCode::kInvalidArgument);
  auto by_name =
      content_->remove(ContentKind::kPlaybooks, std::string(kAllTenants), "alice", "notify");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  ASSERT_TRUE(by_name->version.has_value());
  runner_->onAlert(alert("acme"));
  runner_->flush();
  EXPECT_TRUE(runs().empty());
}

// A run that waits for approval keeps its playbook when the playbook is deleted, also
// across a restart, and a restart keeps the deletion.
TEST_F(PlaybookPushTest, WaitingRunSurvivesDeletion) {
  startAll();
  RunRecord waiting = waitingRun("v1");
  ASSERT_EQ(waiting.state, RunState::kWaitingApproval);
  auto removed = content_->remove(ContentKind::kPlaybooks, "acme", "alice", "ask");
  ASSERT_TRUE(removed.ok()) << removed.status();

  stopAll();
  startAll();
  runner_->onAlert(alert("acme"));
  runner_->flush();
  EXPECT_EQ(runs().size(), 1u);
  ASSERT_TRUE(runner_->decide(waiting.id, true, testing::adminPrincipal(), "").ok());
  RunRecord done = waitForState(waiting.id, RunState::kSucceeded);
  EXPECT_THAT(logs(done), ::testing::ElementsAre("v1 approved"));
}

TEST_F(PlaybookPushTest, RestartRestoresPushedPlaybooks) {
  startAll();
  push("acme", {{"ask.yml", approvalPlaybook("v1")}});
  runner_->onAlert(alert("acme"));
  runner_->flush();
  // v1 is no longer active at the restart, so its waiting run needs v1 from the run store.
  push("acme", {{"ask.yml", approvalPlaybook("v2")}});
  std::vector<RunRecord> waiting = runs();
  ASSERT_EQ(waiting.size(), 1u);
  stopAll();

  startAll();
  std::shared_ptr<const PlaybookSet> set = runner_->activePlaybooks();
  ASSERT_EQ(set->tenants.count("acme"), 1u);
  EXPECT_EQ(set->tenants.at("acme").at(0)->version, 2);
  ASSERT_TRUE(runner_->decide(waiting[0].id, true, testing::adminPrincipal(), "").ok());
  RunRecord done = waitForState(waiting[0].id, RunState::kSucceeded);
  EXPECT_THAT(logs(done), ::testing::ElementsAre("v1 approved"));

  // New alerts run the restored v2.
  runner_->onAlert(alert("acme"));
  runner_->flush();
  std::vector<RunRecord> all = runs();
  ASSERT_EQ(all.size(), 2u);
  ASSERT_EQ(all[0].state, RunState::kWaitingApproval);
  ASSERT_TRUE(runner_->decide(all[0].id, true, testing::adminPrincipal(), "").ok());
  EXPECT_THAT(logs(waitForState(all[0].id, RunState::kSucceeded)),
              ::testing::ElementsAre("v2 approved"));
}

// A configured playbook added later takes the name of the active set for every tenant:
// that set is not loaded at the next start, and the restore failure is counted.
TEST_F(PlaybookPushTest, LaterNameClashSkipsRestore) {
  startAll();
  push(std::string(kAllTenants), {{"later.yml", loggingPlaybook("later", "pushed")}});
  stopAll();

  std::ofstream(dir_.file("playbooks/later.yml")) << loggingPlaybook("later", "from the file");
  startAll();
  std::shared_ptr<const PlaybookSet> set = runner_->activePlaybooks();
  EXPECT_TRUE(set->every_tenant.empty());
  EXPECT_EQ(set->configured.size(), 2u);
  EXPECT_EQ(metrics_.sum("vigil_content_operations_total",
                         {{"kind", "playbooks"}, {"outcome", "restore_failed"}}),
            1u);
}

// Alerts arrive while versions are pushed: each version has two playbooks that log the
// version, and the two runs of every alert must come from one version.
TEST_F(PlaybookPushTest, PushesUnderLoadNeverMix) {
  config_.workers = 2;
  startAll();
  auto version = [](int n) {
    const std::string note = "v" + std::to_string(n);
    return ContentFiles{{"first.yml", loggingPlaybook("first", note)},
                        {"second.yml", loggingPlaybook("second", note)}};
  };
  push("acme", version(0));
  constexpr int kPushes = 20;
  constexpr int kAlerts = 400;
  std::atomic<bool> pushing{true};
  std::thread pusher([&] {
    for (int n = 1; n <= kPushes; ++n) push("acme", version(n));
    pushing = false;
  });
  int sent = 0;
  while (sent < kAlerts || pushing) {
    runner_->onAlert(alert("acme"));
    ++sent;
  }
  pusher.join();
  runner_->flush();

  std::map<std::string, std::vector<std::string>> notes_by_alert;
  RunFilter filter;
  filter.limit = RunFilter::kMaxLimit;
  for (int64_t offset = 0;; offset += filter.limit) {
    filter.offset = offset;
    auto page = runner_->store()->list(filter);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->items.empty()) break;
    for (const RunRecord& item : page->items) {
      auto run = runner_->store()->get(item.id);
      ASSERT_TRUE(run.ok()) << run.status();
      ASSERT_EQ(logs(*run).size(), 1u);
      notes_by_alert[run->alert_id].push_back(logs(*run)[0]);
    }
  }
  ASSERT_EQ(notes_by_alert.size(), static_cast<size_t>(sent));
  std::set<std::string> versions_seen;
  for (const auto& [alert_id, notes] : notes_by_alert) {
    ASSERT_EQ(notes.size(), 2u) << alert_id;
    EXPECT_EQ(notes[0], notes[1]) << alert_id;
    versions_seen.insert(notes[0]);
  }
  EXPECT_GT(versions_seen.size(), 1u);
}

}  // namespace
}  // namespace vigil::mgmt
