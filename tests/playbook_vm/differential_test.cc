// Differential test: seeded random programs, built with ProgramBuilder and accepted by the
// verifier, run on both dispatch loops of the VM and on the slow reference interpreter
// below. All three must agree on status, error kind, pc, steps, run-heap bytes and result.
// The reference shares only the instruction decoding (opcodes.h) with the VM.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"
#include "test_util.h"

namespace vigil::playbook_vm {
namespace {

// ---------------------------------------------------------------------------------------
// Reference interpreter

struct RefList;
using RefValue =
    std::variant<std::monostate, bool, int64_t, double, std::string, std::shared_ptr<RefList>>;
struct RefList {
  std::vector<RefValue> items;
  uint32_t capacity = 0;  // mirrors the VM's growth rule for memory accounting
};

struct RefOutcome {
  RunStatus status = RunStatus::kFailed;
  RunError error = RunError::kNone;
  uint32_t pc = 0;
  uint64_t steps = 0;
  uint64_t memory = 0;
  RefValue value;
};

bool isNum(const RefValue& v) {
  return std::holds_alternative<int64_t>(v) || std::holds_alternative<double>(v);
}
double num(const RefValue& v) {
  return std::holds_alternative<int64_t>(v) ? double(std::get<int64_t>(v)) : std::get<double>(v);
}

bool refEqual(const RefValue& a, const RefValue& b) {
  if (isNum(a) && isNum(b)) {
    if (std::holds_alternative<int64_t>(a) && std::holds_alternative<int64_t>(b)) {
      return std::get<int64_t>(a) == std::get<int64_t>(b);
    }
    return num(a) == num(b);
  }
  if (a.index() != b.index()) return false;
  if (std::holds_alternative<std::monostate>(a)) return true;
  if (auto* x = std::get_if<bool>(&a)) return *x == std::get<bool>(b);
  if (auto* x = std::get_if<std::string>(&a)) return *x == std::get<std::string>(b);
  return std::get<std::shared_ptr<RefList>>(a) == std::get<std::shared_ptr<RefList>>(b);
}

// The host function of the generated programs: pick(a, b) returns b when a is true, else a.
RefValue refPick(const RefValue& a, const RefValue& b) {
  const bool* flag = std::get_if<bool>(&a);
  return flag != nullptr && *flag ? b : a;
}

// The second host function: check(a) returns a, and fails with kCheckMessage when a is null.
constexpr std::string_view kCheckMessage = "check: argument is null";
constexpr uint8_t kPickImport = 0;
constexpr uint8_t kCheckImport = 1;

class Reference {
 public:
  Reference(const Program& program, uint64_t max_steps, uint64_t max_memory)
      : program_(program),
        max_steps_(max_steps),
        max_memory_(max_memory),
        regs_(program.registerCount()) {}

  // Lists may contain themselves, so shared_ptr alone would leak the cycles.
  ~Reference() {
    for (const auto& list : lists_) list->items.clear();
  }

