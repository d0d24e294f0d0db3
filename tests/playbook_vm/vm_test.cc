// The interpreter: arithmetic, branches, loops, host calls, suspend/resume, budget and
// memory limits and runtime errors. Every test runs under both dispatch loops.
#include "playbook_vm/vm.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/disassembler.h"
#include "test_util.h"

namespace vigil::playbook_vm {
namespace {

using ::testing::HasSubstr;
using testing::mustLoad;

class VmTest : public ::testing::TestWithParam<Dispatch> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host_
                    .add("add3", 3,
                         [](HostCall& call, Value& result) {
                           int64_t sum = 0;
                           for (const Value& v : call.args()) sum += v.asInt();
                           result = Value::integer(sum);
                           return absl::OkStatus();
                         })
                    .ok());
    ASSERT_TRUE(host_
                    .add("greet", 1,
                         [](HostCall& call, Value& result) {
                           std::string text = "hello " + std::string(call.args()[0].asString());
                           std::optional<Value> v = call.newString(text);
                           if (v) result = *v;
                           return absl::OkStatus();
                         })
                    .ok());
    ASSERT_TRUE(host_
                    .add("deny", 0,
                         [](HostCall&, Value&) {
                           return absl::PermissionDeniedError("ticket system refused");
                         })
                    .ok());
    ASSERT_TRUE(host_
                    .add("count_calls", 0,
                         [](HostCall& call, Value& result) {
                           int* counter = static_cast<int*>(call.context());
                           result = Value::integer(++*counter);
                           return absl::OkStatus();
                         })
                    .ok());
  }

  RunResult run(ProgramBuilder& b, Budget budget = {}, void* context = nullptr) {
    program_ = mustLoad(b, host_);
    if (program_ == nullptr) return {};
    return vm_.run(*program_, host_, budget, context);
  }

  HostRegistry host_;
  Vm vm_{GetParam()};
  std::unique_ptr<Program> program_;
};

// (7 + 5) * 3 - 10 / 4 with int semantics, and int/double promotion.
TEST_P(VmTest, Arithmetic) {
  ProgramBuilder b("arith");
  b.emitAsBx(Opcode::kLoadInt, 0, 7);
  b.emitAsBx(Opcode::kLoadInt, 1, 5);
  b.emitABC(Opcode::kAdd, 2, 0, 1);
  b.emitAsBx(Opcode::kLoadInt, 3, 3);
  b.emitABC(Opcode::kMul, 2, 2, 3);
  b.emitAsBx(Opcode::kLoadInt, 4, 10);
  b.emitAsBx(Opcode::kLoadInt, 5, 4);
  b.emitABC(Opcode::kDiv, 6, 4, 5);
  b.emitABC(Opcode::kSub, 2, 2, 6);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  RunResult r = run(b);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_TRUE(r.value.isInt());
  EXPECT_EQ(r.value.asInt(), 34);
  EXPECT_EQ(r.steps, 10u);

  ProgramBuilder d("promote");
  d.emitAsBx(Opcode::kLoadInt, 0, 1);
  d.emitABx(Opcode::kLoadK, 1, d.addDouble(0.5));
  d.emitABC(Opcode::kAdd, 2, 0, 1);
  d.emitABC(Opcode::kReturn, 2, 0, 0);
  r = run(d);
  ASSERT_TRUE(r.value.isDouble()) << valueToString(r.value);
  EXPECT_DOUBLE_EQ(r.value.asDouble(), 1.5);
}

// int64 overflow and division by zero fail with the pc and source line.
TEST_P(VmTest, ArithmeticErrorsNameLine) {
  ProgramBuilder b("overflow");
  b.setLocation(4, 9);
  b.emitABx(Opcode::kLoadK, 0, b.addInt(INT64_MAX));
  b.emitAsBx(Opcode::kLoadInt, 1, 1);
  b.setLocation(5, 3);
  b.emitABC(Opcode::kAdd, 2, 0, 1);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  RunResult r = run(b);
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, RunError::kIntegerOverflow);
  EXPECT_EQ(r.pc, 2u);
  EXPECT_EQ(r.line, 5u);
  EXPECT_EQ(r.column, 3u);
  EXPECT_EQ(r.message,
            "playbook 'overflow' pc 2 (line 5:3) ADD: integer-overflow: int64 "
            "addition overflowed");

  ProgramBuilder z("zero");
  z.emitAsBx(Opcode::kLoadInt, 0, 1);
  z.emitAsBx(Opcode::kLoadInt, 1, 0);
  z.emitABC(Opcode::kMod, 2, 0, 1);
  z.emitABC(Opcode::kReturn, 2, 0, 0);
  EXPECT_EQ(run(z).error, RunError::kDivisionByZero);
}

