// MTTD, MTTA and MTTR per case, SLA breach flags and their aggregate.
#include "mgmt/case_metrics.h"

#include <gtest/gtest.h>

#include <vector>

#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;

constexpr int64_t kMinute = 60 * kSecond;

Case makeCase(std::string tenant, Severity severity, int64_t first_event_ns, int64_t detect_ns,
              int64_t ack_ns, int64_t resolved_ns) {
  Case c;
  c.tenant = std::move(tenant);
  c.severity = severity;
  c.first_event_ns = first_event_ns;
  c.detect_ns = detect_ns;
  c.ack_ns = ack_ns;
  c.resolved_ns = resolved_ns;
  c.alert_count = 1;
  return c;
}

SlaPolicy criticalSla() {
  SlaPolicy sla{};
  sla[static_cast<size_t>(Severity::kCritical)] = {15 * kMinute, 240 * kMinute};
  return sla;
}

// Durations come from the stored times; unset times leave the metric unset.
TEST(CaseMetricsTest, PerCaseDurations) {
  Case c = makeCase("acme", Severity::kHigh, kT0 - 30 * kSecond, kT0, kT0 + 5 * kMinute,
                    kT0 + 60 * kMinute);
  CaseMetrics m = caseMetrics(c, SlaPolicy{}, kT0 + 100 * kMinute);
  EXPECT_EQ(m.mttd_ns, 30 * kSecond);
  EXPECT_EQ(m.mtta_ns, 5 * kMinute);
  EXPECT_EQ(m.mttr_ns, 60 * kMinute);
  EXPECT_EQ(m.acknowledge_due_ns, 0);
  EXPECT_FALSE(m.acknowledge_breached);

  Case open = makeCase("acme", Severity::kHigh, kT0, kT0, 0, 0);
  open.alert_count = 0;
  CaseMetrics o = caseMetrics(open, SlaPolicy{}, kT0);
  EXPECT_FALSE(o.mttd_ns);
  EXPECT_FALSE(o.mtta_ns);
  EXPECT_FALSE(o.mttr_ns);
}

// A case closed by a merge was not resolved, so it has no MTTR.
TEST(CaseMetricsTest, MergedCaseHasNoMttr) {
  Case merged = makeCase("acme", Severity::kHigh, kT0, kT0, kT0 + kSecond, kT0 + kSecond);
  merged.merged_into = 7;
  CaseMetrics m = caseMetrics(merged, SlaPolicy{}, kT0 + kMinute);
  EXPECT_FALSE(m.mttr_ns);
  EXPECT_EQ(m.mtta_ns, kSecond);

  std::vector<CaseMetricsGroup> groups = aggregateCaseMetrics({merged}, SlaPolicy{}, kT0);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[1].cases, 1);
  EXPECT_EQ(groups[1].mttr.count, 0);
}

// A target is breached when the action came late, or when it has not come and now is late.
TEST(CaseMetricsTest, SlaBreaches) {
  const SlaPolicy sla = criticalSla();
  Case on_time =
      makeCase("acme", Severity::kCritical, kT0, kT0, kT0 + 10 * kMinute, kT0 + 200 * kMinute);
  CaseMetrics m = caseMetrics(on_time, sla, kT0 + 1000 * kMinute);
  EXPECT_EQ(m.acknowledge_due_ns, kT0 + 15 * kMinute);
  EXPECT_FALSE(m.acknowledge_breached);
  EXPECT_FALSE(m.resolve_breached);

  Case late_ack = makeCase("acme", Severity::kCritical, kT0, kT0, kT0 + 16 * kMinute, 0);
  m = caseMetrics(late_ack, sla, kT0 + 20 * kMinute);
  EXPECT_TRUE(m.acknowledge_breached);
  EXPECT_FALSE(m.resolve_breached);
  m = caseMetrics(late_ack, sla, kT0 + 241 * kMinute);
  EXPECT_TRUE(m.resolve_breached);

  Case waiting = makeCase("acme", Severity::kCritical, kT0, kT0, 0, 0);
  EXPECT_FALSE(caseMetrics(waiting, sla, kT0 + 14 * kMinute).acknowledge_breached);
  EXPECT_TRUE(caseMetrics(waiting, sla, kT0 + 16 * kMinute).acknowledge_breached);

  // Other severities have no target here.
  Case low = makeCase("acme", Severity::kLow, kT0, kT0, 0, 0);
  EXPECT_FALSE(caseMetrics(low, sla, kT0 + 10000 * kMinute).resolve_breached);
}

// Nearest-rank percentiles and the mean over a known set.
TEST(CaseMetricsTest, Summarize) {
  std::vector<int64_t> values;
  for (int i = 1; i <= 10; ++i) values.push_back(i * kSecond);
  DurationSummary s = summarize(values);
  EXPECT_EQ(s.count, 10);
  EXPECT_DOUBLE_EQ(s.mean_s, 5.5);
  EXPECT_DOUBLE_EQ(s.p50_s, 5);
  EXPECT_DOUBLE_EQ(s.p90_s, 9);
  EXPECT_EQ(summarize({}).count, 0);
  EXPECT_DOUBLE_EQ(summarize({7 * kSecond}).p90_s, 7);
}

// Groups per (tenant, severity) plus an "all" group per tenant, with breach counts.
TEST(CaseMetricsTest, AggregateGroups) {
  const SlaPolicy sla = criticalSla();
  std::vector<Case> cases = {
      makeCase("acme", Severity::kCritical, kT0 - kSecond, kT0, kT0 + 20 * kMinute, 0),
      makeCase("acme", Severity::kCritical, kT0 - 3 * kSecond, kT0, kT0 + 1 * kMinute, 0),
      makeCase("acme", Severity::kLow, kT0, kT0, 0, 0),
      makeCase("globex", Severity::kHigh, kT0, kT0, 0, kT0 + kMinute),
  };
  std::vector<CaseMetricsGroup> groups = aggregateCaseMetrics(cases, sla, kT0 + 30 * kMinute);
  ASSERT_EQ(groups.size(), 5u);
  EXPECT_EQ(groups[0].tenant, "acme");
  EXPECT_EQ(groups[0].severity, "low");
  EXPECT_EQ(groups[1].severity, "critical");
  EXPECT_EQ(groups[1].cases, 2);
  EXPECT_EQ(groups[1].mttd.count, 2);
  EXPECT_DOUBLE_EQ(groups[1].mttd.mean_s, 2);
  EXPECT_EQ(groups[1].mtta.count, 2);
  EXPECT_EQ(groups[1].acknowledge_breaches, 1);
  EXPECT_EQ(groups[1].resolve_breaches, 0);
  EXPECT_EQ(groups[2].severity, "all");
  EXPECT_EQ(groups[2].cases, 3);
  EXPECT_EQ(groups[4].tenant, "globex");
  EXPECT_EQ(groups[4].mttr.count, 1);
  EXPECT_DOUBLE_EQ(groups[4].mttr.p50_s, 60);
}

}  // namespace
}  // namespace vigil::mgmt
