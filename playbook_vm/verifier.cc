#include "playbook_vm/verifier.h"

#include <string>
#include <vector>

#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/program.h"

namespace vigil::playbook_vm {
namespace {

// Register state in the dataflow: the TypeMask of values it may hold, plus this bit when
// some path reaches the pc without writing it.
constexpr uint8_t kMaybeUndefined = 1u << 6;

struct Instruction {
  uint32_t pc;
  uint32_t word;
  Opcode op;
  const OpcodeInfo* info;
  uint8_t a, b, c;
  uint16_t bx;
};

Instruction decode(uint32_t pc, uint32_t word) {
  Opcode op = static_cast<Opcode>(opcodeField(word));
  return {pc, word, op, &opcodeInfo(op), fieldA(word), fieldB(word), fieldC(word), fieldBx(word)};
}

absl::Status fail(const Instruction& ins, VerifyRule rule, std::string_view detail) {
  return absl::InvalidArgumentError(internal::strCat("bytecode verifier: pc ", ins.pc, " ",
                                                     ins.info->mnemonic, ": rule ",
                                                     verifyRuleName(rule), ": ", detail));
}

TypeMask constantType(const Value& v) { return TypeMask(1u << static_cast<uint8_t>(v.type())); }

bool wide(const OpcodeInfo& info) { return info.format != Format::kABC; }

constexpr std::string_view kFieldNames[3] = {"A", "B", "C"};

// Returns field `field` (0 = A, 1 = B or Bx, 2 = C) of `ins`.
uint32_t fieldValue(const Instruction& ins, int field) {
  if (field == 0) return ins.a;
  if (field == 2) return ins.c;
  return wide(*ins.info) ? ins.bx : ins.b;
}

// Checks one field against its operand kind (the range rules of the opcode table).
absl::Status checkField(const BytecodeView& p, const Instruction& ins, int field) {
  const OpcodeInfo& info = *ins.info;
  OperandKind kind = info.kinds[field];
  uint32_t value = fieldValue(ins, field);
  std::string_view name = field == 1 && wide(info) ? "Bx" : kFieldNames[field];
  auto range = [&](uint32_t limit, std::string_view what) -> absl::Status {
    if (value < limit) return absl::OkStatus();
    return fail(ins, VerifyRule::kOperandRange,
                internal::strCat("operand ", name, " = ", value, " is not a valid ", what,
                                 " (the program has ", limit, ")"));
  };
  switch (kind) {
    case OperandKind::kNone:
      if (value == 0) return absl::OkStatus();
      return fail(ins, VerifyRule::kUnusedField,
                  internal::strCat("unused field ", name, " is ", value, ", must be 0"));
    case OperandKind::kRegRead:
    case OperandKind::kRegWrite:
      return range(p.register_count, "register");
    case OperandKind::kConst:
      return range(static_cast<uint32_t>(p.constants.size()), "constant index");
    case OperandKind::kHost:
      return range(static_cast<uint32_t>(p.import_arities.size()), "host import index");
    case OperandKind::kJump:
      if (value < p.code.size()) return absl::OkStatus();
      return fail(ins, VerifyRule::kJumpTarget,
                  internal::strCat("jump target ", value, " is outside the code (size ",
                                   p.code.size(), ")"));
    case OperandKind::kBoolImm:
      if (value <= 1) return absl::OkStatus();
      return fail(ins, VerifyRule::kOperandRange,
                  internal::strCat("operand ", name, " = ", value, " must be 0 or 1"));
    case OperandKind::kSignedImm:
      return absl::OkStatus();
    case OperandKind::kArgCount: {
      uint8_t arity = p.import_arities[ins.b];  // B was range-checked first
      if (value == arity) return absl::OkStatus();
      return fail(ins, VerifyRule::kHostArity,
                  internal::strCat("passes ", value, " arguments to host import ", ins.b,
                                   ", which declares arity ", arity));
    }
    case OperandKind::kIterBase:
      if (value + 2 < p.register_count) return absl::OkStatus();
      return fail(ins, VerifyRule::kOperandRange,
                  internal::strCat("loop registers R[", value, "]..R[", value + 2,
                                   "] exceed the register count ", p.register_count));
    case OperandKind::kCallBase: {
      // TRYCALL also writes its success flag to R[A+C+1].
      uint32_t last = value + ins.c + (ins.op == Opcode::kTryCall ? 1 : 0);
      if (last < p.register_count) return absl::OkStatus();
      return fail(ins, VerifyRule::kOperandRange,
                  internal::strCat("call registers R[", value, "]..R[", last,
                                   "] exceed the register count ", p.register_count));
    }
  }
  return absl::OkStatus();
}

absl::Status checkLimits(const BytecodeView& p) {
  auto over = [](std::string_view what, size_t value, std::string_view bound) {
    return absl::InvalidArgumentError(internal::strCat("bytecode verifier: rule limits: ", what,
                                                       " is ", value, ", must be ", bound));
  };
  if (p.code.empty() || p.code.size() > kMaxCodeSize) {
    return over("code size", p.code.size(), internal::strCat("1..", kMaxCodeSize));
  }
  if (p.constants.size() > kMaxConstants) {
    return over("constant count", p.constants.size(), internal::strCat("<= ", kMaxConstants));
  }
  if (p.register_count == 0 || p.register_count > kMaxRegisters) {
    return over("register count", p.register_count, internal::strCat("1..", kMaxRegisters));
  }
  if (p.import_arities.size() > kMaxHostImports) {
    return over("host import count", p.import_arities.size(),
                internal::strCat("<= ", kMaxHostImports));
  }
  return absl::OkStatus();
}

// The dataflow pass: a worklist over pcs with one register-state vector per pc, joined
// by union, so it reaches a fixpoint after at most 7 widenings per register and pc.
// NOTE: each widening re-queues the pc at O(registers) cost, so a crafted program near
// the limits (16384 pcs, 256 registers) could need about 16384 x 1792 x 256 steps. No
// input of that shape has been timed.
class Dataflow {
 public:
  explicit Dataflow(const BytecodeView& p)
      : p_(p), n_(p.register_count), states_(p.code.size() * n_), reached_(p.code.size()) {}