// A type the verifier could not rule out (a host result) fails at run time.
TEST_P(VmTest, DynamicTypeError) {
  ProgramBuilder b("dynamic");
  uint32_t greet = b.importHost("greet", 1);
  b.emitABx(Opcode::kLoadK, 1, b.addString("x"));
  b.emitABC(Opcode::kCall, 0, greet, 1);
  b.emitABC(Opcode::kNot, 2, 0, 0);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  RunResult r = run(b);
  EXPECT_EQ(r.error, RunError::kTypeError);
  EXPECT_THAT(r.message, HasSubstr("NOT: type-error: operand B is string, expected bool"));
}

// Comparisons and branches: max(a, b) picks the larger for both orders; strings compare.
TEST_P(VmTest, BranchesPickMaximum) {
  for (auto [x, y] : {std::pair{3, 9}, std::pair{9, 3}}) {
    ProgramBuilder b("max");
    auto else_label = b.newLabel();
    b.emitAsBx(Opcode::kLoadInt, 0, x);
    b.emitAsBx(Opcode::kLoadInt, 1, y);
    b.emitABC(Opcode::kLt, 2, 0, 1);
    b.emitJump(Opcode::kJmpIfNot, 2, else_label);
    b.emitABC(Opcode::kReturn, 1, 0, 0);
    b.bind(else_label);
    b.emitABC(Opcode::kReturn, 0, 0, 0);
    RunResult r = run(b);
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.value.asInt(), 9);
  }
  ProgramBuilder s("strings");
  s.emitABx(Opcode::kLoadK, 0, s.addString("abc"));
  s.emitABx(Opcode::kLoadK, 1, s.addString("abd"));
  s.emitABC(Opcode::kLe, 2, 0, 1);
  s.emitABC(Opcode::kReturn, 2, 0, 0);
  EXPECT_TRUE(run(s).value.asBool());
}

// A counting loop sums 1..100 and the step count matches the instruction count.
TEST_P(VmTest, CountingLoop) {
  ProgramBuilder b("sum");
  auto top = b.newLabel();
  auto done = b.newLabel();
  b.emitAsBx(Opcode::kLoadInt, 0, 0);    // sum
  b.emitAsBx(Opcode::kLoadInt, 1, 1);    // i
  b.emitAsBx(Opcode::kLoadInt, 2, 100);  // limit
  b.emitAsBx(Opcode::kLoadInt, 3, 1);    // one
  b.bind(top);
  b.emitABC(Opcode::kLe, 4, 1, 2);
  b.emitJump(Opcode::kJmpIfNot, 4, done);
  b.emitABC(Opcode::kAdd, 0, 0, 1);
  b.emitABC(Opcode::kAdd, 1, 1, 3);
  b.emitJump(Opcode::kJmp, 0, top);
  b.bind(done);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  RunResult r = run(b);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.value.asInt(), 5050);
  EXPECT_EQ(r.steps, 4u + 100 * 5 + 2 + 1);
}