  RefOutcome run(uint32_t pc) {
    for (;;) {
      uint32_t w = program_.code()[pc];
      ++steps_;
      Opcode op = static_cast<Opcode>(opcodeField(w));
      uint8_t a = fieldA(w), b = fieldB(w), c = fieldC(w);
      uint16_t bx = fieldBx(w);
      uint8_t flags = opcodeInfo(op).flags;
      if ((flags & kBudget) && steps_ > max_steps_) return fail(pc, RunError::kBudgetExhausted);
      RefValue& ra = regs_[a];
      const RefValue& rb = regs_[b];
      const RefValue& rc = regs_[c];
      switch (op) {
        case Opcode::kLoadK:
          ra = constant(bx);
          break;
        case Opcode::kLoadNull:
          ra = std::monostate();
          break;
        case Opcode::kLoadBool:
          ra = b != 0;
          break;
        case Opcode::kLoadInt:
          ra = int64_t{fieldSBx(w)};
          break;
        case Opcode::kMove:
          ra = RefValue(rb);
          break;
        case Opcode::kAdd:
        case Opcode::kSub:
        case Opcode::kMul:
        case Opcode::kDiv: {
          RefValue out;
          if (RunError e = arith(op, rb, rc, out); e != RunError::kNone) return fail(pc, e);
          ra = out;
          break;
        }
        case Opcode::kMod: {
          auto* x = std::get_if<int64_t>(&rb);
          auto* y = std::get_if<int64_t>(&rc);
          if (x == nullptr || y == nullptr) return fail(pc, RunError::kTypeError);
          if (*y == 0) return fail(pc, RunError::kDivisionByZero);
          ra = *y == -1 ? int64_t{0} : *x % *y;
          break;
        }
        case Opcode::kEq:
          ra = refEqual(rb, rc);
          break;
        case Opcode::kNe:
          ra = !refEqual(rb, rc);
          break;
        case Opcode::kLt:
        case Opcode::kLe: {
          bool le = op == Opcode::kLe;
          auto* x = std::get_if<int64_t>(&rb);
          auto* y = std::get_if<int64_t>(&rc);
          auto* s = std::get_if<std::string>(&rb);
          auto* t = std::get_if<std::string>(&rc);
          if (x && y) {
            ra = le ? *x <= *y : *x < *y;
          } else if (isNum(rb) && isNum(rc)) {
            ra = le ? num(rb) <= num(rc) : num(rb) < num(rc);
          } else if (s && t) {
            ra = le ? *s <= *t : *s < *t;
          } else {
            return fail(pc, RunError::kTypeError);
          }
          break;
        }
        case Opcode::kNot: {
          auto* x = std::get_if<bool>(&rb);
          if (x == nullptr) return fail(pc, RunError::kTypeError);
          ra = !*x;
          break;
        }
        case Opcode::kConcat: {
          auto* s = std::get_if<std::string>(&rb);
          auto* t = std::get_if<std::string>(&rc);
          if (s == nullptr || t == nullptr) return fail(pc, RunError::kTypeError);
          if (!charge((s->size() + t->size() + 7) / 8 * 8)) return fail(pc, RunError::kMemoryLimit);
          ra = *s + *t;
          break;
        }
        case Opcode::kNewList:
          if (!charge(16)) return fail(pc, RunError::kMemoryLimit);
          lists_.push_back(std::make_shared<RefList>());
          ra = lists_.back();
          break;
        case Opcode::kAppend: {
          auto* list = std::get_if<std::shared_ptr<RefList>>(&ra);
          if (list == nullptr) return fail(pc, RunError::kTypeError);
          RefList& l = **list;
          if (l.items.size() == l.capacity) {
            if (l.items.size() >= kMaxListLength) return fail(pc, RunError::kListTooLong);
            uint32_t grown = l.capacity == 0 ? 4 : l.capacity * 2;
            if (!charge(uint64_t{grown} * 16)) return fail(pc, RunError::kMemoryLimit);
            l.capacity = grown;
          }
          l.items.push_back(RefValue(rb));
          break;
        }
        case Opcode::kLen:
          if (auto* s = std::get_if<std::string>(&rb)) {
            ra = int64_t(s->size());
          } else if (auto* l = std::get_if<std::shared_ptr<RefList>>(&rb)) {
            ra = int64_t((*l)->items.size());
          } else {
            return fail(pc, RunError::kTypeError);
          }
          break;
        case Opcode::kIndex: {
          auto* l = std::get_if<std::shared_ptr<RefList>>(&rb);
          auto* i = std::get_if<int64_t>(&rc);
          if (l == nullptr || i == nullptr) return fail(pc, RunError::kTypeError);
          if (*i < 0 || *i >= int64_t((*l)->items.size())) {
            return fail(pc, RunError::kIndexOutOfRange);
          }
          ra = RefValue((*l)->items[*i]);
          break;
        }
        case Opcode::kIn: {
          auto* l = std::get_if<std::shared_ptr<RefList>>(&rc);
          if (l == nullptr) return fail(pc, RunError::kTypeError);
          bool found = false;
          for (const RefValue& item : (*l)->items) found = found || refEqual(rb, item);
          ra = found;
          break;
        }
        case Opcode::kJmp:
          pc = bx;
          continue;
        case Opcode::kJmpIf:
        case Opcode::kJmpIfNot: {
          auto* x = std::get_if<bool>(&ra);
          if (x == nullptr) return fail(pc, RunError::kTypeError);
          if (*x == (op == Opcode::kJmpIf)) {
            pc = bx;
            continue;
          }
          break;
        }
        case Opcode::kForPrep:
          if (!std::holds_alternative<std::shared_ptr<RefList>>(ra)) {
            return fail(pc, RunError::kTypeError);
          }
          regs_[a + 1] = int64_t{0};
          break;
        case Opcode::kForNext: {
          auto* l = std::get_if<std::shared_ptr<RefList>>(&ra);
          if (l == nullptr) return fail(pc, RunError::kTypeError);
          auto* cursor = std::get_if<int64_t>(&regs_[a + 1]);
          if (cursor == nullptr) return fail(pc, RunError::kTypeError);
          if (*cursor < 0) return fail(pc, RunError::kIndexOutOfRange);
          if (*cursor >= int64_t((*l)->items.size())) {
            pc = bx;
            continue;
          }
          int64_t i = *cursor;
          RefValue element = (*l)->items[i];
          regs_[a + 2] = element;
          regs_[a + 1] = i + 1;
          break;
        }
        case Opcode::kCall:
          if (b == kCheckImport && std::holds_alternative<std::monostate>(regs_[a + 1])) {
            return fail(pc, RunError::kHostError);
          }
          ra = b == kPickImport ? refPick(regs_[a + 1], regs_[a + 2]) : RefValue(regs_[a + 1]);
          break;
        case Opcode::kTryCall: {
          uint32_t flag = a + c + 1u;
          if (b == kCheckImport && std::holds_alternative<std::monostate>(regs_[a + 1])) {
            if (!charge((kCheckMessage.size() + 7) / 8 * 8)) {
              return fail(pc, RunError::kMemoryLimit);
            }
            ra = std::string(kCheckMessage);
            regs_[flag] = false;
            break;
          }
          ra = b == kPickImport ? refPick(regs_[a + 1], regs_[a + 2]) : RefValue(regs_[a + 1]);
          regs_[flag] = true;
          break;
        }
        case Opcode::kToStr: {
          char text[32];
          std::to_chars_result written{text, std::errc()};
          if (std::holds_alternative<std::monostate>(rb)) {
            ra = std::string("null");
          } else if (auto* x = std::get_if<bool>(&rb)) {
            ra = std::string(*x ? "true" : "false");
          } else if (auto* s = std::get_if<std::string>(&rb)) {
            ra = RefValue(*s);
          } else if (auto* i = std::get_if<int64_t>(&rb)) {
            written = std::to_chars(text, text + sizeof(text), *i);
          } else if (auto* d = std::get_if<double>(&rb)) {
            written = std::to_chars(text, text + sizeof(text), *d);
          } else {
            return fail(pc, RunError::kTypeError);
          }
          if (written.ptr != text) {
            size_t length = static_cast<size_t>(written.ptr - text);
            if (!charge((length + 7) / 8 * 8)) return fail(pc, RunError::kMemoryLimit);
            ra = std::string(text, length);
          }
          break;
        }
        case Opcode::kYield: {
          RefOutcome out = finish(pc, RunStatus::kSuspended, rb);
          yield_register_ = a;
          return out;
        }
        case Opcode::kReturn:
          return finish(pc, RunStatus::kReturned, ra);
      }
      ++pc;
    }
  }

