// Module loading and the bytecode verifier: one valid program, then one rejected program
// per rule, each checked for the rule name, pc and mnemonic in the message.
#include "playbook_vm/verifier.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/program.h"
#include "test_util.h"

namespace vigil::playbook_vm {
namespace {

using testing::buildAndLoad;
using ::testing::HasSubstr;
using testing::loadError;

class VerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host_.add("notify", 2, [](HostCall&, Value&) { return absl::OkStatus(); }).ok());
  }
  HostRegistry host_;
};

// A program that uses every operand kind and a loop verifies and loads.
TEST_F(VerifierTest, AcceptsValidProgram) {
  ProgramBuilder b("valid");
  uint32_t notify = b.importHost("notify", 2);
  uint32_t text = b.addString("x");
  auto loop = b.newLabel();
  auto done = b.newLabel();
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitABx(Opcode::kLoadK, 3, text);
  b.emitABC(Opcode::kAppend, 0, 3, 0);
  b.emitABC(Opcode::kForPrep, 0, 0, 0);
  b.bind(loop);
  b.emitJump(Opcode::kForNext, 0, done);
  b.emitABC(Opcode::kMove, 4, 2, 0);
  b.emitABC(Opcode::kMove, 5, 2, 0);
  b.emitABC(Opcode::kCall, 3, notify, 2);
  b.emitJump(Opcode::kJmp, 0, loop);
  b.bind(done);
  b.emitABC(Opcode::kLoadBool, 6, 1, 0);
  b.emitABC(Opcode::kReturn, 6, 0, 0);
  EXPECT_EQ(loadError(b, host_), "");
}

// Bytes without the VGPB file identifier are rejected before FlatBuffers parsing.
TEST_F(VerifierTest, RejectsBadMagic) {
  ProgramBuilder b("magic");
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  std::vector<uint8_t> bytes = *b.finish();
  bytes[4] = 'X';
  auto program = loadProgram(bytes, host_);
  ASSERT_FALSE(program.ok());
  EXPECT_EQ(program.status().message(),
            "not a playbook module: wrong magic: bytes 4..7 are 58 47 50 42 (hex), expected "
            "\"VGPB\"; the file is not a compiled module or is corrupt");
}

// Empty and short inputs are named as such, before the magic is read.
TEST_F(VerifierTest, RejectsEmptyAndShortModule) {
  auto empty = loadProgram(std::vector<uint8_t>{}, host_);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("not a playbook module: the file is empty"));
  auto short_module = loadProgram(std::vector<uint8_t>{0x20, 0, 0}, host_);
  ASSERT_FALSE(short_module.ok());
  EXPECT_THAT(short_module.status().message(),
              HasSubstr("not a playbook module: truncated to 3 bytes, shorter than the 8-byte "
                        "header"));
}

// A truncated module fails the FlatBuffers verifier.
TEST_F(VerifierTest, RejectsTruncatedModule) {
  ProgramBuilder b("short");
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  std::vector<uint8_t> bytes = *b.finish();
  bytes.resize(bytes.size() / 2);
  auto program = loadProgram(bytes, host_);
  ASSERT_FALSE(program.ok());
  EXPECT_THAT(program.status().message(), HasSubstr("FlatBuffers verification failed"));
}

// A module of another format version is rejected with both versions named.
TEST_F(VerifierTest, RejectsOtherFormatVersion) {
  ProgramBuilder b("version");
  b.setFormatVersionForTest(7);
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  std::string error = loadError(b, host_);
  EXPECT_THAT(error, HasSubstr("format version 7 is not supported"));
  EXPECT_THAT(error, HasSubstr("reads versions 1 to 2"));
}

