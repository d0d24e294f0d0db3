// Run ids of the playbook runner: handed out in memory from blocks reserved in the run
// store with a synced write, so an id is never used twice, even after power loss.
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {

absl::Status PlaybookRunner::reserveRunIds() {
  absl::StatusOr<int64_t> first = store_->runIdCeiling();
  if (!first.ok()) return first.status();
  // Synced, and so also syncs the rows recovery wrote before the journals are removed.
  if (absl::Status st = store_->raiseRunIdCeiling(*first + kRunIdBlock); !st.ok()) return st;
  next_run_id_.store(*first);
  run_id_ceiling_.store(*first + kRunIdBlock);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PlaybookRunner::allocateRunId() {
  const int64_t id = next_run_id_.fetch_add(1, std::memory_order_relaxed);
  if (id < run_id_ceiling_.load(std::memory_order_acquire)) return id;
  // The timer thread keeps the ceiling ahead; only a burst of kRunIdBlock / 2 runs
  // between two of its checks gets here.
  if (absl::Status st = extendRunIds(id + 1); !st.ok()) return st;
  return id;
}

absl::Status PlaybookRunner::extendRunIds(int64_t needed) {
  std::lock_guard<std::mutex> lock(id_mu_);
  int64_t ceiling = run_id_ceiling_.load(std::memory_order_relaxed);
  if (needed <= ceiling) return absl::OkStatus();
  ceiling = needed + kRunIdBlock;
  if (absl::Status st = store_->raiseRunIdCeiling(ceiling); !st.ok()) return st;
  run_id_ceiling_.store(ceiling, std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
