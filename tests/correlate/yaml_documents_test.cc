// The YAML stream splitter that replaces yaml-cpp's LoadAll, and the rule loader on
// inputs that made LoadAll loop forever.
#include "correlate/internal/yaml_documents.h"

#include <gtest/gtest.h>

#include <string>

#include "correlate/rules.h"

namespace vigil::correlate {
namespace {

using internal::splitYamlDocuments;

// A leading "---" and a directive stay with the first document.
TEST(YamlDocumentsTest, LeadingMarkerAndDirective) {
  auto docs = splitYamlDocuments("%YAML 1.2\n---\ntitle: a\n");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].first_line, 0u);
  EXPECT_EQ(docs[0].text, "%YAML 1.2\n---\ntitle: a\n");
}

// Each "---" starts a document. Its text is not padded, and first_line gives its line.
TEST(YamlDocumentsTest, SplitsWithFirstLines) {
  auto docs = splitYamlDocuments("a: 1\n---\nb: 2\n--- {c: 3}\n");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text, "a: 1\n");
  EXPECT_EQ(docs[1].first_line, 1u);
  EXPECT_EQ(docs[1].text, "---\nb: 2\n");
  EXPECT_EQ(docs[2].first_line, 3u);
  EXPECT_EQ(docs[2].text, "--- {c: 3}\n");
}

// Markers count only at column 0 and only alone or before a blank, and "..." ends one.
TEST(YamlDocumentsTest, MarkerRules) {
  auto docs = splitYamlDocuments("a: |\n  ---\n  text\nb: ---x\n...\nc: 1\r\n---\r\nd: 2");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text, "a: |\n  ---\n  text\nb: ---x\n");
  EXPECT_EQ(docs[1].first_line, 5u);
  EXPECT_EQ(docs[1].text, "c: 1\r\n");
  EXPECT_EQ(docs[2].first_line, 6u);
  EXPECT_EQ(docs[2].text, "---\r\nd: 2\n");
}

// Empty documents between markers are dropped, and an empty stream has none.
TEST(YamlDocumentsTest, EmptyDocuments) {
  EXPECT_TRUE(splitYamlDocuments("").empty());
  EXPECT_TRUE(splitYamlDocuments("\n\n").empty());
  EXPECT_EQ(splitYamlDocuments("---\n---\na: 1\n---\n   \n").size(), 1u);
}

// Streams on which yaml-cpp 0.7.0's LoadAll never returns: the loader finishes, either
// loading nothing or rejecting a document that is not a map, and an error names the line
// of the whole stream.
TEST(YamlDocumentsTest, LoaderSurvivesLoadAllHangs) {
  struct Case {
    const char* text;
    bool ok;
  };
  for (const Case& c : {Case{",", true}, Case{", x", true}, Case{" ,\n", true},
                        Case{"--- ,", true}, Case{"\"a\",", false}}) {
    RuleLoader loader;
    absl::Status status = loader.addText(c.text, "hang.yml");
    EXPECT_EQ(status.ok(), c.ok) << c.text << ": " << status;
    if (!c.ok) {
      EXPECT_NE(status.message().find("a rule must be a YAML map"), std::string::npos) << status;
      continue;
    }
    absl::StatusOr<RuleSet> rules = loader.finish();
    ASSERT_TRUE(rules.ok()) << c.text;
    EXPECT_TRUE(rules->detections.empty()) << c.text;
  }
  RuleLoader loader;
  absl::Status status = loader.addText("title: a\n---\ntitle: b\nx: [1,\n", "bad.yml");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("bad.yml:5: invalid YAML"), std::string::npos)
      << status;
}

// Errors in a late document of a long stream name the line of the whole stream: a YAML
// syntax error, and a rule error that names the document's first line.
TEST(YamlDocumentsTest, LateDocumentLines) {
  constexpr size_t kDocuments = 5000;
  std::string stream;
  for (size_t i = 0; i < kDocuments; ++i) {
    stream += "---\ntitle: rule " + std::to_string(i) + "\nlogsource: {product: linux}\n" +
              "detection:\n  sel: {a: '" + std::to_string(i) + "'}\n  condition: sel\n";
  }
  // Each document above has 6 lines, so the next one starts on line 6 * kDocuments + 1.
  const size_t next_line = 6 * kDocuments + 1;

  RuleLoader loader;
  ASSERT_TRUE(loader.addText(stream, "many.yml").ok());
  absl::StatusOr<RuleSet> rules = loader.finish();
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->detections.size(), kDocuments);
  EXPECT_EQ(rules->detections.back().line, next_line - 6);

  RuleLoader syntax;
  absl::Status bad_yaml = syntax.addText(stream + "---\ntitle: bad\nx: [1,\n", "many.yml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_NE(bad_yaml.message().find("many.yml:" + std::to_string(next_line + 3) +
                                    ": invalid YAML"),
            std::string::npos)
      << bad_yaml;

  RuleLoader rule;
  absl::Status bad_rule =
      rule.addText(stream + "---\ntitle: late\ndetection:\n  condition: missing\n", "many.yml");
  ASSERT_FALSE(bad_rule.ok());
  EXPECT_NE(bad_rule.message().find("many.yml:" + std::to_string(next_line) + ": document " +
                                    std::to_string(kDocuments + 1) + " rule 'late'"),
            std::string::npos)
      << bad_rule;
}

}  // namespace
}  // namespace vigil::correlate
