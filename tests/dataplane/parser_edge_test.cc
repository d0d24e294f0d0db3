// Edge cases br01, br03, br04, br05 and br08 from corpus/edge, checked as
// corpus/edge/EXPECTED.md states them.
#include <gtest/gtest.h>

#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::get;
using testing::ParsedEvent;
using testing::readLines;
using testing::timeOf;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// br01: the three PARAM-VALUE escapes are decoded and nothing spills into MSG.
TEST(ParserEdgeTest, Br01StructuredDataEscapes) {
  const auto lines = readLines("edge/br01-rfc5424-sd-escaped-backslash.log");
  ASSERT_EQ(lines.size(), 3u);
  ParsedEvent slot;

  Event& e1 = slot.parse(lines[0]);
  EXPECT_EQ(e1.format, EventFormat::kRfc5424);
  EXPECT_FALSE(e1.has(kFlagParseError));
  EXPECT_EQ(get(e1, "sd.fileevt@32473.param"), "WORKGROUP\\alice");
  EXPECT_EQ(get(e1, "sd.fileevt@32473.event"), "read");
  EXPECT_EQ(get(e1, "sd.meta.sequenceId"), "10");
  EXPECT_EQ(e1.message, "Event: read, file report.pdf");
  EXPECT_EQ(e1.timestamp_ns, timeOf("2025-04-15T21:19:09Z"));

  Event& e2 = slot.parse(lines[1]);
  EXPECT_FALSE(e2.has(kFlagParseError));
  EXPECT_EQ(e2.msgid, "mid");
  EXPECT_EQ(get(e2, "sd.agentInfo@32473.tenantId"), "1");
  EXPECT_EQ(get(e2, "sd.agentInfo@32473.tenantNodePath"), "1\\2");
  EXPECT_EQ(e2.message, "payload");

  Event& e3 = slot.parse(lines[2]);
  EXPECT_FALSE(e3.has(kFlagParseError));
  EXPECT_EQ(get(e3, "sd.x@32473.q"), "say \"hi\"");
  EXPECT_EQ(get(e3, "sd.x@32473.r"), "a]b");
  EXPECT_EQ(get(e3, "sd.x@32473.s"), "C:\\Temp\\");
  EXPECT_EQ(e3.message, "tail text");
}

// A backslash before any other character stays in the value.
TEST(ParserEdgeTest, SdUnknownEscapeKept) {
  ParsedEvent slot;
  Event& e = slot.parse(R"(<14>1 2025-01-01T00:00:00Z h a - - [x k="a\nb\\"] m)");
  EXPECT_EQ(get(e, "sd.x.k"), "a\\nb\\");
  EXPECT_EQ(e.message, "m");
}

// Malformed structured data keeps the event as raw text with a parse error.
TEST(ParserEdgeTest, MalformedSdBecomesRaw) {
  ParsedEvent slot;
  const std::string_view line = R"(<14>1 2025-01-01T00:00:00Z h a - - [x k="unterminated] m)";
  Event& e = slot.parse(line);
  EXPECT_EQ(e.format, EventFormat::kRaw);
  EXPECT_TRUE(e.has(kFlagParseError));
  EXPECT_EQ(e.message, line);
  EXPECT_EQ(e.field_count, 0u);
  EXPECT_EQ(e.timestamp_ns, e.receive_ns);
}

