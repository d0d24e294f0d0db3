// The analyst side of the case store: cases opened by hand, updates with their timeline,
// tasks, notes and merges. Uploaded files are in case_store_files.cc.
#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/case_store_sql.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt {
namespace {

using internal::kCaseColumns;
using internal::readCase;
using internal::ReadTransaction;
using internal::SqliteStatement;
using internal::WriteTransaction;

constexpr size_t kMaxTitleBytes = 500;
constexpr size_t kMaxTextBytes = 64 * 1024;
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxTags = 50;
constexpr size_t kMaxTagBytes = 64;

absl::Status checkText(absl::string_view field, absl::string_view value, size_t max_bytes,
                       bool required) {
  if (required && value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty; give a non-empty string"));
  }
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", value.size(), " bytes long; the limit is ", max_bytes));
  }
  return absl::OkStatus();
}

// Sorts and deduplicates tags after checking each one.
absl::StatusOr<std::vector<std::string>> normalizeTags(std::vector<std::string> tags) {
  for (const std::string& tag : tags) {
    if (tag.empty() || tag.size() > kMaxTagBytes) {
      return absl::InvalidArgumentError(absl::StrCat("tag '", tag, "' is empty or longer than ",
                                                     kMaxTagBytes, " bytes; give 1..", kMaxTagBytes,
                                                     " bytes"));
    }
  }
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  if (tags.size() > kMaxTags) {
    return absl::InvalidArgumentError(
        absl::StrCat("a case holds at most ", kMaxTags, " tags; ", tags.size(), " were given"));
  }
  return tags;
}

// Builds a statement, binds values in order (int64_t or text) and runs it.
template <typename... Values>
absl::StatusOr<SqliteStatement> bound(sqlite3* db, const char* name, const std::string& sql,
                                      const Values&... values) {
  absl::StatusOr<SqliteStatement> statement = SqliteStatement::prepare(db, name, sql);
  if (!statement.ok()) return statement.status();
  int index = 0;
  auto bind_one = [&](const auto& value) {
    ++index;
    if constexpr (std::is_integral_v<std::decay_t<decltype(value)>>) {
      statement->bindInt(index, static_cast<int64_t>(value));
    } else {
      statement->bindText(index, value);
    }
  };
  (bind_one(values), ...);
  return statement;
}

template <typename... Values>
absl::Status run(sqlite3* db, const char* name, const std::string& sql, const Values&... values) {
  absl::StatusOr<SqliteStatement> statement = bound(db, name, sql, values...);
  if (!statement.ok()) return statement.status();
  return statement->run();
}

CaseTask readTask(const SqliteStatement& row) {
  CaseTask task;
  task.id = row.columnInt(0);
  task.case_id = row.columnInt(1);
  task.title = row.columnText(2);
  task.assignee = row.columnText(3);
  task.status = parseTaskStatus(row.columnText(4)).value_or(TaskStatus::kOpen);
  task.created_by = row.columnText(5);
  task.created_ns = row.columnInt(6);
  task.updated_ns = row.columnInt(7);
  return task;
}

CaseNote readNote(const SqliteStatement& row) {
  CaseNote note;
  note.id = row.columnInt(0);
  note.case_id = row.columnInt(1);
  note.author = row.columnText(2);
  note.body = row.columnText(3);
  nlohmann::json mentions = nlohmann::json::parse(row.columnText(4), nullptr, false);
  if (mentions.is_array()) {
    for (const auto& name : mentions) {
      if (name.is_string()) note.mentions.push_back(name.get<std::string>());
    }
  }
  note.created_ns = row.columnInt(5);
  return note;
}

constexpr const char* kTaskColumns =
    "id, case_id, title, assignee, status, created_by, created_ns, updated_ns";
constexpr const char* kNoteColumns = "id, case_id, author, body, mentions, created_ns";

