#include "playbook_vm/disassembler.h"

#include "absl/strings/str_format.h"
#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/vm.h"

namespace vigil::playbook_vm {
namespace {

// Writes the operand of one field, or nothing for kNone.
std::string operandText(OperandKind kind, uint32_t value, uint32_t word, const Program* p) {
  switch (kind) {
    case OperandKind::kNone:
      return "";
    case OperandKind::kRegRead:
    case OperandKind::kRegWrite:
    case OperandKind::kCallBase:
    case OperandKind::kIterBase:
      return internal::strCat("R", value);
    case OperandKind::kConst:
      if (p != nullptr && value < p->constants().size()) {
        return internal::strCat("K", value, " ", valueToString(p->constants()[value]));
      }
      return internal::strCat("K", value);
    case OperandKind::kJump:
      return internal::strCat("-> ", value);
    case OperandKind::kHost:
      if (p != nullptr && value < p->hostImports().size()) {
        const HostImport& import = p->hostImports()[value];
        return internal::strCat("H", value, " ", import.name, "/", import.arity);
      }
      return internal::strCat("H", value);
    case OperandKind::kBoolImm:
      return value ? "true" : "false";
    case OperandKind::kSignedImm:
      return internal::strCat(fieldSBx(word));
    case OperandKind::kArgCount:
      return internal::strCat(value);
  }
  return "";
}

}  // namespace

std::string disassembleInstruction(uint32_t word, const Program* program) {
  if (!isValidOpcode(opcodeField(word))) {
    return absl::StrFormat("<invalid opcode %d> 0x%08x", opcodeField(word), word);
  }
  const OpcodeInfo& info = opcodeInfo(static_cast<Opcode>(opcodeField(word)));
  bool wide = info.format != Format::kABC;
  uint32_t fields[3] = {fieldA(word), wide ? uint32_t{fieldBx(word)} : uint32_t{fieldB(word)},
                        fieldC(word)};
  std::string operands;
  for (int f = 0; f < (wide ? 2 : 3); ++f) {
    std::string text = operandText(info.kinds[f], fields[f], word, program);
    if (text.empty()) continue;
    if (!operands.empty()) operands += ", ";
    operands += text;
  }
  return absl::StrFormat("%-9s %s", info.mnemonic, operands);
}

std::string disassemble(const Program& program) {
  std::string out = internal::strCat(
      "; playbook '", program.name(), "' registers ", program.registerCount(), " constants ",
      program.constants().size(), " host imports ", program.hostImports().size(), "\n");
  for (uint32_t pc = 0; pc < program.code().size(); ++pc) {
    std::string line =
        absl::StrFormat("%6u  %s", pc, disassembleInstruction(program.code()[pc], &program));
    SourceLocation where = program.locate(pc);
    if (where.line != 0) {
      absl::StrAppendFormat(&line, "%*s; line %u:%u", line.size() < 48 ? 48 - line.size() : 1, "",
                            where.line, where.column);
    }
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace vigil::playbook_vm