  // Continues after a YIELD at `pc` with `value` in the YIELD's destination register.
  RefOutcome resume(uint32_t pc, RefValue value, uint64_t max_memory) {
    regs_[yield_register_] = std::move(value);
    max_memory_ = max_memory;
    return run(pc + 1);
  }

 private:
  RefValue constant(uint16_t index) const {
    const Value& k = program_.constants()[index];
    switch (k.type()) {
      case ValueType::kBool:
        return k.asBool();
      case ValueType::kInt:
        return k.asInt();
      case ValueType::kDouble:
        return k.asDouble();
      case ValueType::kString:
        return std::string(k.asString());
      default:
        return std::monostate();
    }
  }

  RunError arith(Opcode op, const RefValue& b, const RefValue& c, RefValue& out) {
    auto* x = std::get_if<int64_t>(&b);
    auto* y = std::get_if<int64_t>(&c);
    if (x && y) {
      int64_t r = 0;
      bool overflow = false;
      switch (op) {
        case Opcode::kAdd:
          overflow = __builtin_add_overflow(*x, *y, &r);
          break;
        case Opcode::kSub:
          overflow = __builtin_sub_overflow(*x, *y, &r);
          break;
        case Opcode::kMul:
          overflow = __builtin_mul_overflow(*x, *y, &r);
          break;
        default:
          if (*y == 0) return RunError::kDivisionByZero;
          if (*x == INT64_MIN && *y == -1) return RunError::kIntegerOverflow;
          r = *x / *y;
      }
      if (overflow) return RunError::kIntegerOverflow;
      out = r;
      return RunError::kNone;
    }
    if (!isNum(b) || !isNum(c)) return RunError::kTypeError;
    double p = num(b), q = num(c);
    switch (op) {
      case Opcode::kAdd:
        out = p + q;
        break;
      case Opcode::kSub:
        out = p - q;
        break;
      case Opcode::kMul:
        out = p * q;
        break;
      default:
        out = p / q;
        break;
    }
    return RunError::kNone;
  }