  absl::Status run() {
    std::vector<uint8_t> entry(n_, kMaybeUndefined);
    merge(0, entry.data());
    std::vector<uint8_t> out(n_);
    while (!worklist_.empty()) {
      uint32_t pc = worklist_.back();
      worklist_.pop_back();
      queued_[pc] = false;
      Instruction ins = decode(pc, p_.code[pc]);
      const uint8_t* in = &states_[size_t{pc} * n_];
      if (absl::Status s = flow(ins, in, out); !s.ok()) return s;
    }
    // Reads are checked only at the fixpoint. A state seen earlier may still lack the
    // types of paths not yet merged, and the type rule would reject it falsely.
    for (uint32_t pc = 0; pc < p_.code.size(); ++pc) {
      if (!reached_[pc]) continue;
      Instruction ins = decode(pc, p_.code[pc]);
      if (absl::Status s = checkReads(ins, &states_[size_t{pc} * n_]); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  void merge(uint32_t pc, const uint8_t* state) {
    uint8_t* dst = &states_[size_t{pc} * n_];
    bool changed = !reached_[pc];
    if (!reached_[pc]) {
      std::copy(state, state + n_, dst);
      reached_[pc] = true;
    } else {
      for (uint32_t r = 0; r < n_; ++r) {
        uint8_t joined = dst[r] | state[r];
        changed |= joined != dst[r];
        dst[r] = joined;
      }
    }
    if (changed && !queued_[pc]) {
      queued_[pc] = true;
      worklist_.push_back(pc);
    }
  }

  absl::Status checkRead(const Instruction& ins, const uint8_t* in, uint32_t reg, TypeMask accepts,
                         std::string_view operand) {
    uint8_t state = in[reg];
    if (state & kMaybeUndefined) {
      return fail(ins, VerifyRule::kRegisterDefined,
                  internal::strCat("operand ", operand, " reads R[", reg,
                                   "] before it is written on some path"));
    }
    if ((state & accepts) == 0) {
      return fail(ins, VerifyRule::kTypeConsistent,
                  internal::strCat("operand ", operand, " is R[", reg, "] holding ",
                                   typeMaskToString(state), ", but ", ins.info->mnemonic,
                                   " accepts ", typeMaskToString(accepts)));
    }
    return absl::OkStatus();
  }

  absl::Status checkReads(const Instruction& ins, const uint8_t* in) {
    const OpcodeInfo& info = *ins.info;
    for (int f = 0; f < 3; ++f) {
      uint32_t reg = fieldValue(ins, f);
      OperandKind kind = info.kinds[f];
      if (kind == OperandKind::kRegRead || kind == OperandKind::kIterBase) {
        if (absl::Status s = checkRead(ins, in, reg, info.accepts[f], kFieldNames[f]); !s.ok()) {
          return s;
        }
      }
    }
    if (ins.op == Opcode::kForNext) {
      return checkRead(ins, in, ins.a + 1u, kTInt, "A+1 (loop cursor)");
    }
    if (ins.op == Opcode::kCall || ins.op == Opcode::kTryCall) {
      for (uint32_t i = 1; i <= ins.c; ++i) {
        std::string operand = internal::strCat("argument ", i);
        if (absl::Status s = checkRead(ins, in, ins.a + i, kTAny, operand); !s.ok()) return s;
      }
    }
    if (ins.op == Opcode::kLt || ins.op == Opcode::kLe) {
      // Two numbers or two strings: a number on one side and a string on the other fails.
      uint8_t b = in[ins.b] & kTAny, c = in[ins.c] & kTAny;
      bool b_num = (b & ~kTNumber) == 0, b_str = b == kTString;
      bool c_num = (c & ~kTNumber) == 0, c_str = c == kTString;
      if ((b_num && c_str) || (b_str && c_num)) {
        return fail(ins, VerifyRule::kTypeConsistent,
                    internal::strCat("compares ", typeMaskToString(b), " with ",
                                     typeMaskToString(c), "; both must be numbers or strings"));
      }
    }
    return absl::OkStatus();
  }

  // Computes the register types written by `ins` (B and C of arithmetic narrow the result).
  uint8_t resultType(const Instruction& ins, const uint8_t* in) const {
    switch (ins.op) {
      case Opcode::kLoadK:
        return constantType(p_.constants[ins.bx]);
      case Opcode::kMove:
        return in[ins.b];
      case Opcode::kAdd:
      case Opcode::kSub:
      case Opcode::kMul:
      case Opcode::kDiv: {
        uint8_t b = in[ins.b], c = in[ins.c];
        uint8_t t = 0;
        if ((b & kTInt) && (c & kTInt)) t |= kTInt;
        if (((b & kTDouble) && (c & kTNumber)) || ((c & kTDouble) && (b & kTNumber))) {
          t |= kTDouble;
        }
        return t;
      }
      default:
        return ins.info->result;
    }
  }

  absl::Status successor(const Instruction& ins, uint32_t target, const uint8_t* state) {
    if (target >= p_.code.size()) {
      return fail(ins, VerifyRule::kFallsOffEnd,
                  "execution can run past the last instruction; end every path with RET or "
                  "JMP");
    }
    merge(target, state);
    return absl::OkStatus();
  }

  absl::Status flow(const Instruction& ins, const uint8_t* in, std::vector<uint8_t>& out) {
    const OpcodeInfo& info = *ins.info;
    std::copy(in, in + n_, out.begin());
    if (info.kinds[0] == OperandKind::kRegWrite || info.kinds[0] == OperandKind::kCallBase) {
      out[ins.a] = resultType(ins, in);
    }
    if (ins.op == Opcode::kForPrep) out[ins.a + 1u] = kTInt;
    if (ins.op == Opcode::kTryCall) out[ins.a + ins.c + 1u] = kTBool;
    if (info.flags & kBranch) {
      if (absl::Status s = successor(ins, ins.bx, out.data()); !s.ok()) return s;
    }
    if (info.flags & kTerminal) return absl::OkStatus();
    if (ins.op == Opcode::kForNext) {
      out[ins.a + 2u] = kTAny;  // only the loop body gets a new element, not the exit edge
    }
    return successor(ins, ins.pc + 1, out.data());
  }

  const BytecodeView& p_;
  uint32_t n_;
  std::vector<uint8_t> states_;
  std::vector<bool> reached_;
  std::vector<bool> queued_ = std::vector<bool>(p_.code.size());
  std::vector<uint32_t> worklist_;
};

}  // namespace

std::string_view verifyRuleName(VerifyRule rule) {
  switch (rule) {
    case VerifyRule::kLimits:
      return "limits";
    case VerifyRule::kOpcodeValid:
      return "opcode-valid";
    case VerifyRule::kOperandRange:
      return "operand-range";
    case VerifyRule::kUnusedField:
      return "unused-field";
    case VerifyRule::kJumpTarget:
      return "jump-target";
    case VerifyRule::kFallsOffEnd:
      return "falls-off-end";
    case VerifyRule::kRegisterDefined:
      return "register-defined";
    case VerifyRule::kTypeConsistent:
      return "type-consistent";
    case VerifyRule::kHostArity:
      return "host-arity";
  }
  return "unknown";
}

std::string typeMaskToString(uint8_t mask) {
  static constexpr std::string_view kNames[] = {"null", "bool", "int", "double", "string", "list"};
  std::string text;
  for (int i = 0; i < 6; ++i) {
    if ((mask & (1u << i)) == 0) continue;
    if (!text.empty()) text += '|';
    text += kNames[i];
  }
  return text.empty() ? "nothing" : text;
}

absl::Status verifyBytecode(const BytecodeView& program) {
  if (absl::Status s = checkLimits(program); !s.ok()) return s;
  for (uint32_t pc = 0; pc < program.code.size(); ++pc) {
    uint32_t word = program.code[pc];
    if (!isValidOpcode(opcodeField(word))) {
      return absl::InvalidArgumentError(internal::strCat(
          "bytecode verifier: pc ", pc, " opcode ", opcodeField(word),
          ": rule opcode-valid: no such opcode (valid: 0..", kOpcodeCount - 1, ")"));
    }
    Instruction ins = decode(pc, word);
    int fields = wide(*ins.info) ? 2 : 3;
    for (int f = 0; f < fields; ++f) {
      if (absl::Status s = checkField(program, ins, f); !s.ok()) return s;
    }
  }
  return Dataflow(program).run();
}

}  // namespace vigil::playbook_vm
