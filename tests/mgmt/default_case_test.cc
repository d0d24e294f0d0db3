// Alerts to cases through the default-case playbook: the alert inbox of the case store,
// the case sink handing stored alerts to the playbook runner, and the case.attach_alert
// action that files them with the grouping and times the case sink used to apply.
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "httplib.h"
#include "gtest/gtest.h"
#include "mgmt/case_sink.h"
#include "mgmt/case_store.h"
#include "mgmt/default_case_playbook.h"
#include "mgmt/internal/stored_alert.h"
#include "mgmt/playbook_runner.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using testing::makeAlert;
using testing::TempDir;
using testing::waitFor;

constexpr int64_t kNow = testing::kT0;

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(StoredAlertTest, RoundTripsEveryField) {
  correlate::Alert alert = makeAlert("r1", "high", "acme", {{"z", "1"}, {"a", "2"}}, kNow);
  alert.metric = 7.5;
  alert.rules_version = 4;
  alert.receive_ns = kNow - 1234;
  absl::StatusOr<correlate::Alert> back =
      internal::decodeStoredAlert(internal::encodeStoredAlert(alert));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(correlate::alertToJson(*back), correlate::alertToJson(alert));
  EXPECT_EQ(back->group, alert.group);  // order kept, unlike alertToJson
  EXPECT_EQ(back->first_event_ns, alert.first_event_ns);
  EXPECT_EQ(back->detect_ns, alert.detect_ns);
  EXPECT_EQ(back->metric, 7.5);
  EXPECT_EQ(back->receive_ns, kNow - 1234);
}

TEST(StoredAlertTest, RejectsMalformedText) {
  EXPECT_TRUE(absl::IsDataLoss(internal::decodeStoredAlert("[1]").status()));
  absl::Status missing = internal::decodeStoredAlert(R"({"id": "a"})").status();
  EXPECT_TRUE(absl::IsDataLoss(missing)) << missing;
}

class AlertInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  TempDir dir_;
  std::unique_ptr<CaseStore> store_;
};

TEST_F(AlertInboxTest, AttachGroupsLikeIngest) {
  std::vector<correlate::Alert> alerts = {
      makeAlert("ssh", "low", "acme", {{"ip", "1"}}, kNow),
      makeAlert("ssh", "critical", "acme", {{"ip", "1"}}, kNow + 5),
      makeAlert("ssh", "low", "acme", {{"ip", "2"}}, kNow + 9),
  };
  absl::StatusOr<std::vector<int64_t>> ids = store_->queueAlerts(alerts);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ(*store_->queuedAlertCount(), 3);
  CasePage none = *store_->listCases(CaseFilter{});
  EXPECT_EQ(none.total, 0);  // stored, but in no case yet

  absl::StatusOr<IngestResult> first = store_->attachQueuedAlert((*ids)[0]);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->opened_case);
  absl::StatusOr<IngestResult> second = store_->attachQueuedAlert((*ids)[1]);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->opened_case);
  EXPECT_EQ(second->case_id, first->case_id);
  absl::StatusOr<IngestResult> third = store_->attachQueuedAlert((*ids)[2]);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE(third->opened_case);
  EXPECT_NE(third->case_id, first->case_id);
  EXPECT_EQ(*store_->queuedAlertCount(), 0);

  CaseDetail detail = *store_->getCase(first->case_id);
  EXPECT_EQ(detail.info.alert_count, 2);
  EXPECT_EQ(detail.info.severity, Severity::kCritical);
  EXPECT_EQ(detail.info.detect_ns, kNow);
  EXPECT_EQ(detail.info.first_event_ns, alerts[0].first_event_ns);
  EXPECT_EQ(detail.info.title, "Rule ssh: ip=1");
  ASSERT_EQ(detail.alerts.size(), 2u);
  EXPECT_EQ(detail.alerts[0].alert_id, alerts[0].id);
  EXPECT_EQ(detail.evidence.size(), 4u);
}

TEST_F(AlertInboxTest, AttachTwiceIsNotFound) {
  int64_t id = store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow)})->front();
  ASSERT_TRUE(store_->attachQueuedAlert(id).ok());
  absl::Status again = store_->attachQueuedAlert(id).status();
  EXPECT_TRUE(absl::IsNotFound(again)) << again;
  EXPECT_THAT(std::string(again.message()), HasSubstr("filed in a case already"));
  EXPECT_EQ(store_->listCases(CaseFilter{})->total, 1);
}

TEST_F(AlertInboxTest, AttachOfOtherTenantIsNotFound) {
  int64_t id = store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow)})->front();
  absl::Status other = store_->attachQueuedAlert(id, "globex").status();
  EXPECT_TRUE(absl::IsNotFound(other)) << other;
  EXPECT_THAT(std::string(other.message()), HasSubstr("not an alert of tenant globex"));
  EXPECT_EQ(*store_->queuedAlertCount(), 1);
  EXPECT_EQ(store_->listCases(CaseFilter{})->total, 0);
  absl::StatusOr<IngestResult> own = store_->attachQueuedAlert(id, "acme");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_TRUE(own->opened_case);
}

