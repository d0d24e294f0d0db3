// Fuzz target: arbitrary bytes through the module loader (magic, FlatBuffers verifier,
// version, container checks, host resolution, bytecode verifier). A module that loads is
// disassembled and run on both dispatch loops, which must agree and never crash.
#include <cstddef>
#include <cstdint>

#include "playbook_fuzz_host.h"
#include "playbook_vm/disassembler.h"
#include "playbook_vm/program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::playbook_vm;
  auto program = loadProgram(absl::Span<const uint8_t>(data, size), fuzz::fuzzHost());
  if (!program.ok()) return 0;
  (void)disassemble(**program);
  fuzz::runBoth(**program);
  return 0;
}
