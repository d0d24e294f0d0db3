// Format detection, forced formats, fallbacks and messages cut at every byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/framing.h"
#include "dataplane/internal/utf8.h"
#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::get;
using testing::ParsedEvent;
using testing::timeOf;

const std::vector<std::string>& sampleLines() {
  static const std::vector<std::string> lines = {
      R"(<165>1 2003-10-11T22:14:15.003Z host.example.com evntslog 77 ID47 )"
      R"([exampleSDID@32473 iut="3" eventSource="App\"x\]" eventID="1011"][meta a="b"] )"
      "\xEF\xBB\xBF" R"(@cee: {"user":"alice","n":[1,{"k":"v\u00e9"}]})",
      "<34>Oct 11 22:14:15 mymachine sshd[42]: Failed password for invalid user bob from "
      "192.0.2.7 port 50022 ssh2",
      R"({"_path":"ssh","ts":"2018-03-24T17:16:39.739898Z","id.orig_h":"10.0.0.227",)"
      R"("id.orig_p":59849,"auth_success":false,"s":"a\"b"})",
      "<13>Oct 11 22:14:19 host.example.com app: overlong \xC0\xAF and \xE2\x80 cut",
  };
  return lines;
}

// Every prefix of each sample parses without crashing, keeps raw as given and yields
// a message that is valid UTF-8 and lies inside the arena.
TEST(ParserRobustnessTest, TruncationAtEveryByte) {
  ParsedEvent slot;
  for (const auto& line : sampleLines()) {
    for (size_t len = 0; len <= line.size(); ++len) {
      const std::string_view cut(line.data(), len);
      Event& e = slot.parse(cut);
      ASSERT_EQ(e.raw, cut);
      ASSERT_NE(e.format, EventFormat::kUnknown);
      ASSERT_LE(e.field_count, Event::kMaxFields);
      if (e.has(kFlagParseError)) {
        ASSERT_EQ(e.format, EventFormat::kRaw) << cut;
        ASSERT_EQ(e.timestamp_ns, e.receive_ns) << cut;
      }
    }
  }
}

// Parses `raw` as the pipeline parses a message that its source cut at the maximum size.
Event& parseTruncated(ParsedEvent& slot, std::string_view raw) {
  Event& event = slot.event();
  event.reset();
  event.raw = event.arena.copy(raw);
  event.receive_ns = timeOf("2024-06-01T00:00:00Z");
  event.flags |= kFlagTruncated;
  parseEvent(event, {});
  return event;
}

// A message that the framer cuts inside a multi-byte UTF-8 character loses the partial
// character, so the cut sets kFlagTruncated and never kFlagInvalidUtf8.
TEST(ParserRobustnessTest, TruncationInsideCharacter) {
  // U+00E9, U+20AC and U+1F600: two, three and four bytes.
  const std::string line =
      "<13>Oct 11 22:14:15 h app: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 end";
  const std::string_view full_message(line.data() + line.find("caf"));
  const std::string input = line + "\n";
  ParsedEvent slot;
  for (size_t max = line.find("caf"); max < line.size(); ++max) {
    SCOPED_TRACE(max);
    FramingOptions options;
    options.mode = FramingMode::kLf;
    options.max_message_bytes = max;
    Framer framer(options);
    Frame frame;
    ASSERT_EQ(framer.feed(input, frame).status, FrameStatus::kFrame);
    ASSERT_TRUE(frame.truncated);
    ASSERT_EQ(frame.data.size(), max);

    Event& e = parseTruncated(slot, frame.data);
    EXPECT_EQ(e.format, EventFormat::kRfc3164);
    EXPECT_TRUE(e.has(kFlagTruncated));
    EXPECT_FALSE(e.has(kFlagInvalidUtf8));
    EXPECT_TRUE(internal::isValidUtf8(e.raw));
    EXPECT_EQ(e.raw, frame.data.substr(0, e.raw.size()));
    EXPECT_GE(e.raw.size() + 3, max);
    EXPECT_EQ(e.message, full_message.substr(0, e.message.size()));
  }
}

