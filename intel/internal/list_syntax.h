// Line syntax and type detection of plain indicator lists (format in intel/builder.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event.h"
#include "common/ip.h"
#include "intel/builder.h"

namespace vigil::intel::internal {

// Maximum lengths accepted for one indicator, in bytes.
inline constexpr size_t kMaxDomainLength = 253;
inline constexpr size_t kMaxLabelLength = 63;
// Escaped for Hyperscan, a URL may grow to 4 bytes per byte; Hyperscan 5.4 rejects
// expressions longer than 16000 characters.
inline constexpr size_t kMaxUrlLength = 2048;

struct ParsedIndicator {
  IndicatorType type = IndicatorType::kIpv4;
  std::string text;  // normalized
  IpPrefix prefix;   // IP types only: the address with len 128, or the network
};

// The indicator texts of one list line: none for blank and comment lines, one for most
// lines, several for a hosts-file line.
struct ListLine {
  std::vector<std::string_view> indicators;  // views into the line
  bool hosts_entry = false;  // the line was "0.0.0.0 NAME..." or a similar hosts line
};

// Splits one list line. Returns InvalidArgument with the reason when the line has a
// shape the format does not allow.
absl::StatusOr<ListLine> splitListLine(std::string_view line);

// Detects the type of one indicator text and normalizes it. Returns InvalidArgument
// with the reason and the accepted forms when it is no valid indicator.
absl::StatusOr<ParsedIndicator> parseIndicator(std::string_view token,
                                               const BuilderOptions& options);

}  // namespace vigil::intel::internal