// Inside runKeyedAction() the filing has no savepoint of its own: a failing action rolls
// back the filing with everything else, and the alert stays in the inbox.
TEST_F(AlertInboxTest, AttachRollsBackWithKeyedAction) {
  int64_t id = store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow)})->front();
  bool replayed = false;
  auto failing = [&]() -> absl::StatusOr<CaseStore::KeyedActionResult> {
    absl::StatusOr<IngestResult> filed = store_->attachQueuedAlert(id, "acme");
    if (!filed.ok()) return filed.status();
    return absl::UnavailableError("connector down after the filing");
  };
  absl::Status failed =
      store_->runKeyedAction("vigil-k1", "acme", "case.attach_alert", failing, &replayed).status();
  EXPECT_TRUE(absl::IsUnavailable(failed)) << failed;
  EXPECT_EQ(*store_->queuedAlertCount(), 1);
  EXPECT_EQ(store_->listCases(CaseFilter{})->total, 0);

  auto filing = [&]() -> absl::StatusOr<CaseStore::KeyedActionResult> {
    absl::StatusOr<IngestResult> filed = store_->attachQueuedAlert(id, "acme");
    if (!filed.ok()) return filed.status();
    return CaseStore::KeyedActionResult{filed->case_id, std::to_string(filed->case_id)};
  };
  auto done = store_->runKeyedAction("vigil-k1", "acme", "case.attach_alert", filing, &replayed);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(replayed);
  EXPECT_EQ(*store_->queuedAlertCount(), 0);
  EXPECT_EQ(store_->getCase(done->case_id)->alerts.size(), 1u);
}

// Files inbox alert `inbox_id` under idempotency key `key`, as the case connector does.
absl::StatusOr<CaseStore::KeyedActionResult> fileKeyed(CaseStore& store, const std::string& key,
                                                       int64_t inbox_id, bool* replayed) {
  auto filing = [&]() -> absl::StatusOr<CaseStore::KeyedActionResult> {
    absl::StatusOr<IngestResult> filed = store.attachQueuedAlert(inbox_id, "acme");
    if (!filed.ok()) return filed.status();
    return CaseStore::KeyedActionResult{filed->case_id, std::to_string(filed->case_id)};
  };
  return store.runKeyedAction(key, "acme", "case.attach_alert", filing, replayed);
}

std::vector<std::string> stepKinds(const RunRecord& run) {
  std::vector<std::string> kinds;
  for (const RunStep& step : run.steps) kinds.push_back(step.kind);
  return kinds;
}

// Alerts in any case, as a second connection to the database reads them: only what was
// committed.
int64_t committedAlerts(CaseStore& reader) {
  int64_t total = 0;
  absl::StatusOr<CasePage> page = reader.listCases(CaseFilter{});
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return -1;
  for (const Case& item : page->items) total += item.alert_count;
  return total;
}

// The keyed actions of a group share one transaction: nothing is visible to another
// connection until commitGroup(), then every filing is.
TEST_F(AlertInboxTest, GroupCommitsFilingsTogether) {
  auto reader = CaseStore::open(dir_.file("cases.db"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<int64_t> ids = *store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow),
                                                   makeAlert("ssh", "low", "acme", {}, kNow + 1),
                                                   makeAlert("ftp", "low", "acme", {}, kNow)});
  ASSERT_TRUE(store_->tryBeginGroupCommit());
  EXPECT_TRUE(store_->inGroupCommit());
  bool replayed = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto done = fileKeyed(*store_, "vigil-g" + std::to_string(i), ids[i], &replayed);
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_FALSE(replayed);
  }
  EXPECT_EQ(committedAlerts(**reader), 0);
  EXPECT_EQ(*(*reader)->queuedAlertCount(), 3);
  ASSERT_TRUE(store_->commitGroup().ok());
  EXPECT_FALSE(store_->inGroupCommit());
  EXPECT_EQ(committedAlerts(**reader), 3);
  EXPECT_EQ((*reader)->listCases(CaseFilter{})->total, 2);
  EXPECT_EQ(*(*reader)->queuedAlertCount(), 0);
  // The keys were committed with the filings.
  auto again = fileKeyed(*store_, "vigil-g0", ids[0], &replayed);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(replayed);
}

// A failed action inside a group undoes only its own writes, because it has a savepoint.
// The other filings of the group commit, and the failed alert stays in the inbox.
TEST_F(AlertInboxTest, GroupKeepsOtherFilingsWhenOneFails) {
  std::vector<int64_t> ids = *store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow),
                                                   makeAlert("ssh", "low", "acme", {}, kNow + 1),
                                                   makeAlert("ssh", "low", "acme", {}, kNow + 2)});
  ASSERT_TRUE(store_->tryBeginGroupCommit());
  bool replayed = false;
  ASSERT_TRUE(fileKeyed(*store_, "vigil-a", ids[0], &replayed).ok());
  auto failing = [&]() -> absl::StatusOr<CaseStore::KeyedActionResult> {
    absl::StatusOr<IngestResult> filed = store_->attachQueuedAlert(ids[1], "acme");
    if (!filed.ok()) return filed.status();
    return absl::UnavailableError("connector down after the filing");
  };
  absl::Status failed =
      store_->runKeyedAction("vigil-b", "acme", "case.attach_alert", failing, &replayed).status();
  EXPECT_TRUE(absl::IsUnavailable(failed)) << failed;
  ASSERT_TRUE(fileKeyed(*store_, "vigil-c", ids[2], &replayed).ok());
  ASSERT_TRUE(store_->commitGroup().ok());

  EXPECT_EQ(committedAlerts(*store_), 2);
  EXPECT_EQ(*store_->queuedAlertCount(), 1);
  auto retry = fileKeyed(*store_, "vigil-b", ids[1], &replayed);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(replayed);  // the failed attempt recorded no key
  EXPECT_EQ(committedAlerts(*store_), 3);
}

