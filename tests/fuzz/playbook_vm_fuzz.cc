// Fuzz target: arbitrary bytecode, wrapped into a module by ProgramBuilder so the fuzzer
// spends its time on code rather than on the FlatBuffers container. Any program the
// verifier accepts is run on both dispatch loops, which must agree and never crash.
//
// Input layout:
//   u8 register count, u8 constant count n,
//   n constants of 9 bytes each: u8 kind (mod 5: null, bool, int, double, string of up
//   to 7 bytes), then 8 payload bytes,
//   u8 host import mask (bit i imports kImports[i]),
//   little-endian 32-bit instruction words (a trailing partial word is ignored).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "playbook_fuzz_host.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/program.h"

namespace {

constexpr struct {
  const char* name;
  uint32_t arity;
} kImports[] = {{"zero", 0}, {"first", 1}, {"label", 2}, {"wrap", 3}, {"fail", 1}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil::playbook_vm;
  if (size < 3) return 0;
  ProgramBuilder b("fuzz");
  b.setRegisterCount(data[0]);
  size_t pos = 2;
  for (uint32_t i = 0; i < data[1]; ++i, pos += 9) {
    if (pos + 9 > size) return 0;
    const uint8_t* c = data + pos;
    int64_t payload;
    std::memcpy(&payload, c + 1, 8);
    switch (c[0] % 5) {
      case 0:
        b.addNull();
        break;
      case 1:
        b.addBool(payload & 1);
        break;
      case 2:
        b.addInt(payload);
        break;
      case 3: {
        double d;
        std::memcpy(&d, c + 1, 8);
        b.addDouble(d);
        break;
      }
      default:
        b.addString(std::string_view(reinterpret_cast<const char*>(c + 2), c[1] % 8));
        break;
    }
  }
  if (pos >= size) return 0;
  uint8_t mask = data[pos++];
  for (uint32_t i = 0; i < std::size(kImports); ++i) {
    if (mask & (1u << i)) b.importHost(kImports[i].name, kImports[i].arity);
  }
  for (; pos + 4 <= size; pos += 4) {
    uint32_t word;
    std::memcpy(&word, data + pos, 4);
    b.emitRaw(word);
  }
  auto bytes = b.finish();
  if (!bytes.ok()) return 0;
  auto program = loadProgram(*bytes, fuzz::fuzzHost());
  if (!program.ok()) return 0;
  fuzz::runBoth(**program);
  return 0;
}
