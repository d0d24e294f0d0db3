// Dry runs: run a loaded playbook against one alert with a RecordingConnector, resume
// every suspension (approvals, delays, retry back-offs) at once, and write a transcript
// of each step taken. vigilctl, the tests and the fuzz target share it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"

namespace vigil::playbook_vm::compiler {

struct DryRunOptions {
  // Resume value of every wait_for_approval: "approved", "rejected" or "timeout".
  std::string approval = "approved";
  // Per-action results for the RecordingConnector (see alert_host.h).
  nlohmann::json results = nlohmann::json::object();
  // Indicator values that intel() reports as known.
  std::vector<std::string> indicators;
  Budget budget;
  // Suspensions resumed before the dry run gives up (a retry loop yields once per retry).
  uint32_t max_suspensions = 1000;
  Dispatch dispatch = kDefaultDispatch;
};

struct DryRunReport {
  bool trigger_matched = false;
  RunStatus status = RunStatus::kFailed;
  std::string message;                  // the VM's error message when status is kFailed
  std::string result;                   // valueToString() of the returned value
  std::vector<std::string> actions;     // RecordingConnector::calls()
  std::vector<std::string> transcript;  // every line written to `out`
};

// Runs `program` (loaded against a registry with registerAlertHost()) on `alert`.
// Each step goes to `out` (may be null) as a line, and to the report. Runs even when
// the trigger does not match, and reports that in the first line. Allocates; any thread, one call
// per Vm.
DryRunReport dryRun(const Program& program, const HostRegistry& host, const nlohmann::json& alert,
                    const DryRunOptions& options, std::ostream* out);

}  // namespace vigil::playbook_vm::compiler
