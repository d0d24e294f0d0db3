#include "common/time.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>
#include <string>

namespace vigil {
namespace {

// Offsets are applied, fractions keep nanosecond precision, and output is UTC.
TEST(TimeTest, ParsesRfc3339WithOffset) {
  auto ns = parseRfc3339("2018-03-24T08:59:37-07:00");
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(formatRfc3339(*ns), "2018-03-24T15:59:37Z");
  auto frac = parseRfc3339("2003-10-11T22:14:15.003Z");
  ASSERT_TRUE(frac.has_value());
  EXPECT_EQ(formatRfc3339(*frac), "2003-10-11T22:14:15.003000000Z");
}

// Impossible dates and malformed text are rejected.
TEST(TimeTest, RejectsInvalidDates) {
  EXPECT_FALSE(parseRfc3339("2023-02-29T00:00:00Z").has_value());
  EXPECT_TRUE(parseRfc3339("2024-02-29T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("2024-13-01T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("2024-01-01T00:00:00+0100").has_value());
  EXPECT_FALSE(parseRfc3339("yesterday").has_value());
}

// Times outside int64 nanoseconds (before 1677-09-21, after 2262-04-11) are invalid
// instead of overflowing; a fuzzer found year 4040 in a MISP feed wrapping around.
TEST(TimeTest, RejectsUnrepresentableYears) {
  EXPECT_TRUE(parseRfc3339("2262-04-10T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("2263-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("4040-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("9999-12-31T23:59:59Z").has_value());
  EXPECT_TRUE(parseRfc3339("1678-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("1600-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("0000-01-01T00:00:00Z").has_value());
}

// The parser keeps the last date it converted. Runs of one date, changes of date, and
// invalid dates and times after a valid one all give what timegm() gives.
TEST(TimeTest, RepeatedDatesMatchTimegm) {
  std::mt19937 random(7);
  for (int i = 0; i < 2000; ++i) {
    const int year = 1900 + static_cast<int>(random() % 300);
    const int month = 1 + static_cast<int>(random() % 12);
    const int day = 1 + static_cast<int>(random() % 31);
    for (int repeat = 0; repeat < 3; ++repeat) {
      const int hour = static_cast<int>(random() % 24);
      const int minute = static_cast<int>(random() % 60);
      char text[40];
      std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:07Z", year, month, day, hour,
                    minute);
      std::tm tm{};
      tm.tm_year = year - 1900;
      tm.tm_mon = month - 1;
      tm.tm_mday = day;
      tm.tm_hour = hour;
      tm.tm_min = minute;
      tm.tm_sec = 7;
      const time_t expected = timegm(&tm);
      // timegm() normalises 31 April to 1 May; the parser rejects such dates.
      const bool exists = tm.tm_mday == day;
      const auto parsed = parseRfc3339(text);
      ASSERT_EQ(parsed.has_value(), exists) << text;
      if (exists) {
        EXPECT_EQ(*parsed, static_cast<int64_t>(expected) * kNanosPerSecond) << text;
      }
    }
  }
  // A bad time after a cached date is still rejected, and so is the same date's bad text.
  ASSERT_TRUE(parseRfc3339("2024-05-01T10:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("2024-05-01T24:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("2024-05-01X10:00:00Z").has_value());
  EXPECT_FALSE(parseRfc3339("2024-05-01T10:00").has_value());
  EXPECT_TRUE(parseRfc3339("2024-05-01T10:00:00Z").has_value());
}

// Civil date conversion round-trips across leap years and the epoch.
TEST(TimeTest, CivilRoundTrip) {
  for (int64_t days : {-719468LL, -1LL, 0LL, 11016LL, 19782LL, 2932896LL}) {
    CivilDate d = civilFromDays(days);
    EXPECT_EQ(daysFromCivil(d.year, d.month, d.day), days);
  }
}

}  // namespace
}  // namespace vigil
