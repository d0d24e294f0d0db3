// The playbook runner's recovery at start: run segments the run journals show were
// interrupted (queued again, to run with the outcomes the journal recorded), runs left
// handed over or suspended, and runs of the older run start journal.
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/time.h"
#include "mgmt/internal/playbook_runner_util.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {
namespace {

namespace fs = std::filesystem;
namespace pb = playbook_vm;
using json = nlohmann::json;
using internal::dumpJson;
using internal::finalIndex;

// Journal files are "<db>.journal.<slot>" for workers and "<db>.journal.recovering.<run>"
// for a segment taken up at start and not yet journaled again by a worker.
std::string journalPrefix(const std::string& db) { return db + ".journal."; }

}  // namespace

absl::Status PlaybookRunner::recoverLegacyStarts(size_t& interrupted) {
  const std::string path = config_.db + ".starts";
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<RunStartJournal>> journal = RunStartJournal::open(path, false);
  if (!journal.ok()) return journal.status();
  absl::StatusOr<std::vector<RunStart>> starts = (*journal)->readAll();
  if (!starts.ok()) return starts.status();
  for (const RunStart& start : *starts) {
    absl::StatusOr<bool> stored = store_->exists(start.id);
    if (!stored.ok()) return stored.status();
    if (*stored) continue;  // its first segment ended and was stored
    // An older build noted the run without its alert, so it cannot run again.
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
    metricsForTenant(start.tenant).finished[finalIndex(RunState::kFailed)]->add();
    VIGIL_LOG_WARN("playbook run interrupted before it was stored run={} playbook={} alert={}",
                   start.id, start.playbook, start.alert_id);
    ++interrupted;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<JournalSegment, std::string>>>
PlaybookRunner::readJournals() {
  const std::string prefix = journalPrefix(config_.db);
  const fs::path folder = fs::path(config_.db).parent_path();
  std::vector<std::pair<JournalSegment, std::string>> out;
  std::error_code ec;
  for (fs::directory_iterator it(folder.empty() ? fs::path(".") : folder, ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string path = (folder / it->path().filename()).string();
    if (!absl::StartsWith(path, prefix) || !it->is_regular_file()) continue;
    // A worker's file contains several segments after a group commit (fileGroup()).
    absl::StatusOr<std::vector<JournalSegment>> segments = RunJournal::readAll(path);
    if (!segments.ok()) return segments.status();
    if (segments->empty()) {
      fs::remove(path, ec);  // empty or torn before its first record ended
      ec.clear();
    }
    for (JournalSegment& segment : *segments) out.emplace_back(std::move(segment), path);
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot list the run journals in ",
                                               folder.string(), ": ", ec.message()));
  }
  return out;
}

absl::Status PlaybookRunner::openJournals() {
  journals_.clear();
  for (size_t slot = 0; slot < config_.workers; ++slot) {
    absl::StatusOr<std::unique_ptr<RunJournal>> journal = RunJournal::open(
        absl::StrCat(journalPrefix(config_.db), slot), durability_ == RunDurability::kFull);
    if (!journal.ok()) return journal.status();
    journals_.push_back(std::move(*journal));
  }
  return absl::OkStatus();
}

absl::Status PlaybookRunner::recover() {
  size_t resumed = 0, interrupted = 0, waiting = 0, rerun = 0;
  if (absl::Status st = recoverLegacyStarts(interrupted); !st.ok()) return st;
  if (absl::Status st = reserveRunIds(); !st.ok()) return st;
  std::error_code ec;
  fs::remove(config_.db + ".starts", ec);

  // The journaled segments, by (run, first, stored steps). A crash after a worker journaled
  // a recovered segment again, and before it removed the older file, leaves the segment in
  // two files. The copy with the most outcomes is the newer one.
  absl::StatusOr<std::vector<std::pair<JournalSegment, std::string>>> files = readJournals();
  if (!files.ok()) return files.status();
  using SegmentKey = std::tuple<int64_t, bool, int64_t>;
  std::map<SegmentKey, size_t> newest;
  for (size_t i = 0; i < files->size(); ++i) {
    const JournalSegment& s = (*files)[i].first;
    auto [it, added] = newest.try_emplace(SegmentKey{s.run_id, s.first, s.stored_steps}, i);
    if (!added && s.outcomes.size() > (*files)[it->second].first.outcomes.size()) it->second = i;
  }
  std::set<std::string> keep;  // files that hold a segment queued again
  auto queueAgain = [&](size_t index) -> absl::Status {
    const auto& [segment, path] = (*files)[index];
    const std::string target = absl::StrCat(journalPrefix(config_.db), "recovering.",
                                            segment.run_id);
    if (path != target) {
      // Copied into a file of its own, because the worker's file may hold other segments
      // and the worker overwrites it. The worker's file goes once every copy is written; a
      // crash before that leaves both copies, and the one with more outcomes wins above.
      absl::StatusOr<std::unique_ptr<RunJournal>> copy =
          RunJournal::open(target, durability_ == RunDurability::kFull);
      if (!copy.ok()) return copy.status();
      if (absl::Status st = (*copy)->beginSegment(segment); !st.ok()) return st;
    }
    keep.insert(target);
    Job job{segment.run_id, nullptr, nullptr, monotonicNs()};
    job.recovered = std::make_shared<const JournalSegment>(segment);
    job.recovered_path = target;
    queue_.push_back(std::move(job));
    queueChanged();
    ++rerun;
    VIGIL_LOG_WARN("playbook run segment interrupted by a restart runs again run={} playbook={} "
                   "recorded_outcomes={} calls_with_unknown_outcome={}",
                   segment.run_id, segment.playbook, segment.outcomes.size(),
                   segment.started_keys.size() - std::min(segment.started_keys.size(),
                                                          segment.outcomes.size()));
    return absl::OkStatus();
  };

  // First segments: the run has no row, because the segment never ended.
  for (const auto& [key, index] : newest) {
    const JournalSegment& segment = (*files)[index].first;
    if (!segment.first) continue;
    absl::StatusOr<bool> stored = store_->exists(segment.run_id);
    if (!stored.ok()) return stored.status();
    if (*stored) continue;  // the segment ended and was stored
    if (absl::Status st = queueAgain(index); !st.ok()) return st;
    if (segment.inbox_id != 0) journaled_inbox_runs_.insert({segment.inbox_id, segment.playbook});
    if (config_.default_case && segment.inbox_id != 0 &&
        segment.playbook == default_playbook_->loaded.name) {
      recovered_inbox_ids_.insert(segment.inbox_id);
    }
  }

  absl::StatusOr<std::vector<RunRecord>> running = store_->runsInState(RunState::kRunning);
  if (!running.ok()) return running.status();
  for (const RunRecord& run : *running) {
    if (run.pending_resume && !run.saved_state.empty()) {
      // A decision or timer handed it over and no worker took it before the stop.
      queue_.push_back(Job{run.id, nullptr, nullptr, monotonicNs()});
      queueChanged();
      ++resumed;
      continue;
    }
    // A worker took it and was running the segment when the process ended. The journal
    // has the segment unless the process wrote no record of it.
    auto found = newest.find(SegmentKey{run.id, false, run.step_count});
    if (found != newest.end() && !run.saved_state.empty()) {
      if (absl::Status st = queueAgain(found->second); !st.ok()) return st;
      continue;
    }
    absl::Status st = store_->finish(
        run.id, RunState::kFailed, "",
        "interrupted: vigild stopped while this run was executing and its run journal has no "
        "record of the segment; check the actions after its last recorded step by hand",
        run.vm_steps, {});
    if (!st.ok()) return st;
    metricsFor(run.playbook).finished[finalIndex(RunState::kFailed)]->add();
    metricsForTenant(run.tenant).finished[finalIndex(RunState::kFailed)]->add();
    ++interrupted;
  }
  // Files of segments that ended and were stored, worker files whose interrupted segments
  // were copied out, and copies superseded by a newer one.
  std::set<std::string> seen;
  for (const auto& [segment, path] : *files) {
    if (keep.count(path) == 0 && seen.insert(path).second) fs::remove(path, ec);
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
  if (resumed + interrupted + waiting + rerun > 0) {
    VIGIL_LOG_INFO("playbook runs recovered suspended={} handed_over={} run_again={} "
                   "interrupted={}",
                   waiting, resumed, rerun, interrupted);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Running a recovered segment again

void PlaybookRunner::recoverRun(const Job& job, Worker& worker) {
  const JournalSegment& segment = *job.recovered;
  RunRecord run;
  if (segment.first) {
    run.id = segment.run_id;
    run.playbook = segment.playbook;
    run.playbook_hash = segment.playbook_hash;
    run.tenant = segment.tenant;
    run.alert_id = segment.alert_id;
    run.rule_id = segment.rule_id;
    run.created_ns = segment.created_ns;
    run.alert_json = segment.alert_json;
  } else {
    absl::StatusOr<RunRecord> stored = store_->get(segment.run_id);
    if (!stored.ok()) {
      store_errors_.add();
      VIGIL_LOG_ERROR("cannot read playbook run to run again run={} error=\"{}\"", segment.run_id,
                      logText(stored.status().ToString()));
      return;
    }
    run = std::move(*stored);
  }
  json alert = json::parse(run.alert_json, nullptr, false);
  RunContext ctx;
  prepareContext(ctx, run, worker);
  ctx.alert = &alert;
  ctx.stored_steps = segment.first ? 0 : run.step_count;
  for (const RecordedAction& outcome : segment.outcomes) {
    ctx.recorded[outcome.key].push_back(outcome);
  }
  // Journaled again in this worker's file, outcomes included, before the older file goes.
  if (!beginSegment(worker, segment, ctx)) return;  // the file stays for the next start
  // A job without a file is a segment of a group commit that failed (rerunGroup()).
  const bool restarted = !job.recovered_path.empty();
  if (restarted) {
    std::error_code ec;
    fs::remove(job.recovered_path, ec);
  }

  RunStep note;
  note.kind = "recovery";
  note.name = restarted ? "restart" : "group_commit_failed";
  note.outcome = "run_again";
  note.started_ns = clock_->nowNs();
  note.message = absl::StrCat(
      restarted ? "vigild stopped while this segment ran"
                : "the case store commit shared with other runs failed",
      "; it runs again from ", segment.first ? "the start of the run" : "its last saved state",
      ". ", segment.outcomes.size(),
      " action calls with a recorded outcome are not made again; calls with an unknown "
      "outcome are made again with the same idempotency key");
  ctx.steps.push_back(std::move(note));

  if (!segment.first) {
    resumeSegment(run, segment.resume_json, ctx, worker);
    return;
  }
  NewRun row{run.id,     run.created_ns, run.playbook, run.playbook_hash,
             run.tenant, run.alert_id,   run.rule_id,  run.alert_json, segment.inbox_id};
  absl::StatusOr<std::shared_ptr<const pb::Program>> program = programFor(run.playbook_hash);
  pb::RunResult result;
  if (!program.ok() || alert.is_discarded()) {
    result.status = pb::RunStatus::kFailed;
    result.message = absl::StrCat(
        "interrupted: vigild stopped during the first segment of this run and cannot run it "
        "again (", program.ok() ? "its journaled alert is not valid JSON" : program.status().message(),
        "); check the actions of playbook ", run.playbook, " by hand");
  } else {
    pb::Budget budget{config_.max_steps, config_.max_memory_bytes};
    result = worker.vm.run(**program, registry_, budget, &ctx);
  }
  settle(run, ctx, result, worker, &row);
}

}  // namespace vigil::mgmt
