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

// Version 2 makes cases a system of record: fields an analyst edits, times for MTTA and
// MTTR, tags, tasks, notes, uploaded files and a timeline of every change. Cases an analyst
// opens by hand have an empty rule_id, so the one-open-case key now covers alert cases only.
// ack_ns and resolved_ns are NULL until the first analyst action and the resolution.
inline constexpr const char* kMigrationV2 = R"sql(
ALTER TABLE cases ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN resolution_note TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN ack_ns INTEGER;
ALTER TABLE cases ADD COLUMN resolved_ns INTEGER;
ALTER TABLE cases ADD COLUMN merged_into INTEGER;
DROP INDEX cases_open_key;
CREATE UNIQUE INDEX cases_open_key ON cases (tenant, rule_id, group_key)
  WHERE status IN ('new', 'in_progress') AND rule_id <> '';
CREATE INDEX cases_updated ON cases (updated_ns, id);

CREATE TABLE case_tags (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (case_id, tag)
);
CREATE INDEX case_tags_tag ON case_tags (tag, case_id);

CREATE TABLE case_tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  assignee TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('open', 'done')),
  created_by TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE INDEX case_tasks_case ON case_tasks (case_id, id);

CREATE TABLE case_notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  author TEXT NOT NULL,
  body TEXT NOT NULL,
  mentions TEXT NOT NULL,
  created_ns INTEGER NOT NULL
);
CREATE INDEX case_notes_case ON case_notes (case_id, id);

CREATE TABLE case_files (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  sha256 TEXT NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  added_by TEXT NOT NULL,
  added_ns INTEGER NOT NULL,
  PRIMARY KEY (case_id, sha256)
);

CREATE TABLE case_timeline (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  at_ns INTEGER NOT NULL,
  actor TEXT NOT NULL,
  human INTEGER NOT NULL CHECK (human IN (0, 1)),
  action TEXT NOT NULL,
  field TEXT NOT NULL DEFAULT '',
  old_value TEXT NOT NULL DEFAULT '',
  new_value TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_timeline_case ON case_timeline (case_id, id);
)sql";

// Version 3 adds the alert inbox. With the default case playbook, the case sink stores
// each alert here in batches, and the playbook's case.attach_alert action moves it into
// the open case for its (tenant, rule_id, group_key), or a new one, in one transaction.
// `alert` is the full alert as mgmt/internal/stored_alert.h writes it.
inline constexpr const char* kMigrationV3 = R"sql(
CREATE TABLE alert_inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  alert_id TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  stored_ns INTEGER NOT NULL,
  alert TEXT NOT NULL
);
)sql";

// Version 4 records the idempotency key of every case action a playbook run performed,
// in the transaction of the action's writes, with the case it worked on and its result
// as JSON. The unique index makes a second action with the same key fail rather than
// write twice; CaseStore::runKeyedAction() returns the recorded result instead.
inline constexpr const char* kMigrationV4 = R"sql(
CREATE TABLE playbook_action_keys (
  key TEXT NOT NULL,
  tenant TEXT NOT NULL,
  action TEXT NOT NULL,
  case_id INTEGER NOT NULL,
  result TEXT NOT NULL,
  done_ns INTEGER NOT NULL
);
CREATE UNIQUE INDEX playbook_action_keys_key ON playbook_action_keys (key);
)sql";

// Version 5 stores evidence lines and playbook action keys in WITHOUT ROWID tables
// clustered on their primary key. In version 4 each was a rowid table plus a unique index
// on the same key, so every filed alert wrote two b-trees for each of them. The
// evidence_case index stays for reads by case.
inline constexpr const char* kMigrationV5 = R"sql(
CREATE TABLE evidence_v5 (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  raw TEXT NOT NULL,
  PRIMARY KEY (alert_id, position)
) WITHOUT ROWID;
INSERT INTO evidence_v5 (case_id, alert_id, position, raw)
  SELECT case_id, alert_id, position, raw FROM evidence;
DROP TABLE evidence;
ALTER TABLE evidence_v5 RENAME TO evidence;
CREATE INDEX evidence_case ON evidence (case_id, alert_id, position);

CREATE TABLE playbook_action_keys_v5 (
  key TEXT NOT NULL PRIMARY KEY,
  tenant TEXT NOT NULL,
  action TEXT NOT NULL,
  case_id INTEGER NOT NULL,
  result TEXT NOT NULL,
  done_ns INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO playbook_action_keys_v5 (key, tenant, action, case_id, result, done_ns)
  SELECT key, tenant, action, case_id, result, done_ns FROM playbook_action_keys;
DROP TABLE playbook_action_keys;
ALTER TABLE playbook_action_keys_v5 RENAME TO playbook_action_keys;
)sql";

inline constexpr std::array<const char*, 5> kMigrations = {kMigrationV1, kMigrationV2,
                                                           kMigrationV3, kMigrationV4,
                                                           kMigrationV5};

}  // namespace vigil::mgmt::internal