// Invalid UTF-8 that the cut did not make is still replaced and flagged in a truncated
// message: a byte that starts no character, a lead byte followed by a non-continuation
// byte, and a partial character before the end.
TEST(ParserRobustnessTest, TruncationKeepsOtherInvalidUtf8) {
  ParsedEvent slot;
  const std::string replacement = "\xEF\xBF\xBD";
  const std::string head = "<13>Oct 11 22:14:15 h app: ";
  struct Case {
    std::string tail;
    std::string message;
  };
  const Case cases[] = {
      {"ab\xFF", "ab" + replacement},        {"ab\x80", "ab" + replacement},
      {"ab\xC3(", "ab" + replacement + "("}, {"ab\xE2\x82x\xE2\x82", "ab" + replacement + "x"},
      {"ab\xC0", "ab" + replacement},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    Event& e = parseTruncated(slot, head + c.tail);
    EXPECT_TRUE(e.has(kFlagTruncated));
    EXPECT_TRUE(e.has(kFlagInvalidUtf8));
    EXPECT_EQ(e.message, c.message);
  }

  // Without the cut, a partial character at the end is the sender's invalid UTF-8.
  Event& whole = slot.parse(head + "ab\xE2\x82");
  EXPECT_FALSE(whole.has(kFlagTruncated));
  EXPECT_TRUE(whole.has(kFlagInvalidUtf8));
  EXPECT_EQ(whole.message, "ab" + replacement);
}

// A line that is no known format becomes a raw event at the receive time.
TEST(ParserRobustnessTest, UnparseableIsRaw) {
  ParsedEvent slot;
  Event& e = slot.parse("just some text without a header");
  EXPECT_EQ(e.format, EventFormat::kRaw);
  EXPECT_TRUE(e.has(kFlagParseError));
  EXPECT_EQ(e.message, "just some text without a header");
  EXPECT_EQ(e.timestamp_ns, e.receive_ns);
  EXPECT_EQ(e.facility, -1);
}

// An empty line is kept as an empty raw event.
TEST(ParserRobustnessTest, EmptyLine) {
  ParsedEvent slot;
  Event& e = slot.parse("");
  EXPECT_EQ(e.format, EventFormat::kRaw);
  EXPECT_TRUE(e.has(kFlagParseError));
  EXPECT_EQ(e.message, "");
}

// Forced formats parse only that format; anything else is raw with a parse error.
TEST(ParserRobustnessTest, ForcedFormats) {
  ParsedEvent slot;
  const std::string_view bsd = "<13>Oct 11 22:14:15 h app: text";
  const std::string_view ietf = "<13>1 2024-01-01T00:00:00Z h app - - - text";
  const std::string_view json = R"({"a":1})";

  ParseOptions rfc5424;
  rfc5424.format = Format::kRfc5424;
  EXPECT_EQ(slot.parse(ietf, rfc5424).format, EventFormat::kRfc5424);
  EXPECT_TRUE(slot.parse(bsd, rfc5424).has(kFlagParseError));
  EXPECT_TRUE(slot.parse(json, rfc5424).has(kFlagParseError));

  ParseOptions rfc3164;
  rfc3164.format = Format::kRfc3164;
  EXPECT_EQ(slot.parse(bsd, rfc3164).format, EventFormat::kRfc3164);
  EXPECT_TRUE(slot.parse(json, rfc3164).has(kFlagParseError));

  ParseOptions as_json;
  as_json.format = Format::kJson;
  EXPECT_EQ(slot.parse(json, as_json).format, EventFormat::kJson);
  Event& e = slot.parse(bsd, as_json);
  EXPECT_EQ(e.format, EventFormat::kRaw);
  EXPECT_TRUE(e.has(kFlagParseError));
  EXPECT_EQ(e.message, bsd);
}