bool isOpen(CaseStatus status) {
  return status == CaseStatus::kNew || status == CaseStatus::kInProgress;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Reads

absl::StatusOr<Case> CaseStore::readCaseLocked(int64_t id) {
  absl::StatusOr<SqliteStatement> get = bound(
      db_, "read_case", absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id = ?"), id);
  if (!get.ok()) return get.status();
  absl::StatusOr<bool> row = get->step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("case ", id, " not found"));
  return readCase(*get);
}

absl::Status CaseStore::readWorkLocked(int64_t case_id, CaseDetail& detail) {
  absl::StatusOr<SqliteStatement> files =
      bound(db_, "read_files",
            "SELECT case_id, sha256, name, content_type, size_bytes, added_by, added_ns"
            " FROM case_files WHERE case_id = ? ORDER BY added_ns, sha256",
            case_id);
  if (!files.ok()) return files.status();
  while (true) {
    absl::StatusOr<bool> row = files->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    detail.files.push_back({files->columnInt(0), files->columnText(1), files->columnText(2),
                            files->columnText(3), files->columnInt(4), files->columnText(5),
                            files->columnInt(6)});
  }
  absl::StatusOr<SqliteStatement> tasks =
      bound(db_, "read_tasks",
            absl::StrCat("SELECT ", kTaskColumns, " FROM case_tasks WHERE case_id = ? ORDER BY id"),
            case_id);
  if (!tasks.ok()) return tasks.status();
  while (true) {
    absl::StatusOr<bool> row = tasks->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    detail.tasks.push_back(readTask(*tasks));
  }
  absl::StatusOr<SqliteStatement> notes =
      bound(db_, "read_notes",
            absl::StrCat("SELECT ", kNoteColumns, " FROM case_notes WHERE case_id = ? ORDER BY id"),
            case_id);
  if (!notes.ok()) return notes.status();
  while (true) {
    absl::StatusOr<bool> row = notes->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    detail.notes.push_back(readNote(*notes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TimelineEntry>> CaseStore::timeline(int64_t case_id) {
  StoreLock lock(*this);
  ReadTransaction read(db_);
  if (!read.status().ok()) return read.status();
  if (absl::StatusOr<Case> c = readCaseLocked(case_id); !c.ok()) return c.status();
  absl::StatusOr<SqliteStatement> list =
      bound(db_, "read_timeline",
            "SELECT id, case_id, at_ns, actor, human, action, field, old_value, new_value"
            " FROM case_timeline WHERE case_id = ? ORDER BY id",
            case_id);
  if (!list.ok()) return list.status();
  std::vector<TimelineEntry> entries;
  while (true) {
    absl::StatusOr<bool> row = list->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    entries.push_back({list->columnInt(0), list->columnInt(1), list->columnInt(2),
                       list->columnText(3), list->columnInt(4) != 0, list->columnText(5),
                       list->columnText(6), list->columnText(7), list->columnText(8)});
  }
  return entries;
}

// ---------------------------------------------------------------------------------------
// Cases

absl::Status CaseStore::setTagsLocked(int64_t case_id, const std::vector<std::string>& tags) {
  if (absl::Status s = run(db_, "clear_tags", "DELETE FROM case_tags WHERE case_id = ?", case_id);
      !s.ok()) {
    return s;
  }
  for (const std::string& tag : tags) {
    if (absl::Status s = run(db_, "insert_tag",
                             "INSERT INTO case_tags (case_id, tag) VALUES (?, ?)", case_id, tag);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Case> CaseStore::createCase(const NewCase& fields, const Actor& actor) {
  if (absl::Status s = checkText("title", fields.title, kMaxTitleBytes, true); !s.ok()) return s;
  if (absl::Status s = checkText("tenant", fields.tenant, kMaxNameBytes, true); !s.ok()) return s;
  if (absl::Status s = checkText("description", fields.description, kMaxTextBytes, false);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = checkText("assignee", fields.assignee, kMaxNameBytes, false); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<std::string>> tags = normalizeTags(fields.tags);
  if (!tags.ok()) return tags.status();

  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  const int64_t now_ns = options_.clock->nowNs();
  if (absl::Status s = run(db_, "create_case",
                           "INSERT INTO cases (title, description, severity, status, tenant,"
                           " assignee, rule_id, group_key, first_event_ns, detect_ns, updated_ns,"
                           " alert_count, created_by)"
                           " VALUES (?, ?, ?, 'new', ?, ?, '', '{}', ?, ?, ?, 0, ?)",
                           fields.title, fields.description, static_cast<int64_t>(fields.severity),
                           fields.tenant, fields.assignee, now_ns, now_ns, now_ns, actor.name);
      !s.ok()) {
    return s;
  }
  const int64_t id = sqlite3_last_insert_rowid(db_);
  if (absl::Status s = setTagsLocked(id, *tags); !s.ok()) return s;
  if (absl::Status s = recordLocked(id, actor, "created", "", "", fields.title); !s.ok()) return s;
  absl::StatusOr<Case> created = readCaseLocked(id);
  if (!created.ok()) return created.status();
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  return created;
}

absl::StatusOr<Case> CaseStore::updateCase(int64_t id, const CaseUpdate& update,
                                           const Actor& actor) {
  if (update.title) {
    if (absl::Status s = checkText("title", *update.title, kMaxTitleBytes, true); !s.ok()) {
      return s;
    }
  }
  for (const auto& [name, value] : {std::pair<const char*, const std::optional<std::string>*>{
                                        "description", &update.description},
                                    {"resolution_note", &update.resolution_note}}) {
    if (*value) {
      if (absl::Status s = checkText(name, **value, kMaxTextBytes, false); !s.ok()) return s;
    }
  }
  if (update.assignee) {
    if (absl::Status s = checkText("assignee", *update.assignee, kMaxNameBytes, false); !s.ok()) {
      return s;
    }
  }
  std::optional<std::vector<std::string>> tags;
  if (update.tags) {
    absl::StatusOr<std::vector<std::string>> normalized = normalizeTags(*update.tags);
    if (!normalized.ok()) return normalized.status();
    tags = *std::move(normalized);
  }

  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  absl::StatusOr<Case> current = readCaseLocked(id);
  if (!current.ok()) return current.status();
  const Case old = *current;
  Case next = old;
  const int64_t now_ns = options_.clock->nowNs();

  if (update.title) next.title = *update.title;
  if (update.description) next.description = *update.description;
  if (update.severity) next.severity = *update.severity;
  if (update.assignee) next.assignee = *update.assignee;
  if (update.status) {
    if (!caseTransitionAllowed(old.status, *update.status)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "case ", id, " cannot move from status ", caseStatusName(old.status), " to ",
          caseStatusName(*update.status),
          "; allowed moves are forward along new, in_progress, resolved, closed, or back to "
          "in_progress to reopen"));
    }
    next.status = *update.status;
  }
  const bool was_open = isOpen(old.status);
  const bool now_open = isOpen(next.status);
  if (!now_open) {
    if (update.resolution) next.resolution = std::string(resolutionName(*update.resolution));
    if (update.resolution_note) next.resolution_note = *update.resolution_note;
    if (next.resolution.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "status=", caseStatusName(next.status), " of case ", id,
          " needs a resolution; use one of true_positive, false_positive, benign, duplicate"));
    }
    if (was_open) next.resolved_ns = now_ns;
  } else {
    if (update.resolution || update.resolution_note) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resolution applies only to a resolved or closed case; case ", id, " would be ",
          caseStatusName(next.status), "; also send status resolved or closed"));
    }
    if (!was_open && old.merged_into != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("case ", id, " was merged into case ", old.merged_into,
                       " and holds no alerts or work; reopen or work on case ", old.merged_into));
    }
    if (!was_open) {
      // Reopen: an alert case must not collide with the open case that took over its key.
      absl::StatusOr<SqliteStatement> other =
          bound(db_, "find_open_other",
                "SELECT id FROM cases WHERE tenant = ? AND rule_id = ? AND group_key = ?"
                " AND status IN ('new', 'in_progress') AND rule_id <> '' AND id <> ?",
                old.tenant, old.rule_id, old.group_key, id);
      if (!other.ok()) return other.status();
      absl::StatusOr<bool> row = other->step();
      if (!row.ok()) return row.status();
      if (*row) {
        return absl::FailedPreconditionError(absl::StrCat(
            "case ", id, " cannot be reopened: case ", other->columnInt(0),
            " is already open for the same rule and group; work on that case or merge this "
            "one into it"));
      }
      next.resolution.clear();
      next.resolution_note.clear();
      next.resolved_ns = 0;
    }
  }

  struct Change {
    const char* field;
    std::string old_value;
    std::string new_value;
  };
  std::vector<Change> changes;
  auto compare = [&](const char* field, const std::string& a, const std::string& b) {
    if (a != b) changes.push_back({field, a, b});
  };
  compare("title", old.title, next.title);
  compare("description", old.description, next.description);
  compare("severity", std::string(severityName(old.severity)),
          std::string(severityName(next.severity)));
  compare("status", std::string(caseStatusName(old.status)),
          std::string(caseStatusName(next.status)));
  compare("resolution", old.resolution, next.resolution);
  compare("resolution_note", old.resolution_note, next.resolution_note);
  compare("assignee", old.assignee, next.assignee);
  if (tags) compare("tags", absl::StrJoin(old.tags, ","), absl::StrJoin(*tags, ","));
  if (changes.empty()) return old;

  absl::Status written =
      run(db_, "update_case",
          "UPDATE cases SET title = ?, description = ?, severity = ?, status = ?, resolution = ?,"
          " resolution_note = ?, assignee = ?, resolved_ns = NULLIF(?, 0), updated_ns = ?"
          " WHERE id = ?",
          next.title, next.description, static_cast<int64_t>(next.severity),
          std::string(caseStatusName(next.status)), next.resolution, next.resolution_note,
          next.assignee, next.resolved_ns, now_ns, id);
  if (!written.ok()) return written;
  if (tags) {
    if (absl::Status s = setTagsLocked(id, *tags); !s.ok()) return s;
  }
  for (const Change& change : changes) {
    if (absl::Status s =
            recordLocked(id, actor, "updated", change.field, change.old_value, change.new_value);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<Case> stored = readCaseLocked(id);
  if (!stored.ok()) return stored.status();
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  return stored;
}

// ---------------------------------------------------------------------------------------
// Tasks and notes

absl::StatusOr<CaseTask> CaseStore::addTask(int64_t case_id, const std::string& title,
                                            const std::string& assignee, const Actor& actor) {
  if (absl::Status s = checkText("title", title, kMaxTitleBytes, true); !s.ok()) return s;
  if (absl::Status s = checkText("assignee", assignee, kMaxNameBytes, false); !s.ok()) return s;
  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  if (absl::StatusOr<Case> c = readCaseLocked(case_id); !c.ok()) return c.status();
  const int64_t now_ns = options_.clock->nowNs();
  if (absl::Status s = run(db_, "insert_task",
                           "INSERT INTO case_tasks (case_id, title, assignee, status, created_by,"
                           " created_ns, updated_ns) VALUES (?, ?, ?, 'open', ?, ?, ?)",
                           case_id, title, assignee, actor.name, now_ns, now_ns);
      !s.ok()) {
    return s;
  }
  CaseTask task{sqlite3_last_insert_rowid(db_),
                case_id,
                title,
                assignee,
                TaskStatus::kOpen,
                actor.name,
                now_ns,
                now_ns};
  if (absl::Status s =
          recordLocked(case_id, actor, "task_added", absl::StrCat("task ", task.id), "", title);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = touchLocked(case_id); !s.ok()) return s;
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  return task;
}

absl::StatusOr<CaseTask> CaseStore::updateTask(int64_t case_id, int64_t task_id,
                                               const TaskUpdate& update, const Actor& actor) {
  if (update.title) {
    if (absl::Status s = checkText("title", *update.title, kMaxTitleBytes, true); !s.ok()) {
      return s;
    }
  }
  if (update.assignee) {
    if (absl::Status s = checkText("assignee", *update.assignee, kMaxNameBytes, false); !s.ok()) {
      return s;
    }
  }
  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  absl::StatusOr<SqliteStatement> get =
      bound(db_, "read_task",
            absl::StrCat("SELECT ", kTaskColumns, " FROM case_tasks WHERE id = ? AND case_id = ?"),
            task_id, case_id);
  if (!get.ok()) return get.status();
  absl::StatusOr<bool> row = get->step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(absl::StrCat("task ", task_id, " not found in case ", case_id));
  }
  const CaseTask old = readTask(*get);
  get->reset();
  CaseTask next = old;
  if (update.title) next.title = *update.title;
  if (update.assignee) next.assignee = *update.assignee;
  if (update.status) next.status = *update.status;

  const std::string field_prefix = absl::StrCat("task ", task_id, " ");
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> changes;
  if (old.title != next.title) changes.push_back({"title", {old.title, next.title}});
  if (old.assignee != next.assignee) {
    changes.push_back({"assignee", {old.assignee, next.assignee}});
  }
  if (old.status != next.status) {
    changes.push_back(
        {"status",
         {std::string(taskStatusName(old.status)), std::string(taskStatusName(next.status))}});
  }
  if (changes.empty()) return old;
  next.updated_ns = options_.clock->nowNs();
  if (absl::Status s = run(db_, "update_task",
                           "UPDATE case_tasks SET title = ?, assignee = ?, status = ?,"
                           " updated_ns = ? WHERE id = ?",
                           next.title, next.assignee, std::string(taskStatusName(next.status)),
                           next.updated_ns, task_id);
      !s.ok()) {
    return s;
  }
  for (const auto& [field, values] : changes) {
    if (absl::Status s = recordLocked(case_id, actor, "task_updated", field_prefix + field,
                                      values.first, values.second);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = touchLocked(case_id); !s.ok()) return s;
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  return next;
}

absl::StatusOr<CaseNote> CaseStore::addNote(int64_t case_id, const std::string& body,
                                            const Actor& actor) {
  if (absl::Status s = checkText("body", body, kMaxTextBytes, true); !s.ok()) return s;
  CaseNote note;
  note.case_id = case_id;
  note.author = actor.name;
  note.body = body;
  note.mentions = parseMentions(body);
  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  if (absl::StatusOr<Case> c = readCaseLocked(case_id); !c.ok()) return c.status();
  note.created_ns = options_.clock->nowNs();
  if (absl::Status s =
          run(db_, "insert_note",
              "INSERT INTO case_notes (case_id, author, body, mentions, created_ns)"
              " VALUES (?, ?, ?, ?, ?)",
              case_id, note.author, body, nlohmann::json(note.mentions).dump(), note.created_ns);
      !s.ok()) {
    return s;
  }
  note.id = sqlite3_last_insert_rowid(db_);
  if (absl::Status s = recordLocked(case_id, actor, "note_added", absl::StrCat("note ", note.id),
                                    "", absl::StrJoin(note.mentions, ","));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = touchLocked(case_id); !s.ok()) return s;
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  return note;
}

// ---------------------------------------------------------------------------------------
// Merge

absl::StatusOr<Case> CaseStore::mergeCase(int64_t source, int64_t target, const Actor& actor) {
  if (source == target) {
    return absl::InvalidArgumentError(
        absl::StrCat("case ", source, " cannot be merged into itself; give another case id"));
  }
  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  absl::StatusOr<Case> from = readCaseLocked(source);
  if (!from.ok()) return from.status();
  absl::StatusOr<Case> into = readCaseLocked(target);
  if (!into.ok()) return into.status();
  if (from->tenant != into->tenant) {
    return absl::FailedPreconditionError(
        absl::StrCat("case ", source, " of tenant ", from->tenant, " cannot be merged into case ",
                     target, " of tenant ", into->tenant, "; merge only within one tenant"));
  }
  if (from->merged_into != 0) {
    // Such a case cannot be reopened, so the hint below would lead nowhere.
    return absl::FailedPreconditionError(absl::StrCat("case ", source, " was merged into case ",
                                                      from->merged_into, " already; merge case ",
                                                      from->merged_into, " instead"));
  }
  if (from->status == CaseStatus::kClosed) {
    return absl::FailedPreconditionError(
        absl::StrCat("case ", source, " is closed; reopen it before merging it"));
  }
  if (!isOpen(into->status)) {
    return absl::FailedPreconditionError(
        absl::StrCat("case ", target, " is ", caseStatusName(into->status),
                     "; merge only into a new or in_progress case"));
  }
  const int64_t now_ns = options_.clock->nowNs();
  for (const char* table : {"alerts", "evidence", "case_tasks", "case_notes"}) {
    if (absl::Status s = run(db_, "merge_move",
                             absl::StrCat("UPDATE ", table, " SET case_id = ? WHERE case_id = ?"),
                             target, source);
        !s.ok()) {
      return s;
    }
  }
  for (const char* table : {"case_files", "case_tags"}) {
    // The target may already hold the same file or tag; keep its row.
    if (absl::Status s =
            run(db_, "merge_move_unique",
                absl::StrCat("UPDATE OR IGNORE ", table, " SET case_id = ? WHERE case_id = ?"),
                target, source);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = run(db_, "merge_drop_left",
                             absl::StrCat("DELETE FROM ", table, " WHERE case_id = ?"), source);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s =
          run(db_, "merge_target",
              "UPDATE cases SET alert_count = alert_count + ?,"
              " severity = MAX(severity, ?), first_event_ns = MIN(first_event_ns, ?),"
              " updated_ns = ? WHERE id = ?",
              from->alert_count, static_cast<int64_t>(from->severity),
              from->alert_count > 0 ? from->first_event_ns : into->first_event_ns, now_ns, target);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          run(db_, "merge_source",
              "UPDATE cases SET status = 'closed', resolution = 'duplicate',"
              " resolution_note = ?, resolved_ns = COALESCE(resolved_ns, ?),"
              " merged_into = ?, alert_count = 0, updated_ns = ? WHERE id = ?",
              absl::StrCat("merged into case ", target), now_ns, target, now_ns, source);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          recordLocked(source, actor, "merged_into", "case", "", std::to_string(target));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = recordLocked(source, actor, "updated", "status",
                                    std::string(caseStatusName(from->status)), "closed");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          recordLocked(target, actor, "merged_from", "case", "", std::to_string(source));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Case> merged = readCaseLocked(target);
  if (!merged.ok()) return merged.status();
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  return merged;
}

}  // namespace vigil::mgmt