// FORPREP/FORNEXT visit every element in order; lists, LEN, INDEX, IN and CONCAT work.
TEST_P(VmTest, ForEachOverList) {
  ProgramBuilder b("foreach");
  auto loop = b.newLabel();
  auto done = b.newLabel();
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  for (const char* word : {"a", "b", "c"}) {
    b.emitABx(Opcode::kLoadK, 5, b.addString(word));
    b.emitABC(Opcode::kAppend, 0, 5, 0);
  }
  b.emitABx(Opcode::kLoadK, 4, b.addString(""));
  b.emitABC(Opcode::kForPrep, 0, 0, 0);
  b.bind(loop);
  b.emitJump(Opcode::kForNext, 0, done);
  b.emitABC(Opcode::kConcat, 4, 4, 2);
  b.emitJump(Opcode::kJmp, 0, loop);
  b.bind(done);
  b.emitABC(Opcode::kNewList, 6, 0, 0);
  b.emitABC(Opcode::kAppend, 6, 4, 0);
  b.emitABC(Opcode::kLen, 7, 0, 0);
  b.emitABC(Opcode::kAppend, 6, 7, 0);
  b.emitAsBx(Opcode::kLoadInt, 8, 1);
  b.emitABC(Opcode::kIndex, 9, 0, 8);
  b.emitABC(Opcode::kAppend, 6, 9, 0);
  b.emitABC(Opcode::kIn, 10, 9, 0);
  b.emitABC(Opcode::kAppend, 6, 10, 0);
  b.emitABC(Opcode::kReturn, 6, 0, 0);
  RunResult r = run(b);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(valueToString(r.value), "[\"abc\", 3, \"b\", true]");
}

// INDEX outside the list fails with kIndexOutOfRange.
TEST_P(VmTest, IndexOutOfRange) {
  ProgramBuilder b("index");
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitAsBx(Opcode::kLoadInt, 1, -1);
  b.emitABC(Opcode::kIndex, 2, 0, 1);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  EXPECT_EQ(run(b).error, RunError::kIndexOutOfRange);
}

// Host calls get consecutive argument registers, the context pointer and the run heap.
TEST_P(VmTest, HostCalls) {
  ProgramBuilder b("host");
  uint32_t add3 = b.importHost("add3", 3);
  uint32_t greet = b.importHost("greet", 1);
  uint32_t count = b.importHost("count_calls", 0);
  b.emitAsBx(Opcode::kLoadInt, 1, 1);
  b.emitAsBx(Opcode::kLoadInt, 2, 20);
  b.emitAsBx(Opcode::kLoadInt, 3, 300);
  b.emitABC(Opcode::kCall, 0, add3, 3);
  b.emitABx(Opcode::kLoadK, 5, b.addString("world"));
  b.emitABC(Opcode::kCall, 4, greet, 1);
  b.emitABC(Opcode::kCall, 6, count, 0);
  b.emitABC(Opcode::kCall, 6, count, 0);
  b.emitABC(Opcode::kNewList, 7, 0, 0);
  b.emitABC(Opcode::kAppend, 7, 0, 0);
  b.emitABC(Opcode::kAppend, 7, 4, 0);
  b.emitABC(Opcode::kAppend, 7, 6, 0);
  b.emitABC(Opcode::kReturn, 7, 0, 0);
  int counter = 0;
  RunResult r = run(b, {}, &counter);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(valueToString(r.value), "[321, \"hello world\", 2]");
  EXPECT_EQ(counter, 2);
}

