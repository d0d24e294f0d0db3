// Fuzzes parseEvent() over every input format. The first byte picks the forced format
// (0 = auto) and, through its top bit, the default UTC offset; the rest is one framed
// message. The invariants are those of parseAndCheck() in parser_fuzz_check.h.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/parser_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto format = static_cast<vigil::dataplane::Format>(data[0] % 6);
  const int32_t offset = (data[0] & 0x80) != 0 ? 3600 : 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  vigil::fuzz::parseAndCheck(format, offset, input);
  return 0;
}
