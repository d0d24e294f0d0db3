// Seed corpora of the two playbook fuzz targets. The seeds are built here from readable
// programs and checked in under tests/fuzz/; this test fails when a checked-in seed
// differs from what the programs below produce. Run it with VIGIL_WRITE_FUZZ_SEEDS=1
// to rewrite the files after changing a program or the module format.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/playbook_fuzz_host.h"
#include "gtest/gtest.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/program.h"

namespace vigil::playbook_vm {
namespace {

struct Seed {
  std::string name;
  std::vector<uint8_t> bytes;
};

// r0 = 6 * 7; return r0
ProgramBuilder arithmetic() {
  ProgramBuilder b("arith");
  b.setLocation(1, 1);
  b.emitAsBx(Opcode::kLoadInt, 1, 6);
  b.emitAsBx(Opcode::kLoadInt, 2, 7);
  b.emitABC(Opcode::kMul, 0, 1, 2);
  b.emitABC(Opcode::kReturn, 0, 0, 0);
  return b;
}

// for x in ["a", "b"]: r3 = label(x, x); then return wrap(list, r3, last element)
ProgramBuilder loopWithHostCalls() {
  ProgramBuilder b("loop");
  uint32_t label = b.importHost("label", 2);
  uint32_t wrap = b.importHost("wrap", 3);
  auto top = b.newLabel();
  auto done = b.newLabel();
  b.emitABC(Opcode::kLoadNull, 3, 0, 0);  // the loop body may never run
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitABx(Opcode::kLoadK, 5, b.addString("a"));
  b.emitABC(Opcode::kAppend, 0, 5, 0);
  b.emitABx(Opcode::kLoadK, 5, b.addString("b"));
  b.emitABC(Opcode::kAppend, 0, 5, 0);
  b.emitABC(Opcode::kForPrep, 0, 0, 0);
  b.bind(top);
  b.emitJump(Opcode::kForNext, 0, done);
  b.emitABC(Opcode::kMove, 4, 2, 0);
  b.emitABC(Opcode::kMove, 5, 2, 0);
  b.emitABC(Opcode::kCall, 3, label, 2);
  b.emitJump(Opcode::kJmp, 0, top);
  b.bind(done);
  b.emitABC(Opcode::kMove, 7, 0, 0);
  b.emitABC(Opcode::kMove, 8, 3, 0);
  b.emitABC(Opcode::kMove, 9, 5, 0);
  b.emitABC(Opcode::kCall, 6, wrap, 3);
  b.emitABC(Opcode::kReturn, 6, 0, 0);
  return b;
}

// r0 = yield "approve?"; if r0 == 1 return "yes" else return concat("n", "o")
ProgramBuilder approval() {
  ProgramBuilder b("approval");
  auto no = b.newLabel();
  b.emitABx(Opcode::kLoadK, 1, b.addString("approve?"));
  b.emitABC(Opcode::kYield, 0, 1, 0);
  b.emitAsBx(Opcode::kLoadInt, 2, 1);
  b.emitABC(Opcode::kEq, 3, 0, 2);
  b.emitJump(Opcode::kJmpIfNot, 3, no);
  b.emitABx(Opcode::kLoadK, 4, b.addString("yes"));
  b.emitABC(Opcode::kReturn, 4, 0, 0);
  b.bind(no);
  b.emitABx(Opcode::kLoadK, 4, b.addString("n"));
  b.emitABx(Opcode::kLoadK, 5, b.addString("o"));
  b.emitABC(Opcode::kConcat, 4, 4, 5);
  b.emitABC(Opcode::kReturn, 4, 0, 0);
  return b;
}

// An endless loop that the budget stops.
ProgramBuilder spin() {
  ProgramBuilder b("spin");
  b.emitABC(Opcode::kLoadNull, 0, 0, 0);
  b.emitABx(Opcode::kJmp, 0, 1);
  return b;
}

std::vector<uint8_t> moduleBytes(ProgramBuilder b) { return *b.finish(); }

// Encodes `program`'s code in the playbook_vm_fuzz input layout (see that file).
std::vector<uint8_t> vmInput(uint8_t registers, const std::vector<int64_t>& int_constants,
                             uint8_t import_mask, const std::vector<uint32_t>& code) {
  std::vector<uint8_t> out = {registers, static_cast<uint8_t>(int_constants.size())};
  for (int64_t value : int_constants) {
    out.push_back(2);  // int constant
    uint8_t payload[8];
    std::memcpy(payload, &value, 8);
    out.insert(out.end(), payload, payload + 8);
  }
  out.push_back(import_mask);
  for (uint32_t word : code) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(word >> (8 * i)));
  }
  return out;
}