// A host function's error fails the run with its message.
TEST_P(VmTest, HostErrorFailsRun) {
  ProgramBuilder b("deny");
  uint32_t deny = b.importHost("deny", 0);
  b.setLocation(2, 1);
  b.emitABC(Opcode::kCall, 0, deny, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  RunResult r = run(b);
  EXPECT_EQ(r.error, RunError::kHostError);
  EXPECT_THAT(r.message, HasSubstr("(line 2:1) CALL: host-error: host function deny failed: "
                                   "PERMISSION_DENIED: ticket system refused"));
}

// TRYCALL turns a host error into its message and a false flag, and the run goes on.
TEST_P(VmTest, TryCallCatchesHostError) {
  ProgramBuilder b("try-deny");
  uint32_t deny = b.importHost("deny", 0);
  uint32_t add3 = b.importHost("add3", 3);
  b.emitABC(Opcode::kTryCall, 0, deny, 0);  // R0 = message, R1 = false
  b.emitAsBx(Opcode::kLoadInt, 3, 1);
  b.emitAsBx(Opcode::kLoadInt, 4, 2);
  b.emitAsBx(Opcode::kLoadInt, 5, 3);
  b.emitABC(Opcode::kTryCall, 2, add3, 3);  // R2 = 6, R6 = true
  b.emitABC(Opcode::kNewList, 7, 0, 0);
  b.emitABC(Opcode::kAppend, 7, 0, 0);
  b.emitABC(Opcode::kAppend, 7, 1, 0);
  b.emitABC(Opcode::kAppend, 7, 2, 0);
  b.emitABC(Opcode::kAppend, 7, 6, 0);
  b.emitABC(Opcode::kReturn, 7, 0, 0);
  RunResult r = run(b);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(valueToString(r.value), "[\"ticket system refused\", false, 6, true]");
}

// TRYCALL needs a register for its flag after the arguments.
TEST_P(VmTest, TryCallFlagRegisterChecked) {
  ProgramBuilder b("try-range");
  uint32_t deny = b.importHost("deny", 0);
  b.setRegisterCount(1);
  b.emitABC(Opcode::kTryCall, 0, deny, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  auto bytes = b.finish();
  ASSERT_TRUE(bytes.ok());
  auto program = loadProgram(*bytes, host_);
  ASSERT_FALSE(program.ok());
  EXPECT_THAT(std::string(program.status().message()),
              HasSubstr("call registers R[0]..R[1] exceed the register count 1"));
}

// TOSTR renders scalars; strings pass through and lists fail.
TEST_P(VmTest, ToStrRendersScalars) {
  ProgramBuilder b("tostr");
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitABC(Opcode::kLoadNull, 1, 0, 0);
  b.emitABC(Opcode::kLoadBool, 2, 1, 0);
  b.emitAsBx(Opcode::kLoadInt, 3, -42);
  b.emitABx(Opcode::kLoadK, 4, b.addDouble(1.5));
  b.emitABx(Opcode::kLoadK, 5, b.addString("text"));
  for (uint32_t reg = 1; reg <= 5; ++reg) {
    b.emitABC(Opcode::kToStr, 6, reg, 0);
    b.emitABC(Opcode::kAppend, 0, 6, 0);
  }
  // The verifier cannot type R7 (an element of R0), so the VM finds the list.
  b.emitABC(Opcode::kAppend, 0, 0, 0);
  b.emitAsBx(Opcode::kLoadInt, 8, 5);
  b.emitABC(Opcode::kIndex, 7, 0, 8);
  b.setLocation(9, 3);
  b.emitABC(Opcode::kToStr, 6, 7, 0);
  b.emitABC(Opcode::kReturn, 6, 0, 0);
  RunResult r = run(b);
  ASSERT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, RunError::kTypeError);
  EXPECT_THAT(r.message, HasSubstr("(line 9:3) TOSTR: type-error: operand B is list"));

  ProgramBuilder ok("tostr-ok");
  ok.emitABC(Opcode::kNewList, 0, 0, 0);
  ok.emitAsBx(Opcode::kLoadInt, 3, -42);
  ok.emitABx(Opcode::kLoadK, 4, ok.addDouble(1.5));
  ok.emitABC(Opcode::kLoadBool, 2, 1, 0);
  ok.emitABC(Opcode::kLoadNull, 1, 0, 0);
  for (uint32_t reg = 1; reg <= 4; ++reg) {
    ok.emitABC(Opcode::kToStr, 6, reg, 0);
    ok.emitABC(Opcode::kAppend, 0, 6, 0);
  }
  ok.emitABC(Opcode::kReturn, 0, 0, 0);
  r = run(ok);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(valueToString(r.value), "[\"null\", \"true\", \"-42\", \"1.5\"]");
}

// Running against another registry than the one used at load is rejected.
TEST_P(VmTest, RegistryMismatch) {
  ProgramBuilder b("mismatch");
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  program_ = mustLoad(b, host_);
  HostRegistry other;
  RunResult r = vm_.run(*program_, other, {});
  EXPECT_EQ(r.error, RunError::kHostMismatch);
}

// An endless loop stops with kBudgetExhausted at the jump, as an ordinary result.
TEST_P(VmTest, BudgetExhausted) {
  ProgramBuilder b("spin");
  b.setLocation(7, 2);
  b.emitAsBx(Opcode::kLoadInt, 0, 1);
  b.emitABx(Opcode::kJmp, 0, 1);
  RunResult r = run(b, Budget{.max_steps = 1000, .max_memory_bytes = 1024});
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, RunError::kBudgetExhausted);
  EXPECT_EQ(r.pc, 1u);
  EXPECT_EQ(r.steps, 1001u);
  EXPECT_EQ(r.message,
            "playbook 'spin' pc 1 (line 7:2) JMP: budget-exhausted: step budget "
            "exhausted");
}

