// The parser's fast paths against the slower code they replace: the ASCII check against
// simdjson's UTF-8 validator, and the RFC 3164 year shortcut against the
// nearest-of-three-years rule. The dotted IPv4 fast path of parseIp() is checked against
// inet_pton in tests/common/ip_test.cc.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <array>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/time.h"
#include "dataplane/internal/utf8.h"
#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using internal::isValidUtf8;
using testing::ParsedEvent;
using testing::timeOf;

// The ASCII check agrees with simdjson on random text, wherever in the text a non-ASCII
// byte falls.
TEST(ParserFastPathsTest, Utf8MatchesSimdjson) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<size_t> length(0, 70);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> percent(0, 99);
  size_t invalid = 0;
  for (int i = 0; i < 100000; ++i) {
    std::string text(length(rng), 'a');
    for (char& c : text) {
      const int b = byte(rng);
      c = static_cast<char>(percent(rng) < 97 ? b & 0x7F : b);
    }
    const bool expected = simdjson::validate_utf8(text.data(), text.size());
    ASSERT_EQ(isValidUtf8(text), expected) << i;
    invalid += !expected;
  }
  EXPECT_GT(invalid, 0u);
  // ASCII text of every length up to 200 with at most one non-ASCII byte or a valid
  // two-byte sequence at every position, so each block and the overlapping last block
  // see it.
  for (size_t size = 0; size <= 200; ++size) {
    const std::string ascii(size, 'x');
    ASSERT_TRUE(isValidUtf8(ascii)) << size;
    for (size_t at = 0; at < size; ++at) {
      std::string lone = ascii;
      lone[at] = '\xC3';
      ASSERT_FALSE(isValidUtf8(lone)) << size << " " << at;
      if (at + 1 < size) {
        std::string pair = lone;
        pair[at + 1] = '\xA9';
        ASSERT_TRUE(isValidUtf8(pair)) << size << " " << at;
      }
    }
  }
  EXPECT_TRUE(isValidUtf8("0123456789abcdef\xC3\xA9"));
  EXPECT_FALSE(isValidUtf8("0123456789abcdef\xC3"));
  EXPECT_FALSE(isValidUtf8("0123456789abcde\xC3"));
}

// Nearest of the previous, current and next year, or nullopt beyond 184 days: the rule
// that the parser's shortcut must reproduce.
std::optional<int64_t> nearestYear(unsigned month, unsigned day, int64_t receive_ns) {
  const int64_t receive_year = civilFromDays(receive_ns / kNanosPerSecond / 86400).year;
  std::optional<int64_t> best;
  for (int64_t year = receive_year - 1; year <= receive_year + 1; ++year) {
    if (day > daysInMonth(year, month)) continue;
    const int64_t ns = (daysFromCivil(year, month, day) * 86400 + 12 * 3600) * kNanosPerSecond;
    if (!best || std::llabs(ns - receive_ns) < std::llabs(*best - receive_ns)) best = ns;
  }
  if (!best || std::llabs(*best - receive_ns) > 184 * 86400 * kNanosPerSecond) return {};
  return best;
}

// For receive times spread over four years (leap year included) and dates spread over
// the year, the inferred year is the one the nearest-of-three rule picks.
TEST(ParserFastPathsTest, YearInferenceMatchesRule) {
  constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  ParsedEvent slot;
  const int64_t start = timeOf("2022-01-01T00:00:00Z");
  size_t checked = 0;
  for (int64_t day = 0; day < 4 * 366; day += 5) {
    const int64_t receive_ns = start + (day * 86400 + 3600) * kNanosPerSecond;
    for (unsigned month = 1; month <= 12; ++month) {
      for (unsigned mday : {1u, 2u, 15u, 28u, 29u, 30u, 31u}) {
        if (mday > daysInMonth(2024, month)) continue;
        const std::string line = std::string("<13>") + kMonths[month - 1] + " " +
                                 std::to_string(mday) + " 12:00:00 host app: m";
        Event& e = slot.parse(line, {}, receive_ns);
        const auto expected = nearestYear(month, mday, receive_ns);
        if (expected) {
          ASSERT_FALSE(e.has(kFlagTimestampInvalid)) << line << " at day " << day;
          ASSERT_EQ(e.timestamp_ns, *expected) << line << " at day " << day;
        } else {
          ASSERT_TRUE(e.has(kFlagTimestampInvalid)) << line << " at day " << day;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 20000u);
}

}  // namespace
}  // namespace vigil::dataplane
