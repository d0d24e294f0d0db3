// JSON numbers keep the text the sender wrote, so 64-bit identifiers (Suricata flow_id,
// Windows record numbers) survive exactly instead of being rounded through a double.
#include <gtest/gtest.h>

#include <string>

#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::get;
using testing::ParsedEvent;

// Integers above 2^53 and at the uint64/int64 limits come back digit for digit.
TEST(ParserJsonNumbersTest, SixtyFourBitExact) {
  ParsedEvent slot;
  const Event& e = slot.parse(
      R"({"flow_id": 9007199254740993, "max": 18446744073709551615,)"
      R"( "min": -9223372036854775808, "small": 7})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_EQ(get(e, "flow_id"), "9007199254740993");
  EXPECT_EQ(get(e, "max"), "18446744073709551615");
  EXPECT_EQ(get(e, "min"), "-9223372036854775808");
  EXPECT_EQ(get(e, "small"), "7");
}

// Integers beyond 64 bits, which simdjson's DOM parser cannot store, keep their text and
// the other members of the event, in bare JSON and in JSON inside syslog.
TEST(ParserJsonNumbersTest, BeyondSixtyFourBitsKept) {
  ParsedEvent slot;
  const Event& e = slot.parse(
      R"({"ts":"2024-05-01T10:00:00Z","big":18446744073709551616,)"
      R"("neg":-9223372036854775809,"src_ip":"192.0.2.1","n":[99999999999999999999,2]})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_FALSE(e.has(kFlagParseError));
  EXPECT_EQ(get(e, "big"), "18446744073709551616");
  EXPECT_EQ(get(e, "neg"), "-9223372036854775809");
  EXPECT_EQ(get(e, "n.0"), "99999999999999999999");
  EXPECT_EQ(get(e, "n.1"), "2");
  EXPECT_EQ(get(e, "source.ip"), "192.0.2.1");
  EXPECT_EQ(e.timestamp_ns, testing::timeOf("2024-05-01T10:00:00Z"));

  ParsedEvent cee;
  const Event& s = cee.parse(
      R"(<13>1 2024-05-01T10:00:00Z h app - - - @cee: {"big":100000000000000000000,"user":"a"})");
  EXPECT_TRUE(s.has(kFlagJsonPayload));
  EXPECT_EQ(get(s, "big"), "100000000000000000000");
  EXPECT_EQ(get(s, "user.name"), "a");
}

// Fractions and exponents stay as written rather than as a reformatted double.
TEST(ParserJsonNumbersTest, FloatsKeepTheirText) {
  ParsedEvent slot;
  const Event& e = slot.parse(R"({"ts": 1521911799.739898, "ratio": 1e3, "neg": -0.0})");
  EXPECT_EQ(get(e, "ts"), "1521911799.739898");
  EXPECT_EQ(get(e, "ratio"), "1e3");
  EXPECT_EQ(get(e, "neg"), "-0.0");
}

// Nested numbers inside a Suricata-style document keep their dotted names and digits.
TEST(ParserJsonNumbersTest, NestedInEve) {
  ParsedEvent slot;
  const Event& e = slot.parse(
      R"({"event_type": "flow", "flow": {"bytes_toserver": 12345678901234567890}})");
  EXPECT_EQ(get(e, "flow.bytes_toserver"), "12345678901234567890");
}

}  // namespace
}  // namespace vigil::dataplane