// br03: the BOM is stripped and flagged, and JSON after a BOM is still detected.
TEST(ParserEdgeTest, Br03BomInMsg) {
  const auto lines = readLines("edge/br03-rfc5424-bom-in-msg.log");
  ASSERT_EQ(lines.size(), 3u);
  ParsedEvent slot;

  Event& e1 = slot.parse(lines[0]);
  EXPECT_EQ(e1.message, "traputil.c(777) 565 %% Cold Start: Unit: 0");
  EXPECT_TRUE(e1.has(kFlagMsgUtf8Bom));

  Event& e2 = slot.parse(lines[1]);
  EXPECT_TRUE(e2.has(kFlagMsgUtf8Bom));
  EXPECT_TRUE(e2.has(kFlagJsonPayload));
  EXPECT_EQ(e2.user, "alice");
  EXPECT_EQ(get(e2, "msg"), "Gr\xC3\xBC\xC3\x9F" "e");
  EXPECT_EQ(e2.message.substr(0, 1), "{");

  Event& e3 = slot.parse(lines[2]);
  EXPECT_FALSE(e3.has(kFlagMsgUtf8Bom));
  EXPECT_EQ(e3.message, "no bom here");
}

// br04: the inferred year is the one closest to the receive time; an impossible Feb 29
// keeps the event at the receive time with kFlagTimestampInvalid and without
// kFlagYearInferred, because no inferred year went into the event time.
TEST(ParserEdgeTest, Br04YearRollover) {
  const auto lines = readLines("edge/br04-rfc3164-year-rollover.log");
  ASSERT_EQ(lines.size(), 5u);
  const char* expected[] = {"2022-01-01T00:00:00Z", "2021-12-31T23:59:59Z",
                            "2021-12-28T10:00:00Z", "2024-02-29T12:00:00Z", nullptr};
  ParsedEvent slot;
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    const size_t tab = lines[i].find('\t');
    ASSERT_NE(tab, std::string::npos);
    const int64_t received = timeOf(lines[i].substr(0, tab));
    Event& e = slot.parse(lines[i].substr(tab + 1), {}, received);
    EXPECT_EQ(e.format, EventFormat::kRfc3164);
    EXPECT_FALSE(e.has(kFlagParseError));
    if (expected[i] != nullptr) {
      EXPECT_EQ(e.timestamp_ns, timeOf(expected[i]));
      EXPECT_TRUE(e.has(kFlagYearInferred));
      EXPECT_FALSE(e.has(kFlagTimestampInvalid));
    } else {
      EXPECT_EQ(e.timestamp_ns, received);
      EXPECT_FALSE(e.has(kFlagYearInferred));
      EXPECT_TRUE(e.has(kFlagTimestampInvalid));
      EXPECT_EQ(e.raw, lines[i].substr(tab + 1));
      EXPECT_EQ(e.message, "impossible leap day");
    }
  }
}

// br05: without a HOSTNAME the host is the peer address and the tag is still found.
TEST(ParserEdgeTest, Br05MissingHostname) {
  const auto lines = readLines("edge/br05-rfc3164-missing-hostname.log");
  ASSERT_EQ(lines.size(), 4u);
  const auto peer = parseIp("192.0.2.99");
  ParsedEvent slot;
  const int64_t received = timeOf("2024-06-01T00:00:00Z");

  Event& e1 = slot.parse(lines[0], {}, received, peer);
  EXPECT_EQ(e1.facility, 3);
  EXPECT_EQ(e1.severity, 6);
  EXPECT_TRUE(e1.has(kFlagNoHostname));
  EXPECT_EQ(e1.host, "192.0.2.99");
  EXPECT_EQ(e1.app, "charon");
  EXPECT_EQ(e1.message,
            "13[MGR] checkout IKEv1 SA by message with SPIs 7f414ab798e5a7e4_i 49d7356aa8e75809_r");

  Event& e2 = slot.parse(lines[1], {}, received, peer);
  EXPECT_TRUE(e2.has(kFlagNoHostname));
  EXPECT_EQ(e2.host, "192.0.2.99");
  EXPECT_EQ(e2.app, "chronyd");
  EXPECT_EQ(e2.procid, "1119");
  EXPECT_EQ(e2.message, "Selected source 192.0.2.1");

  Event& e3 = slot.parse(lines[2], {}, received, peer);
  EXPECT_FALSE(e3.has(kFlagNoHostname));
  EXPECT_EQ(e3.host, "fw1.example.com");
  EXPECT_EQ(e3.app, "filterlog");
  EXPECT_EQ(e3.procid, "555");
  EXPECT_EQ(e3.message,
            "5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,192.0.2.20");

  Event& e4 = slot.parse(lines[3], {}, received, peer);
  EXPECT_TRUE(e4.has(kFlagNoHostname));
  EXPECT_EQ(e4.host, "192.0.2.99");
  EXPECT_EQ(e4.app, "");
  EXPECT_EQ(e4.message, "timestamp=1683715550 devname=fw2 msg=no-host-and-kv");
}

