// Opcodes and the instruction encoding of the playbook VM. The rows live in opcodes.def;
// this header turns them into the Opcode enum and a constexpr table of operand rules.
//
// Every instruction is one little-endian 32-bit word in one of three formats:
//
//    31          24 23          16 15           8 7            0
//   +--------------+--------------+--------------+--------------+
//   |      C       |      B       |      A       |    opcode    |  kABC
//   +--------------+--------------+--------------+--------------+
//   |         Bx (unsigned 16)    |      A       |    opcode    |  kABx
//   +-----------------------------+--------------+--------------+
//   |         sBx (signed 16)     |      A       |    opcode    |  kAsBx
//   +-----------------------------+--------------+--------------+
//
// A, B and C are register numbers (R[0] .. R[255]), a host import index or a small
// immediate. Bx is a constant index or an absolute jump target (a pc, counted in
// instructions), and sBx is a two's complement immediate. Fields an opcode does not use
// must be zero, so every valid program has exactly one encoding.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace vigil::playbook_vm {

enum class Format : uint8_t { kABC, kABx, kAsBx };

// Contents of one instruction field. The verifier's range rule for the field follows from it.
enum class OperandKind : uint8_t {
  kNone,       // unused, must be zero
  kRegRead,    // register that must hold a value on every path to this pc
  kRegWrite,   // register that receives the result
  kConst,      // index into the constant pool
  kJump,       // absolute pc inside the code
  kHost,       // index into the module's host imports
  kBoolImm,    // immediate 0 or 1
  kSignedImm,  // sBx, any value
  kArgCount,   // CALL argument count, equal to the import's declared arity
  kIterBase,   // loop registers R[A] (list), R[A+1] (cursor), R[A+2] (element)
  kCallBase,   // CALL registers: R[A] receives the result, R[A+1..A+C] are arguments
};

// Sets of value types, used by the verifier's type rules (bit i = ValueType i).
using TypeMask = uint8_t;
inline constexpr TypeMask kTNull = 1u << 0;
inline constexpr TypeMask kTBool = 1u << 1;
inline constexpr TypeMask kTInt = 1u << 2;
inline constexpr TypeMask kTDouble = 1u << 3;
inline constexpr TypeMask kTString = 1u << 4;
inline constexpr TypeMask kTList = 1u << 5;
inline constexpr TypeMask kTNumber = kTInt | kTDouble;
inline constexpr TypeMask kTOrdered = kTNumber | kTString;
inline constexpr TypeMask kTAny = 0x3f;

// Opcode flags (see opcodes.def).
inline constexpr uint8_t kCanFail = 1u << 0;
inline constexpr uint8_t kHost = 1u << 1;
inline constexpr uint8_t kBranch = 1u << 2;
inline constexpr uint8_t kTerminal = 1u << 3;
inline constexpr uint8_t kBudget = 1u << 4;

enum class Opcode : uint8_t {
#define VIGIL_OPCODE(name, ...) k##name,
#include "playbook_vm/opcodes.def"
#undef VIGIL_OPCODE
};

inline constexpr size_t kOpcodeCount = 0
#define VIGIL_OPCODE(...) +1
#include "playbook_vm/opcodes.def"
#undef VIGIL_OPCODE
    ;

// One row of the opcode table.
struct OpcodeInfo {
  std::string_view mnemonic;
  Format format;
  std::array<OperandKind, 3> kinds;  // A, B (or Bx / sBx), C
  std::array<TypeMask, 3> accepts;   // accepted types of each read operand
  TypeMask result;                   // types of the written register
  uint8_t flags;
  std::string_view semantics;
};

namespace internal {
inline constexpr std::array<OpcodeInfo, kOpcodeCount> kOpcodeTable = {{
#define VIGIL_OPCODE(name, mnemonic, format, ka, kb, kc, ta, tb, tc, result, flags, text) \
  {mnemonic,                                                                              \
   Format::format,                                                                        \
   {OperandKind::ka, OperandKind::kb, OperandKind::kc},                                   \
   {TypeMask(ta), TypeMask(tb), TypeMask(tc)},                                            \
   TypeMask(result),                                                                      \
   uint8_t(flags),                                                                        \
   text},
#include "playbook_vm/opcodes.def"
#undef VIGIL_OPCODE
}};
}  // namespace internal

// Returns the table row of a valid opcode. `op` must be < kOpcodeCount.
constexpr const OpcodeInfo& opcodeInfo(Opcode op) {
  return internal::kOpcodeTable[static_cast<size_t>(op)];
}

constexpr bool isValidOpcode(uint8_t raw) { return raw < kOpcodeCount; }

// Field accessors and encoders for one instruction word.
constexpr uint8_t opcodeField(uint32_t word) { return static_cast<uint8_t>(word & 0xff); }
constexpr uint8_t fieldA(uint32_t word) { return static_cast<uint8_t>((word >> 8) & 0xff); }
constexpr uint8_t fieldB(uint32_t word) { return static_cast<uint8_t>((word >> 16) & 0xff); }
constexpr uint8_t fieldC(uint32_t word) { return static_cast<uint8_t>(word >> 24); }
constexpr uint16_t fieldBx(uint32_t word) { return static_cast<uint16_t>(word >> 16); }
constexpr int16_t fieldSBx(uint32_t word) { return static_cast<int16_t>(word >> 16); }

constexpr uint32_t encodeABC(Opcode op, uint8_t a, uint8_t b, uint8_t c) {
  return uint32_t(op) | (uint32_t(a) << 8) | (uint32_t(b) << 16) | (uint32_t(c) << 24);
}
constexpr uint32_t encodeABx(Opcode op, uint8_t a, uint16_t bx) {
  return uint32_t(op) | (uint32_t(a) << 8) | (uint32_t(bx) << 16);
}
constexpr uint32_t encodeAsBx(Opcode op, uint8_t a, int16_t sbx) {
  return encodeABx(op, a, static_cast<uint16_t>(sbx));
}

}  // namespace vigil::playbook_vm
