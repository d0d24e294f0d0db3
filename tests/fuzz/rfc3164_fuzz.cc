// Fuzzes the RFC 3164 (BSD syslog) parser, with and without a default time zone.
// The whole input is one framed message. Its length picks the default UTC offset, so the
// fuzzer reaches both a zero and a non-zero offset without spending an input byte on it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/parser_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  vigil::fuzz::parseAndCheck(vigil::dataplane::Format::kRfc3164, (size & 1) != 0 ? 3600 : 0, input);
  return 0;
}
