// Alerts: what the correlation stage emits, and the sinks that take them (JSON lines
// writer, case store). An Alert is a control-plane sized object: allocation is fine here,
// because alerts are rare compared with events.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace vigil::correlate {

struct Alert {
  std::string id;       // unique per process run: "<rule_id>-<sequence>"
  std::string rule_id;  // the Sigma rule's id (or title when it has no id)
  std::string rule_title;
  uint64_t rules_version = 0;  // EngineOptions::rules_version of the engine that raised it
  std::string level;  // Sigma level: informational, low, medium, high, critical
  std::string tenant;
  std::vector<std::pair<std::string, std::string>> group;  // group-by field -> value
  std::vector<std::string> tags;
  int64_t first_event_ns = 0;  // event time of the first event that contributed
  int64_t last_event_ns = 0;
  int64_t detect_ns = 0;     // wall-clock time the alert was raised
  // Wall-clock time the raising event was received, set when the pipeline delivers the
  // alert; 0 when unknown (alerts from a checkpoint or a test). Kept in the alert inbox,
  // left out of alertToJson().
  int64_t receive_ns = 0;
  uint64_t event_count = 0;  // events that contributed
  // value_sum, value_avg and value_percentile: the sum, average or percentile that met
  // the condition. value_count windows that close: the distinct values. NaN otherwise.
  double metric = std::numeric_limits<double>::quiet_NaN();
  // Evidence: the raw text of the contributing events (at most Alert::kMaxEvidence; the
  // rest are counted in event_count only) and the indicator hits they carried.
  static constexpr size_t kMaxEvidence = 16;
  std::vector<std::string> evidence;
  std::vector<std::string> indicator_hits;  // "list:indicator@field"
  // Set only on the alerts of a detection rule with `suppress`: the rule's index and the
  // key (tenant, then the suppress group-by values) that Engine::admitAlert() checks in a
  // serial stage. Not serialized.
  uint32_t suppress_rule = UINT32_MAX;
  std::string suppress_key;
};

// Serializes an alert as one JSON object (no newline), keys sorted by name. Invalid UTF-8
// in its texts becomes U+FFFD.
std::string alertToJson(const Alert& alert);

// Appends the text of alertToJson() to `out`, so a writer can reuse one buffer.
void appendAlertJson(const Alert& alert, std::string& out);

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // Takes one alert. Called from the pipeline's last serial stage, one call at a time.
  virtual void onAlert(const Alert& alert) = 0;
  // Called once after the last alert, before shutdown.
  virtual void flush() {}
};

}  // namespace vigil::correlate
