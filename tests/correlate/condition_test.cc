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

// Parentheses or "not" nested deeper than kMaxConditionDepth are rejected before the
// recursion grows: a condition of 30,000 parentheses once overflowed the stack.
TEST(ConditionTest, DeepNestingRejected) {
  auto wrapped = [](size_t levels) {
    return std::string(levels, '(') + "sel_a" + std::string(levels, ')');
  };
  EXPECT_EQ(parsed(wrapped(kMaxConditionDepth)), "sel_a");
  const std::string deep = parsed(wrapped(30000));
  EXPECT_EQ(deep.rfind("error: condition '((((", 0), 0u) << deep.substr(0, 200);
  EXPECT_NE(deep.find("nest deeper than 64 levels"), std::string::npos) << deep.substr(0, 200);
  // The message shows the start of the condition, not all 60,000 bytes of it.
  EXPECT_LT(deep.size(), 400u);

  std::string nots;
  for (size_t i = 0; i < kMaxConditionDepth; ++i) nots += "not ";
  EXPECT_EQ(parsed(nots + "sel_a").rfind("not not", 0), 0u);
  for (size_t i = 0; i < 30000; ++i) nots += "not ";
  EXPECT_NE(parsed(nots + "sel_a").find("nest deeper than 64 levels"), std::string::npos);

  // Levels of both kinds add up.
  std::string mixed;
  for (size_t i = 0; i < kMaxConditionDepth; ++i) mixed += i % 2 == 0 ? "not " : "(";
  mixed += "sel_a" + std::string(kMaxConditionDepth / 2, ')');
  EXPECT_EQ(parsed(mixed).rfind("not", 0), 0u) << parsed(mixed);
  EXPECT_NE(parsed("(" + mixed + ")").find("nest deeper than 64 levels"), std::string::npos);
}

}  // namespace
}  // namespace vigil::correlate
