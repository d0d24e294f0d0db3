// Fuzz target for the regex-list loader (REGEX;SCORE[;FALSE_POSITIVE_REGEX] lines). The
// whole input is the list. Checks, besides memory safety:
//   - the load never fails on data, and rejections never exceed the count;
//   - build() succeeds, and every loaded line is a regex indicator or a rejected regex;
//   - a loaded regex contains no ';' that no backslash escapes, because that ';' would
//     have ended the regex, and "REGEX;SCORE" loads again as the same regex and score.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"

namespace {

using vigil::IndicatorType;
using vigil::intel::IndicatorSetBuilder;

constexpr uint32_t kMaxSelfChecks = 16;

void check(bool ok) {
  if (!ok) std::abort();
}

bool hasUnescapedSemicolon(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == ';') {
      return true;
    }
  }
  return false;
}

// Loads "TEXT;SCORE" alone and checks that it gives back TEXT with that score.
void checkReload(const vigil::intel::Indicator& indicator) {
  IndicatorSetBuilder builder;
  auto report = builder.addRegexListText(
      "again", absl::StrCat(indicator.text, ";", static_cast<int>(indicator.confidence)), "again");
  check(report.ok() && report->loaded == 1 && report->rejected == 0);
  auto set = builder.build();
  check(set.ok() && (*set)->size() == 1);
  check((*set)->indicator(0).text == indicator.text);
  check((*set)->indicator(0).confidence == indicator.confidence);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  IndicatorSetBuilder builder;
  auto report = builder.addRegexListText("fuzz", text, "fuzz");
  check(report.ok());
  check(report->rejections.size() <= report->rejected);
  auto built = builder.build();
  check(built.ok());
  const vigil::intel::IndicatorSet& set = **built;
  check(set.stats().count(IndicatorType::kRegex) + set.stats().rejected_regexes == report->loaded);
  for (uint32_t id = 0; id < set.size() && id < kMaxSelfChecks; ++id) {
    const vigil::intel::Indicator& indicator = set.indicator(id);
    check(indicator.type == IndicatorType::kRegex);
    check(!hasUnescapedSemicolon(indicator.text));
    checkReload(indicator);
  }
  return 0;
}