  bool charge(uint64_t bytes) {
    if (bytes > max_memory_ - memory_) return false;
    memory_ += bytes;
    return true;
  }
  RefOutcome fail(uint32_t pc, RunError error) {
    RefOutcome out;
    out.error = error;
    out.pc = pc;
    out.steps = steps_;
    out.memory = memory_;
    return out;
  }
  RefOutcome finish(uint32_t pc, RunStatus status, const RefValue& value) {
    RefOutcome out;
    out.status = status;
    out.pc = pc;
    out.steps = steps_;
    out.memory = memory_;
    out.value = value;
    return out;
  }

  const Program& program_;
  uint64_t max_steps_;
  uint64_t max_memory_;
  uint64_t steps_ = 0;
  uint64_t memory_ = 0;
  uint8_t yield_register_ = 0;
  std::vector<RefValue> regs_;
  std::vector<std::shared_ptr<RefList>> lists_;  // every list created, to break cycles
};

// Compares a VM value with a reference value, descending at most `depth` list levels
// (lists may contain themselves).
std::string compareValues(const Value& vm, const RefValue& ref, int depth = 4) {
  std::string where = absl::StrCat("vm ", valueToString(vm), " vs ref type ", ref.index());
  switch (vm.type()) {
    case ValueType::kNull:
      return std::holds_alternative<std::monostate>(ref) ? "" : where;
    case ValueType::kBool:
      return std::get_if<bool>(&ref) && *std::get_if<bool>(&ref) == vm.asBool() ? "" : where;
    case ValueType::kInt:
      return std::get_if<int64_t>(&ref) && *std::get_if<int64_t>(&ref) == vm.asInt() ? "" : where;
    case ValueType::kDouble: {
      auto* d = std::get_if<double>(&ref);
      if (d == nullptr) return where;
      bool same = (std::isnan(*d) && std::isnan(vm.asDouble())) || *d == vm.asDouble();
      return same ? "" : where;
    }
    case ValueType::kString: {
      auto* s = std::get_if<std::string>(&ref);
      return s && *s == vm.asString() ? "" : where;
    }
    case ValueType::kList: {
      auto* l = std::get_if<std::shared_ptr<RefList>>(&ref);
      if (l == nullptr || (*l)->items.size() != vm.asList()->size) return where;
      if (depth == 0) return "";
      for (uint32_t i = 0; i < vm.asList()->size; ++i) {
        std::string diff = compareValues(vm.asList()->items[i], (*l)->items[i], depth - 1);
        if (!diff.empty()) return absl::StrCat("[", i, "] ", diff);
      }
      return "";
    }
  }
  return where;
}

// ---------------------------------------------------------------------------------------
// Program generator

// Register classes keep most generated instructions type-correct, so the verifier accepts
// most programs and runs get past their first instructions: R0-R2 int, R3 double,
// R4-R5 string, R6 list, R7 bool, R8-R10 the for-each registers (list, cursor, element),
// R11 anything. One operation in eight ignores the classes, which produces both
// verifier rejections and runtime type errors.
constexpr uint32_t kRegisters = 12;
constexpr uint32_t kLoopBase = 8;

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  ProgramBuilder generate(uint64_t seed) {
    ProgramBuilder b(absl::StrCat("random-", seed));
    b.setRegisterCount(kRegisters);
    pick_ = b.importHost("pick", 2);
    check_ = b.importHost("check", 1);
    for (uint32_t r = 0; r < kRegisters; ++r) initialize(b, r);
    std::vector<ProgramBuilder::Label> back_targets;
    int length = below(25) + 5;
    for (int i = 0; i < length; ++i) {
      b.setLocation(i + 1, below(40) + 1);
      if (below(6) == 0) {
        back_targets.push_back(b.newLabel());
        b.bind(back_targets.back());
      }
      switch (below(12)) {
        case 0:
          forwardBranch(b);
          break;
        case 1:
          if (!back_targets.empty()) {
            compare(b);
            b.emitJump(Opcode::kJmpIf, 7, back_targets[below(back_targets.size())]);
            break;
          }
          [[fallthrough]];
        case 2:
          forEach(b);
          break;
        default:
          randomOp(b);
          break;
      }
    }
    if (below(3) == 0) b.emitABC(Opcode::kYield, below(8), below(12), 0);
    b.emitABC(Opcode::kReturn, below(kRegisters), 0, 0);
    return b;
  }

