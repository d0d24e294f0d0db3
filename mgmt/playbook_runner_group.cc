// Group commit of default-case runs. A worker runs the default-case jobs queued behind
// each other, and their case.attach_alert actions share one case store transaction. So a
// backlog of alerts costs one commit and one sync per group instead of one per alert.
//
// Order of the writes, which keeps every filing durable and done at most once:
//   1. each run's segment is journaled (appended, so all of them stay in the journal);
//   2. the case actions run inside the shared transaction, each in its own savepoint, and
//      their outcomes are not journaled (ActionRouter, outcome_after_group_commit);
//   3. CaseStore::commitGroup() commits the filings with their idempotency keys;
//   4. only then are the runs stored, in one run store transaction.
// A crash before 3 leaves the alerts in the inbox and the segments in the journal: the
// next start runs them again with the same keys. A crash between 3 and 4 does the same,
// and the case store returns each key's recorded result instead of filing again.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/time.h"
#include "mgmt/case_store.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {

bool PlaybookRunner::takeFedJob(Job& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.empty()) return false;
    Job& next = queue_.front();
    if (!next.fed || next.recovered != nullptr) return false;
    job = std::move(next);
    queue_.pop_front();
    --alert_jobs_;
    --fed_jobs_;
    queueChanged();
  }
  room_.notify_one();
  wakeFeeder();
  return true;
}

void PlaybookRunner::fileGroup(Job first, Worker& worker) {
  if (!cases_->tryBeginGroupCommit()) {
    // Another worker's group is open; this run commits on its own.
    startRun(first, worker);
    return;
  }

  // The group's first segment replaces the journal, so runs kept for a later store go
  // to the run store first.
  storeDeferred(worker);
  std::vector<SettledSegment> group;
  group.reserve(kGroupCommitMaxRuns);
  worker.group = &group;
  worker.append_journal = false;  // the group's first segment replaces the journal's
  const int64_t deadline =
      monotonicNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(kGroupCommitWindow)
                          .count();

  Job job = std::move(first);
  size_t runs = 0;
  while (true) {
    startRun(job, worker);
    ++runs;
    if (runs >= kGroupCommitMaxRuns || monotonicNs() >= deadline || !takeFedJob(job)) break;
    worker.taken_mono_ns = monotonicNs();
  }

  worker.group = nullptr;
  group_runs_.add(runs);
  absl::Status committed = cases_->commitGroup();
  if (committed.ok()) {
    group_commits_ok_.add();
    storeGroup(group, worker);
  } else {
    group_commits_failed_.add();
    VIGIL_LOG_ERROR(
        "case store group commit failed, running each run again runs={} "
        "first_run={} error=\"{}\"",
        group.size(), group.empty() ? 0 : group.front().run_id, logText(committed.ToString()));
    rerunGroup(group, worker);
  }
  worker.append_journal = false;
}

void PlaybookRunner::storeGroup(std::vector<SettledSegment>& group, Worker& worker) {
  std::vector<absl::Status> stored(group.size());
  std::vector<RunFinish> finishes;
  std::vector<size_t> finished_index;
  finishes.reserve(group.size());
  for (size_t i = 0; i < group.size(); ++i) {
    SettledSegment& segment = group[i];
    if (segment.suspended) {
      stored[i] = storeSuspended(segment);  // synced on its own, as suspend() always is
      continue;
    }
    RunFinish finish;
    finish.id = segment.run_id;
    finish.state = segment.state;
    finish.result = std::move(segment.value);
    finish.error = segment.error;
    finish.vm_steps = segment.vm_steps;
    finish.steps = std::move(segment.steps);
    finish.insert = std::move(segment.insert);
    finishes.push_back(std::move(finish));
    finished_index.push_back(i);
  }
  absl::Status together = store_->finishMany(finishes);
  for (size_t k = 0; k < finishes.size(); ++k) {
    RunFinish& finish = finishes[k];
    absl::Status& status = stored[finished_index[k]];
    if (together.ok()) {
      status = absl::OkStatus();
    } else {
      // One run the batch could not store must not keep the others out of the store.
      status = store_->finish(finish.id, finish.state, finish.result, finish.error,
                              finish.vm_steps, finish.steps,
                              finish.insert ? &*finish.insert : nullptr);
    }
    group[finished_index[k]].steps = std::move(finish.steps);
  }
  if (!together.ok()) {
    VIGIL_LOG_WARN(
        "cannot store the runs of a group commit together, stored one by one "
        "runs={} error=\"{}\"",
        finishes.size(), logText(together.ToString()));
  }
  for (size_t i = 0; i < group.size(); ++i) countSettled(group[i], stored[i], worker);
}

void PlaybookRunner::rerunGroup(const std::vector<SettledSegment>& group, Worker& worker) {
  absl::StatusOr<std::vector<JournalSegment>> segments =
      RunJournal::readAll(worker.journal->path());
  if (!segments.ok()) {
    store_errors_.add(group.size());
    VIGIL_LOG_ERROR(
        "cannot read the run journal to run a failed group again runs={} error=\"{}\"; "
        "their alerts stay in the alert inbox for the next start",
        group.size(), logText(segments.status().ToString()));
    return;
  }
  for (const SettledSegment& settled : group) {
    const JournalSegment* found = nullptr;
    for (const JournalSegment& segment : *segments) {
      if (segment.run_id == settled.run_id && segment.first == settled.insert.has_value()) {
        found = &segment;
      }
    }
    if (found == nullptr) {
      store_errors_.add();
      VIGIL_LOG_ERROR("run of a failed group commit is not in the run journal, not run again "
                      "run={}; its alert stays in the alert inbox for the next start",
                      settled.run_id);
      continue;
    }
    Job job{settled.run_id, default_playbook_, nullptr, monotonicNs()};
    job.recovered = std::make_shared<const JournalSegment>(*found);
    recoverRun(job, worker);  // outside the group: each case action commits on its own
  }
}

}  // namespace vigil::mgmt
