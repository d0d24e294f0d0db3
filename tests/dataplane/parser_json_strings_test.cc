// JSON string escapes that simdjson rejects, and how the parser keeps such events.
#include <gtest/gtest.h>

#include <string>

#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::get;
using testing::ParsedEvent;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// A lone high or low surrogate escape becomes U+FFFD and the event is flagged, instead of
// the whole document falling back to raw text.
TEST(ParserJsonStringsTest, LoneSurrogateReplacedAndFlagged) {
  ParsedEvent slot;
  const Event& e =
      slot.parse(R"({"user":"a\ud800b","file":"\udc00","src_ip":"192.0.2.7","n":1})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_FALSE(e.has(kFlagParseError));
  EXPECT_TRUE(e.has(kFlagInvalidUtf8));
  EXPECT_EQ(get(e, "user.name"), "a" + std::string(kReplacement) + "b");
  EXPECT_EQ(get(e, "file"), std::string(kReplacement));
  EXPECT_EQ(get(e, "source.ip"), "192.0.2.7");
}

// A high surrogate followed by a low one is a valid pair and decodes to one code point;
// the event is not flagged.
TEST(ParserJsonStringsTest, SurrogatePairDecodes) {
  ParsedEvent slot;
  const Event& e = slot.parse(R"({"msg":"x\ud83d\ude00y"})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_FALSE(e.has(kFlagInvalidUtf8));
  EXPECT_EQ(get(e, "msg"), "x\xF0\x9F\x98\x80y");
}

// A high surrogate followed by an escaped backslash and "u" is not a pair: the text
// "\\udc00" is a backslash and letters, not an escape.
TEST(ParserJsonStringsTest, EscapedBackslashIsNoEscape) {
  ParsedEvent slot;
  const Event& e = slot.parse(R"({"path":"\ud800\\udc00"})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_TRUE(e.has(kFlagInvalidUtf8));
  EXPECT_EQ(get(e, "path"), std::string(kReplacement) + "\\udc00");
}

// Other string errors still leave the event as text, with no fields from the document.
TEST(ParserJsonStringsTest, BadEscapeStaysRaw) {
  ParsedEvent slot;
  const Event& e = slot.parse(R"({"a":"\q"})");
  EXPECT_NE(e.format, EventFormat::kJson);
  EXPECT_EQ(get(e, "a"), "<missing>");
}

// Invalid UTF-8 in a bare JSON line is replaced before the document is parsed, as in a
// syslog payload, so the event keeps its fields and is flagged. A BOM before the
// document is stripped and flagged.
TEST(ParserJsonStringsTest, InvalidUtf8KeepsFields) {
  ParsedEvent slot;
  const Event& bad = slot.parse("{\"src_ip\":\"192.0.2.10\",\"ua\":\"curl\xff\"}");
  EXPECT_EQ(bad.format, EventFormat::kJson);
  EXPECT_FALSE(bad.has(kFlagParseError));
  EXPECT_TRUE(bad.has(kFlagInvalidUtf8));
  EXPECT_EQ(get(bad, "source.ip"), "192.0.2.10");
  EXPECT_EQ(get(bad, "ua"), "curl" + std::string(kReplacement));
  EXPECT_NE(bad.raw.find('\xff'), std::string_view::npos);

  const Event& bom = slot.parse("\xEF\xBB\xBF{\"src_ip\":\"192.0.2.11\"}");
  EXPECT_EQ(bom.format, EventFormat::kJson);
  EXPECT_TRUE(bom.has(kFlagMsgUtf8Bom));
  EXPECT_EQ(get(bom, "source.ip"), "192.0.2.11");

  ParseOptions json_only;
  json_only.format = Format::kJson;
  const Event& fixed = slot.parse("{\"src_ip\":\"192.0.2.12\",\"x\":\"\xc3\"}", json_only);
  EXPECT_EQ(fixed.format, EventFormat::kJson);
  EXPECT_TRUE(fixed.has(kFlagInvalidUtf8));
  EXPECT_EQ(get(fixed, "source.ip"), "192.0.2.12");

  // A document that is still not JSON after the repair stays raw text with no fields.
  const Event& broken = slot.parse("{\"src_ip\":\"192.0.2.13\",\"x\":\xff");
  EXPECT_TRUE(broken.has(kFlagParseError));
  EXPECT_EQ(get(broken, "source.ip"), "<missing>");
}

}  // namespace
}  // namespace vigil::dataplane