 private:
  uint32_t below(size_t n) { return static_cast<uint32_t>(rng_() % n); }
  uint32_t intReg() { return below(3); }
  uint32_t strReg() { return 4 + below(2); }
  uint32_t numReg() { return below(4); }

  void loadInt(ProgramBuilder& b, uint32_t r) {
    static constexpr int64_t kInts[] = {0, 1, -1, 2, 7, INT64_MAX, INT64_MIN, 1 << 20};
    if (below(2)) {
      b.emitAsBx(Opcode::kLoadInt, r, int32_t(below(200)) - 100);
    } else {
      b.emitABx(Opcode::kLoadK, r, b.addInt(kInts[below(8)]));
    }
  }
  void loadDouble(ProgramBuilder& b, uint32_t r) {
    static constexpr double kDoubles[] = {0.5, -2.25, 1e300, 0.0};
    b.emitABx(Opcode::kLoadK, r, b.addDouble(kDoubles[below(4)]));
  }
  void loadString(ProgramBuilder& b, uint32_t r) {
    static constexpr const char* kStrings[] = {"", "a", "ab", "alert", "0123456789abcdef"};
    b.emitABx(Opcode::kLoadK, r, b.addString(kStrings[below(5)]));
  }
  void loadAny(ProgramBuilder& b, uint32_t r) {
    switch (below(6)) {
      case 0:
        loadInt(b, r);
        break;
      case 1:
        loadDouble(b, r);
        break;
      case 2:
        loadString(b, r);
        break;
      case 3:
        b.emitABC(Opcode::kLoadBool, r, below(2), 0);
        break;
      case 4:
        b.emitABC(Opcode::kNewList, r, 0, 0);
        break;
      default:
        b.emitABC(Opcode::kLoadNull, r, 0, 0);
        break;
    }
  }

  // Gives R[r] a value of its class.
  void initialize(ProgramBuilder& b, uint32_t r) {
    if (r < 3) return loadInt(b, r);
    if (r == 3) return loadDouble(b, r);
    if (r < 6) return loadString(b, r);
    if (r == 6 || r == kLoopBase) return b.emitABC(Opcode::kNewList, r, 0, 0);
    if (r == 7) return b.emitABC(Opcode::kLoadBool, r, below(2), 0);
    if (r == kLoopBase + 1) return b.emitAsBx(Opcode::kLoadInt, r, 0);
    loadAny(b, r);
  }

