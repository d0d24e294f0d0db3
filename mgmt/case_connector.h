// Playbook connectors that work inside the appliance: case operations on the case store,
// and indicator lookups in the live threat-intel snapshot.
//
// Case actions (by the last part of the name):
//   open / create        title, severity, note -> opens a case of the run's tenant; returns its id
//   update               any of title, description, severity, status, resolution,
//                        resolution_note, tags (replaces the tag list)
//   assign               assignee ("" unassigns)
//   close                resolution (unless the case has one), note -> status closed
//   add_note / annotate  text                  -> adds a note by the connector's author
//   add_evidence/attach  name, content [, content_type] -> attaches a file; returns its SHA-256
//   add_tag / tag        tag or tags
//   set_severity         severity
//   escalate             summary [, severity (default high)] -> note, tag, severity
//   attach_alert         inbox_id (default alert.inbox_id) -> files the stored alert in the
//                        open case for its rule and group, or a new case; returns the case id
// Every action but open takes an optional case_id and returns the case id unless noted.
// An action repeated with the idempotency key of an earlier successful call (a retry, or a
// run that runs again after a restart) writes nothing and returns the earlier result.
// Without case_id an action works on the case this run opened, else on the case that
// holds the triggering alert. A case of another tenant is never touched.
//
// Intel actions (lookup, query, check): `indicator`, `value` or `indicators` (a list) ->
// for each value "malicious" when the live snapshot contains it for the run's tenant (its
// own indicators and those of every tenant, never another tenant's), else "unknown";
// with `detail: true`, the indicator as JSON text {"value", "type", "lists", "score",
// "tags", "tenant"} or null. A single value returns one entry, a list returns a list. A run also sees the
// snapshot through the playbook expression intel(x).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/metrics.h"
#include "mgmt/case_store.h"
#include "mgmt/playbook_config.h"
#include "playbook_vm/compiler/alert_host.h"

#include "intel/indicator_set.h"

namespace vigil::intel {
class SnapshotStore;
class Snapshot;
}  // namespace vigil::intel

namespace vigil::mgmt {

struct RunContext;

class CaseConnector final : public playbook_vm::compiler::ActionConnector {
 public:
  // `store` is not owned and must outlive the connector. The cases attach_alert opens are
  // counted in the run context's cases_opened series.
  CaseConnector(const ConnectorConfig& config, CaseStore& store);

  // Performs one case action. With an idempotency key in the run context the action runs
  // at most once per key (CaseStore::runKeyedAction()): a repeat returns the first call's
  // result and case without writing anything.
  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

 private:
  absl::Status performOnce(std::string_view action, const playbook_vm::List& params,
                           playbook_vm::HostCall& call, playbook_vm::Value& result);
  absl::StatusOr<int64_t> targetCase(const nlohmann::json& params, playbook_vm::HostCall& call);
  absl::Status addEvidence(std::string_view action, const nlohmann::json& params, int64_t id,
                           const std::string& author, playbook_vm::HostCall& call,
                           playbook_vm::Value& result);
  absl::Status attachAlert(const nlohmann::json& params, playbook_vm::HostCall& call,
                           playbook_vm::Value& result);
  // Counts the cases the action opened (ctx.cases_opened_in_group above `before`) once
  // they are `stored`, or leaves them in ctx for the runner when the action ran inside a
  // group commit. Drops them when the action was rolled back.
  void countOpenedCases(RunContext& ctx, int64_t before, bool stored, bool in_group);

  ConnectorConfig config_;
  CaseStore& store_;
};

// Finds `value` among the indicators visible to `tenant` (its own and those of every
// tenant): addresses (exact or by CIDR), domains (and their parent domains), file names,
// then any other indicator by its normalized text. When the value is an indicator of the
// tenant and of every tenant, returns the tenant's copy. Returns nullopt when nothing
// matches. Thread-safe; allocates.
std::optional<intel::Indicator> findIndicator(const intel::Snapshot& snapshot,
                                              std::string_view value, std::string_view tenant);

class IntelConnector final : public playbook_vm::compiler::ActionConnector {
 public:
  // `store` is not owned and must outlive the connector.
  IntelConnector(const ConnectorConfig& config, intel::SnapshotStore& store);

  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

 private:
  ConnectorConfig config_;
  intel::SnapshotStore& store_;
};

}  // namespace vigil::mgmt
