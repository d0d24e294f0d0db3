// The run start journal: a small file beside the runs database in which each playbook
// worker notes the run it is about to start, before the run's first action. The run's row
// in the database is written only when its first segment ends, in the same transaction
// as its steps, so the first connector call does not wait for SQLite. If vigild dies in
// between, the next start finds the note, finds no row for that run id, and stores the run
// as failed (interrupted), so no action is left without its run.
//
// Layout: one fixed slot of kSlotBytes per worker, overwritten for every run. A slot holds
// a record with a checksum, so a slot that was never written or was torn by a crash
// reads as empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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

}  // namespace vigil::mgmt
