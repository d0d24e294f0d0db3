#include "playbook_vm/builder.h"

#include "flatbuffers/flatbuffers.h"
#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/module_generated.h"
#include "playbook_vm/program.h"

namespace vigil::playbook_vm {

ProgramBuilder::ProgramBuilder(std::string name)
    : name_(std::move(name)), format_version_(kFormatVersion) {}

void ProgramBuilder::fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

uint32_t ProgramBuilder::addNull() {
  constants_.push_back(Constant{static_cast<uint8_t>(fb::ConstantKind::Null), false, 0, 0, {}});
  return static_cast<uint32_t>(constants_.size() - 1);
}

uint32_t ProgramBuilder::addBool(bool value) {
  constants_.push_back(Constant{static_cast<uint8_t>(fb::ConstantKind::Bool), value, 0, 0, {}});
  return static_cast<uint32_t>(constants_.size() - 1);
}

uint32_t ProgramBuilder::addInt(int64_t value) {
  constants_.push_back(Constant{static_cast<uint8_t>(fb::ConstantKind::Int), false, value, 0, {}});
  return static_cast<uint32_t>(constants_.size() - 1);
}

uint32_t ProgramBuilder::addDouble(double value) {
  constants_.push_back(
      Constant{static_cast<uint8_t>(fb::ConstantKind::Double), false, 0, value, {}});
  return static_cast<uint32_t>(constants_.size() - 1);
}

uint32_t ProgramBuilder::addString(std::string_view value) {
  constants_.push_back(
      {static_cast<uint8_t>(fb::ConstantKind::String), false, 0, 0, std::string(value)});
  return static_cast<uint32_t>(constants_.size() - 1);
}

uint32_t ProgramBuilder::importHost(std::string_view name, uint32_t arity) {
  for (uint32_t i = 0; i < imports_.size(); ++i) {
    if (imports_[i].name != name) continue;
    if (imports_[i].arity != arity) {
      fail(internal::strCat("host function ", name, " imported with arity ", imports_[i].arity,
                            " and again with arity ", arity));
    }
    return i;
  }
  if (arity > 255) fail(internal::strCat("host function ", name, ": arity ", arity, " > 255"));
  imports_.push_back({std::string(name), arity});
  return static_cast<uint32_t>(imports_.size() - 1);
}

ProgramBuilder::Label ProgramBuilder::newLabel() {
  label_pcs_.push_back(-1);
  return Label{static_cast<uint32_t>(label_pcs_.size() - 1)};
}

void ProgramBuilder::bind(Label label) {
  if (label.id >= label_pcs_.size()) {
    fail(internal::strCat("label ", label.id, " was not created by this builder"));
    return;
  }
  if (label_pcs_[label.id] >= 0) fail(internal::strCat("label ", label.id, " is bound twice"));
  label_pcs_[label.id] = pc();
}

void ProgramBuilder::setLocation(uint32_t line, uint32_t column) {
  line_ = line;
  column_ = column;
}

void ProgramBuilder::markLocation() {
  if (line_ == 0) return;
  if (!locations_.empty() && locations_.back().line == line_ &&
      locations_.back().column == column_) {
    return;
  }
  locations_.push_back({pc(), line_, column_});
}

void ProgramBuilder::noteRegister(uint32_t reg) {
  max_register_seen_ = any_register_ ? std::max(max_register_seen_, reg) : reg;
  any_register_ = true;
}

void ProgramBuilder::noteOperands(Opcode op, uint32_t a, uint32_t b, uint32_t c) {
  const OpcodeInfo& info = opcodeInfo(op);
  const uint32_t fields[3] = {a, b, c};
  for (int f = 0; f < 3; ++f) {
    switch (info.kinds[f]) {
      case OperandKind::kRegRead:
      case OperandKind::kRegWrite:
        noteRegister(fields[f]);
        break;
      case OperandKind::kIterBase:
        noteRegister(fields[f] + 2);
        break;
      case OperandKind::kCallBase:
        noteRegister(fields[f] + c);
        break;
      default:
        break;
    }
  }
}

void ProgramBuilder::emitABC(Opcode op, uint32_t a, uint32_t b, uint32_t c) {
  if (a > 255 || b > 255 || c > 255) {
    fail(internal::strCat("pc ", pc(), " ", opcodeInfo(op).mnemonic, ": operand above 255 (A=", a,
                          " B=", b, " C=", c, ")"));
  }
  noteOperands(op, a, b, c);
  markLocation();
  code_.push_back(encodeABC(op, uint8_t(a), uint8_t(b), uint8_t(c)));
}

void ProgramBuilder::emitABx(Opcode op, uint32_t a, uint32_t bx) {
  if (a > 255 || bx > 0xffff) {
    fail(internal::strCat("pc ", pc(), " ", opcodeInfo(op).mnemonic, ": A=", a, " or Bx=", bx,
                          " does not fit (A <= 255, Bx <= 65535)"));
  }
  noteOperands(op, a, 0, 0);
  markLocation();
  code_.push_back(encodeABx(op, uint8_t(a), uint16_t(bx)));
}

void ProgramBuilder::emitAsBx(Opcode op, uint32_t a, int32_t sbx) {
  if (a > 255 || sbx < INT16_MIN || sbx > INT16_MAX) {
    fail(internal::strCat("pc ", pc(), " ", opcodeInfo(op).mnemonic, ": A=", a, " or sBx=", sbx,
                          " does not fit (A <= 255, sBx in -32768..32767)"));
  }
  noteOperands(op, a, 0, 0);
  markLocation();
  code_.push_back(encodeAsBx(op, uint8_t(a), int16_t(sbx)));
}

void ProgramBuilder::emitJump(Opcode op, uint32_t a, Label target) {
  fixups_.push_back({pc(), target.id});
  emitABx(op, a, 0);
}

void ProgramBuilder::emitRaw(uint32_t word) {
  markLocation();
  code_.push_back(word);
}

absl::StatusOr<std::vector<uint8_t>> ProgramBuilder::finish() {
  for (const Fixup& fixup : fixups_) {
    if (fixup.label >= label_pcs_.size() || label_pcs_[fixup.label] < 0) {
      fail(internal::strCat("pc ", fixup.pc, ": jump to label ", fixup.label,
                            ", which is never bound"));
      continue;
    }
    int64_t target = label_pcs_[fixup.label];
    if (target > 0xffff)
      fail(internal::strCat("pc ", fixup.pc, ": jump target ", target, " > 65535"));
    code_[fixup.pc] = (code_[fixup.pc] & 0xffff) | (static_cast<uint32_t>(target) << 16);
  }
  fixups_.clear();
  if (!error_.empty()) return absl::InvalidArgumentError("program builder: " + error_);

  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<fb::Constant>> constants;
  for (const Constant& c : constants_) {
    auto text = c.kind == static_cast<uint8_t>(fb::ConstantKind::String)
                    ? fbb.CreateString(c.string_value)
                    : flatbuffers::Offset<flatbuffers::String>();
    constants.push_back(fb::CreateConstant(fbb, static_cast<fb::ConstantKind>(c.kind), c.bool_value,
                                           c.int_value, c.double_value, text));
  }
  std::vector<flatbuffers::Offset<fb::HostImport>> imports;
  for (const Import& import : imports_) {
    imports.push_back(fb::CreateHostImport(fbb, fbb.CreateString(import.name),
                                           static_cast<uint8_t>(import.arity)));
  }
  std::vector<fb::SourceLocation> locations;
  for (const Location& loc : locations_) {
    // Two positions set before one instruction: the later one wins.
    if (!locations.empty() && locations.back().pc() == loc.pc) locations.pop_back();
    if (loc.pc < code_.size()) locations.emplace_back(loc.pc, loc.line, loc.column);
  }
  uint32_t registers = register_count_;
  if (registers == 0 && any_register_) registers = max_register_seen_ + 1;
  // Written as zero and set by sealModule() once the bytes are final. Version 1 modules
  // (written only by tests) have no checksum.
  const fb::ModuleChecksum unsealed(0);
  auto header =
      fb::CreateHeader(fbb, format_version_, fbb.CreateVector(sha256_.data(), 32),
                       fbb.CreateString(name_), format_version_ >= 2 ? &unsealed : nullptr);
  flatbuffers::Offset<fb::Trigger> trigger;
  if (trigger_.has_trigger) {
    trigger = fb::CreateTrigger(fbb, fbb.CreateVectorOfStrings(trigger_.rule_ids),
                                fbb.CreateVectorOfStrings(trigger_.tags),
                                static_cast<uint8_t>(trigger_.min_severity),
                                fbb.CreateVectorOfStrings(trigger_.tenants));
  }
  auto module = fb::CreateModule(fbb, header, static_cast<uint16_t>(std::min(registers, 65535u)),
                                 fbb.CreateVector(constants), fbb.CreateVector(code_),
                                 fbb.CreateVectorOfStructs(locations), fbb.CreateVector(imports),
                                 trigger);
  fb::FinishModuleBuffer(fbb, module);
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  if (format_version_ >= 2 && !sealModule(bytes)) {
    return absl::InternalError("program builder: cannot set the checksum of the new module");
  }
  return bytes;
}

}  // namespace vigil::playbook_vm
