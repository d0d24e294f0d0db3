#include "correlate/pattern.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

struct PatternCase {
  std::string value;  // Sigma value as written in the YAML string
  PatternAnchor anchor;
  std::string text;
  bool expected;
};

// Sigma escaping: only \*, \? and \\ are escapes, and the anchor's wildcards are added
// after escaping.
TEST(SigmaPatternTest, EscapingTable) {
  const std::vector<PatternCase> cases = {
      {R"(\Desktop\)", PatternAnchor::kContains, R"(C:\Users\a\Desktop\x.exe)", true},
      {R"(\Desktop\)", PatternAnchor::kContains, R"(C:\Users\a\Desktop)", false},
      {R"(\*)", PatternAnchor::kEndsWith, R"(dir C:\*)", true},
      {R"(\*)", PatternAnchor::kEndsWith, R"(dir C:\x)", false},
      {R"(a\*b)", PatternAnchor::kExact, "a*b", true},
      {R"(a\*b)", PatternAnchor::kExact, "axxb", false},
      {R"(a\?b)", PatternAnchor::kExact, "a?b", true},
      {R"(a\?b)", PatternAnchor::kExact, "axb", false},
      {R"(a\\*)", PatternAnchor::kExact, R"(a\anything)", true},
      {R"(a\\\*)", PatternAnchor::kExact, R"(a\*)", true},
      {R"(a\\\*)", PatternAnchor::kExact, R"(a\x)", false},
      {R"(a\\\\b)", PatternAnchor::kExact, R"(a\\b)", true},
      {R"(C:\Windows)", PatternAnchor::kExact, R"(C:\Windows)", true},
      {R"(C:\\Windows)", PatternAnchor::kExact, R"(C:\Windows)", true},
      {R"(trail\)", PatternAnchor::kExact, R"(trail\)", true},
      {"a*c", PatternAnchor::kExact, "abbbc", true},
      {"a*c", PatternAnchor::kExact, "abbbd", false},
      {"a?c", PatternAnchor::kExact, "abc", true},
      {"a?c", PatternAnchor::kExact,
       "a\xC3\xBC"
       "c",
       true},  // ? takes one UTF-8 character
      {"a?c", PatternAnchor::kExact, "ac", false},
      {"*.exe", PatternAnchor::kExact, "TOOL.EXE", true},
      {"cmd", PatternAnchor::kStartsWith, "CMD.exe /c", true},
      {"cmd", PatternAnchor::kStartsWith, "x cmd", false},
      {"", PatternAnchor::kExact, "", true},
      {"", PatternAnchor::kExact, "x", false},
      {"*a*b*", PatternAnchor::kExact, "xxaxxbxx", true},
      {"*a*b*", PatternAnchor::kExact, "xxbxxaxx", false},
  };
  for (const PatternCase& c : cases) {
    SigmaPattern pattern = SigmaPattern::compile(c.value, c.anchor, false, false);
    EXPECT_EQ(pattern.matches(c.text), c.expected)
        << "value '" << c.value << "' (" << pattern.toString() << ") on '" << c.text << "'";
  }
}

// Matching folds ASCII case unless the value carries `cased`.
TEST(SigmaPatternTest, CasedModifier) {
  SigmaPattern folded = SigmaPattern::compile("PowerShell", PatternAnchor::kContains, false, false);
  SigmaPattern cased = SigmaPattern::compile("PowerShell", PatternAnchor::kContains, true, false);
  EXPECT_TRUE(folded.matches("run powershell.exe"));
  EXPECT_FALSE(cased.matches("run powershell.exe"));
  EXPECT_TRUE(cased.matches("run PowerShell.exe"));
}

// windash lets a dash or slash in the value match any of the five dash characters.
TEST(SigmaPatternTest, WindashMatchesEveryDash) {
  SigmaPattern pattern = SigmaPattern::compile(" -enc ", PatternAnchor::kContains, false, true);
  EXPECT_TRUE(pattern.matches("powershell -enc AAA"));
  EXPECT_TRUE(pattern.matches("powershell /enc AAA"));
  EXPECT_TRUE(
      pattern.matches("powershell \xE2\x80\x93"
                      "enc AAA"));  // en dash
  EXPECT_TRUE(
      pattern.matches("powershell \xE2\x80\x94"
                      "enc AAA"));  // em dash
  EXPECT_TRUE(
      pattern.matches("powershell \xE2\x80\x95"
                      "enc AAA"));  // horizontal bar
  EXPECT_FALSE(pattern.matches("powershell +enc AAA"));
}

// A literal pattern has no wildcards and is case-sensitive.
TEST(SigmaPatternTest, LiteralIgnoresWildcards) {
  SigmaPattern pattern = SigmaPattern::literal("a*b", PatternAnchor::kContains);
  EXPECT_TRUE(pattern.matches("xxa*bxx"));
  EXPECT_FALSE(pattern.matches("xxaZbxx"));
  EXPECT_FALSE(pattern.matches("xxA*Bxx"));
}

}  // namespace
}  // namespace vigil::correlate
