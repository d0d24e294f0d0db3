// Text listing of a loaded Program, for operators and tests.
#pragma once

#include <string>

#include "playbook_vm/program.h"

namespace vigil::playbook_vm {

// Returns one header line and then one line per instruction:
//   "; playbook 'notify' registers 3 constants 1 host imports 1"
//   "     4  LOADK     R1, K0 \"high\"            ; line 3:5"
// with register operands as R<n>, constants inlined after their index, jump targets as
// "-> <pc>", host imports by name and arity, and the source position when known.
// Allocates; any thread.
std::string disassemble(const Program& program);

// Formats one instruction word the same way, without the pc column and source position.
// Constants and imports are inlined when `program` is given and the index is in range.
std::string disassembleInstruction(uint32_t word, const Program* program = nullptr);

}  // namespace vigil::playbook_vm