// A call from another thread never works inside the group's transaction. Once its wait
// (zero here) is over, it commits the group's filings, and the group goes on in a new
// transaction.
TEST_F(AlertInboxTest, OtherThreadCommitsOpenGroup) {
  store_.reset();
  CaseStoreOptions options;
  options.foreign_group_wait = std::chrono::milliseconds(0);
  auto store = CaseStore::open(dir_.file("cases.db"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
  auto reader = CaseStore::open(dir_.file("cases.db"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<int64_t> ids = *store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow),
                                                   makeAlert("ssh", "low", "acme", {}, kNow + 1)});
  ASSERT_TRUE(store_->tryBeginGroupCommit());
  bool replayed = false;
  ASSERT_TRUE(fileKeyed(*store_, "vigil-1", ids[0], &replayed).ok());
  EXPECT_EQ(committedAlerts(**reader), 0);

  bool other_group = true;
  std::thread other([&] {
    EXPECT_FALSE(store_->inGroupCommit());
    other_group = store_->tryBeginGroupCommit();  // the first group is still open
    EXPECT_EQ(committedAlerts(*store_), 1);
    ASSERT_TRUE(store_->queueAlerts({makeAlert("ftp", "low", "acme", {}, kNow)}).ok());
  });
  other.join();
  EXPECT_FALSE(other_group);
  EXPECT_EQ(committedAlerts(**reader), 1);  // committed by the other thread's call
  EXPECT_EQ(*(*reader)->queuedAlertCount(), 2);

  ASSERT_TRUE(fileKeyed(*store_, "vigil-2", ids[1], &replayed).ok());
  ASSERT_TRUE(store_->commitGroup().ok());
  EXPECT_EQ(committedAlerts(**reader), 2);
  EXPECT_EQ(*(*reader)->queuedAlertCount(), 1);
}

// A call from another thread waits for the owner to commit the open group, so the group's
// filings stay in one commit. The call then runs in its own transaction.
TEST_F(AlertInboxTest, OtherThreadWaitsForOpenGroup) {
  store_.reset();
  CaseStoreOptions options;
  options.foreign_group_wait = std::chrono::minutes(1);  // far beyond this test's run time
  auto store = CaseStore::open(dir_.file("cases.db"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
  auto reader = CaseStore::open(dir_.file("cases.db"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<int64_t> ids = *store_->queueAlerts(
      {makeAlert("ssh", "low", "acme", {}, kNow), makeAlert("ssh", "low", "acme", {}, kNow + 1)});
  ASSERT_TRUE(store_->tryBeginGroupCommit());
  bool replayed = false;
  ASSERT_TRUE(fileKeyed(*store_, "vigil-1", ids[0], &replayed).ok());

  std::atomic<bool> other_started{false};
  std::atomic<bool> other_done{false};
  std::thread other([&] {
    other_started = true;
    EXPECT_TRUE(store_->queueAlerts({makeAlert("ftp", "low", "acme", {}, kNow)}).ok());
    other_done = true;
  });
  ASSERT_TRUE(waitFor([&] { return other_started.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(other_done.load());
  EXPECT_EQ(committedAlerts(**reader), 0);  // the other call did not commit the group

  ASSERT_TRUE(fileKeyed(*store_, "vigil-2", ids[1], &replayed).ok());
  ASSERT_TRUE(store_->commitGroup().ok());
  other.join();
  EXPECT_TRUE(other_done.load());
  EXPECT_EQ(committedAlerts(**reader), 2);
  EXPECT_EQ(*(*reader)->queuedAlertCount(), 1);  // the other thread's alert
}

TEST_F(AlertInboxTest, CommitGroupWithoutGroupIsAnError) {
  absl::Status status = store_->commitGroup();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("tryBeginGroupCommit()"));
}

// The group's COMMIT fails for real: the file size limit (RLIMIT_FSIZE) stops SQLite from
// appending the group's pages to the WAL. Every filing of the group is rolled back with
// its key, so running the same keyed actions again files each alert exactly once.
TEST_F(AlertInboxTest, FailedGroupCommitRollsBackEveryFiling) {
  std::vector<int64_t> ids = *store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow),
                                                   makeAlert("ftp", "low", "acme", {}, kNow)});
  ASSERT_TRUE(store_->tryBeginGroupCommit());
  bool replayed = false;
  ASSERT_TRUE(fileKeyed(*store_, "vigil-x", ids[0], &replayed).ok());
  ASSERT_TRUE(fileKeyed(*store_, "vigil-y", ids[1], &replayed).ok());

  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &previous), 0);  // EFBIG instead of the signal
  struct rlimit tiny = saved;
  tiny.rlim_cur = 1;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tiny), 0);
  absl::Status committed = store_->commitGroup();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &previous, nullptr), 0);

  EXPECT_FALSE(committed.ok());
  EXPECT_FALSE(store_->inGroupCommit());
  EXPECT_EQ(committedAlerts(*store_), 0);
  EXPECT_EQ(*store_->queuedAlertCount(), 2);
  for (auto [key, id] : {std::pair<std::string, int64_t>{"vigil-x", ids[0]}, {"vigil-y", ids[1]}}) {
    auto again = fileKeyed(*store_, key, id, &replayed);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(replayed) << key;
  }
  EXPECT_EQ(committedAlerts(*store_), 2);
  EXPECT_EQ(*store_->queuedAlertCount(), 0);
}