  // Writes a comparison result to R7, the branch condition register.
  void compare(ProgramBuilder& b) {
    static constexpr Opcode kCompare[] = {Opcode::kEq, Opcode::kNe, Opcode::kLt, Opcode::kLe};
    if (below(4) == 0) {
      b.emitABC(Opcode::kIn, 7, below(kRegisters), below(2) ? 6 : kLoopBase);
    } else if (below(3) == 0) {
      b.emitABC(kCompare[below(4)], 7, strReg(), strReg());
    } else {
      b.emitABC(kCompare[below(4)], 7, numReg(), numReg());
    }
  }

  void chaosOp(ProgramBuilder& b) {
    static constexpr Opcode kBinary[] = {
        Opcode::kAdd, Opcode::kSub, Opcode::kMul,    Opcode::kDiv,   Opcode::kMod,
        Opcode::kEq,  Opcode::kLt,  Opcode::kConcat, Opcode::kIndex, Opcode::kIn};
    uint32_t dest = below(kRegisters);
    switch (below(6)) {
      case 0:
        b.emitABC(kBinary[below(std::size(kBinary))], dest, below(12), below(12));
        break;
      case 1:
        b.emitABC(Opcode::kMove, dest, below(kRegisters), 0);
        break;
      case 2:
        b.emitABC(Opcode::kCall, below(kRegisters - 2), pick_, 2);
        break;
      case 3:
        b.emitABC(below(2) ? Opcode::kLen : Opcode::kNot, dest, below(12), 0);
        break;
      case 4:
        if (below(2) == 0) {
          b.emitABC(Opcode::kToStr, dest, below(12), 0);
        } else {
          b.emitABC(Opcode::kTryCall, below(kRegisters - 2), check_, 1);
        }
        break;
      default:
        loadAny(b, dest);
        break;
    }
  }

  void randomOp(ProgramBuilder& b) {
    static constexpr Opcode kIntOps[] = {Opcode::kAdd, Opcode::kSub, Opcode::kMul, Opcode::kDiv,
                                         Opcode::kMod};
    if (below(8) == 0) return chaosOp(b);
    switch (below(13)) {
      case 0:
      case 1:
        b.emitABC(kIntOps[below(5)], intReg(), intReg(), intReg());
        break;
      case 2:
        b.emitABC(kIntOps[below(4)], 3, numReg(), numReg());
        break;
      case 3:
        b.emitABC(Opcode::kConcat, strReg(), strReg(), strReg());
        break;
      case 4:
        b.emitABC(Opcode::kAppend, below(2) ? 6 : kLoopBase, below(kRegisters), 0);
        break;
      case 5:
        b.emitABC(Opcode::kLen, intReg(), below(2) ? strReg() : 6, 0);
        break;
      case 6:
        if (below(3) == 0) {
          b.emitABC(Opcode::kIndex, 11, 6, intReg());
        } else {
          b.emitABC(Opcode::kIn, 7, below(kRegisters), 6);
        }
        break;
      case 7:
        compare(b);
        break;
      case 8:
        b.emitABC(Opcode::kNot, 7, 7, 0);
        break;
      case 9:
        loadInt(b, intReg());
        break;
      case 10:
        b.emitABC(Opcode::kToStr, strReg(), below(2) ? intReg() : numReg(), 0);
        break;
      case 11:
        // R9 receives the result or the message, R10 is the argument, R11 the flag.
        b.emitABC(below(2) ? Opcode::kTryCall : Opcode::kCall, 9, check_, 1);
        break;
      default:
        b.emitABC(Opcode::kCall, 9, pick_, 2);
        break;
    }
  }

  void forwardBranch(ProgramBuilder& b) {
    auto skip = b.newLabel();
    compare(b);
    b.emitJump(below(2) ? Opcode::kJmpIf : Opcode::kJmpIfNot, 7, skip);
    for (uint32_t n = below(3); n > 0; --n) randomOp(b);
    b.bind(skip);
  }

  void forEach(ProgramBuilder& b) {
    auto top = b.newLabel();
    auto done = b.newLabel();
    b.emitABC(Opcode::kForPrep, kLoopBase, 0, 0);
    b.bind(top);
    b.emitJump(Opcode::kForNext, kLoopBase, done);
    for (uint32_t n = below(3) + 1; n > 0; --n) randomOp(b);
    b.emitJump(Opcode::kJmp, 0, top);
    b.bind(done);
  }

