// The bytecode verifier. loadProgram() runs it on every module before anything runs. It is
// public so that tests and fuzz targets can call it on bare code without a module.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "playbook_vm/value.h"

namespace vigil::playbook_vm {

// The rules, named in every error message as "rule <name>".
enum class VerifyRule : uint8_t {
  kLimits,           // code, constant, register and import counts within the limits
  kOpcodeValid,      // every opcode byte is a row of opcodes.def
  kOperandRange,     // registers < register count, constant and import indexes in range
  kUnusedField,      // fields the opcode does not use are zero
  kJumpTarget,       // jump targets are inside the code
  kFallsOffEnd,      // no reachable path runs past the last instruction
  kRegisterDefined,  // every register read was written on every path to the read
  kTypeConsistent,   // no operand whose statically known types the opcode rejects
  kHostArity,        // CALL's argument count equals the import's declared arity
};

std::string_view verifyRuleName(VerifyRule rule);

// A program as the verifier reads it: code, constants, import arities, register count.
struct BytecodeView {
  absl::Span<const uint32_t> code;
  absl::Span<const Value> constants;
  absl::Span<const uint8_t> import_arities;  // one per host import, by import index
  uint32_t register_count = 0;
};

// Checks every rule of VerifyRule over `program`. Returns OK, or InvalidArgument whose
// message names the pc, the mnemonic and the rule, for example
//   "bytecode verifier: pc 4 ADD: rule type-consistent: operand C is R[2] holding
//    string, but ADD accepts int|double".
// Reports the first violation found (limits, then a linear pass over all instructions,
// then the dataflow over reachable code). Allocates O(code size x register count)
// bytes; safe to call from any thread.
absl::Status verifyBytecode(const BytecodeView& program);

// Formats a TypeMask as "int|double" (or "nothing" for the empty mask).
std::string typeMaskToString(uint8_t mask);

}  // namespace vigil::playbook_vm
