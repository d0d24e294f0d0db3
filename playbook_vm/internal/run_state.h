// State of one run inside a Vm, shared by the two dispatch loops and vm.cc.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "playbook_vm/program.h"
#include "playbook_vm/value.h"
#include "playbook_vm/vm.h"

namespace vigil::playbook_vm::internal {

struct RunState {
  // Inputs of the current run.
  const Program* program = nullptr;
  void* context = nullptr;
  uint64_t max_steps = 0;
  uint32_t memory_limit = 0;

  std::array<Value, kMaxRegisters> registers;
  uint64_t steps = 0;

  // The run heap: a bump allocator over one buffer of heap_capacity bytes (8-aligned).
  std::unique_ptr<uint64_t[]> heap;
  uint32_t heap_capacity = 0;
  uint32_t heap_used = 0;
  bool host_allocation_failed = false;

  // Outcome, written when the dispatch loop exits.
  RunStatus status = RunStatus::kFailed;
  RunError error = RunError::kNone;
  uint32_t pc = 0;
  Value value;
  uint8_t yield_register = 0;  // YIELD's A, written by resume()
  std::string detail;          // error text after the opcode name

  // Reserves `bytes` (rounded up to 8) of the run heap, or returns nullptr past the limit.
  void* allocate(uint32_t bytes) {
    uint64_t rounded = (uint64_t{bytes} + 7) & ~uint64_t{7};
    if (rounded > memory_limit - heap_used) return nullptr;
    void* p = reinterpret_cast<char*>(heap.get()) + heap_used;
    heap_used += static_cast<uint32_t>(rounded);
    return p;
  }

  // Copies `text` into the heap. Returns false past the memory limit.
  bool newString(std::string_view text, Value& out) {
    if (text.size() > memory_limit) return false;
    char* p = static_cast<char*>(allocate(static_cast<uint32_t>(text.size())));
    if (p == nullptr && !text.empty()) return false;
    if (!text.empty()) std::memcpy(p, text.data(), text.size());
    out = Value::string(std::string_view(text.empty() ? "" : p, text.size()));
    return true;
  }

  List* newList() {
    List* list = static_cast<List*>(allocate(sizeof(List)));
    if (list != nullptr) *list = List{nullptr, 0, 0};
    return list;
  }

  // Appends with the growth rule documented at Budget. Returns kNone on success.
  RunError append(List& list, const Value& item) {
    if (list.size == list.capacity) {
      if (list.size >= kMaxListLength) return RunError::kListTooLong;
      uint32_t capacity = list.capacity == 0 ? 4 : list.capacity * 2;
      auto* items = static_cast<Value*>(allocate(capacity * uint32_t{sizeof(Value)}));
      if (items == nullptr) return RunError::kMemoryLimit;
      if (list.size != 0)
        std::memcpy(static_cast<void*>(items), list.items, list.size * sizeof(Value));
      list.items = items;
      list.capacity = capacity;
    }
    list.items[list.size++] = item;
    return RunError::kNone;
  }

  HostCall makeCall(absl::Span<const Value> args, uint32_t call_pc) {
    return HostCall(*this, args, call_pc);
  }

  // Prepares a fresh run of `p`: limits, an empty heap (grown to the budget's memory
  // limit if it is the largest so far), zero steps and null registers.
  void begin(const Program& p, const Budget& budget, void* run_context);
};

static_assert(sizeof(List) == 16, "NEWLIST charges 16 bytes");

// Runs state.program from `pc` until RET, YIELD or an error, and records the outcome in
// `state`. One definition per dispatch flavor, both from interpreter.inc.
void runSwitch(RunState& state, uint32_t pc);
void runComputedGoto(RunState& state, uint32_t pc);

// Cold paths of the loops: record a failure at `pc`.
void raiseError(RunState& state, uint32_t pc, RunError error, std::string_view detail);
// Records a kTypeError for operand `field` (0 = A, 1 = B, 2 = C) holding `actual`.
void raiseTypeError(RunState& state, uint32_t pc, int field, const Value& actual);
// Runs host import `import` for CALL (protect = false) or TRYCALL (protect = true) at `pc`
// with its arguments in R[a+1..]. TRYCALL turns a host error into its message in R[a] and
// false in R[a+arity+1]. Returns false after recording a failure.
bool callHost(RunState& state, uint32_t pc, uint8_t a, uint8_t import, bool protect);
// TOSTR: writes the text of `value` to `out`, allocating for numbers. Returns false after
// recording a type error (lists) or the memory limit.
bool toText(RunState& state, uint32_t pc, const Value& value, Value& out);

}  // namespace vigil::playbook_vm::internal
