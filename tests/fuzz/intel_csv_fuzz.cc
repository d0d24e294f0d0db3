// Fuzz target for the CSV feed loader. The first byte picks the layout (delimiter,
// header on or off, value column by name or index); the rest is the feed. Checks,
// besides memory safety: the load fails only on a column that the feed does not have,
// rejections never exceed the count, and build() succeeds with one indicator per loaded
// value.
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
  if (size == 0) return 0;
  uint8_t layout = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  vigil::intel::CsvOptions options;
  options.delimiter = (layout & 1) != 0 ? ';' : ',';
  options.header = (layout & 2) != 0;
  if (options.header && (layout & 4) != 0) {
    options.value.name = "value";
  } else {
    options.value.index = (layout >> 3) & 3;
  }
  if ((layout & 0x20) != 0) options.type.index = 1;
  if ((layout & 0x40) != 0) options.confidence.index = 2;
  if ((layout & 0x80) != 0) options.tags.index = 3;

  vigil::intel::BuilderOptions builder_options;
  builder_options.now = absl::FromUnixSeconds(1'700'000'000);
  vigil::intel::IndicatorSetBuilder builder(builder_options);
  absl::StatusOr<vigil::intel::LoadReport> report =
      builder.addCsvText("fuzz", text, "fuzz", options);
  // A named value column may be missing from the header, or a column index may lie beyond
  // the columns of the feed. Nothing else fails the load.
  if (!report.ok()) {
    absl::string_view message = report.status().message();
    check(report.status().code() == absl::StatusCode::kInvalidArgument);
    check((options.header && !options.value.name.empty()) ||
          message.find("is out of range") != absl::string_view::npos);
    return 0;
  }
  check(report->rejections.size() <= report->rejected);
  absl::StatusOr<std::shared_ptr<const vigil::intel::IndicatorSet>> set = builder.build();
  check(set.ok());
  check((*set)->size() == report->loaded);
  return 0;
}