  std::mt19937_64 rng_;
  uint32_t pick_ = 0;
  uint32_t check_ = 0;
};

// ---------------------------------------------------------------------------------------

class DifferentialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host_
                    .add("pick", 2,
                         [](HostCall& call, Value& result) {
                           const Value& a = call.args()[0];
                           result = a.isBool() && a.asBool() ? call.args()[1] : a;
                           return absl::OkStatus();
                         })
                    .ok());
    ASSERT_TRUE(host_
                    .add("check", 1,
                         [](HostCall& call, Value& result) {
                           if (call.args()[0].isNull()) {
                             return absl::FailedPreconditionError(std::string(kCheckMessage));
                           }
                           result = call.args()[0];
                           return absl::OkStatus();
                         })
                    .ok());
  }
  HostRegistry host_;
};

// Each case: VM (both dispatch loops) and reference agree; suspended runs are resumed
// from saved bytes on a fresh Vm and must still agree.
TEST_F(DifferentialTest, RandomProgramsAgree) {
  constexpr int kPrograms = 5000;
  const Budget budget{.max_steps = 2000, .max_memory_bytes = 4096};
  int verified = 0, returned = 0, failed = 0, suspended = 0;
  Vm switch_vm(Dispatch::kSwitch);
  Vm goto_vm(Dispatch::kComputedGoto);
  for (int seed = 0; seed < kPrograms; ++seed) {
    Generator gen(seed);
    ProgramBuilder b = gen.generate(seed);
    auto program = testing::buildAndLoad(b, host_);
    if (!program.ok()) continue;  // the verifier rejected a statically wrong program
    ++verified;
    const Program& p = **program;
    Reference ref(p, budget.max_steps, budget.max_memory_bytes);
    RefOutcome expected = ref.run(0);
    for (Vm* vm : {&switch_vm, &goto_vm}) {
      SCOPED_TRACE(absl::StrCat("seed ", seed, vm == &switch_vm ? " switch" : " goto"));
      RunResult got = vm->run(p, host_, budget);
      ASSERT_EQ(got.status, expected.status) << got.message;
      ASSERT_EQ(got.error, expected.error) << got.message;
      ASSERT_EQ(got.pc, expected.pc);
      ASSERT_EQ(got.steps, expected.steps);
      ASSERT_EQ(got.memory_bytes, expected.memory);
      if (got.status != RunStatus::kFailed) {
        ASSERT_EQ(compareValues(got.value, expected.value), "");
      }
    }
    if (expected.status == RunStatus::kReturned) ++returned;
    if (expected.status == RunStatus::kFailed) ++failed;
    if (expected.status != RunStatus::kSuspended) continue;
    ++suspended;

    // The restored heap contains only values reachable from the registers, so its byte
    // count differs from the reference's. A memory-limit failure after resume is skipped.
    std::string saved = goto_vm.saveState();
    const Budget resume_budget{.max_steps = budget.max_steps, .max_memory_bytes = 1u << 20};
    RefOutcome ref_resumed = ref.resume(expected.pc, int64_t{42}, resume_budget.max_memory_bytes);
    Vm fresh(Dispatch::kSwitch);
    RunResult got = fresh.resume(p, host_, resume_budget, saved, Value::integer(42));
    SCOPED_TRACE(absl::StrCat("seed ", seed, " resumed"));
    if (got.error == RunError::kMemoryLimit || ref_resumed.error == RunError::kMemoryLimit) {
      continue;
    }
    ASSERT_EQ(got.status, ref_resumed.status) << got.message;
    ASSERT_EQ(got.error, ref_resumed.error) << got.message;
    ASSERT_EQ(got.pc, ref_resumed.pc);
    ASSERT_EQ(got.steps, ref_resumed.steps);
  }
  // The generator must keep producing verifiable programs of every outcome.
  EXPECT_GT(verified, kPrograms / 3);
  EXPECT_GT(returned, verified / 10);
  EXPECT_GT(failed, verified / 10);
  EXPECT_GT(suspended, verified / 50);
  std::printf("verified %d of %d: returned %d, failed %d, suspended %d\n", verified, kPrograms,
              returned, failed, suspended);
}

}  // namespace
}  // namespace vigil::playbook_vm
