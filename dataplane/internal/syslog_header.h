// Pieces shared by the RFC 3164 and RFC 5424 parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/event.h"

namespace vigil::dataplane::internal {

// The PRI part "<N>" at the start of a message, N in 0..191 without leading zeros
// (except "<0>"), as RFC 5424 section 6.2.1 allows.
struct Pri {
  int16_t facility = 0;
  int16_t severity = 0;
  size_t length = 0;  // bytes consumed, including both angle brackets
};

// Facility and severity given to an RFC 3164 message without PRI: PRI 13, user.notice,
// which RFC 3164 section 4.3.3 requires of a relay.
constexpr int16_t kMissingPriFacility = 1;
constexpr int16_t kMissingPriSeverity = 5;

// Parses the PRI at the start of `text`. Returns nullopt when there is none or when it
// is out of range.
std::optional<Pri> parsePri(std::string_view text);

// Sets facility and severity from `pri`.
void applyPri(const Pri& pri, Event& event);

// Copies `text` into the event arena after repairing invalid UTF-8 (see repairUtf8).
// Returns `text` itself, without a copy, when `raw_is_utf8` is true (the whole raw line is valid).
std::string_view decodeText(std::string_view text, bool raw_is_utf8, Event& event);

// Years an int64_t nanosecond timestamp can hold without overflow (1678-2261), kept a
// little inside the true limits.
constexpr int64_t kMinYear = 1678;
constexpr int64_t kMaxYear = 2261;

// parseRfc3339() restricted to kMinYear..kMaxYear, because common/time.cc overflows
// (undefined behavior) on years outside the int64_t nanosecond range.
std::optional<int64_t> parseTimestamp(std::string_view text);

// True when `timestamp`, a text that parseTimestamp() accepted, ends in a zone: "Z", "z"
// or a numeric offset such as "+02:00".
bool hasUtcOffset(std::string_view timestamp);

// Removes a leading UTF-8 BOM from `msg` and records it with kFlagMsgUtf8Bom.
std::string_view stripBom(std::string_view msg, Event& event);

}  // namespace vigil::dataplane::internal
