// Schema migrations of the case store. Migration N (1-based) moves a database from
// version N-1 to N. Append new migrations at the end and never edit a released one,
// because databases in the field already ran it.
#pragma once

#include <array>

namespace vigil::mgmt::internal {

// cases.severity is the Severity enum value (0 informational .. 4 critical), so ORDER BY
// severity sorts by rank. At most one case per (tenant, rule_id, group_key) may be open
// (status new or in_progress); the partial unique index enforces it.
inline constexpr const char* kMigrationV1 = R"sql(
CREATE TABLE cases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL,
  severity INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
  status TEXT NOT NULL CHECK (status IN ('new', 'in_progress', 'resolved', 'closed')),
  resolution TEXT NOT NULL DEFAULT '',
  assignee TEXT NOT NULL DEFAULT '',
  tenant TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  group_key TEXT NOT NULL,
  first_event_ns INTEGER NOT NULL,
  detect_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  alert_count INTEGER NOT NULL
);
CREATE UNIQUE INDEX cases_open_key ON cases (tenant, rule_id, group_key)
  WHERE status IN ('new', 'in_progress');
CREATE INDEX cases_detect ON cases (detect_ns, id);
CREATE INDEX cases_tenant_detect ON cases (tenant, detect_ns, id);

CREATE TABLE alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  alert_id TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  level TEXT NOT NULL,
  tenant TEXT NOT NULL,
  group_json TEXT NOT NULL,
  first_event_ns INTEGER NOT NULL,
  last_event_ns INTEGER NOT NULL,
  detect_ns INTEGER NOT NULL,
  event_count INTEGER NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX alerts_case ON alerts (case_id, id);

CREATE TABLE evidence (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  raw TEXT NOT NULL,
  PRIMARY KEY (alert_id, position)
);
CREATE INDEX evidence_case ON evidence (case_id, alert_id, position);
)sql";

// Notes and tags that playbook runs add to cases (mgmt/case_store_playbook.cc).
inline constexpr const char* kMigrationV2 = R"sql(
CREATE TABLE case_notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  author TEXT NOT NULL,
  text TEXT NOT NULL,
  created_ns INTEGER NOT NULL
);
CREATE INDEX case_notes_case ON case_notes (case_id, id);
CREATE TABLE case_tags (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (case_id, tag)
);
)sql";

inline constexpr std::array<const char*, 2> kMigrations = {kMigrationV1, kMigrationV2};

}  // namespace vigil::mgmt::internal