TEST_F(AlertInboxTest, RejectsUnknownLevelAndStoresNothing) {
  absl::Status bad = store_->queueAlerts({makeAlert("ssh", "low", "acme", {}, kNow),
                                          makeAlert("ssh", "severe", "acme", {}, kNow)})
                         .status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_THAT(std::string(bad.message()), HasSubstr("level=severe"));
  EXPECT_EQ(*store_->queuedAlertCount(), 0);
}

// Records what the case sink hands over.
class RecordingFiler : public StoredAlertSink {
 public:
  void onStoredAlert(const correlate::Alert& alert, int64_t inbox_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    handed_.emplace_back(alert.id, inbox_id);
  }
  std::vector<std::pair<std::string, int64_t>> handed() {
    std::lock_guard<std::mutex> lock(mu_);
    return handed_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, int64_t>> handed_;
};

// A bad alert in a batch is dropped and counted; the others are stored and handed over.
TEST_F(AlertInboxTest, SinkHandsOverStoredAlertsOnly) {
  MetricsRegistry metrics;
  RecordingFiler filer;
  CaseSinkOptions options;
  options.filer = &filer;
  options.retry_backoff = std::chrono::milliseconds(1);
  correlate::Alert good = makeAlert("ssh", "low", "acme", {}, kNow);
  correlate::Alert bad = makeAlert("ssh", "severe", "acme", {}, kNow);
  {
    CaseSink sink(*store_, metrics, options);
    sink.onAlert(good);
    sink.onAlert(bad);
    sink.flush();
  }
  std::vector<std::pair<std::string, int64_t>> handed = filer.handed();
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_EQ(handed[0].first, good.id);
  EXPECT_GT(handed[0].second, 0);
  EXPECT_EQ(metrics.sum("vigil_alerts_stored_total"), 1u);
  EXPECT_EQ(metrics.sum("vigil_case_sink_dropped_total", {{"reason", "invalid_alert"}}), 1u);
  EXPECT_EQ(*store_->queuedAlertCount(), 1);
  EXPECT_EQ(store_->listCases(CaseFilter{})->total, 0);  // the filer decides cases
}

// The built-in playbook is the shipped file, so what operators read is what runs.
TEST(DefaultCasePlaybookTest, IsTheShippedFile) {
  EXPECT_EQ(std::string(defaultCasePlaybookSource()),
            readAll(VIGIL_SOURCE_DIR "/configs/playbooks/default_case.yml"));
  EXPECT_THAT(std::string(defaultCasePlaybookSource()),
              HasSubstr("name: " + std::string(kDefaultCasePlaybookName) + "\n"));
}

// The daemon's wiring in process: pipeline alerts into the case sink, the sink stores them
// in the inbox and hands them to the runner, whose default-case runs file them.
class DefaultCaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    cases_ = std::move(*store);
    config_.db = dir_.file("runs.db");
  }
  void TearDown() override {
    sink_.reset();
    if (runner_) runner_->stop();
  }

  void start() {
    auto runner = PlaybookRunner::create(config_, metrics_);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = std::move(*runner);
    ASSERT_TRUE(runner_->start(cases_.get(), nullptr).ok());
    CaseSinkOptions options;
    options.filer = runner_.get();
    sink_ = std::make_unique<CaseSink>(*cases_, metrics_, options);
  }

  std::vector<RunRecord> runs() {
    auto page = runner_->store()->list(RunFilter{});
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<RunRecord> out;
    for (const RunRecord& item : page->items) out.push_back(*runner_->store()->get(item.id));
    return out;
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  PlaybookRunnerConfig config_;
  std::unique_ptr<CaseStore> cases_;
  std::unique_ptr<PlaybookRunner> runner_;
  std::unique_ptr<CaseSink> sink_;
};

TEST_F(DefaultCaseTest, RunFilesAlertInCase) {
  start();
  correlate::Alert first = makeAlert("ssh", "medium", "acme", {{"ip", "1"}}, kNow);
  correlate::Alert second = makeAlert("ssh", "high", "acme", {{"ip", "1"}}, kNow + 7);
  sink_->onAlert(first);
  sink_->onAlert(second);
  sink_->flush();  // also flushes the runner

  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), 2u);
  for (const RunRecord& run : recorded) {
    EXPECT_EQ(run.playbook, kDefaultCasePlaybookName);
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    EXPECT_EQ(run.tenant, "acme");
    EXPECT_THAT(run.alert_json, HasSubstr("\"inbox_id\":"));
  }
  CasePage page = *cases_->listCases(CaseFilter{});
  ASSERT_EQ(page.total, 1);
  CaseDetail detail = *cases_->getCase(page.items[0].id);
  ASSERT_EQ(detail.alerts.size(), 2u);
  EXPECT_EQ(detail.alerts[0].alert_id, first.id);
  EXPECT_EQ(detail.alerts[1].alert_id, second.id);
  EXPECT_EQ(detail.evidence.size(), 4u);
  EXPECT_EQ(detail.info.detect_ns, kNow);
  EXPECT_EQ(detail.info.severity, Severity::kHigh);
  EXPECT_EQ(*cases_->queuedAlertCount(), 0);
  EXPECT_EQ(metrics_.sum("vigil_cases_opened_total"), 1u);
  EXPECT_EQ(metrics_.sum("vigil_cases_opened_total", {{"tenant", "acme"}}), 1u);
  EXPECT_EQ(metrics_.sum("vigil_alerts_stored_total"), 2u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "builtin-case"}, {"outcome", "ok"}}),
            2u);
}

