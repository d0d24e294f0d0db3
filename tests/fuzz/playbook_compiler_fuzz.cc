// Fuzz target: playbook source -> compile -> load (verify) -> dry run on both dispatch
// loops with recording connectors. A compile error must carry a file:line:column
// position, every compiled playbook must pass the verifier (a failure there is a
// compiler bug), and the two dispatch loops must agree on the run.
//
// Seeds: tests/fuzz/playbook_compiler_fuzz_corpus/ (small cases, one construct each,
// and inputs that once broke the compiler) plus the shipped configs/playbooks/, which
// tests/fuzz/CMakeLists.txt adds to the replay.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/compiler/dry_run.h"
#include "playbook_vm/program.h"

namespace {

namespace pb = vigil::playbook_vm;
namespace pbc = vigil::playbook_vm::compiler;

const pb::HostRegistry& host() {
  static const pb::HostRegistry* registry = [] {
    auto* r = new pb::HostRegistry();
    if (!pbc::registerAlertHost(*r).ok()) std::abort();
    return r;
  }();
  return *registry;
}

const nlohmann::json& alert() {
  static const nlohmann::json* a = new nlohmann::json(nlohmann::json::parse(R"({
    "rule_id": "r1", "severity": "high", "tenant": "acme", "tags": ["phishing", "brute-force"],
    "user": "j.doe", "host": "ws-1", "src_ip": "203.0.113.7", "count": 3, "ratio": 0.5,
    "url": "http://bad.example/x", "sender_domain": "bad.example",
    "nested": {"a": {"b": [1, "two", null, true]}},
    "events": [{"user": "a", "url": "http://bad.example/x"}, {"user": "b", "n": 2}]
  })"));
  return *a;
}

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "playbook_compiler_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<pbc::CompiledPlaybook> compiled = pbc::compilePlaybook(source, "fuzz.yml");
  if (!compiled.ok()) {
    std::string message(compiled.status().message());
    if (message.rfind("fuzz.yml:", 0) != 0) die("error without a position", message);
    return 0;
  }
  absl::StatusOr<std::unique_ptr<pb::Program>> program = pb::loadProgram(compiled->module, host());
  if (!program.ok())
    die("compiled playbook failed to load", std::string(program.status().message()));

  pbc::DryRunOptions options;
  static constexpr const char* kAnswers[] = {"approved", "rejected", "timeout"};
  options.approval = kAnswers[size % 3];
  options.indicators = {"bad.example", "http://bad.example/x"};
  options.results = nlohmann::json::parse(
      R"({"intel.query": ["malicious"], "edr.isolate_host": {"error": "EDR down"},
          "siem.search_logins": ["admin", "svc"], "ticket.create": "INC-1"})");
  options.budget = pb::Budget{.max_steps = 20000, .max_memory_bytes = 64 * 1024};
  options.max_suspensions = 32;
  options.dispatch = pb::Dispatch::kSwitch;
  pbc::DryRunReport a = pbc::dryRun(**program, host(), alert(), options, nullptr);
  options.dispatch = pb::Dispatch::kComputedGoto;
  pbc::DryRunReport b = pbc::dryRun(**program, host(), alert(), options, nullptr);
  if (a.status != b.status || a.result != b.result || a.message != b.message ||
      a.transcript != b.transcript) {
    die("dispatch loops disagree", a.message + " | " + b.message);
  }
  return 0;
}
