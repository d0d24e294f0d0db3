// The connector side of playbook runs inside vigild: the per-run context connectors see,
// and the ActionRouter that sends each action to the connector `playbooks.actions` names,
// times the call, counts it and records it in the run's step log.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "correlate/alert.h"
#include "mgmt/playbook_config.h"
#include "mgmt/run_journal.h"
#include "mgmt/run_store.h"
#include "nlohmann/json.hpp"
#include "playbook_vm/compiler/alert_host.h"

namespace vigil::mgmt {

// What a connector knows about the run that calls it. Passed to the VM as the
// AlertRunContext base, so the alert host functions read the same object.
struct RunContext : playbook_vm::compiler::AlertRunContext {
  int64_t run_id = 0;
  std::string playbook;
  std::string tenant;
  std::string alert_id;
  std::string rule_id;
  int64_t case_id = 0;  // case opened by an earlier case action of this run; 0 for none
  int64_t created_ns = 0;  // when the run was created (UTC ns); part of its idempotency keys
  // Idempotency keys of this run's actions that succeeded: from the stored step log when
  // the run resumes, plus those of the current segment.
  std::set<std::string> done_action_keys;
  // Idempotency key of the action being performed; ActionRouter::perform() sets it for the
  // connector and clears it afterwards.
  std::string action_key;
  // The run journal of the worker running this segment: perform() records each call's key
  // before the call and its outcome after it. Null records nothing (dry runs, tests).
  RunJournal* journal = nullptr;
  // Outcomes a journal recorded before a restart, by idempotency key, each key's in call
  // order. perform() takes the first outcome of a call's key, if any, instead of calling
  // the connector again.
  std::map<std::string, std::deque<RecordedAction>, std::less<>> recorded;
  // Set by a connector whose action ran inside a group commit of the case store
  // (CaseStore::tryBeginGroupCommit()): the action is durable only after that commit, so
  // perform() does not journal its outcome. After a crash the call is made again with the
  // same key, and the store returns the recorded result if the commit happened.
  bool outcome_after_group_commit = false;
  // Cases opened by this run's actions inside a group commit, counted in
  // vigil_cases_opened_total by the runner once the commit succeeded.
  int64_t cases_opened_in_group = 0;
  // The series of vigil_cases_opened_total of the run's tenant, where case actions count
  // the cases they open. Null counts nothing (dry runs, tests).
  Counter* cases_opened = nullptr;
  // The decoded alert of the inbox row `inbox_alert_id`, when the run's alert came from the
  // alert inbox, so case.attach_alert on that row does not decode its text again. Null
  // for other runs.
  const correlate::Alert* inbox_alert = nullptr;
  int64_t inbox_alert_id = 0;
  // Steps taken since the last time the runner persisted them.
  std::vector<RunStep> steps;
  // Entries already in the run's stored step log when this segment started.
  int64_t stored_steps = 0;
  // Monotonic times the alert reached the runner and a worker took its job; 0 for a
  // resumed segment, whose actions are not timed.
  int64_t trigger_mono_ns = 0;
  int64_t worker_mono_ns = 0;
  // Filled by the router when it dispatches the first action of the run: from
  // trigger_mono_ns and from worker_mono_ns to the connector call.
  std::optional<int64_t> first_action_latency_ns;
  // Wall-clock receipt of the event that raised the alert (0 unknown), and the time from
  // it to the first connector call, filled with first_action_latency_ns.
  int64_t event_receive_ns = 0;
  std::optional<int64_t> event_to_action_ns;
  std::optional<int64_t> dispatch_latency_ns;