TEST_F(DefaultCaseTest, DisabledOpensNoCase) {
  config_.default_case = false;
  start();
  sink_->onAlert(makeAlert("ssh", "medium", "acme", {{"ip", "1"}}, kNow));
  sink_->flush();
  EXPECT_TRUE(runs().empty());
  EXPECT_EQ(cases_->listCases(CaseFilter{})->total, 0);
  EXPECT_EQ(*cases_->queuedAlertCount(), 1);  // stored, waiting for a playbook to file it
  EXPECT_EQ(metrics_.sum("vigil_alerts_stored_total"), 1u);
}

// An operator's own playbook replaces the built-in one and files through the same action.
TEST_F(DefaultCaseTest, ReplacementPlaybookFilesAlerts) {
  config_.default_case = false;
  config_.enabled = true;
  std::filesystem::create_directories(dir_.file("playbooks"));
  config_.paths = {dir_.file("playbooks")};
  std::ofstream(dir_.file("playbooks/mine.yml")) << R"(name: my-cases
trigger: {severity: high}
steps:
  - action: case.attach_alert
    with: {inbox_id: alert.inbox_id}
    output: case
  - action: case.add_tag
    with: {tag: "triaged"}
)";
  ConnectorConfig cases;
  cases.name = "cases";
  cases.type = "case";
  config_.connectors.push_back(cases);
  config_.actions.push_back({"case.*", "cases"});
  start();
  sink_->onAlert(makeAlert("ssh", "low", "acme", {{"ip", "1"}}, kNow));
  sink_->onAlert(makeAlert("ssh", "high", "acme", {{"ip", "2"}}, kNow));
  sink_->flush();
  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].state, RunState::kSucceeded) << recorded[0].error;
  // case.* does not take case.attach_alert away from the built-in connector.
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "builtin-case"}, {"outcome", "ok"}}),
            1u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "cases"}, {"outcome", "ok"}}),
            1u);
  CasePage page = *cases_->listCases(CaseFilter{});
  ASSERT_EQ(page.total, 1);
  EXPECT_EQ(page.items[0].tags, std::vector<std::string>{"triaged"});
  EXPECT_EQ(*cases_->queuedAlertCount(), 1);  // the low alert matched no trigger
}

TEST_F(DefaultCaseTest, CopyWithBuiltinNameIsRejected) {
  config_.enabled = true;
  std::filesystem::create_directories(dir_.file("playbooks"));
  config_.paths = {dir_.file("playbooks")};
  std::ofstream(dir_.file("playbooks/copy.yml")) << defaultCasePlaybookSource();
  auto runner = PlaybookRunner::create(config_, metrics_);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(std::string(runner.status().message()), HasSubstr("playbooks.default_case: false"));
}

// Another tenant's playbook run cannot file an alert by guessing its inbox id.
TEST_F(DefaultCaseTest, AttachChecksTenant) {
  config_.default_case = false;
  config_.enabled = true;
  std::filesystem::create_directories(dir_.file("playbooks"));
  config_.paths = {dir_.file("playbooks")};
  std::ofstream(dir_.file("playbooks/steal.yml")) << R"(name: steal
trigger: {tenants: [evil]}
steps:
  - action: case.attach_alert
    with: {inbox_id: 1}
)";
  start();
  sink_->onAlert(makeAlert("ssh", "low", "acme", {}, kNow));
  sink_->onAlert(makeAlert("ssh", "low", "evil", {}, kNow));
  sink_->flush();
  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].state, RunState::kFailed);
  EXPECT_THAT(recorded[0].error, HasSubstr("is not an alert of tenant evil"));
  EXPECT_EQ(cases_->listCases(CaseFilter{})->total, 0);
}

// With a full queue the default-case jobs stay in the inbox until there is room, so every
// stored alert is filed and none is dropped.
TEST_F(DefaultCaseTest, FullQueueDropsNothing) {
  config_.queue_capacity = 1;
  start();
  for (int i = 0; i < 40; ++i) {
    sink_->onAlert(makeAlert("ssh", "low", "acme", {{"ip", std::to_string(i % 4)}}, kNow + i));
  }
  sink_->flush();
  EXPECT_EQ(metrics_.sum("vigil_playbook_queue_dropped_total"), 0u);
  EXPECT_EQ(runs().size(), 40u);
  EXPECT_EQ(cases_->listCases(CaseFilter{})->total, 4);
  EXPECT_EQ(*cases_->queuedAlertCount(), 0);
}

// Alerts an earlier process stored but did not file are filed at start.
TEST_F(DefaultCaseTest, StartFilesLeftoverAlerts) {
  ASSERT_TRUE(cases_->queueAlerts({makeAlert("ssh", "low", "acme", {{"ip", "1"}}, kNow),
                                   makeAlert("ssh", "low", "acme", {{"ip", "1"}}, kNow + 1)})
                  .ok());
  start();
  ASSERT_TRUE(waitFor([&] { return *cases_->queuedAlertCount() == 0; }));
  runner_->flush();
  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded[0].state, RunState::kSucceeded) << recorded[0].error;
  CasePage page = *cases_->listCases(CaseFilter{});
  ASSERT_EQ(page.total, 1);
  EXPECT_EQ(page.items[0].alert_count, 2);
}