// Flipping any single bit of a module makes loading fail, and a flip inside a string
// constant, which every later check would accept, fails the checksum.
TEST_F(VerifierTest, RejectsEveryCorruptedByte) {
  ProgramBuilder b("corrupt");
  b.emitABx(Opcode::kLoadK, 0, b.addString("approved"));
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  const std::vector<uint8_t> good = *b.finish();
  ASSERT_TRUE(loadProgram(good, host_).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      std::vector<uint8_t> bytes = good;
      bytes[i] ^= bit;
      EXPECT_FALSE(loadProgram(bytes, host_).ok()) << "byte " << i << " bit " << int{bit};
    }
  }
  std::string text(good.begin(), good.end());
  size_t at = text.find("approved");
  ASSERT_NE(at, std::string::npos);
  std::vector<uint8_t> bytes = good;
  bytes[at + 1] = 0x8f;
  auto program = loadProgram(bytes, host_);
  ASSERT_FALSE(program.ok());
  EXPECT_THAT(std::string(program.status().message()),
              ::testing::MatchesRegex("playbook module: checksum mismatch: the header holds "
                                      "CRC32C 0x[0-9a-f]{8} but the module bytes give "
                                      "0x[0-9a-f]{8}; the module is corrupt, so compile the "
                                      "playbook again"));

  // sealModule() makes the changed bytes load, as fuzzers need.
  ASSERT_TRUE(sealModule(bytes));
  ASSERT_TRUE(loadProgram(bytes, host_).ok());
  std::vector<uint8_t> not_a_module = {1, 2, 3};
  EXPECT_FALSE(sealModule(not_a_module));
}

// A format version 1 module, written before the checksum existed, still loads.
TEST_F(VerifierTest, LoadsVersionOneWithoutChecksum) {
  ProgramBuilder b("old");
  b.setFormatVersionForTest(1);
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  std::vector<uint8_t> bytes = *b.finish();
  EXPECT_FALSE(sealModule(bytes));
  EXPECT_EQ(loadError(b, host_), "");
}

// An import the host does not register is NotFound.
TEST_F(VerifierTest, RejectsUnregisteredHostFunction) {
  ProgramBuilder b("unknown");
  b.importHost("page_oncall", 0);
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  auto program = buildAndLoad(b, host_);
  ASSERT_FALSE(program.ok());
  EXPECT_EQ(program.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(program.status().message(), HasSubstr("page_oncall is not registered"));
}

// An import whose arity differs from the registered one is rejected at load.
TEST_F(VerifierTest, RejectsImportArityMismatch) {
  ProgramBuilder b("arity");
  b.importHost("notify", 1);
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(b, host_),
              HasSubstr("notify is imported with arity 1 but registered with arity 2"));
}

// Rule limits: zero registers and empty code are rejected.
TEST_F(VerifierTest, RejectsLimits) {
  ProgramBuilder empty("empty");
  empty.setRegisterCount(1);
  EXPECT_THAT(loadError(empty, host_), HasSubstr("rule limits: code size is 0"));

  ProgramBuilder no_registers("no-registers");
  no_registers.emitRaw(encodeABx(Opcode::kJmp, 0, 0));
  EXPECT_THAT(loadError(no_registers, host_), HasSubstr("rule limits: register count is 0"));

  ProgramBuilder too_long("too-long");
  too_long.setRegisterCount(1);
  for (uint32_t i = 0; i <= kMaxCodeSize; ++i) too_long.emitRaw(encodeABx(Opcode::kJmp, 0, 0));
  EXPECT_THAT(loadError(too_long, host_), HasSubstr("rule limits: code size is 16385"));
}

// Rule opcode-valid: an opcode byte past the table.
TEST_F(VerifierTest, RejectsInvalidOpcode) {
  ProgramBuilder b("opcode");
  b.setRegisterCount(1);
  b.emitRaw(0x000000ffu);
  EXPECT_THAT(loadError(b, host_), HasSubstr("pc 0 opcode 255: rule opcode-valid"));
}

