#include "common/metrics.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

// The same name and labels return the same counter; rendering shows every series.
TEST(MetricsRegistryTest, CountersRenderAsPrometheusText) {
  MetricsRegistry reg;
  Counter& a = reg.counter("vigil_drops_total", "Dropped events.", {{"reason", "queue_full"}});
  Counter& b = reg.counter("vigil_drops_total", "Dropped events.", {{"reason", "queue_full"}});
  EXPECT_EQ(&a, &b);
  a.add(3);
  reg.counter("vigil_drops_total", "Dropped events.", {{"reason", "oversize"}}).add(2);
  std::string text = reg.renderPrometheus();
  EXPECT_NE(text.find("# TYPE vigil_drops_total counter"), std::string::npos);
  EXPECT_NE(text.find("vigil_drops_total{reason=\"queue_full\"} 3"), std::string::npos);
  EXPECT_NE(text.find("vigil_drops_total{reason=\"oversize\"} 2"), std::string::npos);
  EXPECT_EQ(reg.sum("vigil_drops_total"), 5u);
  EXPECT_EQ(reg.sum("vigil_drops_total", {{"reason", "oversize"}}), 2u);
}

// Histogram buckets render cumulatively with le last, and sum() reads _count and _sum.
TEST(MetricsRegistryTest, HistogramRendersCumulativeBuckets) {
  MetricsRegistry reg;
  const std::vector<double> bounds = {0.001, 0.01, 1};
  Histogram& h = reg.histogram("vigil_step_seconds", "Step time.", bounds, {{"step", "a"}});
  EXPECT_EQ(&h, &reg.histogram("vigil_step_seconds", "Step time.", bounds, {{"step", "a"}}));
  h.observe(0.0005);
  h.observe(0.001);  // on the bound: counts in le="0.001"
  h.observe(0.5);
  h.observe(7);
  reg.histogram("vigil_step_seconds", "Step time.", bounds, {{"step", "b"}}).observe(2);
  std::string text = reg.renderPrometheus();
  EXPECT_NE(text.find("# TYPE vigil_step_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("vigil_step_seconds_bucket{step=\"a\",le=\"0.001\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_step_seconds_bucket{step=\"a\",le=\"0.01\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_step_seconds_bucket{step=\"a\",le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_step_seconds_bucket{step=\"a\",le=\"+Inf\"} 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_step_seconds_sum{step=\"a\"} 7.5015\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_step_seconds_count{step=\"a\"} 4\n"), std::string::npos);
  EXPECT_EQ(reg.sum("vigil_step_seconds_count"), 5u);
  EXPECT_EQ(reg.sum("vigil_step_seconds_count", {{"step", "b"}}), 1u);
  EXPECT_EQ(reg.sum("vigil_step_seconds_sum", {{"step", "b"}}), 2u);
}

}  // namespace
}  // namespace vigil