// A backlog in the inbox is filed in groups: fewer case store commits than runs, every
// run stored once, and the cases and counters as if each alert were filed on its own.
TEST_F(DefaultCaseTest, BacklogIsFiledInGroups) {
  constexpr int kAlerts = 40;
  std::vector<correlate::Alert> alerts;
  // Two tenants with two addresses each, so each tenant opens two cases.
  for (int i = 0; i < kAlerts; ++i) {
    const char* tenant = i % 2 == 0 ? "acme" : "globex";
    alerts.push_back(makeAlert("ssh", "low", tenant, {{"ip", std::to_string(i % 4)}}, kNow + i));
  }
  ASSERT_TRUE(cases_->queueAlerts(alerts).ok());
  start();
  ASSERT_TRUE(waitFor([&] { return runner_->store()->list(RunFilter{})->total == kAlerts; }));
  runner_->flush();

  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), static_cast<size_t>(kAlerts));
  for (const RunRecord& run : recorded) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    EXPECT_EQ(stepKinds(run), (std::vector<std::string>{"action", "end"}));
  }
  EXPECT_EQ(committedAlerts(*cases_), kAlerts);
  EXPECT_EQ(cases_->listCases(CaseFilter{})->total, 4);
  EXPECT_EQ(*cases_->queuedAlertCount(), 0);
  const uint64_t commits = metrics_.sum("vigil_playbook_group_commits_total", {{"outcome", "ok"}});
  EXPECT_GE(commits, 1u);
  EXPECT_LT(commits, static_cast<uint64_t>(kAlerts));
  EXPECT_EQ(metrics_.sum("vigil_playbook_group_commits_total", {{"outcome", "failed"}}), 0u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_group_commit_runs_total"), static_cast<uint64_t>(kAlerts));
  EXPECT_EQ(metrics_.sum("vigil_cases_opened_total"), 4u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total", {{"state", "succeeded"}}),
            static_cast<uint64_t>(kAlerts));
  for (const std::string tenant : {"acme", "globex"}) {
    EXPECT_EQ(metrics_.sum("vigil_cases_opened_total", {{"tenant", tenant}}), 2u) << tenant;
    EXPECT_EQ(metrics_.sum("vigil_playbook_tenant_runs_total",
                           {{"tenant", tenant}, {"state", "started"}}),
              static_cast<uint64_t>(kAlerts / 2))
        << tenant;
    EXPECT_EQ(metrics_.sum("vigil_playbook_tenant_runs_total",
                           {{"tenant", tenant}, {"state", "succeeded"}}),
              static_cast<uint64_t>(kAlerts / 2))
        << tenant;
  }
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "builtin-case"}, {"outcome", "ok"}}),
            static_cast<uint64_t>(kAlerts));
}

// The file size limit the signal handler below puts back, and how often it ran.
struct rlimit g_file_size_limit {};
std::atomic<int> g_file_size_signals{0};

// Restores the file size limit at the first write past it. That write still fails with
// EFBIG, so exactly one write fails and the ones after it succeed.
void restoreFileSizeLimit(int) {
  setrlimit(RLIMIT_FSIZE, &g_file_size_limit);
  g_file_size_signals.fetch_add(1);
}