// Concatenated or invalid JSON in MSG stays text, with no fields left behind.
TEST(ParserRobustnessTest, BadJsonStaysText) {
  ParsedEvent slot;
  const char* payloads[] = {R"({"a":1}{"b":2})", R"({"a":1} {"b":2})", R"({"a":)",
                            R"({"a":1,})", R"({"a":tru})"};
  for (const char* payload : payloads) {
    const std::string line = std::string("<13>Oct 11 22:14:15 h app: ") + payload;
    Event& e = slot.parse(line);
    EXPECT_EQ(e.format, EventFormat::kRfc3164) << payload;
    EXPECT_FALSE(e.has(kFlagJsonPayload)) << payload;
    EXPECT_EQ(e.field_count, 0u) << payload;
  }
  // Invalid UTF-8 is repaired before the JSON parse, so the payload still flattens.
  Event& repaired = slot.parse("<13>Oct 11 22:14:15 h app: {\"a\":\"\xC3\"}");  // {"a":"<C3>"}
  EXPECT_TRUE(repaired.has(kFlagJsonPayload));
  EXPECT_TRUE(repaired.has(kFlagInvalidUtf8));
  EXPECT_EQ(get(repaired, "a"), "\xEF\xBF\xBD");
  // A bare line that is broken JSON falls back to raw.
  Event& bare = slot.parse(R"({"a":1}{"b":2})");
  EXPECT_EQ(bare.format, EventFormat::kRaw);
  EXPECT_TRUE(bare.has(kFlagParseError));
}

// "@cee:" with or without a space, and nested names joined with dots.
TEST(ParserRobustnessTest, CeeCookieAndNesting) {
  ParsedEvent slot;
  for (const char* cookie : {"@cee:", "@cee: "}) {
    const std::string line =
        std::string("<13>Oct 11 22:14:15 h app: ") + cookie + R"({"a":{"b":[true,{"c":"d"}]}})";
    Event& e = slot.parse(line);
    EXPECT_TRUE(e.has(kFlagJsonPayload)) << cookie;
    EXPECT_EQ(get(e, "a.b.0"), "true");
    EXPECT_EQ(get(e, "a.b.1.c"), "d");
  }
}

