#include "common/time.h"

#include <gtest/gtest.h>

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

// Civil date conversion round-trips across leap years and the epoch.
TEST(TimeTest, CivilRoundTrip) {
  for (int64_t days : {-719468LL, -1LL, 0LL, 11016LL, 19782LL, 2932896LL}) {
    CivilDate d = civilFromDays(days);
    EXPECT_EQ(daysFromCivil(d.year, d.month, d.day), days);
  }
}

}  // namespace
}  // namespace vigil
