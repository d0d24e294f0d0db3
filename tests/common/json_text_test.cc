// The JSON text writers against nlohmann's serializer, which they must match byte for
// byte, and the UTF-8 check against the sequence decoder of common/utf8.h.
#include "common/json_text.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace vigil {
namespace {

std::string nlohmannText(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool referenceValid(const std::string& text) {
  for (size_t pos = 0; pos < text.size();) {
    const int length = utf8SequenceLength(text, pos);
    if (length < 0) return false;
    pos += static_cast<size_t>(length);
  }
  return true;
}

std::string appended(const std::string& text) {
  std::string out = "prefix";
  appendJsonString(text, out);
  return out.substr(6);
}

// Every character that needs escaping, at every offset of a 16-byte block and of the
// tail after the last whole block.
TEST(JsonTextTest, EscapesAtEveryOffset) {
  std::string specials = "\"\\\b\f\n\r\t";
  for (int c = 0; c < 0x20; ++c) specials.push_back(static_cast<char>(c));
  specials.push_back('\x7f');
  for (char special : specials) {
    for (size_t length = 1; length <= 40; ++length) {
      for (size_t at = 0; at < length; ++at) {
        std::string text(length, 'a');
        text[at] = special;
        ASSERT_EQ(appended(text), nlohmannText(text))
            << "byte " << static_cast<int>(special) << " at " << at << " of " << length;
      }
    }
  }
}

TEST(JsonTextTest, PlainTextAndEmpty) {
  EXPECT_EQ(appended(""), "\"\"");
  const std::string plain(1000, 'x');
  EXPECT_EQ(appended(plain), "\"" + plain + "\"");
  const std::string utf8 =
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 and more text past sixteen bytes";
  EXPECT_EQ(appended(utf8), nlohmannText(utf8));
}

// Random texts built from ASCII, escapes, valid multi-byte characters and invalid bytes,
// so both the block loops and the byte loops meet every kind of byte.
TEST(JsonTextTest, RandomTextsMatchNlohmann) {
  std::mt19937 rng(20261206);
  const char* pieces[] = {"a",
                          "Z",
                          " ",
                          "\"",
                          "\\",
                          "\n",
                          "\x01",
                          "\x1f",
                          "\x7f",
                          "\xc3\xa9",
                          "\xe2\x82\xac",
                          "\xf0\x9f\x98\x80",
                          "\x80",
                          "\xc0\xaf",
                          "\xed\xa0\x80",
                          "\xf4\x90\x80\x80",
                          "\xe2\x82",
                          "0123456789abcdef"};
  constexpr size_t kPieces = sizeof(pieces) / sizeof(pieces[0]);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const size_t count = rng() % 24;
    // Half of the texts use only well-formed pieces (the first 12 and the last).
    const bool valid_only = round % 2 == 0;
    for (size_t i = 0; i < count; ++i) {
      size_t pick = rng() % kPieces;
      if (valid_only && pick >= 12 && pick != kPieces - 1) pick = rng() % 12;
      text += pieces[pick];
    }
    ASSERT_EQ(validUtf8(text), referenceValid(text)) << round;
    ASSERT_EQ(appended(text), nlohmannText(text)) << round;
    if (referenceValid(text)) {
      std::string out;
      appendValidJsonString(text, out);
      ASSERT_EQ(out, nlohmannText(text)) << round;
    }
  }
}

// Invalid bytes after a long ASCII run, and ASCII runs after a multi-byte character,
// exercise the switches between the 16-byte and the byte-at-a-time loops.
TEST(JsonTextTest, ValidUtf8AcrossBlocks) {
  for (size_t run = 0; run <= 48; ++run) {
    const std::string ascii(run, 'k');
    EXPECT_TRUE(validUtf8(ascii + "\xc3\xa9" + ascii)) << run;
    EXPECT_FALSE(validUtf8(ascii + "\xff" + ascii)) << run;
    EXPECT_FALSE(validUtf8(ascii + "\xc3\xa9" + ascii + "\xe2\x82")) << run;
    EXPECT_FALSE(validUtf8(ascii + "\xed\xa0\x80")) << run;     // a surrogate
    EXPECT_TRUE(validUtf8(ascii + "\xf4\x8f\xbf\xbf")) << run;  // U+10FFFF
  }
}

}  // namespace
}  // namespace vigil
