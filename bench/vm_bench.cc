// Playbook VM speed: ns per simple instruction (a loop of adds) and runs per second of a
// typical 20-instruction program with one in-memory host call, for both dispatch loops;
// then compiled playbooks: runs per second of a small compiled playbook with an
// in-memory connector, and the latency from a trigger match to the first connector call.
//   ./build/release/bench/vm_bench --benchmark_min_time=0.5
// Arg 0 = switch dispatch, 1 = computed goto.
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_set>

#include "benchmark/benchmark.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"

namespace {

using namespace vigil::playbook_vm;

Dispatch dispatchArg(const benchmark::State& state) {
  return state.range(0) == 0 ? Dispatch::kSwitch : Dispatch::kComputedGoto;
}

std::unique_ptr<Program> loadOrDie(ProgramBuilder& b, const HostRegistry& host) {
  auto bytes = b.finish();
  if (!bytes.ok()) return nullptr;
  auto program = loadProgram(*bytes, host);
  return program.ok() ? std::move(*program) : nullptr;
}

// 10000 iterations of: four ADDs, one LT, one JMPIF (6 instructions per iteration).
void BM_Vm_AddLoop(benchmark::State& state) {
  HostRegistry host;
  ProgramBuilder b("add-loop");
  auto top = b.newLabel();
  b.emitAsBx(Opcode::kLoadInt, 0, 0);  // i
  b.emitAsBx(Opcode::kLoadInt, 1, 1);  // one
  b.emitABx(Opcode::kLoadK, 2, b.addInt(10000));
  b.emitAsBx(Opcode::kLoadInt, 3, 0);  // sum
  b.emitAsBx(Opcode::kLoadInt, 4, 3);
  b.bind(top);
  b.emitABC(Opcode::kAdd, 3, 3, 0);
  b.emitABC(Opcode::kAdd, 3, 3, 4);
  b.emitABC(Opcode::kAdd, 5, 3, 1);
  b.emitABC(Opcode::kAdd, 0, 0, 1);
  b.emitABC(Opcode::kLt, 6, 0, 2);
  b.emitJump(Opcode::kJmpIf, 6, top);
  b.emitABC(Opcode::kReturn, 3, 0, 0);
  std::unique_ptr<Program> program = loadOrDie(b, host);
  if (program == nullptr) return state.SkipWithError("add-loop program failed to load");
  Vm vm(dispatchArg(state));
  uint64_t steps = 0;
  RunResult result;
  for (auto _ : state) {
    result = vm.run(*program, host, Budget{.max_steps = 1'000'000, .max_memory_bytes = 0});
    steps += result.steps;
  }
  if (!result.ok() || result.value.asInt() != 9999LL * 10000 / 2 + 3 * 10000) {
    return state.SkipWithError(("add loop returned a wrong result: " + result.message).c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(steps));
  // Seconds per executed instruction; the console prints it with an SI prefix ("1.2n").
  state.counters["time_per_instruction"] = benchmark::Counter(
      static_cast<double>(steps), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Vm_AddLoop)->Arg(0)->Arg(1);

// A triage playbook: is the source address on a block list (host lookup in a hash set)?
// If so, build a two-element list of action strings and return it; 20 instructions run.
void BM_Vm_TypicalProgram(benchmark::State& state) {
  std::unordered_set<std::string> blocked = {"203.0.113.7", "198.51.100.23"};
  HostRegistry host;
  (void)host.add("is_blocked", 1, [&blocked](HostCall& call, Value& result) {
    result = Value::boolean(blocked.count(std::string(call.args()[0].asString())) != 0);
    return absl::OkStatus();
  });
  ProgramBuilder b("triage");
  uint32_t is_blocked = b.importHost("is_blocked", 1);
  auto quiet = b.newLabel();
  b.emitABx(Opcode::kLoadK, 1, b.addString("203.0.113.7"));
  b.emitABC(Opcode::kCall, 0, is_blocked, 1);
  b.emitJump(Opcode::kJmpIfNot, 0, quiet);
  b.emitAsBx(Opcode::kLoadInt, 2, 7);
  b.emitAsBx(Opcode::kLoadInt, 3, 3);
  b.emitABC(Opcode::kMul, 4, 2, 3);
  b.emitAsBx(Opcode::kLoadInt, 5, 20);
  b.emitABC(Opcode::kLt, 6, 5, 4);
  b.emitABC(Opcode::kNot, 7, 6, 0);
  b.emitABC(Opcode::kNewList, 8, 0, 0);
  b.emitABx(Opcode::kLoadK, 9, b.addString("block "));
  b.emitABC(Opcode::kConcat, 10, 9, 1);
  b.emitABC(Opcode::kAppend, 8, 10, 0);
  b.emitABx(Opcode::kLoadK, 11, b.addString("open-case"));
  b.emitABC(Opcode::kAppend, 8, 11, 0);
  b.emitABC(Opcode::kLen, 12, 8, 0);
  b.emitABC(Opcode::kEq, 13, 12, 3);
  b.emitABC(Opcode::kIn, 14, 11, 8);
  b.emitABC(Opcode::kMove, 15, 8, 0);
  b.emitABC(Opcode::kReturn, 15, 0, 0);
  b.bind(quiet);
  b.emitABC(Opcode::kLoadNull, 15, 0, 0);
  b.emitABC(Opcode::kReturn, 15, 0, 0);
  std::unique_ptr<Program> program = loadOrDie(b, host);
  if (program == nullptr) return state.SkipWithError("triage program failed to load");
  Vm vm(dispatchArg(state));
  RunResult result;
  for (auto _ : state) {
    result = vm.run(*program, host, Budget{.max_steps = 1000, .max_memory_bytes = 4096});
    benchmark::DoNotOptimize(result.value);
  }
  if (!result.ok() || result.steps != 20 || !result.value.isList()) {
    return state.SkipWithError(("triage program gave a wrong result: " + result.message).c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));  // items = runs
}
BENCHMARK(BM_Vm_TypicalProgram)->Arg(0)->Arg(1);

// ---------------------------------------------------------------------------------------
// Compiled playbooks

namespace pbc = vigil::playbook_vm::compiler;

// A connector that performs nothing and records the time of its first call in a run.
// Search actions return a one-element list, the others "ok".
class InMemoryConnector : public pbc::ActionConnector {
 public:
  absl::Status perform(std::string_view action, const List&, HostCall& call,
                       Value& result) override {
    if (calls_++ == 0) first_call_ = std::chrono::steady_clock::now();
    if (action.find("search") == std::string_view::npos) {
      result = Value::string("ok");
      return absl::OkStatus();
    }
    std::optional<Value> list = call.newList();
    if (!list || !call.append(*list, Value::string("admin"))) {
      return absl::ResourceExhaustedError("run heap full");
    }
    result = *list;
    return absl::OkStatus();
  }
  void reset() { calls_ = 0; }
  uint64_t calls() const { return calls_; }
  std::chrono::steady_clock::time_point firstCall() const { return first_call_; }

 private:
  uint64_t calls_ = 0;
  std::chrono::steady_clock::time_point first_call_;
};

const nlohmann::json kAlert = nlohmann::json::parse(R"({
  "rule_id": "ssh-brute-force", "severity": "high", "tenant": "acme",
  "tags": ["brute-force"], "src_ip": "203.0.113.77", "user": "admin", "host": "srv-db-2",
  "events": [{"src_ip": "203.0.113.77", "user": "admin"}]
})");

// About 20 instructions: two alert fields, a membership test, one action with text built
// from a field.
constexpr const char* kTypicalPlaybook = R"(name: bench-typical
trigger: {rule_ids: [ssh-brute-force], severity: medium}
steps:
  - if: alert.severity == "high" or alert.severity == "critical"
    then:
      - action: firewall.block_ip
        with: {ip: alert.src_ip, comment: "brute force ${alert.user}"}
)";

std::unique_ptr<Program> compileOrNull(std::string_view source, const HostRegistry& host,
                                       std::string& error) {
  auto program = pbc::compileAndLoad(source, "bench.yml", host);
  if (!program.ok()) {
    error = std::string(program.status().message());
    return nullptr;
  }
  return std::move(*program);
}

void BM_Playbook_TypicalCompiled(benchmark::State& state) {
  HostRegistry host;
  (void)pbc::registerAlertHost(host);
  std::string error;
  std::unique_ptr<Program> program = compileOrNull(kTypicalPlaybook, host, error);
  if (program == nullptr) return state.SkipWithError(error.c_str());
  InMemoryConnector connector;
  pbc::AlertRunContext context;
  context.alert = &kAlert;
  context.connector = &connector;
  Vm vm(dispatchArg(state));
  const Budget budget{.max_steps = 10000, .max_memory_bytes = 64 * 1024};
  RunResult result;
  for (auto _ : state) {
    result = vm.run(*program, host, budget, &context);
    benchmark::DoNotOptimize(result.value);
  }
  if (result.status != RunStatus::kReturned || connector.calls() != static_cast<uint64_t>(state.iterations())) {
    return state.SkipWithError(("typical playbook did not call its action: " + result.message)
                                   .c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));  // items = runs
  state.counters["instructions"] = static_cast<double>(program->code().size());
  state.counters["steps_per_run"] = static_cast<double>(result.steps);
}
BENCHMARK(BM_Playbook_TypicalCompiled)->Arg(0)->Arg(1);

std::string readSample(const char* name) {
  std::ifstream in(std::string(VIGIL_SOURCE_DIR "/configs/playbooks/") + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The shipped brute-force playbook: the time from an alert matched to the playbook's
// trigger (the match included) to its first connector call (firewall.block_ip) being
// dispatched. Reported as manual time per iteration.
void BM_Playbook_TriggerToFirstCall(benchmark::State& state) {
  HostRegistry host;
  (void)pbc::registerAlertHost(host);
  std::string error;
  std::unique_ptr<Program> program = compileOrNull(readSample("brute_force.yml"), host, error);
  if (program == nullptr) return state.SkipWithError(error.c_str());
  InMemoryConnector connector;
  pbc::AlertRunContext context;
  context.alert = &kAlert;
  context.connector = &connector;
  Vm vm(dispatchArg(state));
  const Budget budget{.max_steps = 10000, .max_memory_bytes = 64 * 1024};
  uint64_t matched = 0;
  for (auto _ : state) {
    connector.reset();
    auto start = std::chrono::steady_clock::now();
    if (!pbc::triggerMatches(program->trigger(), kAlert)) continue;
    ++matched;
    RunResult result = vm.run(*program, host, budget, &context);
    benchmark::DoNotOptimize(result.value);
    if (connector.calls() == 0) return state.SkipWithError("no connector call");
    state.SetIterationTime(std::chrono::duration<double>(connector.firstCall() - start).count());
  }
  if (matched != static_cast<uint64_t>(state.iterations())) return state.SkipWithError("the trigger did not match");
}
BENCHMARK(BM_Playbook_TriggerToFirstCall)->Arg(0)->Arg(1)->UseManualTime();

// The whole brute-force playbook (four actions, a search result loop) per run.
void BM_Playbook_BruteForceFullRun(benchmark::State& state) {
  HostRegistry host;
  (void)pbc::registerAlertHost(host);
  std::string error;
  std::unique_ptr<Program> program = compileOrNull(readSample("brute_force.yml"), host, error);
  if (program == nullptr) return state.SkipWithError(error.c_str());
  InMemoryConnector connector;
  pbc::AlertRunContext context;
  context.alert = &kAlert;
  context.connector = &connector;
  Vm vm(dispatchArg(state));
  const Budget budget{.max_steps = 10000, .max_memory_bytes = 64 * 1024};
  RunResult result;
  for (auto _ : state) {
    connector.reset();
    result = vm.run(*program, host, budget, &context);
    benchmark::DoNotOptimize(result.value);
  }
  if (result.status != RunStatus::kReturned) return state.SkipWithError(result.message.c_str());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["steps_per_run"] = static_cast<double>(result.steps);
  state.counters["actions_per_run"] = static_cast<double>(connector.calls());
}
BENCHMARK(BM_Playbook_BruteForceFullRun)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
