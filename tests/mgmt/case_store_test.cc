#include "mgmt/case_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;

class CaseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = openStore(); }

  std::unique_ptr<CaseStore> openStore() {
    CaseStoreOptions options;
    options.clock = &clock_;
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  IngestResult ingest(const correlate::Alert& alert) {
    absl::StatusOr<IngestResult> result = store_->ingestAlert(alert);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(IngestResult{});
  }

  CasePage list(const CaseFilter& filter) {
    absl::StatusOr<CasePage> page = store_->listCases(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *std::move(page) : CasePage{};
  }

  static std::vector<int64_t> ids(const CasePage& page) {
    std::vector<int64_t> out;
    for (const Case& c : page.items) out.push_back(c.id);
    return out;
  }

  testing::TempDir dir_;
  std::string path_ = dir_.file("cases.db");
  SimulatedClock clock_{kT0 + 1000 * kSecond};
  std::unique_ptr<CaseStore> store_;
};

// A new file gets the latest schema in WAL mode.
TEST_F(CaseStoreTest, OpenCreatesSchemaInWalMode) {
  EXPECT_EQ(store_->schemaVersion(), CaseStore::latestSchemaVersion());
  testing::RawDb raw(path_);
  EXPECT_EQ(raw.queryText("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.queryText("SELECT version FROM schema_version"),
            std::to_string(CaseStore::latestSchemaVersion()));
}

// Alerts with the same tenant, rule and group join one case; any difference opens another.
TEST_F(CaseStoreTest, AlertsJoinOpenCaseByKey) {
  IngestResult first = ingest(makeAlert("ssh", "low", "acme", {{"source.ip", "10.0.0.5"}}, kT0));
  IngestResult second =
      ingest(makeAlert("ssh", "low", "acme", {{"source.ip", "10.0.0.5"}}, kT0 + kSecond));
  IngestResult other_group =
      ingest(makeAlert("ssh", "low", "acme", {{"source.ip", "10.0.0.6"}}, kT0));
  IngestResult other_tenant =
      ingest(makeAlert("ssh", "low", "globex", {{"source.ip", "10.0.0.5"}}, kT0));
  IngestResult other_rule =
      ingest(makeAlert("dns", "low", "acme", {{"source.ip", "10.0.0.5"}}, kT0));

  EXPECT_TRUE(first.opened_case);
  EXPECT_FALSE(second.opened_case);
  EXPECT_EQ(second.case_id, first.case_id);
  EXPECT_TRUE(other_group.opened_case);
  EXPECT_TRUE(other_tenant.opened_case);
  EXPECT_TRUE(other_rule.opened_case);
  EXPECT_EQ(list({}).total, 4);

  absl::StatusOr<CaseDetail> detail = store_->getCase(first.case_id);
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_EQ(detail->info.alert_count, 2);
  EXPECT_EQ(detail->alerts.size(), 2u);
}

// Group field order does not matter: the key is the sorted JSON object.
TEST_F(CaseStoreTest, GroupKeyIgnoresFieldOrder) {
  IngestResult a = ingest(makeAlert("r", "low", "t", {{"a", "1"}, {"b", "2"}}, kT0));
  IngestResult b = ingest(makeAlert("r", "low", "t", {{"b", "2"}, {"a", "1"}}, kT0));
  EXPECT_EQ(a.case_id, b.case_id);
  absl::StatusOr<CaseDetail> detail = store_->getCase(a.case_id);
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(detail->info.group_key, R"({"a":"1","b":"2"})");
}

// The title joins the rule title and group values; severity rises to the highest level.
TEST_F(CaseStoreTest, TitleAndSeverityFollowAlerts) {
  correlate::Alert low = makeAlert("ssh", "low", "acme", {{"source.ip", "10.0.0.5"}}, kT0);
  low.rule_title = "SSH brute force";
  IngestResult opened = ingest(low);
  ingest(makeAlert("ssh", "critical", "acme", {{"source.ip", "10.0.0.5"}}, kT0 + kSecond));
  ingest(makeAlert("ssh", "medium", "acme", {{"source.ip", "10.0.0.5"}}, kT0 + 2 * kSecond));

  absl::StatusOr<CaseDetail> detail = store_->getCase(opened.case_id);
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_EQ(detail->info.title, "SSH brute force: source.ip=10.0.0.5");
  EXPECT_EQ(detail->info.severity, Severity::kCritical);
  EXPECT_EQ(detail->info.status, CaseStatus::kNew);
  EXPECT_EQ(detail->info.detect_ns, kT0);
  EXPECT_EQ(detail->info.first_event_ns, kT0 - 10 * kSecond);
  EXPECT_EQ(detail->info.updated_ns, clock_.nowNs());
  EXPECT_EQ(detail->info.alert_count, 3);
}

// A resolved case takes no more alerts; the next alert for its key opens a new case.
TEST_F(CaseStoreTest, ResolvedCaseOpensNewOne) {
  IngestResult first = ingest(makeAlert("ssh", "high", "acme", {{"user.name", "root"}}, kT0));
  testing::RawDb raw(path_);
  ASSERT_EQ(raw.exec("UPDATE cases SET status = 'in_progress' WHERE id = " +
                     std::to_string(first.case_id)),
            "");
  IngestResult joined = ingest(makeAlert("ssh", "high", "acme", {{"user.name", "root"}}, kT0));
  EXPECT_EQ(joined.case_id, first.case_id);

  ASSERT_EQ(raw.exec("UPDATE cases SET status = 'resolved', resolution = 'password reset'"
                     " WHERE id = " +
                     std::to_string(first.case_id)),
            "");
  IngestResult fresh = ingest(makeAlert("ssh", "high", "acme", {{"user.name", "root"}}, kT0));
  EXPECT_TRUE(fresh.opened_case);
  EXPECT_NE(fresh.case_id, first.case_id);

  absl::StatusOr<CaseDetail> resolved = store_->getCase(first.case_id);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->info.status, CaseStatus::kResolved);
  EXPECT_EQ(resolved->info.resolution, "password reset");
  EXPECT_EQ(resolved->info.alert_count, 2);
}

// getCase returns alerts in arrival order and evidence bytes exactly as stored.
TEST_F(CaseStoreTest, GetCaseReturnsAlertsAndEvidence) {
  correlate::Alert a = makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, kT0);
  a.evidence = {"Failed password for root", "bad byte \xff and escape \x1b[31m"};
  correlate::Alert b = makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, kT0 + 5);
  b.evidence = {"third"};
  int64_t id = ingest(a).case_id;
  ingest(b);

  absl::StatusOr<CaseDetail> detail = store_->getCase(id);
  ASSERT_TRUE(detail.ok()) << detail.status();
  ASSERT_EQ(detail->alerts.size(), 2u);
  EXPECT_EQ(detail->alerts[0].alert_id, a.id);
  EXPECT_EQ(detail->alerts[1].alert_id, b.id);
  EXPECT_EQ(detail->alerts[0].level, "high");
  EXPECT_EQ(detail->alerts[0].event_count, 3);
  EXPECT_EQ(detail->alerts[0].last_event_ns, a.last_event_ns);
  EXPECT_NE(detail->alerts[0].json.find("attack.t1110"), std::string::npos);
  ASSERT_EQ(detail->evidence.size(), 3u);
  EXPECT_EQ(detail->evidence[0].alert_id, detail->alerts[0].id);
  EXPECT_EQ(detail->evidence[0].position, 0);
  EXPECT_EQ(detail->evidence[1].raw, "bad byte \xff and escape \x1b[31m");
  EXPECT_EQ(detail->evidence[1].position, 1);
  EXPECT_EQ(detail->evidence[2].alert_id, detail->alerts[1].id);
  EXPECT_EQ(detail->evidence[2].raw, "third");
}

