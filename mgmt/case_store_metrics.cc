// CaseStore::caseMetricsBetween(): MTTD, MTTA, MTTR and SLA breaches per (tenant,
// severity), aggregated by SQLite so a metrics request never reads the cases themselves.
// The SQL follows caseMetrics() and aggregateCaseMetrics() (case_metrics.cc) term by
// term; tests/mgmt/case_metrics_test.cc compares the two on the same cases.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "mgmt/case_metrics.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/case_store_sql.h"

namespace vigil::mgmt {
namespace {

using internal::ReadTransaction;
using internal::SqliteStatement;

constexpr double kNsPerSecond = 1e9;
// Group number of a tenant's "all" group: one past the highest severity, so it sorts last.
constexpr int kAllGroup = 5;

// Parameters: ?1 allowed tenants (JSON array), ?2 tenant, ?3 from, ?4 to, ?5..?14 the
// acknowledge and resolve targets of severities 0..4, ?15 now. `where` uses ?1..?4 only
// for the filters that are set.
//
// per_case mirrors caseMetrics(): a duration is NULL where caseMetrics() leaves it unset
// (MTTR of a merged case included), and a target is breached when the action (or now, without one) came after the due
// time, never for a case merged into another.
std::string groupedSql(const std::string& where) {
  return absl::StrCat(R"(WITH scoped AS (
  SELECT tenant, severity, first_event_ns, detect_ns, alert_count,
         COALESCE(ack_ns, 0) AS ack, COALESCE(resolved_ns, 0) AS resolved,
         COALESCE(merged_into, 0) AS merged
  FROM cases)",
                      where, R"(),
sla(severity, ack_due, resolve_due) AS (
  VALUES (0, ?5, ?6), (1, ?7, ?8), (2, ?9, ?10), (3, ?11, ?12), (4, ?13, ?14)),
per_case AS (
  SELECT s.tenant, s.severity,
         CASE WHEN s.alert_count > 0 THEN MAX(0, s.detect_ns - s.first_event_ns) END AS mttd,
         CASE WHEN s.ack != 0 THEN MAX(0, s.ack - s.detect_ns) END AS mtta,
         CASE WHEN s.resolved != 0 AND s.merged = 0 THEN MAX(0, s.resolved - s.detect_ns)
         END AS mttr,
         (t.ack_due > 0 AND s.merged = 0 AND
          (CASE WHEN s.ack != 0 THEN s.ack WHEN s.resolved != 0 THEN s.resolved ELSE ?15 END)
            > s.detect_ns + t.ack_due) AS ack_breach,
         (t.resolve_due > 0 AND s.merged = 0 AND
          (CASE WHEN s.resolved != 0 THEN s.resolved ELSE ?15 END)
            > s.detect_ns + t.resolve_due) AS resolve_breach
  FROM scoped s, sla t WHERE t.severity = s.severity),
grouped AS (
  SELECT tenant, severity AS grp, mttd, mtta, mttr, ack_breach, resolve_breach FROM per_case
  UNION ALL
  SELECT tenant, )",
                      kAllGroup, R"(, mttd, mtta, mttr, ack_breach, resolve_breach FROM per_case))");
}

// The nearest rank of percentile `p` among `n` values, as percentile() in case_metrics.cc
// computes it: ceil(p * n) in double arithmetic, clamped to [1, n].
std::string rankSql(const char* p) {
  return absl::StrCat("MAX(1, MIN(n, CAST(", p, " * n AS INTEGER) + (", p,
                      " * n > CAST(", p, " * n AS INTEGER))))");
}

constexpr const char* kCountsSql = R"(
SELECT tenant, grp, COUNT(*), SUM(ack_breach), SUM(resolve_breach)
FROM grouped GROUP BY tenant, grp)";

std::string durationsSql() {
  return absl::StrCat(R"(,
durations AS (
  SELECT tenant, grp, 0 AS metric, mttd AS v FROM grouped WHERE mttd IS NOT NULL
  UNION ALL SELECT tenant, grp, 1, mtta FROM grouped WHERE mtta IS NOT NULL
  UNION ALL SELECT tenant, grp, 2, mttr FROM grouped WHERE mttr IS NOT NULL),
ranked AS (
  SELECT tenant, grp, metric, v,
         ROW_NUMBER() OVER (PARTITION BY tenant, grp, metric ORDER BY v) AS rn,
         COUNT(*) OVER (PARTITION BY tenant, grp, metric) AS n
  FROM durations)
SELECT tenant, grp, metric, MAX(n), TOTAL(v),
       MAX(CASE WHEN rn = )",
                      rankSql("0.5"), R"( THEN v END),
       MAX(CASE WHEN rn = )",
                      rankSql("0.9"), R"( THEN v END)
FROM ranked GROUP BY tenant, grp, metric)");
}

