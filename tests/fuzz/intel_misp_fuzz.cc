// Fuzz target for the MISP JSON loader and MISP warninglists. The input is loaded as a
// MISP document and also as a warninglist applied to what it loaded. Checks, besides
// memory safety: invalid documents fail with InvalidArgument, counts add up, and
// build() succeeds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "intel/builder.h"
#include "intel/indicator_set.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  vigil::intel::BuilderOptions options;
  options.now = absl::FromUnixSeconds(1'700'000'000);
  vigil::intel::IndicatorSetBuilder builder(options);

  absl::StatusOr<vigil::intel::WarninglistReport> list = builder.addWarninglistText(text, "fuzz");
  check(list.ok() || list.status().code() == absl::StatusCode::kInvalidArgument);
  absl::StatusOr<vigil::intel::LoadReport> report = builder.addMispText("fuzz", text, "fuzz");
  if (!report.ok()) {
    check(report.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  check(report->rejections.size() <= report->rejected);
  size_t by_type = 0;
  for (size_t count : report->loaded_by_type) by_type += count;
  check(by_type == report->loaded);
  absl::StatusOr<std::shared_ptr<const vigil::intel::IndicatorSet>> set = builder.build();
  check(set.ok());
  size_t suppressed = 0;
  for (const auto& [name, count] : (*set)->stats().suppressed_by_warninglist) suppressed += count;
  check((*set)->size() + suppressed == report->loaded);
  return 0;
}
