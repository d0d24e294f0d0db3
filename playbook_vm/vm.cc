#include "playbook_vm/vm.h"

#include <charconv>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "playbook_vm/internal/run_state.h"
#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/verifier.h"

namespace vigil::playbook_vm {
namespace {

constexpr std::string_view kFieldNames[3] = {"A", "B", "C"};

void appendValue(std::string& out, const Value& value, int depth) {
  switch (value.type()) {
    case ValueType::kNull:
      out += "null";
      return;
    case ValueType::kBool:
      out += value.asBool() ? "true" : "false";
      return;
    case ValueType::kInt:
      absl::StrAppend(&out, value.asInt());
      return;
    case ValueType::kDouble:
      absl::StrAppend(&out, value.asDouble());
      return;
    case ValueType::kString:
      out += '"';
      out.append(value.asString());
      out += '"';
      return;
    case ValueType::kList: {
      if (depth >= 8) {
        out += "[...]";
        return;
      }
      out += '[';
      const List& list = *value.asList();
      for (uint32_t i = 0; i < list.size; ++i) {
        if (i != 0) out += ", ";
        appendValue(out, list.items[i], depth + 1);
      }
      out += ']';
      return;
    }
  }
}

}  // namespace

std::string_view valueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kNull:
      return "null";
    case ValueType::kBool:
      return "bool";
    case ValueType::kInt:
      return "int";
    case ValueType::kDouble:
      return "double";
    case ValueType::kString:
      return "string";
    case ValueType::kList:
      return "list";
  }
  return "unknown";
}

bool valuesEqual(const Value& a, const Value& b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.isInt() && b.isInt()) return a.asInt() == b.asInt();
    return a.toDouble() == b.toDouble();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case ValueType::kNull:
      return true;
    case ValueType::kBool:
      return a.asBool() == b.asBool();
    case ValueType::kString:
      return a.asString() == b.asString();
    case ValueType::kList:
      return a.asList() == b.asList();
    default:
      return false;
  }
}

std::string valueToString(const Value& value) {
  std::string out;
  appendValue(out, value, 0);
  return out;
}

