// The playbook runner's run segments: building a run's context and alert, starting a new
// run on a worker and resuming a stored one.
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/time.h"
#include "intel/snapshot.h"
#include "mgmt/case_connector.h"
#include "mgmt/internal/playbook_runner_util.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;
using json = nlohmann::json;

}  // namespace

void PlaybookRunner::prepareContext(RunContext& ctx, const RunRecord& run, Worker& worker) {
  ctx.connector = router_.get();
  ctx.run_id = run.id;
  ctx.playbook = run.playbook;
  ctx.tenant = run.tenant;
  ctx.cases_opened = tenantMetrics(run.tenant, worker).cases_opened;
  ctx.alert_id = run.alert_id;
  ctx.rule_id = run.rule_id;
  ctx.created_ns = run.created_ns;
  for (const RunStep& step : run.steps) {
    if (step.kind == "action" && step.outcome == "ok" && !step.idempotency_key.empty()) {
      ctx.done_action_keys.insert(step.idempotency_key);
    }
  }
  intel::SnapshotStore* store = intel_;
  // A run matches the indicators of its alert's tenant and of every tenant.
  // Two pointers fit std::function's own storage, so setting it allocates nothing. The
  // context owns the function and outlives every call of it, as for `log` below.
  ctx.intel = [store, &ctx](std::string_view value) {
    if (store == nullptr) return false;
    std::shared_ptr<const intel::Snapshot> snapshot = store->current();
    return snapshot != nullptr && findIndicator(*snapshot, value, ctx.tenant).has_value();
  };
  ctx.log = [&ctx, this](std::string_view message) {
    RunStep step;
    step.kind = "log";
    step.name = "log";
    step.message = std::string(message.substr(0, 4096));
    step.started_ns = clock_->nowNs();
    ctx.steps.push_back(std::move(step));
  };
}

void PlaybookRunner::startRun(const Job& job, Worker& worker) {
  const LoadedPlaybook& playbook = job.playbook->loaded;
  const correlate::Alert& source = *job.alert;
  absl::StatusOr<int64_t> id = allocateRunId();
  if (!id.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot record playbook run, not started playbook={} alert={} error=\"{}\"",
                    playbook.name, source.id, logText(id.status().ToString()));
    releaseInboxHold(job);
    return;
  }
  // The VM reads the alert through a view the worker keeps instead of a JSON object. In a
  // perf profile of bench/playbook_runner_bench, refreshing such an object and dumping it
  // took a third of the time before the first connector call.
  worker.alert.reset(source, job.inbox_id);
  RunRecord run;
  run.id = *id;
  run.playbook = playbook.name;
  run.playbook_hash = playbook.hash;
  run.tenant = source.tenant;
  run.alert_id = source.id;
  run.rule_id = source.rule_id;
  run.created_ns = clock_->nowNs();

  // The run's row is stored only when its first segment ends. Until then the journal is
  // its only trace, so the run and its whole alert are journaled before the first action:
  // a restart re-runs the segment from there.
  JournalSegment& segment = worker.first_segment;
  segment.run_id = run.id;
  segment.created_ns = run.created_ns;
  segment.first = true;
  segment.inbox_id = job.inbox_id;
  segment.playbook = run.playbook;
  segment.playbook_hash = run.playbook_hash;
  segment.tenant = run.tenant;
  segment.alert_id = run.alert_id;
  segment.rule_id = run.rule_id;
  worker.alert.writeJson(segment.alert_json);
  RunContext ctx;
  prepareContext(ctx, run, worker);
  ctx.alert_source = &worker.alert;
  if (job.inbox_id != 0) {
    ctx.inbox_alert = job.alert.get();
    ctx.inbox_alert_id = job.inbox_id;
  }
  const bool journaled = beginSegment(worker, segment, ctx);
  releaseInboxHold(job);
  if (!journaled) {
    VIGIL_LOG_ERROR("cannot record playbook run, not started playbook={} alert={}", playbook.name,
                    source.id);
    return;
  }
  playbookMetrics(playbook.name, worker).started->add();
  tenantMetrics(run.tenant, worker).started->add();
  ctx.trigger_mono_ns = job.queued_mono_ns;
  ctx.event_receive_ns = source.receive_ns;
  ctx.worker_mono_ns = worker.taken_mono_ns;
  pb::Budget budget{config_.max_steps, config_.max_memory_bytes};
  pb::RunResult result = worker.vm.run(*playbook.program, registry_, budget, &ctx);

  NewRun row{run.id,     run.created_ns, run.playbook,       run.playbook_hash,
             run.tenant, run.alert_id,   run.rule_id,        segment.alert_json,
             job.inbox_id};
  settle(run, ctx, result, worker, &row);
}

