#include "playbook_vm/compiler/dry_run.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/internal/str_cat.h"

namespace vigil::playbook_vm::compiler {
namespace {

// Splits the recorder's output into transcript lines as it arrives.
class TranscriptBuffer : public std::stringbuf {
 public:
  TranscriptBuffer(std::ostream* out, std::vector<std::string>& lines) : out_(out), lines_(lines) {}

 protected:
  int sync() override {
    flushLines();
    return 0;
  }
  int_type overflow(int_type c) override {
    int_type r = std::stringbuf::overflow(c);
    if (c == '\n') flushLines();
    return r;
  }

 private:
  void flushLines() {
    std::string text = str();
    size_t start = 0, end;
    while ((end = text.find('\n', start)) != std::string::npos) {
      lines_.push_back(text.substr(start, end - start));
      if (out_ != nullptr) *out_ << lines_.back() << "\n";
      start = end + 1;
    }
    str(text.substr(start));
  }

  std::ostream* out_;
  std::vector<std::string>& lines_;
};

// Describes a YIELD request and picks the resume value for it. Returns nullopt for a
// request that is neither an approval nor a delay.
std::optional<Value> answer(const Value& request, const DryRunOptions& options, std::string& line) {
  const List* list = request.isList() ? request.asList() : nullptr;
  std::string_view kind = list != nullptr && list->size == 3 && list->items[0].isString()
                              ? list->items[0].asString()
                              : "";
  if (kind == kYieldApproval) {
    line = internal::strCat("  wait_for_approval ", valueToString(list->items[1]), " timeout ",
                            valueToString(list->items[2]), "s -> ", options.approval);
    return Value::string(options.approval);
  }
  if (kind == kYieldDelay) {
    line = internal::strCat("  delay ", valueToString(list->items[1]), "s (",
                            list->items[2].isString() ? list->items[2].asString() : "delay",
                            ") -> skipped");
    return Value::null();
  }
  return std::nullopt;
}

}  // namespace

DryRunReport dryRun(const Program& program, const HostRegistry& host, const nlohmann::json& alert,
                    const DryRunOptions& options, std::ostream* out) {
  DryRunReport report;
  TranscriptBuffer buffer(out, report.transcript);
  std::ostream lines(&buffer);

  report.trigger_matched = triggerMatches(program.trigger(), alert);
  lines << "playbook " << program.name() << ": trigger "
        << (report.trigger_matched ? "matches" : "does not match") << " the alert" << std::endl;

  RecordingConnector connector(options.results, &lines);
  AlertRunContext context;
  context.alert = &alert;
  context.connector = &connector;
  std::vector<std::string> indicators = options.indicators;
  context.intel = [indicators](std::string_view value) {
    return std::find(indicators.begin(), indicators.end(), value) != indicators.end();
  };
  context.log = [&lines](std::string_view message) { lines << "  log " << message << std::endl; };

  Vm vm(options.dispatch);
  RunResult result = vm.run(program, host, options.budget, &context);
  uint32_t suspensions = 0;
  while (result.status == RunStatus::kSuspended && suspensions++ < options.max_suspensions) {
    std::string line;
    std::optional<Value> resume_value = answer(result.value, options, line);
    if (!resume_value) {
      // vigild fails such a run too. Compiled playbooks only request approvals and delays,
      // so another request means the module's code is not what the compiler wrote.
      result.status = RunStatus::kFailed;
      result.message =
          internal::strCat("playbook '", program.name(), "' suspended with unknown request ",
                           valueToString(result.value));
      break;
    }
    lines << line << std::endl;
    std::string saved = vm.saveState();
    result = vm.resume(program, host, options.budget, saved, *resume_value, &context);
  }
  lines.flush();

  report.status = result.status;
  report.actions = connector.calls();
  if (result.status == RunStatus::kFailed) {
    report.message = result.message;
    lines << "  failed: " << result.message << std::endl;
  } else if (result.status == RunStatus::kSuspended) {
    report.message =
        internal::strCat("still suspended after ", options.max_suspensions, " suspensions");
    lines << "  stopped: " << report.message << std::endl;
  } else {
    report.result = valueToString(result.value);
    lines << "  returned " << report.result << " after " << result.steps << " steps" << std::endl;
  }
  return report;
}

}  // namespace vigil::playbook_vm::compiler