std::vector<Seed> verifierSeeds() {
  std::vector<Seed> seeds = {{"arith", moduleBytes(arithmetic())},
                             {"loop", moduleBytes(loopWithHostCalls())},
                             {"approval", moduleBytes(approval())},
                             {"spin", moduleBytes(spin())}};
  ProgramBuilder bad("bad-jump");
  bad.setRegisterCount(1);
  bad.emitABx(Opcode::kJmp, 0, 5);
  seeds.push_back({"bad_jump", moduleBytes(std::move(bad))});
  return seeds;
}

std::vector<Seed> vmSeeds() {
  using O = Opcode;
  return {
      // r0 = K0 + 1; r1 = r0 < K0; return r1
      {"compare", vmInput(3, {1 << 20}, 0,
                          {encodeABx(O::kLoadK, 0, 0), encodeAsBx(O::kLoadInt, 2, 1),
                           encodeABC(O::kAdd, 0, 0, 2), encodeABC(O::kLt, 1, 0, 2),
                           encodeABC(O::kReturn, 1, 0, 0)})},
      // r0 = first(7) via import 0 (mask bit 1), yield r0, return r0
      {"call_yield", vmInput(2, {}, 0b10,
                             {encodeAsBx(O::kLoadInt, 1, 7), encodeABC(O::kCall, 0, 0, 1),
                              encodeABC(O::kYield, 1, 0, 0), encodeABC(O::kReturn, 1, 0, 0)})},
      // list = [list]; for each element: append it again (grows until the memory limit)
      {"self_append", vmInput(4, {}, 0,
                              {encodeABC(O::kNewList, 0, 0, 0), encodeABC(O::kAppend, 0, 0, 0),
                               encodeABC(O::kForPrep, 0, 0, 0), encodeABx(O::kForNext, 0, 6),
                               encodeABC(O::kAppend, 0, 2, 0), encodeABx(O::kJmp, 0, 3),
                               encodeABC(O::kReturn, 0, 0, 0)})},
  };
}

std::filesystem::path corpusDir(const std::string& target) {
  return std::filesystem::path(VIGIL_SOURCE_DIR) / "tests" / "fuzz" / (target + "_corpus");
}

void checkOrWrite(const std::string& target, const std::vector<Seed>& seeds) {
  bool write = std::getenv("VIGIL_WRITE_FUZZ_SEEDS") != nullptr;
  std::filesystem::path dir = corpusDir(target);
  if (write) std::filesystem::create_directories(dir);
  for (const Seed& seed : seeds) {
    std::filesystem::path path = dir / seed.name;
    if (write) {
      std::ofstream(path, std::ios::binary)
          .write(reinterpret_cast<const char*>(seed.bytes.data()), seed.bytes.size());
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in.good()) << path << " is missing; run with VIGIL_WRITE_FUZZ_SEEDS=1";
    std::vector<uint8_t> stored((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
    EXPECT_EQ(stored, seed.bytes) << path << " is stale; run with VIGIL_WRITE_FUZZ_SEEDS=1";
  }
}

// The checked-in verifier seeds match the programs, and the valid ones load.
TEST(SeedCorpusTest, VerifierSeedsCurrent) {
  std::vector<Seed> seeds = verifierSeeds();
  for (const Seed& seed : seeds) {
    auto program = loadProgram(seed.bytes, fuzz::fuzzHost());
    EXPECT_EQ(program.ok(), seed.name != "bad_jump") << seed.name << ": " << program.status();
  }
  checkOrWrite("playbook_verifier_fuzz", seeds);
}

// The checked-in VM seeds match their encodings.
TEST(SeedCorpusTest, VmSeedsCurrent) { checkOrWrite("playbook_vm_fuzz", vmSeeds()); }

}  // namespace
}  // namespace vigil::playbook_vm