// Appending in a loop stops with kMemoryLimit; the charged bytes never pass the limit.
TEST_P(VmTest, MemoryLimit) {
  ProgramBuilder b("grow");
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitAsBx(Opcode::kLoadInt, 1, 1);
  b.emitABC(Opcode::kAppend, 0, 1, 0);
  b.emitABx(Opcode::kJmp, 0, 2);
  RunResult r = run(b, Budget{.max_steps = 1'000'000, .max_memory_bytes = 4096});
  EXPECT_EQ(r.error, RunError::kMemoryLimit);
  EXPECT_EQ(r.pc, 2u);
  EXPECT_LE(r.memory_bytes, 4096u);
  // 16 (list) + 64 + 128 + ... + 2048 bytes of slots fit; the 4096-byte step does not.
  EXPECT_EQ(r.memory_bytes, 16u + 64 + 128 + 256 + 512 + 1024 + 2048);

  ProgramBuilder s("concat");
  s.emitABx(Opcode::kLoadK, 0, s.addString("0123456789abcdef"));
  s.emitABC(Opcode::kConcat, 0, 0, 0);
  s.emitABx(Opcode::kJmp, 0, 1);
  r = run(s, Budget{.max_steps = 1'000'000, .max_memory_bytes = 1000});
  EXPECT_EQ(r.error, RunError::kMemoryLimit);
  EXPECT_THAT(r.message, HasSubstr("CONCAT: memory-limit"));
}

// A host allocation past the memory limit fails the run with kMemoryLimit.
TEST_P(VmTest, HostAllocationPastLimit) {
  ProgramBuilder b("host-memory");
  uint32_t greet = b.importHost("greet", 1);
  b.emitABx(Opcode::kLoadK, 1, b.addString(std::string(100, 'x')));
  b.emitABC(Opcode::kCall, 0, greet, 1);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  RunResult r = run(b, Budget{.max_steps = 100, .max_memory_bytes = 64});
  EXPECT_EQ(r.error, RunError::kMemoryLimit);
  EXPECT_THAT(r.message, HasSubstr("host function greet reached the run heap memory limit"));
}

