// Line syntax and type detection of plain indicator lists (format in intel/builder.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hs.h>

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
inline constexpr size_t kMaxFilenameLength = 255;
inline constexpr size_t kMaxRegexLength = 4096;
// Hyperscan flags of every regex indicator: caseless, because file names and log text
// vary in case, and a single report per scan because only the first hit counts.
inline constexpr unsigned kRegexFlags = HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH;

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

// Parses a value whose feed declares its type. Email, file name and regex values are
// parsed as such (a regex is checked with hs_expression_info()); other types are
// detected as in parseIndicator() and must agree with `type` (IPv4, IPv6 and CIDR are
// interchangeable). Returns InvalidArgument with the reason.
absl::StatusOr<ParsedIndicator> parseTypedIndicator(IndicatorType type, std::string_view token,
                                                    const BuilderOptions& options);

// Parses an indicator type name as indicatorTypeName() writes it ("ipv4", "sha256").
std::optional<IndicatorType> parseIndicatorTypeName(std::string_view name);

}  // namespace vigil::intel::internal
