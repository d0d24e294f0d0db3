#include "common/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil {
namespace {

std::string nested(size_t levels) {
  return "{\"a\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
}

TEST(JsonDepthTest, CountsArraysAndObjects) {
  EXPECT_FALSE(jsonNestsDeeper("{}", 1));
  EXPECT_TRUE(jsonNestsDeeper("{\"a\":[]}", 1));
  EXPECT_FALSE(jsonNestsDeeper("{\"a\":[]}", 2));
  EXPECT_FALSE(jsonNestsDeeper(nested(kMaxJsonDepth)));
  EXPECT_TRUE(jsonNestsDeeper(nested(kMaxJsonDepth + 1)));
  EXPECT_TRUE(jsonNestsDeeper(nested(100000)));
  // Siblings do not add up: three arrays side by side nest two levels.
  EXPECT_FALSE(jsonNestsDeeper("{\"a\":[],\"b\":[],\"c\":[]}", 2));
}

TEST(JsonDepthTest, IgnoresBracketsInStrings) {
  const std::string brackets(1000, '[');
  EXPECT_FALSE(jsonNestsDeeper("{\"title\":\"" + brackets + "\"}", 1));
  // An escaped quote does not end the string, so the brackets after it stay inside.
  EXPECT_FALSE(jsonNestsDeeper("{\"t\":\"say \\\"" + brackets + "\\\" \"}", 1));
  // An escaped backslash before the closing quote does end it.
  EXPECT_TRUE(jsonNestsDeeper("{\"t\":\"a\\\\\",\"u\":[[]]}", 2));
}

TEST(JsonDepthTest, MalformedTextDoesNotUnderflow) {
  EXPECT_FALSE(jsonNestsDeeper("]]]]{}", 1));
  EXPECT_TRUE(jsonNestsDeeper("]]]][[", 1));
  EXPECT_FALSE(jsonNestsDeeper("\"unterminated [[[[", 1));
  EXPECT_FALSE(jsonNestsDeeper("", 0));
}

}  // namespace
}  // namespace vigil