// Builds: list = [1]; alias = list; x = yield "approve?"; append x to alias; return list.
ProgramBuilder approvalProgram() {
  ProgramBuilder b("approval");
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitAsBx(Opcode::kLoadInt, 1, 1);
  b.emitABC(Opcode::kAppend, 0, 1, 0);
  b.emitABC(Opcode::kMove, 2, 0, 0);
  b.emitABx(Opcode::kLoadK, 3, b.addString("approve?"));
  b.setLocation(9, 1);
  b.emitABC(Opcode::kYield, 4, 3, 0);
  b.emitABC(Opcode::kAppend, 2, 4, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  return b;
}

// YIELD suspends with its operand; resume() from the saved bytes continues after it, on
// another Vm, keeping list sharing and the step count.
TEST_P(VmTest, SuspendAndResume) {
  ProgramBuilder b = approvalProgram();
  RunResult r = run(b);
  ASSERT_EQ(r.status, RunStatus::kSuspended) << r.message;
  EXPECT_EQ(valueToString(r.value), "\"approve?\"");
  EXPECT_EQ(r.pc, 5u);
  EXPECT_EQ(r.line, 9u);
  std::string saved = vm_.saveState();
  ASSERT_FALSE(saved.empty());

  Vm other(GetParam());
  RunResult resumed = other.resume(*program_, host_, {}, saved, Value::string("yes"));
  ASSERT_EQ(resumed.status, RunStatus::kReturned) << resumed.message;
  EXPECT_EQ(valueToString(resumed.value), "[1, \"yes\"]");
  EXPECT_EQ(resumed.steps, 8u);
  EXPECT_TRUE(other.saveState().empty());
}

// Corrupt or foreign saved state fails with kInvalidState, never a crash.
TEST_P(VmTest, ResumeRejectsBadState) {
  ProgramBuilder b = approvalProgram();
  ASSERT_EQ(run(b).status, RunStatus::kSuspended);
  std::string saved = vm_.saveState();
  for (size_t cut = 0; cut < saved.size(); ++cut) {
    RunResult r = vm_.resume(*program_, host_, {}, saved.substr(0, cut), Value::null());
    ASSERT_EQ(r.error, RunError::kInvalidState) << "cut at " << cut;
  }
  std::string flipped = saved;
  flipped[10] ^= 0x55;  // inside the program's SHA-256
  RunResult r = vm_.resume(*program_, host_, {}, flipped, Value::null());
  EXPECT_EQ(r.error, RunError::kInvalidState);
  EXPECT_THAT(r.message, HasSubstr("state belongs to program"));
}

// Builds: R0 = a 16 KiB text; R1 to R4 = R0; R5 = [R0, R1]; yield R2 into R6; return R5.
ProgramBuilder sharedTextProgram(const std::string& name) {
  ProgramBuilder b(name);
  b.emitABx(Opcode::kLoadK, 0, b.addString("0123456789abcdef"));
  for (int i = 0; i < 10; ++i) b.emitABC(Opcode::kConcat, 0, 0, 0);  // 16 KiB
  for (uint8_t r = 1; r <= 4; ++r) b.emitABC(Opcode::kMove, r, 0, 0);
  b.emitABC(Opcode::kNewList, 5, 0, 0);
  b.emitABC(Opcode::kAppend, 5, 0, 0);
  b.emitABC(Opcode::kAppend, 5, 1, 0);
  b.emitABC(Opcode::kYield, 6, 2, 0);
  b.emitABC(Opcode::kReturn, 5, 0, 0);
  return b;
}

// A text that several registers and a list share is saved once and restored once, so a
// run that fit in its memory limit before the suspend fits after the resume.
TEST_P(VmTest, SharedStringRestoredOnce) {
  ProgramBuilder b = sharedTextProgram("shared-text");
  const Budget budget{.max_steps = 1000, .max_memory_bytes = 48 * 1024};
  RunResult r = run(b, budget);
  ASSERT_EQ(r.status, RunStatus::kSuspended) << r.message;
  std::string saved = vm_.saveState();
  EXPECT_LT(saved.size(), 17u * 1024);

  Vm other(GetParam());
  RunResult resumed = other.resume(*program_, host_, budget, saved, Value::null());
  ASSERT_EQ(resumed.status, RunStatus::kReturned) << resumed.message;
  ASSERT_TRUE(resumed.value.isList());
  const List& list = *resumed.value.asList();
  ASSERT_EQ(list.size, 2u);
  std::string expected;
  for (int i = 0; i < 1024; ++i) expected += "0123456789abcdef";
  EXPECT_EQ(list.items[0].asString(), expected);
  EXPECT_EQ(list.items[1].asString().data(), list.items[0].asString().data());
}

// Version 1 wrote a shared text once per reference. Equal long texts are restored once, so
// such a run resumes in the memory limit it ran in.
TEST_P(VmTest, VersionOneSharedTextFitsLimit) {
  ProgramBuilder b = sharedTextProgram("shared-text-v1");
  const Budget budget{.max_steps = 1000, .max_memory_bytes = 48 * 1024};
  ASSERT_EQ(run(b, budget).status, RunStatus::kSuspended);
  const std::string saved = vm_.saveState();
  const size_t header = 4 + 4 + 32 + 2 + program_->name().size() + 4 + 1 + 8 + 2;
  std::string v1 = saved.substr(0, header);
  v1[4] = 1;
  std::string text;
  for (int i = 0; i < 1024; ++i) text += "0123456789abcdef";
  auto put32 = [&v1](uint32_t x) { v1.append(reinterpret_cast<const char*>(&x), 4); };
  auto putText = [&] {
    v1.push_back(static_cast<char>(ValueType::kString));
    put32(static_cast<uint32_t>(text.size()));
    v1 += text;
  };
  put32(1);  // one list: [text, text]
  put32(2);
  putText();
  putText();
  for (int r = 0; r <= 4; ++r) putText();  // R0 to R4
  v1.push_back(static_cast<char>(ValueType::kList));  // R5
  put32(0);
  v1.push_back(static_cast<char>(ValueType::kNull));  // R6
  ASSERT_EQ(program_->registerCount(), 7u);

  Vm other(GetParam());
  RunResult resumed = other.resume(*program_, host_, budget, v1, Value::null());
  ASSERT_EQ(resumed.status, RunStatus::kReturned) << resumed.message;
  ASSERT_TRUE(resumed.value.isList());
  EXPECT_EQ(resumed.value.asList()->items[1].asString(), text);
}

// State saved in version 1 (each string written in place) still resumes.
TEST_P(VmTest, ResumesVersionOneState) {
  ProgramBuilder b = approvalProgram();
  ASSERT_EQ(run(b).status, RunStatus::kSuspended);
  const std::string saved = vm_.saveState();
  // The header is the same in both versions up to the register count.
  const size_t header = 4 + 4 + 32 + 2 + program_->name().size() + 4 + 1 + 8 + 2;
  ASSERT_GT(saved.size(), header);
  std::string v1 = saved.substr(0, header);
  v1[4] = 1;
  auto put32 = [&v1](uint32_t x) { v1.append(reinterpret_cast<const char*>(&x), 4); };
  auto tag = [&v1](ValueType t) { v1.push_back(static_cast<char>(t)); };
  put32(1);  // one list: [1]
  put32(1);
  tag(ValueType::kInt);
  const int64_t int_value = 1;
  v1.append(reinterpret_cast<const char*>(&int_value), 8);
  tag(ValueType::kList);  // R0
  put32(0);
  tag(ValueType::kInt);  // R1
  v1.append(reinterpret_cast<const char*>(&int_value), 8);
  tag(ValueType::kList);  // R2, the same list
  put32(0);
  tag(ValueType::kString);  // R3
  put32(8);
  v1 += "approve?";
  tag(ValueType::kNull);  // R4
  ASSERT_EQ(program_->registerCount(), 5u);

  Vm other(GetParam());
  RunResult resumed = other.resume(*program_, host_, {}, v1, Value::string("yes"));
  ASSERT_EQ(resumed.status, RunStatus::kReturned) << resumed.message;
  EXPECT_EQ(valueToString(resumed.value), "[1, \"yes\"]");
}

// The disassembler shows pc, mnemonic, operands, inlined constants, imports and lines.
TEST_P(VmTest, Disassembly) {
  ProgramBuilder b("listing");
  uint32_t greet = b.importHost("greet", 1);
  b.setLocation(3, 5);
  b.emitABx(Opcode::kLoadK, 1, b.addString("high"));
  b.emitABC(Opcode::kCall, 0, greet, 1);
  b.setLocation(4, 1);
  b.emitABx(Opcode::kJmp, 0, 3);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  program_ = mustLoad(b, host_);
  std::string text = disassemble(*program_);
  EXPECT_THAT(text, HasSubstr("; playbook 'listing' registers 2 constants 1 host imports 1\n"));
  EXPECT_THAT(text, HasSubstr("     0  LOADK     R1, K0 \"high\""));
  EXPECT_THAT(text, HasSubstr("; line 3:5\n"));
  EXPECT_THAT(text, HasSubstr("     1  CALL      R0, H0 greet/1, 1"));
  EXPECT_THAT(text, HasSubstr("     2  JMP       -> 3"));
  EXPECT_THAT(text, HasSubstr("; line 4:1\n"));
  EXPECT_EQ(disassembleInstruction(0xff), "<invalid opcode 255> 0x000000ff");
}

INSTANTIATE_TEST_SUITE_P(Dispatch, VmTest,
                         ::testing::Values(Dispatch::kSwitch, Dispatch::kComputedGoto),
                         [](const auto& test_info) {
                           return test_info.param == Dispatch::kSwitch ? "Switch" : "ComputedGoto";
                         });

}  // namespace
}  // namespace vigil::playbook_vm