// Rule operand-range: a register, a constant and a host import out of range.
TEST_F(VerifierTest, RejectsOperandOutOfRange) {
  ProgramBuilder reg("reg");
  reg.setRegisterCount(2);
  reg.emitABC(Opcode::kLoadNull, 2, 0, 0);
  reg.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(
      loadError(reg, host_),
      HasSubstr("pc 0 LOADNULL: rule operand-range: operand A = 2 is not a valid register"));

  ProgramBuilder constant("constant");
  constant.addInt(1);
  constant.emitABx(Opcode::kLoadK, 0, 1);
  constant.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(constant, host_),
              HasSubstr("pc 0 LOADK: rule operand-range: operand Bx = 1 is not a valid "
                        "constant index"));

  ProgramBuilder import("import");
  import.setRegisterCount(4);
  import.emitABC(Opcode::kCall, 0, 0, 2);
  import.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(import, host_), HasSubstr("pc 0 CALL: rule operand-range: operand B"));

  ProgramBuilder loop("loop");
  loop.setRegisterCount(2);
  loop.emitABC(Opcode::kNewList, 0, 0, 0);
  loop.emitABC(Opcode::kForPrep, 0, 0, 0);
  loop.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(loop, host_),
              HasSubstr("pc 1 FORPREP: rule operand-range: loop registers"));
}

// Rule unused-field: a non-zero field the opcode does not use.
TEST_F(VerifierTest, RejectsNonZeroUnusedField) {
  ProgramBuilder b("unused");
  b.setRegisterCount(1);
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kReturn, 0, 3, 0);
  EXPECT_THAT(loadError(b, host_), HasSubstr("pc 1 RET: rule unused-field: unused field B is 3"));
}

// Rule jump-target: a jump past the end of the code.
TEST_F(VerifierTest, RejectsJumpOutsideCode) {
  ProgramBuilder b("jump");
  b.setRegisterCount(1);
  b.emitABx(Opcode::kJmp, 0, 9);
  EXPECT_THAT(loadError(b, host_),
              HasSubstr("pc 0 JMP: rule jump-target: jump target 9 is outside the code (size 1)"));
}

// Rule falls-off-end: a path that runs past the last instruction.
TEST_F(VerifierTest, RejectsFallingOffTheEnd) {
  ProgramBuilder b("end");
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  EXPECT_THAT(loadError(b, host_), HasSubstr("pc 0 LOADNULL: rule falls-off-end"));
}

// Rule register-defined: a register written on one branch only and read after the join.
TEST_F(VerifierTest, RejectsReadBeforeWriteOnSomePath) {
  ProgramBuilder b("undefined");
  auto skip = b.newLabel();
  b.emitABC(Opcode::kLoadBool, 0, 1, 0);
  b.emitJump(Opcode::kJmpIf, 0, skip);
  b.emitAsBx(Opcode::kLoadInt, 1, 5);
  b.bind(skip);
  b.emitABC(Opcode::kReturn, 1, 0, 0);
  EXPECT_THAT(loadError(b, host_),
              HasSubstr("pc 3 RET: rule register-defined: operand A reads R[1] before it is "
                        "written on some path"));
}

// Rule register-defined also covers the for-each element, which the exit edge lacks.
TEST_F(VerifierTest, RejectsLoopElementAfterExit) {
  ProgramBuilder b("element");
  auto done = b.newLabel();
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitABC(Opcode::kForPrep, 0, 0, 0);
  b.emitJump(Opcode::kForNext, 0, done);
  b.emitABx(Opcode::kJmp, 0, 2);
  b.bind(done);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  EXPECT_THAT(loadError(b, host_), HasSubstr("pc 4 RET: rule register-defined"));
}

// Rule type-consistent: a conditional jump on an int and arithmetic on a string.
TEST_F(VerifierTest, RejectsStaticTypeErrors) {
  ProgramBuilder jump("jump-int");
  jump.emitAsBx(Opcode::kLoadInt, 0, 1);
  jump.emitABx(Opcode::kJmpIf, 0, 0);
  jump.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(jump, host_),
              HasSubstr("pc 1 JMPIF: rule type-consistent: operand A is R[0] holding int, but "
                        "JMPIF accepts bool"));

  ProgramBuilder add("add-string");
  add.emitABx(Opcode::kLoadK, 0, add.addString("a"));
  add.emitAsBx(Opcode::kLoadInt, 1, 1);
  add.emitABC(Opcode::kAdd, 2, 1, 0);
  add.emitABC(Opcode::kReturn, 2, 0, 0);
  EXPECT_THAT(loadError(add, host_),
              HasSubstr("pc 2 ADD: rule type-consistent: operand C is R[0] holding string, but "
                        "ADD accepts int|double"));

  ProgramBuilder compare("compare-mixed");
  compare.emitABx(Opcode::kLoadK, 0, compare.addString("a"));
  compare.emitAsBx(Opcode::kLoadInt, 1, 1);
  compare.emitABC(Opcode::kLt, 2, 1, 0);
  compare.emitABC(Opcode::kReturn, 2, 0, 0);
  EXPECT_THAT(loadError(compare, host_),
              HasSubstr("pc 2 LT: rule type-consistent: compares int with string"));
}

