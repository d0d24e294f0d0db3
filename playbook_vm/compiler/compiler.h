// The playbook compiler: YAML playbook source (docs/playbooks.md) to a module that
// loadProgram() accepts. Compile-side only; the run side never includes it.
//
//   absl::StatusOr<CompiledPlaybook> out = compilePlaybook(source, "phishing.yml");
//   if (!out.ok()) log(out.status().message());  // "phishing.yml:12:15: undefined ..."
//
// Every error is InvalidArgument with the message "FILE:LINE:COLUMN: what is wrong and
// what would be accepted". Line and column are 1-based. Inside an expression they are
// those of the expression's text in the source, also in a scalar that spans lines.
// docs/playbooks.md notes where they can be off (after an escape sequence).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "playbook_vm/program.h"

namespace vigil::playbook_vm::compiler {

// Names and arities of the host functions compiled code imports. A host that runs
// compiled playbooks registers all of them (alert_host.h does).
inline constexpr std::string_view kHostAlertField = "alert.field";    // (path) -> value
inline constexpr std::string_view kHostAlertEvents = "alert.events";  // () -> [handle...]
inline constexpr std::string_view kHostEventField = "event.field";    // (handle, path)
inline constexpr std::string_view kHostIntelMatch = "intel.match";    // (value) -> bool
inline constexpr std::string_view kHostContains = "text.contains";    // (text, part) -> bool
inline constexpr std::string_view kHostAction = "action";  // (name, [k, v, ...]) -> result
inline constexpr std::string_view kHostLog = "log";        // (message) -> null
inline constexpr std::string_view kHostFail = "fail";      // (message) -> always an error

// YIELD requests the compiled code hands to the host, as lists:
//   ["approval", prompt, timeout_seconds]  resume with "approved", "rejected" or "timeout"
//   ["delay", seconds, reason]             resume with any value
inline constexpr std::string_view kYieldApproval = "approval";
inline constexpr std::string_view kYieldDelay = "delay";

// Limits the compiler enforces on the language.
inline constexpr int64_t kMaxLoopLimit = 10000;   // for_each limit:
inline constexpr int64_t kMaxRetryAttempts = 10;  // retry attempts:
inline constexpr int64_t kMaxDurationSeconds = 7 * 24 * 3600;
inline constexpr uint32_t kMaxNesting = 32;  // nested step blocks
inline constexpr size_t kMaxSourceBytes = 1 << 20;

struct CompiledPlaybook {
  std::string name;
  std::vector<uint8_t> module;  // bytes for loadProgram()
};

// Compiles one playbook. `file_name` only labels error messages. The module carries the
// source's SHA-256, the trigger and a source map of line:column per step and
// expression. The module is not verified here; loadProgram() verifies it, and
// compileAndLoad() does both. Allocates; any thread.
absl::StatusOr<CompiledPlaybook> compilePlaybook(std::string_view source,
                                                 std::string_view file_name);

// Compiles, then loads and verifies against `host`. Errors from loading are
// InvalidArgument or NotFound prefixed with the file name.
absl::StatusOr<std::unique_ptr<Program>> compileAndLoad(std::string_view source,
                                                        std::string_view file_name,
                                                        const HostRegistry& host);

// Parses a severity name (informational, low, medium, high, critical), any case.
bool parseSeverity(std::string_view text, Severity& out);
std::string_view severityName(Severity severity);

}  // namespace vigil::playbook_vm::compiler
