// The playbook interpreter. A Vm runs one verified Program at a time against the host
// functions the program imported, under a step budget and a run-heap memory limit.
//
//   vigil::playbook_vm::Vm vm;
//   RunResult r = vm.run(*program, registry, Budget{.max_steps = 10000});
//   if (r.status == RunStatus::kSuspended) {
//     std::string saved = vm.saveState();  // store it, resume later (even in another Vm)
//     r = vm.resume(*program, registry, budget, saved, Value::boolean(true));
//   }
//
// Threads: a Vm belongs to one thread at a time; run Programs on as many Vms as needed.
// Allocation: run() allocates only when the budget's memory limit is larger than any
// earlier run's (the heap grows then and is reused afterwards) and when it builds an
// error message. Host functions may allocate on their own.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/types/span.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/program.h"
#include "playbook_vm/value.h"

namespace vigil::playbook_vm {

#if defined(__GNUC__) || defined(__clang__)
#define VIGIL_VM_HAS_COMPUTED_GOTO 1
#else
#define VIGIL_VM_HAS_COMPUTED_GOTO 0
#endif

// Dispatch loop flavor. Both interpret identically; kComputedGoto threads the dispatch
// through a label table (GCC and Clang only) and is the default there.
enum class Dispatch : uint8_t { kSwitch, kComputedGoto };
inline constexpr Dispatch kDefaultDispatch =
    VIGIL_VM_HAS_COMPUTED_GOTO ? Dispatch::kComputedGoto : Dispatch::kSwitch;

// Each executed instruction costs one step. The budget is checked before jumps
// (JMP, JMPIF, JMPIFNOT, FORNEXT) and CALL, so straight-line code may run past
// max_steps by at most the code size before a check stops it.
// Run-heap bytes are charged as: string = length rounded up to 8; NEWLIST = 16; an
// APPEND that grows a list from capacity c to max(4, 2c) = 16 bytes per new slot
// capacity (the old slots are not reused). The limit is max_memory_bytes.
struct Budget {
  uint64_t max_steps = 1'000'000;
  uint32_t max_memory_bytes = 1 << 20;
};

// Lists longer than this fail APPEND with kListTooLong, which also bounds the iterations
// of one for-each loop.
inline constexpr uint32_t kMaxListLength = 65536;

enum class RunStatus : uint8_t { kReturned, kSuspended, kFailed };

enum class RunError : uint8_t {
  kNone,
  kBudgetExhausted,  // more steps than Budget::max_steps
  kMemoryLimit,      // run heap would exceed Budget::max_memory_bytes
  kTypeError,        // operand of a type the opcode rejects
  kDivisionByZero,   // DIV or MOD of ints by zero
  kIntegerOverflow,  // int64 ADD, SUB, MUL or DIV overflowed
  kIndexOutOfRange,  // INDEX outside the list, or a for-each cursor below zero
  kListTooLong,      // APPEND beyond kMaxListLength
  kHostError,        // a host function returned a non-OK status
  kHostMismatch,     // run with a registry other than the one the program was loaded with
  kInvalidState,     // resume() with state that is corrupt or not from this program
};

std::string_view runErrorName(RunError error);

struct RunResult {
  RunStatus status = RunStatus::kFailed;
  RunError error = RunError::kNone;
  // kReturned: the RET operand. kSuspended: the YIELD operand handed to the host.
  // Valid until the next run(), resume() or saveState() on this Vm.
  Value value;
  uint32_t pc = 0;    // pc of the RET, YIELD or failing instruction
  uint32_t line = 0;  // source line of `pc` (0 when the source map has none)
  uint32_t column = 0;
  uint64_t steps = 0;         // instructions executed, including earlier resumed parts
  uint32_t memory_bytes = 0;  // run-heap bytes charged
  // kFailed only: "playbook 'NAME' pc 7 (line 3:5) ADD: integer-overflow: ..."
  std::string message;

  bool ok() const { return status != RunStatus::kFailed; }
};

namespace internal {
struct RunState;
}

// The calling run, as a host function gets it: arguments, context and the run heap.
class HostCall {
 public:
  absl::Span<const Value> args() const { return args_; }
  // The `context` pointer given to run() or resume(); the host's own per-run data.
  void* context() const;
  // The pc of the CALL or TRYCALL instruction making this call. A retry loop reaches the
  // same instruction again, so hosts use it to tell call sites apart.
  uint32_t pc() const { return pc_; }

  // Copies `text` into the run heap. Returns nullopt when that passes the memory limit;
  // the run then fails with kMemoryLimit after the host function returns.
  std::optional<Value> newString(std::string_view text);
  // Creates an empty list in the run heap, or nullopt as for newString().
  std::optional<Value> newList();
  // Appends `item` to `list`, which must be a list Value. Returns false when `list` is
  // not a list, is at kMaxListLength, or growing it passes the memory limit.
  bool append(Value list, Value item);

 private:
  friend struct internal::RunState;
  HostCall(internal::RunState& state, absl::Span<const Value> args, uint32_t call_pc)
      : state_(state), args_(args), pc_(call_pc) {}

  internal::RunState& state_;
  absl::Span<const Value> args_;
  uint32_t pc_;
};

class Vm {
 public:
  explicit Vm(Dispatch dispatch = kDefaultDispatch);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Runs `program` from pc 0. `host` must be the registry the program was loaded against
  // (else kHostMismatch). `context` is passed through to host functions. Every failure,
  // including budget and memory exhaustion, is a RunResult with status kFailed.
  RunResult run(const Program& program, const HostRegistry& host, const Budget& budget,
                void* context = nullptr);

  // Serializes the suspended run (pc, step count, the YIELD's destination register and
  // every register with the lists and strings it reaches, preserving list sharing).
  // Returns an empty string when the last result was not kSuspended. Allocates.
  std::string saveState() const;

  // Continues a run saved by saveState() (on this or any Vm) of the same program: the
  // YIELD's destination register receives `resume_value`, copied into the run heap when
  // it is a string, and the run continues after the YIELD. Steps count from the saved
  // total. Corrupt state, state from another program (by SHA-256 and name) or a list
  // `resume_value` fail with kInvalidState.
  RunResult resume(const Program& program, const HostRegistry& host, const Budget& budget,
                   std::string_view saved_state, Value resume_value, void* context = nullptr);

  Dispatch dispatch() const { return dispatch_; }

 private:
  RunResult execute(const Program& program, uint32_t start_pc);

  Dispatch dispatch_;
  std::unique_ptr<internal::RunState> state_;
};

// Renders `value` for messages and tests: null, true, 42, 1.5, "text", [1, "a"].
// Lists nested deeper than 8 levels (or cyclic) print as [...].
std::string valueToString(const Value& value);

}  // namespace vigil::playbook_vm
