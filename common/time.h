// Calendar and timestamp helpers shared by parsers, rules and the case store. All times
// are UTC nanoseconds since the Unix epoch in an int64_t (good until year 2262).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Days since 1970-01-01 for a proleptic Gregorian date (month 1..12, day 1..31).
int64_t daysFromCivil(int64_t year, unsigned month, unsigned day);

struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};
CivilDate civilFromDays(int64_t days);

bool isLeapYear(int64_t year);
unsigned daysInMonth(int64_t year, unsigned month);

// Parses an RFC 3339 / ISO 8601 timestamp: "2024-05-01T10:00:00Z",
// "2018-03-24T08:59:37-07:00", fractional seconds up to nanoseconds, 't'/'z' lower case
// and a space instead of 'T'. A missing zone means UTC. Returns nullopt when invalid.
std::optional<int64_t> parseRfc3339(std::string_view text);

// Writes "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (fraction omitted when zero) into `buf`.
// Returns the length written (0 when `buf_len` < 31). Never allocates.
size_t formatRfc3339(int64_t ns, char* buf, size_t buf_len);
std::string formatRfc3339(int64_t ns);

}  // namespace vigil
