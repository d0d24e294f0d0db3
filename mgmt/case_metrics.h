// Response-time metrics of cases: MTTD (first event to detection), MTTA (detection to the
// first analyst action) and MTTR (detection to resolution), SLA due times and breach flags
// per case, and their aggregate per tenant and severity. Pure functions of stored cases and
// a time "now"; nothing here touches the database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "mgmt/case_store.h"

namespace vigil::mgmt {

struct CaseMetrics {
  std::optional<int64_t> mttd_ns;  // unset for a case without alerts
  std::optional<int64_t> mtta_ns;  // unset until an analyst acted
  std::optional<int64_t> mttr_ns;  // unset until resolved or closed, and for merged cases
  int64_t acknowledge_due_ns = 0;  // 0 when the severity has no target
  int64_t resolve_due_ns = 0;
  // A target is breached when it passed before the action, or passed now without it.
  bool acknowledge_breached = false;
  bool resolve_breached = false;
};

// Metrics of one case at time `now_ns`. A case merged into another counts neither as
// acknowledged late nor as resolved late on its own, because its work moved to the target.
CaseMetrics caseMetrics(const Case& c, const SlaPolicy& sla, int64_t now_ns);

// count, mean and the 50th and 90th percentile (nearest rank) of a set of durations.
struct DurationSummary {
  int64_t count = 0;
  double mean_s = 0;
  double p50_s = 0;
  double p90_s = 0;
};

DurationSummary summarize(std::vector<int64_t> durations_ns);

struct CaseMetricsGroup {
  std::string tenant;
  std::string severity;  // a severity name, or "all" for the tenant's total
  int64_t cases = 0;
  DurationSummary mttd;
  DurationSummary mtta;
  DurationSummary mttr;
  int64_t acknowledge_breaches = 0;
  int64_t resolve_breaches = 0;
};

// Groups `cases` by (tenant, severity) and adds one "all" group per tenant. Sorted by
// tenant, then severity from informational to critical, "all" last. Allocates.
std::vector<CaseMetricsGroup> aggregateCaseMetrics(absl::Span<const Case> cases,
                                                   const SlaPolicy& sla, int64_t now_ns);

}  // namespace vigil::mgmt