void bindAll(SqliteStatement& statement,
             const std::optional<std::vector<std::string>>& allowed_tenants,
             const std::string& tenant, int64_t from_ns, int64_t to_ns, const SlaPolicy& sla,
             int64_t now_ns) {
  if (allowed_tenants) statement.bindText(1, nlohmann::json(*allowed_tenants).dump());
  if (!tenant.empty()) statement.bindText(2, tenant);
  if (from_ns != 0) statement.bindInt(3, from_ns);
  if (to_ns != 0) statement.bindInt(4, to_ns);
  for (size_t severity = 0; severity < sla.size(); ++severity) {
    const int index = 5 + 2 * static_cast<int>(severity);
    statement.bindInt(index, sla[severity].acknowledge_ns);
    statement.bindInt(index + 1, sla[severity].resolve_ns);
  }
  statement.bindInt(15, now_ns);
}

}  // namespace

absl::StatusOr<std::vector<CaseMetricsGroup>> CaseStore::caseMetricsBetween(
    const std::optional<std::vector<std::string>>& allowed_tenants, const std::string& tenant,
    int64_t from_ns, int64_t to_ns) {
  std::vector<std::string> conditions;
  if (allowed_tenants) conditions.push_back("tenant IN (SELECT value FROM json_each(?1))");
  if (!tenant.empty()) conditions.push_back("tenant = ?2");
  if (from_ns != 0) conditions.push_back("detect_ns >= ?3");
  if (to_ns != 0) conditions.push_back("detect_ns < ?4");
  std::string where;
  for (const std::string& condition : conditions) {
    absl::StrAppend(&where, where.empty() ? "\n  WHERE " : " AND ", condition);
  }
  const std::string grouped = groupedSql(where);
  const int64_t now_ns = nowNs();

  StoreLock lock(*this);
  // One snapshot for both queries, so the counts and the durations describe the same cases.
  ReadTransaction read(db_);
  if (!read.status().ok()) return read.status();

  std::map<std::pair<std::string, int>, CaseMetricsGroup> groups;
  absl::StatusOr<SqliteStatement> counts =
      SqliteStatement::prepare(db_, "case_metrics_counts", grouped + kCountsSql);
  if (!counts.ok()) return counts.status();
  bindAll(*counts, allowed_tenants, tenant, from_ns, to_ns, options_.sla, now_ns);
  while (true) {
    absl::StatusOr<bool> row = counts->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const int grp = static_cast<int>(counts->columnInt(1));
    CaseMetricsGroup& group = groups[{counts->columnText(0), grp}];
    group.tenant = counts->columnText(0);
    group.severity =
        grp == kAllGroup ? "all" : std::string(severityName(static_cast<Severity>(grp)));
    group.cases = counts->columnInt(2);
    group.acknowledge_breaches = counts->columnInt(3);
    group.resolve_breaches = counts->columnInt(4);
  }

  absl::StatusOr<SqliteStatement> durations =
      SqliteStatement::prepare(db_, "case_metrics_durations", grouped + durationsSql());
  if (!durations.ok()) return durations.status();
  bindAll(*durations, allowed_tenants, tenant, from_ns, to_ns, options_.sla, now_ns);
  while (true) {
    absl::StatusOr<bool> row = durations->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto it = groups.find({durations->columnText(0), static_cast<int>(durations->columnInt(1))});
    // Both queries read one snapshot, so every duration group has a counts row.
    if (it == groups.end()) continue;
    DurationSummary summary;
    summary.count = durations->columnInt(3);
    summary.mean_s =
        durations->columnDouble(4) / static_cast<double>(summary.count) / kNsPerSecond;
    summary.p50_s = static_cast<double>(durations->columnInt(5)) / kNsPerSecond;
    summary.p90_s = static_cast<double>(durations->columnInt(6)) / kNsPerSecond;
    switch (durations->columnInt(2)) {
      case 0:
        it->second.mttd = summary;
        break;
      case 1:
        it->second.mtta = summary;
        break;
      default:
        it->second.mttr = summary;
        break;
    }
  }

  std::vector<CaseMetricsGroup> out;
  out.reserve(groups.size());
  for (auto& [key, group] : groups) out.push_back(std::move(group));
  return out;
}

}  // namespace vigil::mgmt
