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

}  // namespace
}  // namespace vigil