  // The seq the next step gets in the run's log. The run id and the seq of a segment's
  // steps are fixed before its first action. So (run_id, seq) names an action the same
  // way if the segment is ever run again, and connectors can send it as an idempotency key.
  int64_t nextStepSeq() const { return stored_steps + static_cast<int64_t>(steps.size()) + 1; }
};

// The RunContext of the run making `call`.
RunContext& runContext(playbook_vm::HostCall& call);

// The action's parameters [k1, v1, k2, v2, ...] as a JSON object.
nlohmann::json paramsToJson(const playbook_vm::List& params);

// Replaces `out` with the JSON text of paramsToJson(params), byte for byte what its
// dump(-1, ' ', false, error_handler_t::replace) returns, without building the object.
// The text is part of each action's idempotency key.
void writeParamsJson(const playbook_vm::List& params, std::string& out);

// Derives the idempotency key of one action call: "vigil-" and 32 hex digits of a SHA-256
// over the run's id and creation time, the pc of the call, the action name, the parameters
// (`params_json`) and how many calls with those same inputs already succeeded in this run
// (counted in ctx.done_action_keys). Every attempt of a retry therefore gets the same key,
// also after a restart, while a loop that repeats a successful call gets a new one.
// NOTE: after every attempt of a call failed and on_error let the run go on, a later call
// with the same pc, action and parameters reuses the failed call's key.
std::string actionIdempotencyKey(const RunContext& ctx, uint32_t pc, std::string_view action,
                                 const std::string& params_json);

// One named connector: its configuration and the implementation.
struct NamedConnector {
  std::string name;
  std::string type;
  std::unique_ptr<playbook_vm::compiler::ActionConnector> connector;
  // Serializes calls: connectors hold one client each (HTTP client, socket, file).
  std::unique_ptr<std::mutex> mu = std::make_unique<std::mutex>();
  Counter* ok = nullptr;
  Counter* failed = nullptr;
  Histogram* latency = nullptr;
  Gauge* up = nullptr;
  Gauge* consecutive_errors = nullptr;
  int64_t error_streak = 0;  // guarded by `mu`
};

// Metrics (in the registry given to the constructor):
//   vigil_playbook_connector_calls_total{connector, outcome=ok|error}
//   vigil_playbook_connector_latency_seconds{connector}      histogram of each call
//   vigil_playbook_connector_consecutive_errors{connector}   gauge, 0 after a success
//   vigil_playbook_connector_up{connector}   gauge: 0 after kUnhealthyAfterErrors errors in
//                                            a row, 1 again after the next success
//   vigil_playbook_actions_unrouted_total   actions no route matched (the step fails)
//   vigil_playbook_actions_replayed_total   actions not called again after a restart,
//                                           because the run journal had their outcome
//   vigil_playbook_journal_errors_total     run journal records that could not be written
//                                           (the call goes ahead; after a crash its outcome
//                                           is unknown, so it is called again with its key)
class ActionRouter final : public playbook_vm::compiler::ActionConnector {
 public:
  static constexpr int64_t kUnhealthyAfterErrors = 3;

  ActionRouter(std::vector<NamedConnector> connectors, std::vector<ActionRoute> routes,
               MetricsRegistry& metrics);

  // Finds the connector for `action`: exact name, then the longest "prefix.*", then "*".
  // Returns nullptr when none matches.
  NamedConnector* route(std::string_view action);

  // Performs `action` on its connector, recording a step with the call's idempotency key in
  // the RunContext. A failure of the connector is returned as the action's failure. When
  // ctx.recorded contains an outcome for the key, returns that outcome without calling the
  // connector; otherwise, with ctx.journal set, records the key before the call and the
  // outcome after it. Thread-safe; blocks for the connector's I/O.
  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

  size_t connectorCount() const { return connectors_.size(); }

 private:
  std::vector<NamedConnector> connectors_;
  bool replay(RunContext& ctx, const std::string& key, playbook_vm::HostCall& call,
              playbook_vm::Value& result, absl::Status& status);
  void journalOutcome(RunContext& ctx, const std::string& key, const absl::Status& status,
                      const playbook_vm::Value& result);

  std::vector<ActionRoute> routes_;
  Counter& unrouted_;
  Counter& replayed_;
  Counter& journal_errors_;
};

}  // namespace vigil::mgmt
