// Two journals beside the runs database that let vigild find, after a crash, the run
// segments that were executing.
//
// RunJournal (<db>.journal.<slot>, one file per playbook worker): before a segment of a
// run starts, its worker writes the run's start there (for a run's first segment the
// whole alert, because the run's row is stored only when that segment ends), then one
// record before each connector call (the call's idempotency key) and one after it (its
// outcome). The next start runs again each segment that the journal shows was
// interrupted. An action whose outcome was recorded is not called again. An action whose
// outcome is unknown is called again with the same idempotency key, so the far side can
// drop the repeat.
//
// RunStartJournal (<db>.starts) is the format of builds before the run journal: one fixed
// slot per worker with a run's id and names but no alert. vigild only reads it at start,
// stores the runs it names as interrupted, and removes it.
//
// RunStartJournal layout: one fixed slot of kSlotBytes per worker, overwritten for every
// run. A slot contains a record with a checksum, so a slot that was never written or was torn
// by a crash reads as empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vigil::mgmt {

// One journal record: what the runs table needs to store an interrupted run.
struct RunStart {
  int64_t id = 0;
  int64_t created_ns = 0;  // wall clock, UTC ns
  std::string playbook;
  std::string playbook_hash;
  std::string tenant;
  std::string alert_id;
  std::string rule_id;
};

class RunStartJournal {
 public:
  static constexpr size_t kSlotBytes = 2048;
  // Text fields longer than this are cut to it in the record.
  static constexpr size_t kMaxFieldBytes = 256;

  // Opens or creates the journal at `path`. With `sync`, record() calls fdatasync before
  // it returns, so a record survives power loss; without it a record survives a crash of
  // the process only. Errors name the path.
  static absl::StatusOr<std::unique_ptr<RunStartJournal>> open(const std::string& path,
                                                               bool sync);
  ~RunStartJournal();
  RunStartJournal(const RunStartJournal&) = delete;
  RunStartJournal& operator=(const RunStartJournal&) = delete;

  // Every valid record in the file, in slot order (recovery at start).
  absl::StatusOr<std::vector<RunStart>> readAll() const;

  // Empties the file and syncs it. Call only after readAll()'s runs are stored.
  absl::Status clear();

  // Writes the start of a run into `slot`. Each worker owns one slot, so calls with
  // different slots may run at the same time. Never allocates. One pwrite, plus an
  // fdatasync when the journal was opened with `sync`.
  absl::Status record(size_t slot, int64_t id, int64_t created_ns, std::string_view playbook,
                      std::string_view playbook_hash, std::string_view tenant,
                      std::string_view alert_id, std::string_view rule_id);

  const std::string& path() const { return path_; }

 private:
  RunStartJournal(std::string path, int fd, bool sync);

  std::string path_;
  int fd_;
  bool sync_;
};


// The outcome of one connector call as the run journal records it.
struct RecordedAction {
  std::string key;  // the call's idempotency key
  bool ok = false;
  int code = 0;            // absl::StatusCode of a failure
  std::string error;       // failure message
  std::string value_json;  // the result as JSON text (ok calls)
  int64_t case_id = 0;     // RunContext::case_id after the call
};

// One run segment as read back from a run journal file.
struct JournalSegment {
  int64_t run_id = 0;
  int64_t created_ns = 0;  // the run's creation time (wall clock, UTC ns)
  // Entries in the run's stored step log when the segment began. A first segment (the
  // run has no row yet) has 0 and `first` set.
  int64_t stored_steps = 0;
  bool first = true;
  int64_t inbox_id = 0;  // the alert's row in the case store's alert inbox; 0 for none
  std::string playbook;
  std::string playbook_hash;
  std::string tenant;
  std::string alert_id;
  std::string rule_id;
  std::string alert_json;   // first segments: the alert as the playbook reads it
  std::string resume_json;  // later segments: JSON of the value the VM resumed with
  std::vector<std::string> started_keys;  // keys of calls that began, in order
  std::vector<RecordedAction> outcomes;   // outcomes of calls, in order
};

// One worker's run journal file. Not thread-safe: the worker that owns the slot is the
// only writer.
//
// Records are written with stores into a shared memory mapping of the file (MAP_SHARED),
// so writing one takes no system call. The stores reach the page cache as they are made,
// so a record survives a crash or SIGKILL of the process as a pwrite would. A record cut
// short by the crash fails its checksum, and the segment read back ends before it. The file
// starts at kInitialBytes, with its blocks allocated (so a store cannot fault for want of
// disk space), and doubles when a record does not fit. It is never shrunk, and the bytes
// past the last record are zeros or records of earlier segments.
class RunJournal {
 public:
  static constexpr size_t kInitialBytes = 64 * 1024;

  // Opens or creates the journal file `path` for writing and maps it. With `sync`,
  // beginSegment() and recordOutcome() write the records to the disk (msync with
  // MS_SYNC) before they return, so those records survive power loss. Without it, records
  // survive a crash of the process only. Errors name the path.
  static absl::StatusOr<std::unique_ptr<RunJournal>> open(const std::string& path, bool sync);
  ~RunJournal();
  RunJournal(const RunJournal&) = delete;
  RunJournal& operator=(const RunJournal&) = delete;

  // Reads the first segment in the file at `path`: its start record and every call record
  // after it that is complete and of the same segment. nullopt for an empty file or one whose
  // first record is torn. Errors name the path.
  static absl::StatusOr<std::optional<JournalSegment>> read(const std::string& path);

  // Reads every segment in the file at `path`, in the order they were written: the first
  // segment and each one appended after it (beginSegment() with `append`). Empty for a
  // missing or empty file. Errors name the path.
  static absl::StatusOr<std::vector<JournalSegment>> readAll(const std::string& path);

  // Starts a new segment with `start` (its run fields, alert or resume value, and any
  // outcomes already known, as a recovered segment carries them). It overwrites the
  // segments before it, unless `append` is set: then it follows them and they stay
  // readable, as the runner needs for the runs of one group commit until that commit and
  // their run store writes are done. No system call unless the file has to grow, plus an
  // msync with `sync`.
  absl::Status beginSegment(const JournalSegment& start, bool append = false);

  // Notes that the call with idempotency key `key` is about to be made. Never synced: a
  // call whose start record is lost has an unknown outcome either way. No system call
  // unless the file has to grow.
  absl::Status recordStart(std::string_view key, std::string_view action);

  // Records the outcome of the call, plus an msync with `sync`.
  absl::Status recordOutcome(const RecordedAction& outcome);

  const std::string& path() const { return path_; }
  // Bytes the current segment's records take, from the start of the file.
  size_t size() const { return offset_; }

 private:
  RunJournal(std::string path, int fd, bool sync, uint64_t generation, char* mapping,
             size_t capacity);
  absl::Status writeOutcome(const RecordedAction& outcome);
  // Makes room for a record with `payload_bytes` of payload at offset_ and returns where
  // its payload goes. closeRecord() then writes its header and moves offset_ past it.
  absl::StatusOr<char*> openRecord(size_t payload_bytes);
  void closeRecord(size_t payload_bytes);
  absl::Status grow(size_t needed);
  absl::Status syncIfDurable();

  std::string path_;
  int fd_;
  bool sync_;
  uint64_t generation_;  // of the current segment; each segment gets a new one
  char* mapping_;        // the whole file, capacity_ bytes
  size_t capacity_;
  size_t offset_ = 0;         // where the next record goes
  size_t unsynced_from_ = 0;  // start of the records not yet synced (with `sync`)
};

}  // namespace vigil::mgmt
