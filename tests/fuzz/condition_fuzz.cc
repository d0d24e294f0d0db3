// Fuzzes the Sigma condition parser. The first input line lists selection names
// (separated by spaces; a fixed set when the line is empty) and the rest is the
// condition. A condition that parses is evaluated for every assignment of the first
// eight selections, and its printed form must parse again to an expression that agrees
// on each assignment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "correlate/condition.h"

namespace {

std::vector<std::string> splitNames(std::string_view line) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start < line.size()) {
    size_t end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    if (end > start) names.emplace_back(line.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t newline = text.find('\n');
  std::vector<std::string> names;
  std::string_view condition = text;
  if (newline != std::string_view::npos) {
    names = splitNames(text.substr(0, newline));
    condition = text.substr(newline + 1);
  }
  if (names.empty()) names = {"selection", "sel_a", "sel_b", "filter_x", "filter_y", "_hidden"};
  if (names.size() > 64) return 0;

  absl::StatusOr<vigil::correlate::Condition> parsed =
      vigil::correlate::parseCondition(condition, names);
  if (!parsed.ok()) return 0;
  // Sigma selection names are YAML keys, so they may contain spaces, parentheses, '|' or a
  // keyword such as "and", which "1 of them" reaches but the printed form cannot spell.
  // The round trip therefore prints and parses again with the names s0, s1, ...
  std::vector<std::string> plain_names;
  for (size_t i = 0; i < names.size(); ++i) plain_names.push_back("s" + std::to_string(i));
  std::string printed = parsed->toString(plain_names);
  absl::StatusOr<vigil::correlate::Condition> again =
      vigil::correlate::parseCondition(printed, plain_names);
  // The printed form names every selection explicitly, so it must parse.
  if (!again.ok()) std::abort();
  const uint32_t checked = names.size() < 8 ? static_cast<uint32_t>(names.size()) : 8;
  for (uint32_t bits = 0; bits < (1u << checked); ++bits) {
    auto truth = [&](uint32_t selection) {
      return selection < checked ? ((bits >> selection) & 1) != 0 : selection % 2 == 0;
    };
    if (parsed->evaluate(truth) != again->evaluate(truth)) std::abort();
  }
  return 0;
}