// Rule type-consistent uses types through MOVE and joins: int|double still adds.
TEST_F(VerifierTest, AcceptsJoinedNumericTypes) {
  ProgramBuilder b("joined");
  auto other = b.newLabel();
  auto join = b.newLabel();
  b.emitABC(Opcode::kLoadBool, 0, 0, 0);
  b.emitJump(Opcode::kJmpIf, 0, other);
  b.emitAsBx(Opcode::kLoadInt, 1, 2);
  b.emitJump(Opcode::kJmp, 0, join);
  b.bind(other);
  b.emitABx(Opcode::kLoadK, 1, b.addDouble(0.5));
  b.bind(join);
  b.emitABC(Opcode::kMove, 2, 1, 0);
  b.emitABC(Opcode::kAdd, 3, 2, 1);
  b.emitABC(Opcode::kReturn, 3, 0, 0);
  EXPECT_EQ(loadError(b, host_), "");
}

// Regression: the type rule runs on the joined state. Here the worklist reaches the IN
// first through the path where R0 is null, before the path that makes it a list.
TEST_F(VerifierTest, ChecksTypesAfterAllPathsJoin) {
  ProgramBuilder b("late-join");
  auto make_list = b.newLabel();
  auto join = b.newLabel();
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABC(Opcode::kLoadBool, 1, 1, 0);
  b.emitJump(Opcode::kJmpIf, 1, make_list);
  b.bind(join);
  b.emitABC(Opcode::kIn, 2, 1, 0);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  b.bind(make_list);
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitJump(Opcode::kJmp, 0, join);
  EXPECT_EQ(loadError(b, host_), "");
}

// Rule host-arity: CALL's argument count must equal the import's arity.
TEST_F(VerifierTest, RejectsCallWithWrongArgumentCount) {
  ProgramBuilder b("argc");
  uint32_t notify = b.importHost("notify", 2);
  b.setRegisterCount(4);
  b.emitAsBx(Opcode::kLoadInt, 1, 1);
  b.emitABC(Opcode::kCall, 0, notify, 1);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(b, host_),
              HasSubstr("pc 1 CALL: rule host-arity: passes 1 arguments to host import 0, "
                        "which declares arity 2"));
}

// Rule register-defined checks every CALL argument register.
TEST_F(VerifierTest, RejectsUndefinedCallArgument) {
  ProgramBuilder b("call-arg");
  uint32_t notify = b.importHost("notify", 2);
  b.emitAsBx(Opcode::kLoadInt, 1, 1);
  b.emitABC(Opcode::kCall, 0, notify, 2);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  EXPECT_THAT(loadError(b, host_),
              HasSubstr("pc 1 CALL: rule register-defined: operand argument 2 reads R[2]"));
}

// verifyBytecode works on bare code too, and every rule has a distinct name.
TEST_F(VerifierTest, RuleNamesAreDistinct) {
  std::vector<std::string> names;
  for (int r = 0; r <= static_cast<int>(VerifyRule::kHostArity); ++r) {
    names.emplace_back(verifyRuleName(static_cast<VerifyRule>(r)));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
  uint32_t code[] = {encodeABC(Opcode::kLoadNull, 0, 0, 0), encodeABC(Opcode::kReturn, 0, 0, 0)};
  EXPECT_TRUE(verifyBytecode({code, {}, {}, 1}).ok());
}

}  // namespace
}  // namespace vigil::playbook_vm