// An unknown id is NotFound and names the id.
TEST_F(CaseStoreTest, UnknownCaseIsNotFound) {
  absl::StatusOr<CaseDetail> detail = store_->getCase(42);
  EXPECT_TRUE(absl::IsNotFound(detail.status())) << detail.status();
  EXPECT_NE(detail.status().message().find("case 42"), absl::string_view::npos);
}

// Cases, alerts and evidence survive closing and reopening the file.
TEST_F(CaseStoreTest, ReopenKeepsCases) {
  int64_t id = ingest(makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, kT0)).case_id;
  store_.reset();
  store_ = openStore();
  ASSERT_NE(store_, nullptr);

  absl::StatusOr<CaseDetail> detail = store_->getCase(id);
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_EQ(detail->alerts.size(), 1u);
  EXPECT_EQ(detail->evidence.size(), 2u);
  // The reopened store still finds the open case for the key.
  IngestResult again = ingest(makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, kT0));
  EXPECT_FALSE(again.opened_case);
  EXPECT_EQ(again.case_id, id);
}

// A Sigma level the store does not know is rejected with the value and the accepted names.
TEST_F(CaseStoreTest, UnknownLevelIsRejected) {
  absl::StatusOr<IngestResult> result =
      store_->ingestAlert(makeAlert("ssh", "urgent", "acme", {}, kT0));
  ASSERT_TRUE(absl::IsInvalidArgument(result.status())) << result.status();
  EXPECT_NE(result.status().message().find("level=urgent"), absl::string_view::npos);
  EXPECT_NE(result.status().message().find("critical"), absl::string_view::npos);
  EXPECT_EQ(list({}).total, 0);
}

