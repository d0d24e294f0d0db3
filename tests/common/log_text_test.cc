#include <gtest/gtest.h>

#include <string>

#include "common/log.h"

namespace vigil {
namespace {

TEST(LogTextTest, KeepsPrintableAndValidUtf8) {
  EXPECT_EQ(logText("evil.example"), "evil.example");
  EXPECT_EQ(logText("m\xc3\xbcller.example"), "m\xc3\xbcller.example");
  EXPECT_EQ(logText("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(logText(""), "");
}

TEST(LogTextTest, EscapesControlQuotesAndInvalidBytes) {
  EXPECT_EQ(logText("a\nb"), "a\\x0ab");
  EXPECT_EQ(logText("say \"hi\""), "say \\x22hi\\x22");
  EXPECT_EQ(logText("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(logText("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(logText(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(logText("\x7f"), "\\x7f");
  // Overlong form, surrogate, past U+10FFFF, and a sequence cut short by the end.
  EXPECT_EQ(logText("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(logText("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(logText("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  EXPECT_EQ(logText("ok\xe2\x82"), "ok\\xe2\\x82");
}

}  // namespace
}  // namespace vigil