// The first group's COMMIT fails for real inside the runner: the file size limit is set
// to the current size of cases.db-wal, so the commit's first WAL frame is the first write
// past it. The 3 MiB padding row makes that WAL larger than the other files written
// before the commit (runs.db, its WAL, the run journal). It also keeps the WAL below the
// 1000 pages at which SQLite checkpoints and starts writing it from its beginning again.
// The runner runs each segment of the failed group again from the run journal, with the
// same idempotency keys.
TEST_F(DefaultCaseTest, FailedGroupCommitRunsEachSegmentAgain) {
  constexpr int kAlerts = 8;
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("cases.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "CREATE TABLE test_padding (data BLOB);"
                         "INSERT INTO test_padding VALUES (zeroblob(3145728))",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);
  std::vector<correlate::Alert> alerts;
  for (int i = 0; i < kAlerts; ++i) {
    alerts.push_back(makeAlert("ssh", "low", "acme", {{"ip", std::to_string(i % 2)}}, kNow + i));
  }
  ASSERT_TRUE(cases_->queueAlerts(alerts).ok());

  const uintmax_t wal_bytes = std::filesystem::file_size(dir_.file("cases.db-wal"));
  ASSERT_GT(wal_bytes, 3145728u);
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &g_file_size_limit), 0);
  ASSERT_GT(g_file_size_limit.rlim_cur, wal_bytes);
  g_file_size_signals = 0;
  struct sigaction restore {}, previous {};
  restore.sa_handler = restoreFileSizeLimit;
  ASSERT_EQ(sigaction(SIGXFSZ, &restore, &previous), 0);
  struct rlimit limited = g_file_size_limit;
  limited.rlim_cur = wal_bytes;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  start();
  const bool all_stored =
      waitFor([&] { return runner_->store()->list(RunFilter{})->total == kAlerts; });
  runner_->flush();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &g_file_size_limit), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &previous, nullptr), 0);
  ASSERT_TRUE(all_stored);
  EXPECT_EQ(g_file_size_signals.load(), 1);
  EXPECT_EQ(metrics_.sum("vigil_playbook_group_commits_total", {{"outcome", "failed"}}), 1u);

  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), static_cast<size_t>(kAlerts));
  int64_t run_again = 0;
  for (const RunRecord& run : recorded) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    if (!run.steps.empty() && run.steps[0].kind == "recovery") {
      ++run_again;
      EXPECT_EQ(run.steps[0].name, "group_commit_failed");
      EXPECT_EQ(stepKinds(run), (std::vector<std::string>{"recovery", "action", "end"}));
    } else {
      EXPECT_EQ(stepKinds(run), (std::vector<std::string>{"action", "end"}));
    }
  }
  // Only the runs of the first group ran again. Its size depends on how many jobs the
  // feeder queued within the group window, usually all of them.
  EXPECT_GE(run_again, 1);

  EXPECT_EQ(committedAlerts(*cases_), kAlerts);
  EXPECT_EQ(*cases_->queuedAlertCount(), 0);
  CasePage page = *cases_->listCases(CaseFilter{});
  ASSERT_EQ(page.total, 2);
  std::set<std::string> alert_ids;
  for (const Case& item : page.items) {
    CaseDetail detail = *cases_->getCase(item.id);
    EXPECT_EQ(detail.alerts.size(), static_cast<size_t>(kAlerts / 2));
    for (const StoredAlert& alert : detail.alerts) {
      EXPECT_TRUE(alert_ids.insert(alert.alert_id).second) << "filed twice: " << alert.alert_id;
    }
  }
  EXPECT_EQ(alert_ids.size(), static_cast<size_t>(kAlerts));

  EXPECT_EQ(metrics_.sum("vigil_cases_opened_total"), 2u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_group_commit_runs_total"), static_cast<uint64_t>(kAlerts));
  EXPECT_EQ(metrics_.sum("vigil_playbook_runs_finished_total", {{"state", "succeeded"}}),
            static_cast<uint64_t>(kAlerts));
  EXPECT_EQ(metrics_.sum("vigil_playbook_store_errors_total"), 0u);
  EXPECT_EQ(metrics_.sum("vigil_playbook_connector_calls_total",
                         {{"connector", "builtin-case"}, {"outcome", "ok"}}),
            static_cast<uint64_t>(kAlerts + run_again));
}