// Sigma levels are matched in any letter case and stored in lower case.
TEST_F(CaseStoreTest, LevelCaseIsIgnored) {
  int64_t id = ingest(makeAlert("ssh", "High", "acme", {}, kT0)).case_id;
  absl::StatusOr<CaseDetail> detail = store_->getCase(id);
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(detail->info.severity, Severity::kHigh);
  EXPECT_EQ(detail->alerts[0].level, "high");
}

// One bad alert fails its whole batch and leaves nothing behind.
TEST_F(CaseStoreTest, BatchIsAllOrNothing) {
  std::vector<correlate::Alert> batch = {
      makeAlert("a", "low", "t", {}, kT0),
      makeAlert("b", "nope", "t", {}, kT0),
      makeAlert("c", "low", "t", {}, kT0),
  };
  absl::StatusOr<std::vector<IngestResult>> results = store_->ingestAlerts(batch);
  EXPECT_FALSE(results.ok());
  EXPECT_EQ(list({}).total, 0);

  batch[1].level = "medium";
  results = store_->ingestAlerts(batch);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(results->size(), 3u);
  EXPECT_EQ(list({}).total, 3);
}

// Tenant, status and severity filters combine, and total counts all matches.
TEST_F(CaseStoreTest, ListFilters) {
  ingest(makeAlert("r1", "high", "acme", {}, kT0));
  ingest(makeAlert("r2", "low", "acme", {}, kT0 + 1));
  ingest(makeAlert("r3", "high", "globex", {}, kT0 + 2));
  int64_t resolved = ingest(makeAlert("r4", "high", "acme", {}, kT0 + 3)).case_id;
  testing::RawDb raw(path_);
  ASSERT_EQ(raw.exec("UPDATE cases SET status = 'resolved' WHERE id = " + std::to_string(resolved)),
            "");

  CaseFilter acme;
  acme.tenant = "acme";
  EXPECT_EQ(list(acme).total, 3);

  CaseFilter acme_high = acme;
  acme_high.severity = Severity::kHigh;
  EXPECT_EQ(list(acme_high).total, 2);

  CaseFilter acme_high_new = acme_high;
  acme_high_new.status = CaseStatus::kNew;
  CasePage page = list(acme_high_new);
  EXPECT_EQ(page.total, 1);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].rule_id, "r1");

  CaseFilter nobody;
  nobody.tenant = "initech";
  EXPECT_EQ(list(nobody).total, 0);
  EXPECT_TRUE(list(nobody).items.empty());
}

