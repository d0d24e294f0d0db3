// The playbook runner's recovery at start: runs the run start journal shows were
// interrupted before their first write, runs left executing, handed over or suspended.
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/time.h"
#include "mgmt/internal/playbook_runner_util.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {

using internal::dumpJson;
using internal::finalIndex;

absl::Status PlaybookRunner::recoverJournal(size_t& interrupted) {
  absl::StatusOr<std::vector<RunStart>> starts = journal_->readAll();
  if (!starts.ok()) return starts.status();
  for (const RunStart& start : *starts) {
    absl::StatusOr<bool> stored = store_->exists(start.id);
    if (!stored.ok()) return stored.status();
    if (*stored) continue;  // its first segment ended and was stored
    // The run took its first actions, or was about to, when the process ended.
    NewRun row{start.id,       start.created_ns, start.playbook, start.playbook_hash,
               start.tenant,   start.alert_id,   start.rule_id,
               dumpJson({{"id", start.alert_id}, {"rule_id", start.rule_id},
                         {"tenant", start.tenant}})};
    RunStep end;
    end.kind = "end";
    end.name = "failed";
    end.outcome = "error";
    end.started_ns = clock_->nowNs();
    end.message =
        "interrupted: vigild stopped during the first segment of this run, before its steps "
        "were stored; check the actions of playbook " + start.playbook + " by hand";
    absl::Status st =
        store_->finish(start.id, RunState::kFailed, "", end.message, 0, {end}, &row);
    if (!st.ok()) return st;
    metricsFor(start.playbook).finished[finalIndex(RunState::kFailed)]->add();
    VIGIL_LOG_WARN("playbook run interrupted before it was stored run={} playbook={} alert={}",
                   start.id, start.playbook, start.alert_id);
    ++interrupted;
  }
  return absl::OkStatus();
}


absl::Status PlaybookRunner::recover() {
  size_t resumed = 0, interrupted = 0, waiting = 0;
  if (absl::Status st = recoverJournal(interrupted); !st.ok()) return st;
  if (absl::Status st = reserveRunIds(); !st.ok()) return st;
  absl::StatusOr<std::vector<RunRecord>> running = store_->runsInState(RunState::kRunning);
  if (!running.ok()) return running.status();
  for (const RunRecord& run : *running) {
    if (run.pending_resume && !run.saved_state.empty()) {
      // A decision or timer handed it over and no worker took it before the stop.
      queue_.push_back(Job{run.id, 0, nullptr, monotonicNs()});
      ++resumed;
      continue;
    }
    // It was executing when the process ended, so the actions of its last segment may
    // or may not have happened. Repeating them could block twice or page twice.
    absl::Status st = store_->finish(
        run.id, RunState::kFailed, "",
        "interrupted: vigild stopped while this run was executing; check the actions after "
        "its last recorded step by hand",
        run.vm_steps, {});
    if (!st.ok()) return st;
    metricsFor(run.playbook).finished[finalIndex(RunState::kFailed)]->add();
    ++interrupted;
  }
  for (RunState state : {RunState::kWaitingApproval, RunState::kDelayed}) {
    absl::StatusOr<std::vector<RunRecord>> runs = store_->runsInState(state);
    if (!runs.ok()) return runs.status();
    for (const RunRecord& run : *runs) {
      wakes_.emplace(run.wake_ns, Wake{run.id, state});
      ++waiting;
    }
  }
  updateWaitingGauges();
  if (resumed + interrupted + waiting > 0) {
    VIGIL_LOG_INFO("playbook runs recovered suspended={} handed_over={} interrupted={}", waiting,
                   resumed, interrupted);
  }
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