// br08: all five events are kept, each invalid sequence becomes U+FFFD, valid
// multi-byte text survives, fields still extract and raw keeps the bytes.
TEST(ParserEdgeTest, Br08InvalidUtf8) {
  const auto lines = readLines("edge/br08-invalid-utf8.log");
  ASSERT_EQ(lines.size(), 5u);
  ParsedEvent slot;

  Event& e1 = slot.parse(lines[0]);
  EXPECT_FALSE(e1.has(kFlagInvalidUtf8));
  EXPECT_EQ(e1.message, "valid utf8 caf\xC3\xA9");

  // "lone continuation <80> byte"
  Event& e2 = slot.parse(lines[1]);
  EXPECT_TRUE(e2.has(kFlagInvalidUtf8));
  EXPECT_EQ(e2.message, "lone continuation " + std::string(kReplacement) + " byte");
  EXPECT_EQ(e2.raw, lines[1]);

  // "truncated sequence <E2 80> then text": one U+FFFD for the maximal subpart.
  Event& e3 = slot.parse(lines[2]);
  EXPECT_TRUE(e3.has(kFlagInvalidUtf8));
  EXPECT_EQ(e3.message, "truncated sequence " + std::string(kReplacement) + " then text");

  // "latin1 user=J<FC>rgen src=192.0.2.5"
  Event& e4 = slot.parse(lines[3]);
  EXPECT_TRUE(e4.has(kFlagInvalidUtf8));
  EXPECT_EQ(e4.message, "latin1 user=J" + std::string(kReplacement) + "rgen src=192.0.2.5");
  EXPECT_EQ(get(e4, "source.ip"), "192.0.2.5");
  EXPECT_EQ(e4.user, "J" + std::string(kReplacement) + "rgen");

  // "overlong slash <C0 AF> and em dash <E2 80 94> ok": C0 and AF are each ill-formed.
  Event& e5 = slot.parse(lines[4]);
  EXPECT_TRUE(e5.has(kFlagInvalidUtf8));
  EXPECT_EQ(e5.message, "overlong slash " + std::string(kReplacement) + std::string(kReplacement) +
                            " and em dash \xE2\x80\x94 ok");
  EXPECT_EQ(e5.message.find('/'), std::string_view::npos);
  EXPECT_EQ(e5.raw, lines[4]);
  for (const auto& line : lines) {
    Event& e = slot.parse(line);
    EXPECT_EQ(e.format, EventFormat::kRfc3164) << line;
    EXPECT_EQ(e.host, "host.example.com") << line;
  }
}

// Cisco FTD and ASA write " : " where the TAG goes. The TAG stays empty and MSG starts at
// the message id, so "%FTD-4-419002" patterns see the text the device wrote.
TEST(ParserEdgeTest, CiscoLoneColonTag) {
  const auto lines = readLines("syslog/tenzir/syslog-rfc3164.log");
  ASSERT_GE(lines.size(), 12u);
  ParsedEvent slot;
  Event& e = slot.parse(lines[11]);
  EXPECT_EQ(e.format, EventFormat::kRfc3164);
  EXPECT_EQ(e.host, "firepower");
  EXPECT_EQ(e.app, "");
  EXPECT_TRUE(e.message.starts_with("%FTD-4-419002: Duplicate TCP SYN")) << e.message;
}

}  // namespace
}  // namespace vigil::dataplane