bool PlaybookRunner::beginSegment(Worker& worker, const JournalSegment& segment,
                                  RunContext& ctx) {
  if (absl::Status st = worker.journal->beginSegment(segment, worker.append_journal); !st.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot write the run journal run={} error=\"{}\"", segment.run_id,
                    logText(st.ToString()));
    return false;
  }
  ctx.journal = worker.journal;
  if (worker.group != nullptr) worker.append_journal = true;
  return true;
}

absl::StatusOr<std::shared_ptr<const pb::Program>> PlaybookRunner::programFor(
    const std::string& hash) {
  std::lock_guard<std::mutex> lock(programs_mu_);
  auto it = programs_.find(hash);
  if (it != programs_.end()) return it->second;
  if (std::shared_ptr<const pb::Program> active = activeProgram(hash)) return active;
  // An older version of a playbook whose file changed, or a pushed version no longer
  // active, since the run started. Pushed modules were stored when they became active.
  absl::StatusOr<std::vector<uint8_t>> module = store_->getModule(hash);
  if (!module.ok()) return module.status();
  absl::StatusOr<std::unique_ptr<pb::Program>> program = pb::loadProgram(*module, registry_);
  if (!program.ok()) return program.status();
  std::shared_ptr<const pb::Program> shared = std::move(*program);
  programs_[hash] = shared;
  return shared;
}

void PlaybookRunner::resumeRun(int64_t run_id, Worker& worker) {
  absl::StatusOr<RunRecord> run = store_->get(run_id);
  if (!run.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot read playbook run to resume run={} error=\"{}\"", run_id,
                    logText(run.status().ToString()));
    return;
  }
  if (run->state != RunState::kRunning || !run->pending_resume) return;  // already taken
  json alert = json::parse(run->alert_json, nullptr, false);
  RunContext ctx;
  prepareContext(ctx, *run, worker);
  ctx.alert = &alert;
  ctx.stored_steps = run->step_count;
  // Journaled before the hand-over is cleared, so that after a crash the segment is
  // either still handed over or found in the journal with the value it resumed with.
  JournalSegment segment;
  segment.run_id = run->id;
  segment.created_ns = run->created_ns;
  segment.stored_steps = run->step_count;
  segment.first = false;
  segment.playbook = run->playbook;
  segment.playbook_hash = run->playbook_hash;
  segment.tenant = run->tenant;
  segment.alert_id = run->alert_id;
  segment.rule_id = run->rule_id;
  segment.resume_json = *run->pending_resume;
  if (!beginSegment(worker, segment, ctx)) return;  // stays handed over for the next start
  if (absl::Status st = store_->clearPendingResume(run_id); !st.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot take playbook run run={} error=\"{}\"", run_id, logText(st.ToString()));
    return;
  }
  resumeSegment(*run, segment.resume_json, ctx, worker);
}

void PlaybookRunner::resumeSegment(const RunRecord& run, const std::string& resume_json,
                                   RunContext& ctx, Worker& worker) {
  json resume = json::parse(resume_json, nullptr, false);
  absl::StatusOr<std::shared_ptr<const pb::Program>> program = programFor(run.playbook_hash);
  if (!program.ok()) {
    pb::RunResult failed;
    failed.status = pb::RunStatus::kFailed;
    failed.steps = run.vm_steps;
    failed.message = absl::StrCat("cannot load playbook ", run.playbook, " version ",
                                  run.playbook_hash, ": ", program.status().message());
    settle(run, ctx, failed, worker, nullptr);
    return;
  }
  std::string text = resume.is_string() ? resume.get<std::string>() : "";
  pb::Value value = resume.is_string()    ? pb::Value::string(text)
                    : resume.is_boolean() ? pb::Value::boolean(resume.get<bool>())
                                          : pb::Value::null();
  pb::Budget budget{config_.max_steps, config_.max_memory_bytes};
  pb::RunResult result =
      worker.vm.resume(**program, registry_, budget, run.saved_state, value, &ctx);
  settle(run, ctx, result, worker, nullptr);
}

}  // namespace vigil::mgmt
