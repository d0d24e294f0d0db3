// The audit log: an append-only, hash-chained record of every mutating API call and every
// failed authentication or authorization, in SQLite (<state_dir>/audit.db, WAL,
// synchronous=FULL, so a record is on disk when append() returns).
//
// Record N stores prev_hash = hash of record N-1 (64 zeros for the first record) and
// hash = SHA-256 over canonicalRecord(N), which includes prev_hash. Editing any field of a
// record breaks its hash, and deleting a record breaks the next record's prev_hash and the
// seq sequence. Triggers reject UPDATE and DELETE through SQLite, so only someone who
// edits the file by hand can change the table, and verify() finds the change.
//
// Limit: removing records only at the end of the chain leaves a valid shorter chain. The
// seq counter kept in sqlite_sequence catches this unless the editor also rewrites that
// table. Copy the log off the host to defend against that.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"

struct sqlite3;

namespace vigil::mgmt {

// Fields the caller fills. append() adds seq, time and the hashes.
struct AuditEntry {
  std::string subject;   // token name, or "" for an unauthenticated request
  std::string token_id;  // public token id, or "" when none parsed
  std::string remote_addr;
  std::string method;
  std::string path;
  std::string target;                // ids the call acted on, e.g. "case=12" or "token=ab12..."
  std::vector<std::string> tenants;  // tenants the call concerns; empty = administrator only
  int status = 0;                    // HTTP status returned
  std::string outcome;               // "ok", "error", "auth_failed", "forbidden"
};

struct AuditRecord {
  int64_t seq = 0;
  int64_t time_ns = 0;
  AuditEntry entry;
  std::string prev_hash;
  std::string hash;
};

struct AuditFilter {
  static constexpr int kDefaultLimit = 100;
  static constexpr int kMaxLimit = 1000;
  int64_t after_seq = 0;  // records with seq > after_seq
  int limit = kDefaultLimit;
  // When set, only records whose tenants include one of these.
  std::optional<std::vector<std::string>> tenants;
};

struct AuditPage {
  std::vector<AuditRecord> items;  // ascending seq
  std::optional<int64_t> next_after;  // pass as after_seq for the next page; none at the end
};

struct AuditVerifyReport {
  int64_t records = 0;  // records checked
  bool ok = true;
  int64_t first_bad_seq = 0;  // seq of the first broken record (or of the gap), when !ok
  std::string problem;        // what is wrong there, when !ok
};

// Thread-safe: one mutex serializes the connection.
class AuditLog {
 public:
  // Opens or creates the log at `path`. `clock` (not owned; null = real clock) stamps records.
  static absl::StatusOr<std::unique_ptr<AuditLog>> open(const std::string& path,
                                                        const Clock* clock = nullptr);

  // "<state_dir>/audit.db".
  static std::string defaultPath(absl::string_view state_dir);

  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one record in its own transaction and returns it once committed (fsynced).
  // Blocks on disk I/O. Errors name the database.
  absl::StatusOr<AuditRecord> append(const AuditEntry& entry);

  // Returns one page of records. InvalidArgument for a limit outside 1..kMaxLimit or a
  // negative after_seq.
  absl::StatusOr<AuditPage> list(const AuditFilter& filter);

  // Checks the whole chain of the log at `path` without writing to it. Errors only when
  // the file cannot be opened or read; a broken chain is a report with ok = false.
  static absl::StatusOr<AuditVerifyReport> verify(const std::string& path);

  // The text that record `seq` hashes: a JSON array of every field and prev_hash.
  static std::string canonicalRecord(const AuditRecord& record);

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, sqlite3* db, const Clock* clock);
  absl::Status migrate();

  std::string path_;
  sqlite3* db_;
  const Clock* clock_;
  std::mutex mu_;
};

}  // namespace vigil::mgmt