// SIGKILL after a group's case store commit and before its runs are stored. The parent
// holds the write lock of the run store, so the child's run store write waits (up to its
// 5 s busy timeout) after the filings were committed, and the parent kills it there. The
// next start runs the journaled segments again with their idempotency keys. The case
// store returns the recorded results, so every alert is filed exactly once.
TEST_F(DefaultCaseTest, KilledAfterGroupCommitFilesEachAlertOnce) {
  constexpr int kAlerts = 12;
  cases_.reset();  // the child opens its own connection
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    MetricsRegistry metrics;
    auto cases = CaseStore::open(dir_.file("cases.db"));
    if (!cases.ok()) _exit(3);
    auto runner = PlaybookRunner::create(config_, metrics);
    if (!runner.ok() || !(*runner)->start(cases->get(), nullptr).ok()) _exit(3);
    char byte = 1;
    if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1) _exit(5);
    CaseSinkOptions options;
    options.filer = runner->get();
    CaseSink sink(**cases, metrics, options);
    for (int i = 0; i < kAlerts; ++i) {
      sink.onAlert(makeAlert("ssh", "low", "acme", {{"ip", std::to_string(i % 3)}}, kNow + i));
    }
    pause();  // killed by the parent
    _exit(4);
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  auto reader = CaseStore::open(dir_.file("cases.db"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  sqlite3* runs_db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("runs.db").c_str(), &runs_db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(runs_db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(write(go[1], &byte, 1), 1);

  // The sink stores the alerts in the inbox on its own thread, and the first group can be
  // filed before the last alert is stored. An alert still in the sink's memory is lost with
  // the process, so wait until every alert is filed or in the inbox.
  const bool filed = waitFor([&] {
    const int64_t committed = committedAlerts(**reader);
    absl::StatusOr<int64_t> queued = (*reader)->queuedAlertCount();
    return committed >= 1 && queued.ok() && committed + *queued >= kAlerts;
  });
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(filed) << "the child never committed a filing with every alert stored";
  ASSERT_TRUE(WIFSIGNALED(status));
  int64_t stored_runs = -1;
  sqlite3_exec(
      runs_db, "SELECT COUNT(*) FROM runs",
      [](void* out, int, char** values, char**) {
        *static_cast<int64_t*>(out) = std::stoll(values[0]);
        return 0;
      },
      &stored_runs, nullptr);
  EXPECT_EQ(stored_runs, 0);
  sqlite3_exec(runs_db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(runs_db);
  const int64_t filed_before_kill = committedAlerts(**reader);

  cases_ = std::move(*reader);
  start();
  ASSERT_TRUE(waitFor([&] { return *cases_->queuedAlertCount() == 0; }));
  ASSERT_TRUE(waitFor([&] { return runner_->store()->list(RunFilter{})->total == kAlerts; }));
  runner_->flush();

  std::vector<RunRecord> recorded = runs();
  ASSERT_EQ(recorded.size(), static_cast<size_t>(kAlerts));
  int64_t run_again = 0;
  for (const RunRecord& run : recorded) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    if (!run.steps.empty() && run.steps[0].kind == "recovery") ++run_again;
  }
  EXPECT_GE(run_again, filed_before_kill);  // each filed, unstored run ran again
  EXPECT_EQ(committedAlerts(*cases_), kAlerts);
  EXPECT_EQ(cases_->listCases(CaseFilter{})->total, 3);
  std::set<std::string> alert_ids;
  CasePage page = *cases_->listCases(CaseFilter{});
  for (const Case& item : page.items) {
    CaseDetail detail = *cases_->getCase(item.id);
    for (const StoredAlert& alert : detail.alerts) {
      EXPECT_TRUE(alert_ids.insert(alert.alert_id).second) << "filed twice: " << alert.alert_id;
    }
  }
  EXPECT_EQ(alert_ids.size(), static_cast<size_t>(kAlerts));
}

// A webhook receiver on 127.0.0.1 that records each request's body and delays its
// response until release().
class HeldHookServer {
 public:
  HeldHookServer() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      released_cv_.wait_for(lock, std::chrono::seconds(30), [this] { return released_; });
      res.set_content(R"({"result": "done"})", "application/json");
    });
    server_.set_keep_alive_max_count(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ~HeldHookServer() {
    release();
    server_.stop();
    thread_.join();
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    released_cv_.notify_all();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable released_cv_;
  bool released_ = false;
  std::vector<std::string> bodies_;
};

// SIGKILL while runs of another playbook wait in the queue. The only worker is held in the
// first run's webhook call, so the other runs are queued and not journaled, and no alert
// leaves the inbox: its default-case run waits until every run queued for it is
// journaled. The next start queues the missing runs again from the inbox. Every alert then
// has exactly one run of each playbook, and is filed once.
TEST_F(DefaultCaseTest, QueuedRunsSurviveKill) {
  constexpr int kAlerts = 6;
  HeldHookServer hook;
  config_.enabled = true;
  std::filesystem::create_directories(dir_.file("playbooks"));
  config_.paths = {dir_.file("playbooks")};
  std::ofstream(dir_.file("playbooks/notify.yml")) << R"(name: notify
trigger: {}
steps:
  - action: hook.notify
    with: {inbox: alert.inbox_id}
)";
  ConnectorConfig connector;
  connector.name = "hook";
  connector.type = "webhook";
  connector.url = hook.url();
  connector.timeout_ms = 60000;
  config_.connectors.push_back(connector);
  config_.actions.push_back({"hook.*", "hook"});
  config_.workers = 1;

  cases_.reset();  // the child opens its own connection
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    MetricsRegistry metrics;
    auto cases = CaseStore::open(dir_.file("cases.db"));
    if (!cases.ok()) _exit(3);
    auto runner = PlaybookRunner::create(config_, metrics);
    if (!runner.ok() || !(*runner)->start(cases->get(), nullptr).ok()) _exit(3);
    char byte = 1;
    if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1) _exit(5);
    CaseSinkOptions options;
    options.filer = runner->get();
    CaseSink sink(**cases, metrics, options);
    for (int i = 0; i < kAlerts; ++i) {
      sink.onAlert(makeAlert("ssh", "low", "acme", {{"ip", std::to_string(i)}}, kNow + i));
    }
    pause();  // killed by the parent
    _exit(4);
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  auto reader = CaseStore::open(dir_.file("cases.db"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ(write(go[1], &byte, 1), 1);
  const bool worker_blocked = waitFor([&] {
    absl::StatusOr<int64_t> queued = (*reader)->queuedAlertCount();
    return !hook.bodies().empty() && queued.ok() && *queued == kAlerts;
  });
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(worker_blocked) << "the child never held its worker with every alert stored";
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(committedAlerts(**reader), 0);
  hook.release();

  cases_ = std::move(*reader);
  start();
  ASSERT_TRUE(waitFor([&] { return *cases_->queuedAlertCount() == 0; }));
  ASSERT_TRUE(
      waitFor([&] { return runner_->store()->list(RunFilter{})->total == 2 * kAlerts; }));
  runner_->flush();

  std::map<std::string, std::set<int64_t>> inbox_ids;  // by playbook
  for (const RunRecord& run : runs()) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.playbook << ": " << run.error;
    const nlohmann::json alert = nlohmann::json::parse(run.alert_json);
    EXPECT_TRUE(inbox_ids[run.playbook].insert(alert.at("inbox_id").get<int64_t>()).second)
        << run.playbook << " ran twice for inbox alert " << alert.at("inbox_id");
  }
  EXPECT_EQ(inbox_ids["notify"].size(), static_cast<size_t>(kAlerts));
  EXPECT_EQ(inbox_ids[std::string(kDefaultCasePlaybookName)].size(),
            static_cast<size_t>(kAlerts));
  EXPECT_EQ(committedAlerts(*cases_), kAlerts);
  // Each alert reached the webhook. The first one reached it twice: its run was executing
  // when the child was killed, so it ran again from its journal with the same key.
  std::set<std::string> notified;
  for (const std::string& body : hook.bodies()) {
    notified.insert(nlohmann::json::parse(body).at("params").at("inbox").dump());
  }
  EXPECT_EQ(notified.size(), static_cast<size_t>(kAlerts));
  EXPECT_EQ(metrics_.sum("vigil_playbook_queue_dropped_total"), 0u);
}

}  // namespace
}  // namespace vigil::mgmt
