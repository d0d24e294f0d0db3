// Host registry and run helper shared by the two playbook fuzz targets.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"

namespace vigil::playbook_vm::fuzz {

// Host functions of arity 0..3 that return a value, create a string or a list, or fail,
// so fuzzed programs reach every host path.
inline const HostRegistry& fuzzHost() {
  static const HostRegistry* host = [] {
    auto* registry = new HostRegistry();
    (void)registry->add("zero", 0, [](HostCall&, Value& out) {
      out = Value::integer(0);
      return absl::OkStatus();
    });
    (void)registry->add("first", 1, [](HostCall& call, Value& out) {
      out = call.args()[0];
      return absl::OkStatus();
    });
    (void)registry->add("label", 2, [](HostCall& call, Value& out) {
      std::optional<Value> text = call.newString("label");
      if (text) out = *text;
      return absl::OkStatus();
    });
    (void)registry->add("wrap", 3, [](HostCall& call, Value& out) {
      std::optional<Value> list = call.newList();
      if (!list) return absl::OkStatus();
      for (const Value& arg : call.args()) call.append(*list, arg);
      out = *list;
      return absl::OkStatus();
    });
    (void)registry->add("fail", 1, [](HostCall&, Value&) {
      return absl::UnavailableError("fuzz host function failed on purpose");
    });
    return registry;
  }();
  return *host;
}

inline void requireSame(const RunResult& a, const RunResult& b) {
  if (a.status != b.status || a.error != b.error || a.pc != b.pc || a.steps != b.steps ||
      a.memory_bytes != b.memory_bytes) {
    std::fprintf(stderr, "dispatch loops disagree:\n  switch: %s\n  goto:   %s\n",
                 a.message.c_str(), b.message.c_str());
    std::abort();
  }
}

// Runs `program` on both dispatch loops under small limits, requires identical results,
// and resumes a suspended run from its saved state up to three times.
inline void runBoth(const Program& program) {
  static Vm switch_vm(Dispatch::kSwitch);
  static Vm goto_vm(Dispatch::kComputedGoto);
  const Budget budget{.max_steps = 20000, .max_memory_bytes = 64 * 1024};
  RunResult a = switch_vm.run(program, fuzzHost(), budget);
  RunResult b = goto_vm.run(program, fuzzHost(), budget);
  requireSame(a, b);
  for (int i = 0; i < 3 && a.status == RunStatus::kSuspended; ++i) {
    std::string saved = switch_vm.saveState();
    if (saved != goto_vm.saveState()) {
      std::fprintf(stderr, "saved states differ between dispatch loops\n");
      std::abort();
    }
    a = switch_vm.resume(program, fuzzHost(), budget, saved, Value::integer(i));
    b = goto_vm.resume(program, fuzzHost(), budget, saved, Value::integer(i));
    requireSame(a, b);
  }
}

}  // namespace vigil::playbook_vm::fuzz
