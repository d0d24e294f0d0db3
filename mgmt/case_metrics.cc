#include "mgmt/case_metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

namespace vigil::mgmt {
namespace {

constexpr double kNsPerSecond = 1e9;

// Durations of one group, collected before summarizing.
struct GroupDurations {
  int64_t cases = 0;
  std::vector<int64_t> mttd;
  std::vector<int64_t> mtta;
  std::vector<int64_t> mttr;
  int64_t acknowledge_breaches = 0;
  int64_t resolve_breaches = 0;

  void add(const CaseMetrics& m) {
    ++cases;
    if (m.mttd_ns) mttd.push_back(*m.mttd_ns);
    if (m.mtta_ns) mtta.push_back(*m.mtta_ns);
    if (m.mttr_ns) mttr.push_back(*m.mttr_ns);
    acknowledge_breaches += m.acknowledge_breached ? 1 : 0;
    resolve_breaches += m.resolve_breached ? 1 : 0;
  }
};

// Nearest-rank percentile of sorted, non-empty `values`.
int64_t percentile(const std::vector<int64_t>& values, double p) {
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

}  // namespace

CaseMetrics caseMetrics(const Case& c, const SlaPolicy& sla, int64_t now_ns) {
  CaseMetrics m;
  if (c.alert_count > 0) m.mttd_ns = std::max<int64_t>(0, c.detect_ns - c.first_event_ns);
  if (c.ack_ns != 0) m.mtta_ns = std::max<int64_t>(0, c.ack_ns - c.detect_ns);
  const bool merged = c.merged_into != 0;
  // A merge closes the case without resolving it, so it has no time to resolve.
  if (c.resolved_ns != 0 && !merged) {
    m.mttr_ns = std::max<int64_t>(0, c.resolved_ns - c.detect_ns);
  }

  const SlaTarget& target = sla[static_cast<size_t>(c.severity)];
  if (target.acknowledge_ns > 0) {
    m.acknowledge_due_ns = c.detect_ns + target.acknowledge_ns;
    int64_t acted = c.ack_ns != 0 ? c.ack_ns : (c.resolved_ns != 0 ? c.resolved_ns : now_ns);
    m.acknowledge_breached = !merged && acted > m.acknowledge_due_ns;
  }
  if (target.resolve_ns > 0) {
    m.resolve_due_ns = c.detect_ns + target.resolve_ns;
    int64_t resolved = c.resolved_ns != 0 ? c.resolved_ns : now_ns;
    m.resolve_breached = !merged && resolved > m.resolve_due_ns;
  }
  return m;
}

DurationSummary summarize(std::vector<int64_t> durations_ns) {
  DurationSummary summary;
  if (durations_ns.empty()) return summary;
  std::sort(durations_ns.begin(), durations_ns.end());
  double total = 0;
  for (int64_t d : durations_ns) total += static_cast<double>(d);
  summary.count = static_cast<int64_t>(durations_ns.size());
  summary.mean_s = total / static_cast<double>(durations_ns.size()) / kNsPerSecond;
  summary.p50_s = static_cast<double>(percentile(durations_ns, 0.5)) / kNsPerSecond;
  summary.p90_s = static_cast<double>(percentile(durations_ns, 0.9)) / kNsPerSecond;
  return summary;
}

std::vector<CaseMetricsGroup> aggregateCaseMetrics(absl::Span<const Case> cases,
                                                   const SlaPolicy& sla, int64_t now_ns) {
  // Key: (tenant, severity rank); rank 5 is the tenant's "all" group, so it sorts last.
  constexpr int kAll = 5;
  std::map<std::pair<std::string, int>, GroupDurations> groups;
  for (const Case& c : cases) {
    CaseMetrics m = caseMetrics(c, sla, now_ns);
    groups[{c.tenant, static_cast<int>(c.severity)}].add(m);
    groups[{c.tenant, kAll}].add(m);
  }
  std::vector<CaseMetricsGroup> out;
  out.reserve(groups.size());
  for (auto& [key, durations] : groups) {
    CaseMetricsGroup group;
    group.tenant = key.first;
    group.severity =
        key.second == kAll ? "all" : std::string(severityName(static_cast<Severity>(key.second)));
    group.cases = durations.cases;
    group.mttd = summarize(std::move(durations.mttd));
    group.mtta = summarize(std::move(durations.mtta));
    group.mttr = summarize(std::move(durations.mttr));
    group.acknowledge_breaches = durations.acknowledge_breaches;
    group.resolve_breaches = durations.resolve_breaches;
    out.push_back(std::move(group));
  }
  return out;
}

}  // namespace vigil::mgmt