std::string_view runErrorName(RunError error) {
  switch (error) {
    case RunError::kNone:
      return "none";
    case RunError::kBudgetExhausted:
      return "budget-exhausted";
    case RunError::kMemoryLimit:
      return "memory-limit";
    case RunError::kTypeError:
      return "type-error";
    case RunError::kDivisionByZero:
      return "division-by-zero";
    case RunError::kIntegerOverflow:
      return "integer-overflow";
    case RunError::kIndexOutOfRange:
      return "index-out-of-range";
    case RunError::kListTooLong:
      return "list-too-long";
    case RunError::kHostError:
      return "host-error";
    case RunError::kHostMismatch:
      return "host-mismatch";
    case RunError::kInvalidState:
      return "invalid-state";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// HostCall

void* HostCall::context() const { return state_.context; }

std::optional<Value> HostCall::newString(std::string_view text) {
  Value out;
  if (!state_.newString(text, out)) {
    state_.host_allocation_failed = true;
    return std::nullopt;
  }
  return out;
}

std::optional<Value> HostCall::newList() {
  List* list = state_.newList();
  if (list == nullptr) {
    state_.host_allocation_failed = true;
    return std::nullopt;
  }
  return Value::list(list);
}

bool HostCall::append(Value list, Value item) {
  if (!list.isList()) return false;
  RunError error = state_.append(*list.asList(), item);
  if (error == RunError::kMemoryLimit) state_.host_allocation_failed = true;
  return error == RunError::kNone;
}

// ---------------------------------------------------------------------------------------
// Cold paths of the dispatch loops

namespace internal {

void raiseError(RunState& state, uint32_t pc, RunError error, std::string_view detail) {
  state.status = RunStatus::kFailed;
  state.error = error;
  state.pc = pc;
  state.detail.assign(detail);
}

void raiseTypeError(RunState& state, uint32_t pc, int field, const Value& actual) {
  Opcode op = static_cast<Opcode>(opcodeField(state.program->code()[pc]));
  const OpcodeInfo& info = opcodeInfo(op);
  TypeMask accepts = info.accepts[field];
  if (op == Opcode::kLt || op == Opcode::kLe) accepts = kTOrdered;
  raiseError(state, pc, RunError::kTypeError,
             internal::strCat("operand ", kFieldNames[field], " is ", valueTypeName(actual.type()),
                              ", expected ", typeMaskToString(accepts)));
  if (op == Opcode::kLt || op == Opcode::kLe) {
    state.detail += " (both numbers or both strings)";
  }
}

bool callHost(RunState& state, uint32_t pc, uint8_t a, uint8_t import, bool protect) {
  const HostImport& target = state.program->hostImports()[import];
  HostCall call =
      state.makeCall(absl::Span<const Value>(&state.registers[a + 1u], target.arity), pc);
  Value result;
  state.host_allocation_failed = false;
  absl::Status status = target.entry->function(call, result);
  if (state.host_allocation_failed) {
    raiseError(
        state, pc, RunError::kMemoryLimit,
        internal::strCat("host function ", target.name, " reached the run heap memory limit"));
    return false;
  }
  if (!status.ok() && protect) {
    Value message;
    if (!state.newString(std::string_view(status.message().data(), status.message().size()),
                           message)) {
      raiseError(state, pc, RunError::kMemoryLimit,
                 internal::strCat("host function ", target.name,
                                  " failed and its message passes the run heap memory limit"));
      return false;
    }
    state.registers[a] = message;
    state.registers[a + target.arity + 1u] = Value::boolean(false);
    return true;
  }
  if (!status.ok()) {
    raiseError(state, pc, RunError::kHostError,
               internal::strCat("host function ", target.name, " failed: ", status.ToString()));
    return false;
  }
  state.registers[a] = result;
  if (protect) state.registers[a + target.arity + 1u] = Value::boolean(true);
  return true;
}

bool toText(RunState& state, uint32_t pc, const Value& value, Value& out) {
  char buffer[32];
  std::to_chars_result written{buffer, std::errc()};
  switch (value.type()) {
    case ValueType::kString:
      out = value;
      return true;
    case ValueType::kNull:
      out = Value::string("null");
      return true;
    case ValueType::kBool:
      out = Value::string(value.asBool() ? "true" : "false");
      return true;
    case ValueType::kInt:
      written = std::to_chars(buffer, buffer + sizeof(buffer), value.asInt());
      break;
    case ValueType::kDouble:
      // Shortest text that reads back to the same double ("1.5", "1e+20", "nan", "inf").
      written = std::to_chars(buffer, buffer + sizeof(buffer), value.asDouble());
      break;
    case ValueType::kList:
      raiseTypeError(state, pc, 1, value);
      return false;
  }
  std::string_view text(buffer, static_cast<size_t>(written.ptr - buffer));
  if (!state.newString(text, out)) {
    raiseError(state, pc, RunError::kMemoryLimit, "run heap memory limit reached");
    return false;
  }
  return true;
}

void RunState::begin(const Program& p, const Budget& budget, void* run_context) {
  program = &p;
  context = run_context;
  max_steps = budget.max_steps;
  memory_limit = budget.max_memory_bytes;
  if (heap_capacity < budget.max_memory_bytes) {
    // Grow once to the largest limit seen; later runs with smaller limits reuse it.
    heap = std::make_unique_for_overwrite<uint64_t[]>((size_t{budget.max_memory_bytes} + 7) / 8);
    heap_capacity = budget.max_memory_bytes;
  }
  heap_used = 0;
  steps = 0;
  status = RunStatus::kFailed;
  error = RunError::kNone;
  value = Value();
  detail.clear();
  std::fill_n(registers.begin(), p.registerCount(), Value());
}

}  // namespace internal

// ---------------------------------------------------------------------------------------
// Vm

Vm::Vm(Dispatch dispatch) : dispatch_(dispatch), state_(std::make_unique<internal::RunState>()) {}

Vm::~Vm() = default;

namespace {

RunResult hostMismatch(const Program& program) {
  RunResult result;
  result.error = RunError::kHostMismatch;
  result.message = internal::strCat("playbook '", program.name(),
                                    "': run with a host registry other than the one it was "
                                    "loaded against; pass the same HostRegistry to loadProgram "
                                    "and run");
  return result;
}

}  // namespace

RunResult Vm::run(const Program& program, const HostRegistry& host, const Budget& budget,
                  void* context) {
  if (&host != program.registry()) return hostMismatch(program);
  state_->begin(program, budget, context);
  return execute(program, 0);
}

RunResult Vm::execute(const Program& program, uint32_t start_pc) {
  internal::RunState& st = *state_;
  if (dispatch_ == Dispatch::kComputedGoto) {
    internal::runComputedGoto(st, start_pc);
  } else {
    internal::runSwitch(st, start_pc);
  }
  RunResult result;
  result.status = st.status;
  result.error = st.error;
  result.value = st.value;
  result.pc = st.pc;
  SourceLocation where = program.locate(st.pc);
  result.line = where.line;
  result.column = where.column;
  result.steps = st.steps;
  result.memory_bytes = st.heap_used;
  if (st.status == RunStatus::kFailed) {
    std::string_view mnemonic =
        opcodeInfo(static_cast<Opcode>(opcodeField(program.code()[st.pc]))).mnemonic;
    result.message = internal::strCat("playbook '", program.name(), "' pc ", st.pc, " (line ",
                                      where.line, ":", where.column, ") ", mnemonic, ": ",
                                      runErrorName(st.error), ": ", st.detail);
  }
  return result;
}

}  // namespace vigil::playbook_vm