// An array under the empty key gets names "0", "1" that live in the arena.
TEST(ParserRobustnessTest, ArrayUnderEmptyKey) {
  ParsedEvent slot;
  Event& e = slot.parse(R"({"":[7,{"b":"c"}]})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_EQ(get(e, "0"), "7");
  EXPECT_EQ(get(e, "1.b"), "c");
}

// A JSON object of `members` members "k0":"v0", "k1":"v1", ...
std::string wideJson(size_t members) {
  std::string json = "{";
  for (size_t i = 0; i < members; ++i) {
    if (i != 0) json += ",";
    json += "\"k" + std::to_string(i) + "\":\"v" + std::to_string(i) + "\"";
  }
  return json + "}";
}

// Members past Event::kMaxFields go to the overflow area: each is still found by name,
// the event is flagged, and the fields_overflow counter counts it.
TEST(ParserRobustnessTest, FieldsOverflow) {
  ParsedEvent slot;
  Event& e = slot.parse(wideJson(200));
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_FALSE(e.has(kFlagArenaFull));
  EXPECT_EQ(e.field_count, Event::kMaxFields);
  EXPECT_EQ(e.totalFields(), 200u);
  EXPECT_EQ(get(e, "k0"), "v0");
  EXPECT_EQ(get(e, "k95"), "v95");
  EXPECT_EQ(get(e, "k96"), "v96");
  EXPECT_EQ(get(e, "k150"), "v150");
  EXPECT_EQ(get(e, "k199"), "v199");
  EXPECT_EQ(get(e, "k200"), "<missing>");
  const FieldRef ref = Event::resolve("k150");
  std::array<char, 64> scratch{};
  EXPECT_EQ(e.get(ref, scratch).value_or("<missing>"), "v150");

  Counter overflow, arena_full;
  ParseCounters counters;
  counters.fields_overflow = &overflow;
  counters.arena_full = &arena_full;
  countParseResult(e, counters);
  countParseResult(slot.parse(wideJson(Event::kMaxFields)), counters);
  EXPECT_EQ(overflow.value(), 1u);
  EXPECT_EQ(arena_full.value(), 0u);
}

// Well-known members past the field limit still fill the event's members.
TEST(ParserRobustnessTest, JsonPatternsSeeOverflowMembers) {
  std::string json = wideJson(150);
  json.back() = ',';
  json += R"("src_ip":"198.51.100.7","user":"carol"})";
  ParsedEvent slot;
  Event& e = slot.parse(json);
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_EQ(get(e, "source.ip"), "198.51.100.7");
  EXPECT_EQ(get(e, "user.name"), "carol");
}

// JSON in a syslog MSG that fails after the field limit (nesting too deep) leaves no
// overflow field behind: the message stays text.
TEST(ParserRobustnessTest, FailedJsonDropsOverflowFields) {
  std::string json = wideJson(150);
  json.back() = ',';
  json += R"("deep":)" + std::string(40, '[') + "1" + std::string(40, ']') + "}";
  ParsedEvent slot;
  Event& e = slot.parse("<13>Oct 11 22:14:15 h app: " + json);
  EXPECT_EQ(e.format, EventFormat::kRfc3164);
  EXPECT_FALSE(e.has(kFlagJsonPayload));
  EXPECT_FALSE(e.has(kFlagFieldsOverflow));
  EXPECT_EQ(e.totalFields(), 0u);
  EXPECT_EQ(get(e, "k150"), "<missing>");
  EXPECT_EQ(get(e, "k5"), "<missing>");
  EXPECT_EQ(e.message, json);
}

// RFC 5424 structured-data parameters past the field limit are found by name as well.
TEST(ParserRobustnessTest, StructuredDataOverflow) {
  std::string sd = "[ex@32473";
  for (size_t i = 0; i < 200; ++i) {
    sd += " p" + std::to_string(i) + "=\"v" + std::to_string(i) + "\"";
  }
  sd += "]";
  ParsedEvent slot;
  Event& e = slot.parse("<165>1 2024-06-01T00:00:00Z host app 1 ID47 " + sd + " text");
  EXPECT_EQ(e.format, EventFormat::kRfc5424);
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_EQ(e.totalFields(), 200u);
  EXPECT_EQ(get(e, "sd.ex@32473.p150"), "v150");
  EXPECT_EQ(get(e, "sd.ex@32473.p199"), "v199");
  EXPECT_EQ(e.message, "text");
}

// Overflow chunks that do not fit the arena are counted as arena_full, not lost quietly.
TEST(ParserRobustnessTest, OverflowArenaFullCounted) {
  const std::string json = wideJson(200);
  Event e(json.size() + 256);
  e.raw = e.arena.copy(json);
  parseEvent(e, {});
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_TRUE(e.has(kFlagArenaFull));
  EXPECT_LT(e.totalFields(), 200u);
  Counter arena_full;
  ParseCounters counters;
  counters.arena_full = &arena_full;
  countParseResult(e, counters);
  EXPECT_EQ(arena_full.value(), 1u);
}

// A full arena keeps the event and flags it instead of writing past the end.
TEST(ParserRobustnessTest, ArenaFull) {
  const std::string line = "<13>Oct 11 22:14:15 h app: bad \xFF\xFF\xFF\xFF bytes";
  Event event(line.size() + 4);
  event.raw = event.arena.copy(line);
  event.receive_ns = timeOf("2024-06-01T00:00:00Z");
  parseEvent(event, {});
  EXPECT_TRUE(event.has(kFlagArenaFull));
  EXPECT_EQ(event.message, "bad ");
  EXPECT_EQ(event.raw, line);
}

// Deeply nested JSON is kept as text instead of recursing without bound.
TEST(ParserRobustnessTest, DeepJsonStaysText) {
  const std::string json = std::string(200, '[').insert(0, "{\"a\":") + std::string(200, ']') + "}";
  ParsedEvent slot;
  Event& e = slot.parse(json);
  EXPECT_EQ(e.format, EventFormat::kRaw);
  EXPECT_EQ(e.field_count, 0u);
}

// RFC 3164 variants: no timestamp after PRI, ISO timestamp, zone and year after the
// time, default offset, "last message repeated" and Cisco's '*'.
TEST(ParserRobustnessTest, Rfc3164Variants) {
  ParsedEvent slot;
  const int64_t received = timeOf("2024-06-01T00:00:00Z");

  Event& no_time = slot.parse("<13>hello world", {}, received);
  EXPECT_EQ(no_time.format, EventFormat::kRfc3164);
  EXPECT_TRUE(no_time.has(kFlagTimestampInvalid));
  EXPECT_EQ(no_time.message, "hello world");

  Event& iso = slot.parse("<13>2024-05-31T23:00:00.5+02:00 h app[1]: m", {}, received);
  EXPECT_EQ(iso.timestamp_ns, timeOf("2024-05-31T21:00:00.5Z"));
  EXPECT_FALSE(iso.has(kFlagYearInferred));
  EXPECT_EQ(iso.host, "h");
  EXPECT_EQ(iso.procid, "1");

  Event& zone = slot.parse("<13>May 31 23:00:00 2023 UTC h app: m", {}, received);
  EXPECT_EQ(zone.timestamp_ns, timeOf("2023-05-31T23:00:00Z"));
  EXPECT_EQ(zone.host, "h");

  ParseOptions cest;
  cest.default_utc_offset_s = 7200;
  Event& local = slot.parse("<13>May 31 23:00:00 h app: m", cest, received);
  EXPECT_EQ(local.timestamp_ns, timeOf("2024-05-31T21:00:00Z"));

  Event& repeated = slot.parse("<13>May 31 23:00:00 h last message repeated 3 times", {}, received);
  EXPECT_EQ(repeated.host, "h");
  EXPECT_EQ(repeated.app, "");
  EXPECT_EQ(repeated.message, "last message repeated 3 times");

  Event& cisco = slot.parse("<189>*Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured", {}, received);
  EXPECT_EQ(cisco.format, EventFormat::kRfc3164);
  EXPECT_EQ(cisco.timestamp_ns, timeOf("2024-03-01T18:46:11.123Z"));
  EXPECT_EQ(cisco.app, "%SYS-5-CONFIG_I");
  EXPECT_EQ(cisco.message, "Configured");
}

// Out-of-range PRI values are not PRI.
TEST(ParserRobustnessTest, InvalidPri) {
  ParsedEvent slot;
  for (const char* line : {"<192>Oct 11 22:14:15 h a: m", "<013>Oct 11 22:14:15 h a: m",
                           "<>Oct 11 22:14:15 h a: m", "<1234>x"}) {
    Event& e = slot.parse(line);
    EXPECT_EQ(e.facility, -1) << line;
  }
}

// RFC 5424 NILVALUEs: timestamp -> receive time, other header fields empty.
TEST(ParserRobustnessTest, Rfc5424Nil) {
  ParsedEvent slot;
  Event& e = slot.parse("<14>1 - - - - - -");
  EXPECT_EQ(e.format, EventFormat::kRfc5424);
  EXPECT_EQ(e.timestamp_ns, e.receive_ns);
  EXPECT_EQ(e.host, "");
  EXPECT_EQ(e.app, "");
  EXPECT_EQ(e.structured_data, "-");
  EXPECT_EQ(e.message, "");
}

// RFC 5424 section 6.2.3 requires a UTC offset in TIMESTAMP. A time without one is
// still read as UTC, whatever the default offset, and flagged kFlagZoneAssumed.
TEST(ParserRobustnessTest, Rfc5424ZoneAssumed) {
  ParsedEvent slot;
  ParseOptions cest;
  cest.default_utc_offset_s = 7200;
  for (const char* line :
       {"<14>1 2026-03-01T10:00:00 h a - - - m", "<14>1 2026-03-01T10:00:00.25 h a - - - m"}) {
    for (const ParseOptions& options : {ParseOptions{}, cest}) {
      SCOPED_TRACE(line);
      Event& e = slot.parse(line, options);
      EXPECT_EQ(e.format, EventFormat::kRfc5424);
      EXPECT_TRUE(e.has(kFlagZoneAssumed));
      EXPECT_FALSE(e.has(kFlagTimestampInvalid));
      EXPECT_EQ(e.timestamp_ns - e.timestamp_ns % 1'000'000'000, timeOf("2026-03-01T10:00:00Z"));
      EXPECT_EQ(e.host, "h");
      EXPECT_EQ(e.message, "m");
    }
  }

  for (const char* line :
       {"<14>1 2026-03-01T10:00:00Z h a - - - m", "<14>1 2026-03-01T10:00:00.25z h a - - - m",
        "<14>1 2026-03-01T12:00:00+02:00 h a - - - m",
        "<14>1 2026-03-01T03:00:00.5-07:00 h a - - - m"}) {
    SCOPED_TRACE(line);
    Event& e = slot.parse(line);
    EXPECT_FALSE(e.has(kFlagZoneAssumed));
    EXPECT_EQ(e.timestamp_ns - e.timestamp_ns % 1'000'000'000, timeOf("2026-03-01T10:00:00Z"));
  }

  // The receive time replaces a NILVALUE or an invalid TIMESTAMP, so no zone is assumed.
  EXPECT_FALSE(slot.parse("<14>1 - h a - - - m").has(kFlagZoneAssumed));
  Event& invalid = slot.parse("<14>1 2026-02-30T10:00:00 h a - - - m");
  EXPECT_TRUE(invalid.has(kFlagTimestampInvalid));
  EXPECT_FALSE(invalid.has(kFlagZoneAssumed));

  // RFC 3164 timestamps carry no zone by design and are not flagged.
  EXPECT_FALSE(slot.parse("<13>May 31 23:00:00 h app: m").has(kFlagZoneAssumed));
  EXPECT_FALSE(slot.parse("<13>2024-05-31T23:00:00 h app: m").has(kFlagZoneAssumed));
}

// countParseFlags() counts events with kFlagZoneAssumed in ParseCounters::zone_assumed.
TEST(ParserRobustnessTest, ZoneAssumedCounted) {
  Counter zone_assumed;
  ParseCounters counters;
  counters.zone_assumed = &zone_assumed;
  ParsedEvent slot;
  countParseFlags(slot.parse("<14>1 2026-03-01T10:00:00 h a - - - m"), counters);
  EXPECT_EQ(zone_assumed.value(), 1u);
  countParseFlags(slot.parse("<14>1 2026-03-01T10:00:00Z h a - - - m"), counters);
  EXPECT_EQ(zone_assumed.value(), 1u);
}

// Years outside the int64_t nanosecond range are invalid timestamps, not overflows.
TEST(ParserRobustnessTest, FarFutureYear) {
  ParsedEvent slot;
  Event& ietf = slot.parse("<14>1 3024-05-01T10:00:00Z h a - - - m");
  EXPECT_EQ(ietf.format, EventFormat::kRfc5424);
  EXPECT_TRUE(ietf.has(kFlagTimestampInvalid));
  EXPECT_EQ(ietf.timestamp_ns, ietf.receive_ns);

  Event& json = slot.parse(R"({"ts":99999999999.5,"id.orig_h":"192.0.2.1"})");
  EXPECT_EQ(json.format, EventFormat::kJson);
  EXPECT_EQ(json.timestamp_ns, json.receive_ns);

  Event& bsd = slot.parse("<13>May 31 9999 23:00:00 h app: m");
  EXPECT_EQ(bsd.format, EventFormat::kRfc3164);
  // Year 9999 makes the timestamp invalid, so everything after PRI is MSG.
  EXPECT_TRUE(bsd.has(kFlagTimestampInvalid));
  EXPECT_EQ(bsd.message, "May 31 9999 23:00:00 h app: m");
}

// countParseResult() bumps the matching counters.
TEST(ParserRobustnessTest, CountersFollowFlags) {
  Counter parsed, errors, truncated, invalid;
  const ParseCounters counters{&parsed, &errors, &truncated, &invalid};
  ParsedEvent slot;
  countParseResult(slot.parse("<13>Oct 11 22:14:15 h a: \xFF"), counters);
  Event& raw = slot.parse("garbage");
  raw.flags |= kFlagTruncated;
  countParseResult(raw, counters);
  EXPECT_EQ(parsed.value(), 1u);
  EXPECT_EQ(errors.value(), 1u);
  EXPECT_EQ(truncated.value(), 1u);
  EXPECT_EQ(invalid.value(), 1u);
}

// An RFC 3164 line without PRI gets PRI 13 (user.notice), and missing_pri counts it.
TEST(ParserRobustnessTest, MissingPriIsUserNotice) {
  Counter parsed, errors, truncated, invalid, missing_pri;
  const ParseCounters counters{&parsed, &errors, &truncated, &invalid, &missing_pri};
  ParsedEvent slot;
  Event& bare = slot.parse("Feb 18 16:01:59 serverX app: hello");
  EXPECT_EQ(bare.format, EventFormat::kRfc3164);
  EXPECT_EQ(bare.facility, 1);
  EXPECT_EQ(bare.severity, 5);
  EXPECT_TRUE(bare.has(kFlagPriMissing));
  countParseResult(bare, counters);
  EXPECT_EQ(missing_pri.value(), 1u);

  Event& with_pri = slot.parse("<13>Feb 18 16:01:59 serverX app: hello");
  EXPECT_FALSE(with_pri.has(kFlagPriMissing));
  countParseResult(with_pri, counters);
  Event& json = slot.parse("{\"a\": 1}");
  EXPECT_EQ(json.facility, -1);
  countParseResult(json, counters);
  EXPECT_EQ(missing_pri.value(), 1u);
  EXPECT_EQ(parsed.value(), 3u);

  // A line without PRI that is not RFC 3164 either ends raw, with no PRI assumed.
  Event& raw = slot.parse("no timestamp and no PRI");
  EXPECT_TRUE(raw.has(kFlagParseError));
  EXPECT_FALSE(raw.has(kFlagPriMissing));
  countParseResult(raw, counters);
  EXPECT_EQ(missing_pri.value(), 1u);
  EXPECT_EQ(errors.value(), 1u);
  // With the format fixed, PRI is read the same way.
  ParseOptions rfc3164;
  rfc3164.format = Format::kRfc3164;
  Event& fixed = slot.parse("Feb 18 16:01:59 serverX app: hello", rfc3164);
  EXPECT_TRUE(fixed.has(kFlagPriMissing));
  ParseOptions rfc5424;
  rfc5424.format = Format::kRfc5424;
  Event& fixed5424 = slot.parse("<165>1 2003-10-11T22:14:15.003Z h app - - - m", rfc5424);
  EXPECT_EQ(fixed5424.facility, 20);
  EXPECT_EQ(fixed5424.severity, 5);
  EXPECT_FALSE(fixed5424.has(kFlagPriMissing));
}

// Year inference keeps the day numbers of the last date per thread. The same date
// received in other years, and other dates in between, still get their own year.
TEST(ParserRobustnessTest, InferredYearsAcrossReceiveYears) {
  ParsedEvent slot;
  struct Case {
    const char* line;
    const char* received;
    const char* expected;
  };
  const Case cases[] = {
      {"<13>Dec 31 23:59:59 h app: m", "2024-01-01T00:00:10Z", "2023-12-31T23:59:59Z"},
      {"<13>Dec 31 23:59:59 h app: m", "2024-06-01T00:00:00Z", "2023-12-31T23:59:59Z"},
      {"<13>Dec 31 23:59:59 h app: m", "2030-01-02T00:00:00Z", "2029-12-31T23:59:59Z"},
      {"<13>Jan  1 00:00:01 h app: m", "2029-12-31T23:59:00Z", "2030-01-01T00:00:01Z"},
      {"<13>Dec 31 23:59:59 h app: m", "2024-01-01T00:00:10Z", "2023-12-31T23:59:59Z"},
      // No Feb 29 lies within 184 days: the event time is the receive time.
      {"<13>Feb 29 12:00:00 h app: m", "2025-01-10T00:00:00Z", "2025-01-10T00:00:00Z"},
      {"<13>Feb 29 12:00:00 h app: m", "2028-02-01T00:00:00Z", "2028-02-29T12:00:00Z"},
  };
  for (const Case& c : cases) {
    Event& event = slot.parse(c.line, {}, timeOf(c.received));
    EXPECT_EQ(event.timestamp_ns, timeOf(c.expected)) << c.line << " received " << c.received;
  }
}

// A 4-digit token after the time is the year only when a zone follows. Otherwise it is
// the HOSTNAME, and a second space after it leaves an empty TAG.
TEST(ParserRobustnessTest, YearAfterTimeNeedsZone) {
  ParsedEvent slot;
  const int64_t received = timeOf("2024-06-01T00:00:00Z");
  Event& zoned = slot.parse("<13>May 31 23:00:00 2023 +02:00 h app: m", {}, received);
  EXPECT_EQ(zoned.timestamp_ns, timeOf("2023-05-31T21:00:00Z"));
  EXPECT_EQ(zoned.host, "h");

  Event& host = slot.parse("<13>May 31 23:00:00 2023 app: m", {}, received);
  EXPECT_EQ(host.timestamp_ns, timeOf("2024-05-31T23:00:00Z"));
  EXPECT_EQ(host.host, "2023");
  EXPECT_EQ(host.app, "app");
  EXPECT_EQ(host.message, "m");

  Event& empty_tag = slot.parse("<13>May 31 23:00:00 2023  text [x] y", {}, received);
  EXPECT_EQ(empty_tag.host, "2023");
  EXPECT_EQ(empty_tag.app, "");
  EXPECT_EQ(empty_tag.message, "text [x] y");
}

// A datagram or octet-counted frame that ends in LF or CRLF parses as the same line
// without it, so an address at the end of the line is still found.
TEST(ParserRobustnessTest, TrailingLineEndStripped) {
  const std::vector<std::string> lines = {
      "<13>1 2024-01-01T00:00:00Z h sshd 1 - - Invalid user bob from 203.0.113.9",
      "<13>Oct 11 22:14:15 hC sshd[1]: Invalid user bob from 203.0.113.9",
      "CEF:0|V|P|1|2|N|5|src=203.0.113.9",
  };
  for (const auto& line : lines) {
    for (const std::string ending : {"\n", "\r\n"}) {
      ParsedEvent slot;
      Event& e = slot.parse(line + ending);
      EXPECT_EQ(e.raw, line) << line;
      EXPECT_EQ(get(e, "source.ip"), "203.0.113.9") << line;
      EXPECT_FALSE(e.message.ends_with('\n')) << line;
      EXPECT_FALSE(e.message.ends_with('\r')) << line;
    }
  }
}

// Only one line end goes: an inner or second LF is message text.
TEST(ParserRobustnessTest, OnlyOneLineEndStripped) {
  ParsedEvent slot;
  Event& e = slot.parse("<13>Oct 11 22:14:15 h app: text\n\n");
  EXPECT_EQ(e.raw, "<13>Oct 11 22:14:15 h app: text\n");
}

}  // namespace
}  // namespace vigil::dataplane
