#include "correlate/condition.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

const std::vector<std::string> kNames = {"sel_a", "sel_b", "sel_c", "filter_x", "_hidden"};

std::string parsed(const std::string& text) {
  absl::StatusOr<Condition> condition = parseCondition(text, kNames);
  if (!condition.ok()) return std::string("error: ") + std::string(condition.status().message());
  return condition->toString(kNames);
}

// `not` binds tighter than `and`, which binds tighter than `or`.
TEST(ConditionTest, Precedence) {
  EXPECT_EQ(parsed("sel_a or sel_b and sel_c"), "(sel_a or (sel_b and sel_c))");
  EXPECT_EQ(parsed("not sel_a and sel_b"), "(not sel_a and sel_b)");
  EXPECT_EQ(parsed("sel_a and not sel_b or sel_c"), "((sel_a and not sel_b) or sel_c)");
  EXPECT_EQ(parsed("not not sel_a"), "not not sel_a");
}

// Parentheses override precedence, and keywords are case-insensitive.
TEST(ConditionTest, Parentheses) {
  EXPECT_EQ(parsed("(sel_a or sel_b) and sel_c"), "((sel_a or sel_b) and sel_c)");
  EXPECT_EQ(parsed("sel_a AND NOT (sel_b OR sel_c)"), "(sel_a and not (sel_b or sel_c))");
  EXPECT_EQ(parsed("((sel_a))"), "sel_a");
}

// Quantifiers expand to the selections whose names match; `them` skips '_' names.
TEST(ConditionTest, Quantifiers) {
  EXPECT_EQ(parsed("1 of sel_*"), "(sel_a or sel_b or sel_c)");
  EXPECT_EQ(parsed("all of sel_*"), "(sel_a and sel_b and sel_c)");
  EXPECT_EQ(parsed("any of sel_*"), "(sel_a or sel_b or sel_c)");
  EXPECT_EQ(parsed("1 of sel_* and not 1 of filter_*"),
            "((sel_a or sel_b or sel_c) and not filter_x)");
  EXPECT_EQ(parsed("1 of them"), "(sel_a or sel_b or sel_c or filter_x)");
  EXPECT_EQ(parsed("all of them"), "(sel_a and sel_b and sel_c and filter_x)");
}

// Evaluation follows the tree and short-circuits.
TEST(ConditionTest, Evaluate) {
  absl::StatusOr<Condition> condition = parseCondition("sel_a and not sel_b or sel_c", kNames);
  ASSERT_TRUE(condition.ok()) << condition.status();
  auto run = [&](bool a, bool b, bool c) {
    const bool values[] = {a, b, c};
    return condition->evaluate([&](uint32_t i) { return values[i]; });
  };
  EXPECT_TRUE(run(true, false, false));
  EXPECT_FALSE(run(true, true, false));
  EXPECT_TRUE(run(true, true, true));
  EXPECT_FALSE(run(false, false, false));
}

// Bad conditions are rejected with the token and the reason.
TEST(ConditionTest, Errors) {
  EXPECT_EQ(parsed("sel_a and"),
            "error: condition 'sel_a and': missing selection name at end "
            "of condition (offset 9)");
  EXPECT_EQ(parsed("sel_z"), "error: condition 'sel_z': unknown selection at 'sel_z' (offset 0)");
  EXPECT_EQ(parsed("(sel_a"),
            "error: condition '(sel_a': missing ')' at end of condition "
            "(offset 6)");
  EXPECT_EQ(parsed("sel_a sel_b"),
            "error: condition 'sel_a sel_b': unexpected token at 'sel_b' "
            "(offset 6)");
  EXPECT_EQ(parsed("1 of nomatch*"),
            "error: condition '1 of nomatch*': no selection matches "
            "the pattern at 'nomatch*' (offset 5)");
  EXPECT_NE(parsed("sel_a | count() > 5").find("aggregation expressions are not supported"),
            std::string::npos);
  EXPECT_NE(parsed("sel_*").find("needs '1 of' or 'all of'"), std::string::npos);
}

}  // namespace
}  // namespace vigil::correlate
