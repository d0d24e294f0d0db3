// The host side of compiled playbooks: the host functions compiler.h names, reading the
// alert as JSON and handing actions to a connector, plus trigger matching and a
// recording connector for dry runs.
//
// The VM itself has no notion of alerts. These are ordinary host functions, and a run's
// alert, connector and indicator lookup travel in the run's context pointer.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"

namespace vigil::playbook_vm::compiler {

// Performs the actions a playbook calls (`action: NAME`). Implementations are the
// connectors (EDR, ticketing, chat) and, for dry runs, RecordingConnector.
class ActionConnector {
 public:
  virtual ~ActionConnector() = default;

  // Runs `action` with `params`, the flat list [name1, value1, name2, value2, ...] from the
  // step's with:. Writes the result to `result`, creating strings and lists through
  // `call`. A non-OK status is the action's failure: the step's retry and on_error handle
  // it. Called on the thread that runs the VM.
  virtual absl::Status perform(std::string_view action, const List& params, HostCall& call,
                               Value& result) = 0;
};

// Read access to a run's alert for the alert host functions, for hosts that keep the
// alert in another form than a JSON object. Every path reads as it would in the alert's
// JSON object: the whole path as one key first, then split at dots, and objects reach the
// VM as their JSON text. String Values may point into memory the source owns.
class AlertSource {
 public:
  virtual ~AlertSource() = default;

  // Sets `out` to the value at `path`, or to null when the alert has none. Returns false
  // when the run heap is full.
  virtual bool field(std::string_view path, HostCall& call, Value& out) const = 0;
  // The number of entries under "events".
  virtual size_t eventCount() const = 0;
  // As field(), inside event `index` (below eventCount()).
  virtual bool eventField(size_t index, std::string_view path, HostCall& call,
                          Value& out) const = 0;
};

// The AlertSource of an alert held as a JSON object, which must outlive it.
class JsonAlertSource final : public AlertSource {
 public:
  explicit JsonAlertSource(const nlohmann::json& alert) : alert_(alert) {}

  bool field(std::string_view path, HostCall& call, Value& out) const override;
  size_t eventCount() const override;
  bool eventField(size_t index, std::string_view path, HostCall& call,
                  Value& out) const override;

 private:
  const nlohmann::json* events() const;

  const nlohmann::json& alert_;
};

// Per-run data for the host functions, passed as the `context` of Vm::run()/resume().
// Everything it points to must outlive the run, because string Values point into the
// alert's JSON or into `alert_source`.
struct AlertRunContext {
  // The alert as a JSON object, read when `alert_source` is null.
  const nlohmann::json* alert = nullptr;
  const AlertSource* alert_source = nullptr;
  ActionConnector* connector = nullptr;
  // Returns whether a value is a known indicator; unset means nothing matches.
  std::function<bool(std::string_view)> intel;
  // Receives the playbook's log: lines; unset drops them.
  std::function<void(std::string_view)> log;
};

// Registers every host function compiler.h names. Fails if one is already registered.
absl::Status registerAlertHost(HostRegistry& registry);

// Whether `alert` (fields rule_id, tags, severity, tenant) matches `trigger`. A module
// without a trigger matches nothing. Severity is a name (any case) or 0..4.
bool triggerMatches(const Trigger& trigger, const nlohmann::json& alert);

// Renders an action call as `name(key="value", n=3)` for transcripts.
std::string describeAction(std::string_view action, const List& params);

// A connector that performs nothing: it prints each call and returns a configured result.
// `results` maps an action name to its JSON result, or to {"error": "text"} to make the
// action fail with that text. Unlisted actions return [] when their name contains search,
// query or list, and "ok" otherwise.
class RecordingConnector : public ActionConnector {
 public:
  RecordingConnector(nlohmann::json results, std::ostream* out);

  absl::Status perform(std::string_view action, const List& params, HostCall& call,
                       Value& result) override;

  // Every call so far, as describeAction() renders it.
  const std::vector<std::string>& calls() const { return calls_; }

 private:
  nlohmann::json results_;
  std::ostream* out_;
  std::vector<std::string> calls_;
};

// Converts JSON to a Value: scalars directly, strings as views into `json`, arrays as
// run-heap lists (8 levels deep at most) and objects as their JSON text. Returns false
// when the run heap is full.
bool jsonToValue(const nlohmann::json& json, HostCall& call, Value& out);

// As jsonToValue(), but copies every string into the run heap, for JSON that does not
// outlive the run (a connector's response).
bool jsonToHeapValue(const nlohmann::json& json, HostCall& call, Value& out);

// Converts a Value to JSON: lists to arrays (8 levels deep, deeper ones as null).
nlohmann::json valueToJson(const Value& value);

}  // namespace vigil::playbook_vm::compiler
