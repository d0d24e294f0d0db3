// ProgramBuilder: the assembler that tests and the playbook compiler use to produce module
// bytes (module.fbs) from instructions, constants, labels and source positions.
//
//   ProgramBuilder b("notify-on-high");
//   uint32_t notify = b.importHost("notify", 1);
//   ProgramBuilder::Label done = b.newLabel();
//   b.setLocation(3, 5);
//   b.emitABx(Opcode::kLoadK, 1, b.addString("high severity"));
//   b.emitABC(Opcode::kCall, 0, notify, 1);
//   b.emitABC(Opcode::kReturn, 0, 0, 0);
//   absl::StatusOr<std::vector<uint8_t>> bytes = b.finish();
//
// The builder checks only what encoding needs (field widths and labels). Everything else is
// the verifier's job, so tests can build invalid programs on purpose. Control plane
// only: every call may allocate. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/program.h"

namespace vigil::playbook_vm {

class ProgramBuilder {
 public:
  struct Label {
    uint32_t id;
  };

  explicit ProgramBuilder(std::string name);

  void setSourceSha256(const std::array<uint8_t, 32>& sha256) { sha256_ = sha256; }
  // Writes `trigger` into the module (only when trigger.has_trigger is set).
  void setTrigger(Trigger trigger) { trigger_ = std::move(trigger); }
  // Declared register count. When never set, finish() uses 1 + the highest register that
  // an instruction emitted through the typed emitters names (raw words are not counted).
  void setRegisterCount(uint32_t count) { register_count_ = count; }
  // Writes `version` instead of kFormatVersion, so tests can build modules of older or
  // unreadable versions. Below version 2 the module gets no checksum.
  void setFormatVersionForTest(uint32_t version) { format_version_ = version; }

  // Constant pool entries; each returns the new constant's index. Strings are copied.
  uint32_t addNull();
  uint32_t addBool(bool value);
  uint32_t addInt(int64_t value);
  uint32_t addDouble(double value);
  uint32_t addString(std::string_view value);

  // Declares a host function the program calls; returns its import index for CALL's B.
  // Importing the same name twice returns the first index (the arity must match, else
  // finish() fails).
  uint32_t importHost(std::string_view name, uint32_t arity);

  Label newLabel();
  // Places `label` at the next instruction. Binding a label twice makes finish() fail.
  void bind(Label label);

  // Source position of the instructions emitted from now on (1-based).
  void setLocation(uint32_t line, uint32_t column);

  // pc of the next instruction.
  uint32_t pc() const { return static_cast<uint32_t>(code_.size()); }

  void emitABC(Opcode op, uint32_t a, uint32_t b, uint32_t c);
  void emitABx(Opcode op, uint32_t a, uint32_t bx);
  void emitAsBx(Opcode op, uint32_t a, int32_t sbx);
  // JMP (a = 0), JMPIF, JMPIFNOT or FORNEXT to `target`, patched in finish().
  void emitJump(Opcode op, uint32_t a, Label target);
  // Emits an arbitrary word, valid or not.
  void emitRaw(uint32_t word);

  // Returns the module bytes with their checksum set (sealModule() in program.h), or
  // InvalidArgument for the first field that did not fit its width, an unbound or
  // twice-bound label, or a conflicting host import.
  absl::StatusOr<std::vector<uint8_t>> finish();

 private:
  struct Constant {
    uint8_t kind;  // fb::ConstantKind
    bool bool_value = false;
    int64_t int_value = 0;
    double double_value = 0;
    std::string string_value;
  };
  struct Import {
    std::string name;
    uint32_t arity;
  };
  struct Fixup {
    uint32_t pc;
    uint32_t label;
  };
  struct Location {
    uint32_t pc, line, column;
  };

  void fail(std::string message);
  void noteRegister(uint32_t reg);
  void noteOperands(Opcode op, uint32_t a, uint32_t b, uint32_t c);
  void markLocation();

  std::string name_;
  std::array<uint8_t, 32> sha256_{};
  Trigger trigger_;
  uint32_t register_count_ = 0;
  uint32_t max_register_seen_ = 0;
  bool any_register_ = false;
  uint32_t format_version_;
  std::vector<uint32_t> code_;
  std::vector<Constant> constants_;
  std::vector<Import> imports_;
  std::vector<int64_t> label_pcs_;  // -1 while unbound
  std::vector<Fixup> fixups_;
  std::vector<Location> locations_;
  uint32_t line_ = 0, column_ = 0;
  std::string error_;
};

}  // namespace vigil::playbook_vm
