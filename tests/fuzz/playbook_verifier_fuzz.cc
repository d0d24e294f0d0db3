// Fuzz target: arbitrary bytes through the module loader (magic, FlatBuffers verifier,
// version, checksum, container checks, host resolution, bytecode verifier). A module that
// loads is disassembled and run on both dispatch loops, which must agree and never crash.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "playbook_fuzz_host.h"
#include "playbook_vm/disassembler.h"
#include "playbook_vm/program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::playbook_vm;
  auto program = loadProgram(absl::Span<const uint8_t>(data, size), fuzz::fuzzHost());
  if (!program.ok()) {
    // A mutated module almost never matches its checksum, so the input is loaded again
    // with the checksum recomputed, to reach the checks behind it.
    std::vector<uint8_t> sealed(data, data + size);
    if (!sealModule(sealed)) return 0;
    program = loadProgram(sealed, fuzz::fuzzHost());
    if (!program.ok()) return 0;
  }
  (void)disassemble(**program);
  fuzz::runBoth(**program);
  return 0;
}
