// CaseStore::caseMetricsBetween() against aggregateCaseMetrics() over the same stored
// cases: the SQL aggregation must give the same groups and values as the in-memory one.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "mgmt/case_metrics.h"
#include "mgmt/case_store.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;

constexpr int64_t kMinute = 60 * kSecond;
constexpr const char* kLevels[] = {"informational", "low", "medium", "high", "critical"};

class CaseMetricsSqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaseStoreOptions options;
    options.clock = &clock_;
    options.sla[static_cast<size_t>(Severity::kCritical)] = {15 * kMinute, 240 * kMinute};
    options.sla[static_cast<size_t>(Severity::kHigh)] = {60 * kMinute, 0};
    options.sla[static_cast<size_t>(Severity::kLow)] = {0, 24 * 60 * kMinute};
    auto store = CaseStore::open(dir_.file("cases.db"), options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Compares the SQL result with the in-memory aggregation of the same selection.
  void expectSame(const std::optional<std::vector<std::string>>& allowed,
                  const std::string& tenant, int64_t from_ns, int64_t to_ns) {
    auto cases = store_->casesDetectedBetween(allowed, tenant, from_ns, to_ns);
    ASSERT_TRUE(cases.ok()) << cases.status();
    std::vector<CaseMetricsGroup> expected =
        aggregateCaseMetrics(*cases, store_->sla(), clock_.nowNs());
    auto actual = store_->caseMetricsBetween(allowed, tenant, from_ns, to_ns);
    ASSERT_TRUE(actual.ok()) << actual.status();
    ASSERT_EQ(actual->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const CaseMetricsGroup& e = expected[i];
      const CaseMetricsGroup& a = (*actual)[i];
      SCOPED_TRACE(absl::StrCat("group ", i, " ", e.tenant, "/", e.severity));
      EXPECT_EQ(a.tenant, e.tenant);
      EXPECT_EQ(a.severity, e.severity);
      EXPECT_EQ(a.cases, e.cases);
      EXPECT_EQ(a.acknowledge_breaches, e.acknowledge_breaches);
      EXPECT_EQ(a.resolve_breaches, e.resolve_breaches);
      const std::pair<const DurationSummary*, const DurationSummary*> summaries[] = {
          {&a.mttd, &e.mttd}, {&a.mtta, &e.mtta}, {&a.mttr, &e.mttr}};
      for (const auto& [got, want] : summaries) {
        EXPECT_EQ(got->count, want->count);
        EXPECT_DOUBLE_EQ(got->mean_s, want->mean_s);
        EXPECT_DOUBLE_EQ(got->p50_s, want->p50_s);
        EXPECT_DOUBLE_EQ(got->p90_s, want->p90_s);
      }
    }
  }

  testing::TempDir dir_;
  SimulatedClock clock_{kT0 + 1000 * kSecond};
  std::unique_ptr<CaseStore> store_;
};

TEST_F(CaseMetricsSqlTest, EmptyStoreHasNoGroups) {
  auto groups = store_->caseMetricsBetween(std::nullopt, "", 0, 0);
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_TRUE(groups->empty());
}

// Random cases: every severity, acknowledged or not, resolved or not, merged or not,
// cases without alerts, in three tenants.
TEST_F(CaseMetricsSqlTest, MatchesInMemoryAggregation) {
  std::mt19937_64 random(20261205);
  const char* tenants[] = {"acme", "beta", "globex"};
  testing::RawDb raw(dir_.file("cases.db"));
  for (int i = 0; i < 300; ++i) {
    const std::string tenant = tenants[random() % 3];
    const char* level = kLevels[random() % 5];
    auto stored = store_->ingestAlert(testing::makeAlert(
        "rule", level, tenant, {{"ip", std::to_string(i)}}, kT0 + i * kSecond));
    ASSERT_TRUE(stored.ok()) << stored.status();
    const int64_t detect = kT0 + static_cast<int64_t>(random() % 1000) * kMinute;
    const int64_t first_event = detect - static_cast<int64_t>(random() % 600) * kSecond;
    const bool acknowledged = random() % 3 != 0;
    const bool resolved = random() % 2 == 0;
    const int64_t ack = acknowledged ? detect + static_cast<int64_t>(random() % 120) * kMinute : 0;
    const int64_t done =
        resolved ? detect + static_cast<int64_t>(random() % (48 * 60)) * kMinute : 0;
    const bool merged = random() % 10 == 0;
    const int64_t alerts = random() % 8 == 0 ? 0 : 1;
    const std::string update = absl::StrCat(
        "UPDATE cases SET detect_ns = ", detect, ", first_event_ns = ", first_event,
        ", ack_ns = ", ack == 0 ? std::string("NULL") : absl::StrCat(ack),
        ", resolved_ns = ", done == 0 ? std::string("NULL") : absl::StrCat(done),
        ", merged_into = ", merged ? std::string("1") : std::string("NULL"),
        ", alert_count = ", alerts, " WHERE id = ", stored->case_id);
    ASSERT_EQ(raw.exec(update), "");
  }
  clock_.setNs(kT0 + 1200 * kMinute);

  expectSame(std::nullopt, "", 0, 0);
  expectSame(std::nullopt, "beta", 0, 0);
  expectSame(std::vector<std::string>{"acme", "globex"}, "", 0, 0);
  expectSame(std::vector<std::string>{"acme"}, "globex", 0, 0);
  expectSame(std::nullopt, "", kT0 + 100 * kMinute, kT0 + 700 * kMinute);
  expectSame(std::vector<std::string>{"beta"}, "beta", kT0 + 300 * kMinute, 0);
}

// A merge closes the source case a second after it opened. A merge is no resolution, so
// the tenant's MTTR counts only the target case that an analyst resolved.
TEST_F(CaseMetricsSqlTest, MergedCaseHasNoMttr) {
  const Actor alice{"alice", true};
  auto source = store_->ingestAlert(
      testing::makeAlert("rule", "high", "acme", {{"ip", "1"}}, clock_.nowNs()));
  auto target = store_->ingestAlert(
      testing::makeAlert("rule", "high", "acme", {{"ip", "2"}}, clock_.nowNs()));
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE(target.ok()) << target.status();
  clock_.setNs(clock_.nowNs() + kSecond);
  ASSERT_TRUE(store_->mergeCase(source->case_id, target->case_id, alice).ok());
  clock_.setNs(clock_.nowNs() + 10 * kMinute);
  CaseUpdate resolve;
  resolve.status = CaseStatus::kResolved;
  resolve.resolution = Resolution::kTruePositive;
  ASSERT_TRUE(store_->updateCase(target->case_id, resolve, alice).ok());

  auto groups = store_->caseMetricsBetween(std::nullopt, "acme", 0, 0);
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_FALSE(groups->empty());
  const CaseMetricsGroup& all = groups->back();
  EXPECT_EQ(all.severity, "all");
  EXPECT_EQ(all.cases, 2);
  EXPECT_EQ(all.mttr.count, 1);
  EXPECT_GE(all.mttr.p50_s, 600.0);

  const Case merged = store_->getCase(source->case_id)->info;
  EXPECT_NE(merged.resolved_ns, 0);
  EXPECT_FALSE(caseMetrics(merged, store_->sla(), clock_.nowNs()).mttr_ns);
  expectSame(std::nullopt, "acme", 0, 0);
}

}  // namespace
}  // namespace vigil::mgmt
