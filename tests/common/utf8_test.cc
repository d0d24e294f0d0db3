// Cutting text at a byte limit without splitting a UTF-8 sequence.
#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace vigil {
namespace {

TEST(Utf8PrefixTest, CutsBeforeSplitCharacter) {
  const std::string text = "ab\xe2\x82\xac" "c";  // "ab€c"
  EXPECT_EQ(utf8PrefixLength(text, 10), text.size());
  EXPECT_EQ(utf8PrefixLength(text, 6), 6u);
  EXPECT_EQ(utf8PrefixLength(text, 5), 5u);  // after the whole euro sign
  EXPECT_EQ(utf8PrefixLength(text, 4), 2u);  // inside it: back to its start
  EXPECT_EQ(utf8PrefixLength(text, 3), 2u);
  EXPECT_EQ(utf8PrefixLength(text, 2), 2u);
  EXPECT_EQ(utf8PrefixLength(text, 0), 0u);
  const std::string emoji = "\xf0\x9f\x98\x80\xf0\x9f\x98\x80";  // two 4-byte characters
  EXPECT_EQ(utf8PrefixLength(emoji, 7), 4u);
  EXPECT_EQ(utf8PrefixLength(emoji, 5), 4u);
  EXPECT_EQ(utf8PrefixLength(emoji, 4), 4u);
}

// Invalid text (a run of continuation bytes) is cut at the limit, not emptied.
TEST(Utf8PrefixTest, InvalidRunCutAtLimit) {
  const std::string text(10, '\x80');
  EXPECT_EQ(utf8PrefixLength(text, 6), 6u);
}

}  // namespace
}  // namespace vigil