// Pages never overlap, and each sort order gives the expected sequence.
TEST_F(CaseStoreTest, ListPaginatesAndSorts) {
  // id 1..6, detection times shuffled, severities low/high alternating.
  const std::vector<int64_t> detect_offsets = {30, 10, 60, 20, 50, 40};
  for (size_t i = 0; i < detect_offsets.size(); ++i) {
    ingest(makeAlert("r" + std::to_string(i), i % 2 == 0 ? "low" : "high", "t", {},
                     kT0 + detect_offsets[i] * kSecond));
  }

  CaseFilter filter;
  filter.limit = 4;
  CasePage first = list(filter);
  EXPECT_EQ(first.total, 6);
  EXPECT_EQ(ids(first), (std::vector<int64_t>{3, 5, 6, 1}));  // -detected is the default
  filter.offset = 4;
  EXPECT_EQ(ids(list(filter)), (std::vector<int64_t>{4, 2}));
  filter.offset = 6;
  EXPECT_TRUE(list(filter).items.empty());
  EXPECT_EQ(list(filter).total, 6);

  filter = {};
  filter.sort = CaseSort::kDetectedAsc;
  EXPECT_EQ(ids(list(filter)), (std::vector<int64_t>{2, 4, 1, 6, 5, 3}));
  filter.sort = CaseSort::kSeverityDesc;  // high first, then newest
  EXPECT_EQ(ids(list(filter)), (std::vector<int64_t>{6, 4, 2, 3, 5, 1}));
  filter.sort = CaseSort::kSeverityAsc;
  EXPECT_EQ(ids(list(filter)), (std::vector<int64_t>{1, 5, 3, 2, 4, 6}));
  filter.sort = CaseSort::kIdAsc;
  EXPECT_EQ(ids(list(filter)), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  filter.sort = CaseSort::kIdDesc;
  EXPECT_EQ(ids(list(filter)), (std::vector<int64_t>{6, 5, 4, 3, 2, 1}));
}

// Out-of-range limits and offsets are rejected with the value and the accepted range.
TEST_F(CaseStoreTest, ListRejectsBadPaging) {
  for (int limit : {0, -1, CaseFilter::kMaxLimit + 1}) {
    CaseFilter filter;
    filter.limit = limit;
    absl::StatusOr<CasePage> page = store_->listCases(filter);
    ASSERT_TRUE(absl::IsInvalidArgument(page.status())) << limit;
    EXPECT_NE(page.status().message().find("limit=" + std::to_string(limit)),
              absl::string_view::npos);
    EXPECT_NE(page.status().message().find("1..500"), absl::string_view::npos);
  }
  CaseFilter filter;
  filter.offset = -3;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->listCases(filter).status()));
}

// A file written by a newer build is refused instead of being misread.
TEST_F(CaseStoreTest, NewerSchemaIsRejected) {
  store_.reset();
  {
    testing::RawDb raw(path_);
    ASSERT_EQ(raw.exec("UPDATE schema_version SET version = 99"), "");
  }
  absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(path_);
  ASSERT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_NE(store.status().message().find(path_), absl::string_view::npos);
  EXPECT_NE(store.status().message().find("99"), absl::string_view::npos);
}

// A path in a missing folder fails with the path in the message.
TEST_F(CaseStoreTest, OpenReportsBadPath) {
  const std::string bad = dir_.file("missing/folder/cases.db");
  absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(bad);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(bad), absl::string_view::npos) << store.status();
}

// Names round-trip, and a bad name lists the accepted ones.
TEST(CaseNamesTest, ParseAndFormat) {
  for (Severity s : {Severity::kInformational, Severity::kLow, Severity::kMedium, Severity::kHigh,
                     Severity::kCritical}) {
    EXPECT_EQ(parseSeverity(severityName(s)).value(), s);
  }
  for (CaseStatus s :
       {CaseStatus::kNew, CaseStatus::kInProgress, CaseStatus::kResolved, CaseStatus::kClosed}) {
    EXPECT_EQ(parseCaseStatus(caseStatusName(s)).value(), s);
  }
  EXPECT_EQ(parseCaseSort("-severity").value(), CaseSort::kSeverityDesc);
  absl::Status bad = parseCaseStatus("open").status();
  EXPECT_EQ(bad.message(),
            "status=open is not valid; use one of new, in_progress, resolved, closed");
}

}  // namespace
}  // namespace vigil::mgmt
