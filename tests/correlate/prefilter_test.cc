// The detection prefilter and logsource selection: both only skip rules that cannot
// match, so detect() returns what evaluating every rule returns.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/internal/detection_index.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;
using testing::readJsonDocuments;
using testing::sharedPath;

// ---------------------------------------------------------------------------------------
// Helpers

// Loads every corpus rule file that loads on its own into one rule set, skipping files
// whose rule ids were seen already.
std::shared_ptr<const RuleSet> loadCorpus(const FieldMapping& mapping = FieldMapping::defaults()) {
  const std::filesystem::path root = sharedPath("sigma");
  std::vector<std::string> files;
  for (const char* folder :
       {"rules", "rules-emerging-threats", "rules-threat-hunting", "spec-tests/rules"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root / folder)) {
      if (entry.path().extension() == ".yml") files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  RuleLoader all(mapping);
  std::set<std::string> ids;
  for (const std::string& file : files) {
    RuleLoader alone(mapping);
    if (!alone.addFile(file).ok()) continue;
    absl::StatusOr<RuleSet> rules = alone.finish();
    if (!rules.ok() || !rules->correlations.empty()) continue;
    bool duplicate = false;
    for (const DetectionRule& rule : rules->detections) {
      duplicate = duplicate || (!rule.id.empty() && ids.count(rule.id) > 0);
    }
    if (duplicate) continue;
    for (const DetectionRule& rule : rules->detections) ids.insert(rule.id);
    EXPECT_TRUE(all.addFile(file).ok()) << file;
  }
  absl::StatusOr<RuleSet> rules = all.finish();
  EXPECT_TRUE(rules.ok()) << rules.status();
  if (!rules.ok()) return std::make_shared<RuleSet>();
  return std::make_shared<RuleSet>(std::move(*rules));
}

// Returns a text that `pattern` matches: wildcards become letters, escapes are undone.
std::string sampleText(const SigmaPattern& pattern) {
  std::string notation = pattern.toString();
  std::string out;
  for (size_t i = 0; i < notation.size(); ++i) {
    if (notation[i] == '\\' && i + 1 < notation.size()) {
      out += notation[++i];
    } else if (notation[i] == '*') {
      out += "x";
    } else if (notation[i] == '?') {
      out += "y";
    } else {
      out += notation[i];
    }
  }
  return out;
}

// Returns a text for a test that is not a wildcard pattern: an address inside a `cidr`
// prefix, a number that passes a comparison, or "1" for the others.
std::string otherSample(const ValueTest& test) {
  switch (test.op) {
    case ValueTest::Op::kCidr:
      return formatIp(test.prefix.addr);
    case ValueTest::Op::kLess:
      return std::to_string(static_cast<long long>(test.number) - 1);
    case ValueTest::Op::kGreater:
      return std::to_string(static_cast<long long>(test.number) + 1);
    case ValueTest::Op::kLessEqual:
    case ValueTest::Op::kGreaterEqual:
      return std::to_string(static_cast<long long>(test.number));
    default:
      return "1";
  }
}

// One generated event: field name -> value, and the keyword text.
struct GeneratedEvent {
  std::vector<std::pair<std::string, std::string>> fields;
  std::string message;
  uint32_t rule = 0;  // the rule whose values the event holds
};

// Builds one event per selection alternative of each rule, holding a matching text for
// every string test of that alternative. Texts of case-insensitive values are upper-cased
// at random.
std::vector<GeneratedEvent> generateEvents(const RuleSet& rules, std::mt19937& random) {
  std::vector<GeneratedEvent> events;
  for (uint32_t index = 0; index < rules.detections.size(); ++index) {
    const DetectionRule& rule = rules.detections[index];
    for (const Selection& selection : rule.selections) {
      for (const std::vector<FieldTest>& alternative : selection.alternatives) {
        GeneratedEvent event;
        event.rule = index;
        for (const FieldTest& field : alternative) {
          std::string text;
          for (const ValueTest& test : field.values) {
            std::string sample;
            if (test.op != ValueTest::Op::kPattern) {
              // Values that only the field's presence prefilters: a matching value where
              // one is easy to make, any value otherwise.
              sample = otherSample(test);
              text += sample;
              if (!field.all) break;
              text += " ";
              continue;
            }
            sample = sampleText(test.pattern);
            if (!test.pattern.cased() && random() % 2 == 0) {
              for (char& c : sample) {
                if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
              }
            }
            text += sample;
            if (!field.all) break;
            text += " ";
          }
          if (field.source == FieldTest::Source::kKeyword) {
            event.message += text;
          } else if (field.source == FieldTest::Source::kEvent) {
            // Under the mapped name, the Sigma name (the mapping fallback) or a name that
            // a log source mapping gives the field, chosen at random.
            std::vector<std::string> names = {field.event_name, field.sigma_name};
            for (const auto& [definition, name] : field.logsource_refs) {
              names.push_back(name.name());
            }
            event.fields.emplace_back(names[random() % names.size()], text);
          }
        }
        events.push_back(std::move(event));
      }
    }
  }
  return events;
}

void fillGenerated(Event& event, const GeneratedEvent& generated) {
  event.reset();
  event.arena.reset();
  event.raw = event.arena.copy(generated.message.empty() ? "raw text" : generated.message);
  if (!generated.message.empty()) event.message = event.raw;
  for (const auto& [name, value] : generated.fields) {
    if (name == "user.name") {
      event.user = event.arena.copy(value);
    } else if (name == "host.name") {
      event.host = event.arena.copy(value);
    } else if (name == "process.name") {
      event.app = event.arena.copy(value);
    } else {
      event.addField(event.arena.copy(name), event.arena.copy(value));
    }
  }
}

// Runs detect() with and without the prefilter and compares the matches.
class Differential {
 public:
  explicit Differential(std::shared_ptr<const RuleSet> rules)
      : rules_(std::move(rules)),
        fast_(rules_, {}, &metrics_),
        slow_(rules_, slowOptions()),
        fast_scratch_(*rules_),
        slow_scratch_(*rules_) {}

  // Returns the number of matches, after checking that both engines agree.
  size_t check(const Event& event, const std::string& label) {
    std::array<uint32_t, 256> fast;
    std::array<uint32_t, 256> slow;
    size_t fast_count = fast_.detect(event, fast_scratch_, fast);
    size_t slow_count = slow_.detect(event, slow_scratch_, slow);
    std::vector<uint32_t> a(fast.begin(), fast.begin() + static_cast<long>(fast_count));
    std::vector<uint32_t> b(slow.begin(), slow.begin() + static_cast<long>(slow_count));
    matched_rules_.insert(b.begin(), b.end());
    EXPECT_EQ(a, b) << label;
    if (a != b) {
      for (uint32_t i : b) {
        if (std::find(a.begin(), a.end(), i) == a.end()) {
          ADD_FAILURE() << "prefilter missed " << rules_->detections[i].origin << " on " << label;
        }
      }
    }
    return slow_count;
  }

  MetricsRegistry& metrics() { return metrics_; }
  // Distinct rules that matched at least one checked event.
  size_t matchedRules() const { return matched_rules_.size(); }

 private:
  static EngineOptions slowOptions() {
    EngineOptions options;
    options.prefilter = false;
    return options;
  }

  std::shared_ptr<const RuleSet> rules_;
  MetricsRegistry metrics_;
  Engine fast_;
  Engine slow_;
  DetectScratch fast_scratch_;
  DetectScratch slow_scratch_;
  std::set<uint32_t> matched_rules_;
};

uint64_t ruleCounter(MetricsRegistry& metrics, const std::string& name, const std::string& rule) {
  return metrics.counter(name, "", {{"rule", rule}}).value();
}

// ---------------------------------------------------------------------------------------
// Differential tests

// Prefiltered detection equals full evaluation on the regression events and on events
// generated from every corpus rule's values (with random letter case and field names).
TEST(PrefilterTest, CorpusMatchesFullEvaluation) {
  std::shared_ptr<const RuleSet> rules = loadCorpus();
  ASSERT_GT(rules->detections.size(), 400u);
  const internal::DetectionIndex& index = *rules->index;
  std::printf("prefilter: %zu of %zu rules prefiltered, %zu literals\n",
              index.prefilteredRuleCount(), rules->detections.size(), index.literalCount());
  for (uint32_t i = 0; i < rules->detections.size(); ++i) {
    if (!index.prefiltered(i))
      std::printf("  always evaluated: %s\n", rules->detections[i].origin.c_str());
  }
  EXPECT_GE(index.prefilteredRuleCount(), rules->detections.size() * 8 / 10);

  Differential differential(rules);
  Event event(1 << 16);
  size_t matches = 0;
  size_t events = 0;
  for (const auto& folder : std::filesystem::directory_iterator(
           std::filesystem::path(sharedPath("sigma")) / "regression")) {
    for (const auto& file : std::filesystem::directory_iterator(folder.path())) {
      if (file.path().extension() != ".json") continue;
      for (const nlohmann::json& document : readJsonDocuments(file.path().string())) {
        fillEvent(event, document);
        matches += differential.check(event, file.path().string());
        ++events;
      }
    }
  }
  std::mt19937 random(7);
  std::vector<GeneratedEvent> generated = generateEvents(*rules, random);
  for (size_t i = 0; i < generated.size(); ++i) {
    fillGenerated(event, generated[i]);
    matches += differential.check(event, "generated event " + std::to_string(i));
    ++events;
  }
  // Mixtures of three generated events, so several rules' literals share one event.
  for (size_t i = 0; i < 2000; ++i) {
    GeneratedEvent mixed;
    for (int part = 0; part < 3; ++part) {
      const GeneratedEvent& source = generated[random() % generated.size()];
      mixed.fields.insert(mixed.fields.end(), source.fields.begin(), source.fields.end());
      mixed.message += source.message;
    }
    fillGenerated(event, mixed);
    matches += differential.check(event, "mixed event " + std::to_string(i));
    ++events;
  }
  // Generated events with filler fields of other rules' names in between, up to
  // 12,000 bytes each, so that one scan group's values take several blocks and some are
  // longer than the scan buffer.
  std::vector<std::string> names;
  for (const GeneratedEvent& source : generated) {
    for (const auto& [name, value] : source.fields) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  Event padded_event(1 << 20);
  for (size_t i = 0; i < 300; ++i) {
    const GeneratedEvent& source = generated[random() % generated.size()];
    GeneratedEvent padded;
    padded.message = source.message;
    for (const auto& field : source.fields) {
      for (int filler = 0; filler < 3; ++filler) {
        const std::string& name = names[random() % names.size()];
        auto same = [&](const auto& other) { return other.first == name; };
        if (std::any_of(source.fields.begin(), source.fields.end(), same) ||
            std::any_of(padded.fields.begin(), padded.fields.end(), same)) {
          continue;
        }
        const size_t length = random() % 2 == 0 ? 1 + random() % 200 : 1 + random() % 12000;
        std::string text(length, ' ');
        for (char& c : text) {
          const auto letter = static_cast<char>(random() % 27);
          c = letter == 26 ? ' ' : static_cast<char>('a' + letter);
        }
        padded.fields.emplace_back(name, std::move(text));
      }
      padded.fields.push_back(field);
    }
    fillGenerated(padded_event, padded);
    matches += differential.check(padded_event, "padded event " + std::to_string(i));
    ++events;
  }
  std::printf("prefilter differential: %zu events, %zu matches, %zu of %zu rules matched\n", events,
              matches, differential.matchedRules(), rules->detections.size());
  // The generated events must make most rules match, or the comparison proves little.
  EXPECT_GE(differential.matchedRules(), rules->detections.size() * 3 / 4);
}

// Log source definitions for the corpus: an event belongs to one when its LogSource
// field names it, and the process definition maps two fields to other names.
FieldMapping corpusLogSources() {
  FieldMapping mapping = FieldMapping::defaults();
  const struct {
    const char* tag;
    LogSource logsource;
  } kDefinitions[] = {
      {"process", {"windows", "process_creation", ""}}, {"file", {"windows", "file_event", ""}},
      {"script", {"windows", "ps_script", ""}},         {"security", {"windows", "", "security"}},
      {"linux", {"linux", "process_creation", ""}},     {"proxy", {"", "proxy", ""}},
  };
  for (const auto& definition : kDefinitions) {
    LogSourceDefinition added;
    added.name = definition.tag;
    added.logsource = definition.logsource;
    added.conditions = {{"LogSource", definition.tag}};
    if (std::string(definition.tag) == "process") {
      added.field_mapping = {{"Image", "NewProcessName"}, {"CommandLine", "ProcessCommandLine"}};
    }
    EXPECT_TRUE(mapping.addLogSource(added).ok());
  }
  return mapping;
}

// With log source definitions, prefiltered detection (which also skips scanning fields
// of rules that cannot run) still equals full evaluation.
TEST(PrefilterTest, CorpusWithLogSourcesMatchesFullEvaluation) {
  std::shared_ptr<const RuleSet> rules = loadCorpus(corpusLogSources());
  ASSERT_GT(rules->detections.size(), 400u);
  Differential differential(rules);
  Event event(1 << 16);
  std::mt19937 random(11);
  std::vector<GeneratedEvent> generated = generateEvents(*rules, random);
  const char* kTags[] = {"process", "file", "script", "security", "linux", "proxy", "none"};
  size_t matches = 0;
  for (size_t i = 0; i < generated.size(); ++i) {
    // The first definition the event's rule runs on, and one at random.
    const DetectionRule& rule = rules->detections[generated[i].rule];
    const char* own =
        rule.logsource_mask == 0 ? "none" : kTags[__builtin_ctzll(rule.logsource_mask)];
    for (const char* tag : {own, kTags[random() % 7]}) {
      GeneratedEvent tagged = generated[i];
      tagged.fields.emplace_back("LogSource", tag);
      fillGenerated(event, tagged);
      matches += differential.check(event, "generated event " + std::to_string(i) + " " + tag);
    }
  }
  std::printf("prefilter differential with log sources: %zu matches, %zu rules matched\n", matches,
              differential.matchedRules());
  EXPECT_GE(differential.matchedRules(), rules->detections.size() / 4);
}

// ---------------------------------------------------------------------------------------
// Prefilter behaviour

// A rule whose literal is absent is not evaluated; one whose literal is present is.
TEST(PrefilterTest, SkipsRulesWithoutLiteral) {
  auto rules = loadRuleSet(R"(
title: tool
id: tool
detection: {sel: {Image|endswith: '\tool.exe'}, condition: sel}
---
title: negated
id: negated
detection: {sel: {Image|endswith: '\tool.exe'}, condition: not sel}
)");
  ASSERT_EQ(rules->detections.size(), 2u);
  EXPECT_TRUE(rules->index->prefiltered(0));
  EXPECT_FALSE(rules->index->prefiltered(1));
  Differential differential(rules);
  Event event(4096);
  fillEvent(event, {{"Image", "C:\\Windows\\cmd.exe"}});
  EXPECT_EQ(differential.check(event, "cmd"), 1u);
  MetricsRegistry& metrics = differential.metrics();
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_evaluations_total", "tool"), 0u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_evaluations_total", "negated"), 1u);

  fillEvent(event, {{"Image", "C:\\Temp\\TOOL.EXE"}});
  EXPECT_EQ(differential.check(event, "tool"), 1u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_evaluations_total", "tool"), 1u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "tool"), 1u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_matches_total", "tool"), 1u);
}

// A literal that spans the end of one field and the start of the next does not count,
// and a literal in a field the rule does not read does not count either.
TEST(PrefilterTest, LiteralMustLieInsideItsField) {
  auto rules = loadRuleSet(R"(
title: bc
id: bc
detection: {sel: {a|contains: 'bc'}, condition: sel}
)");
  Differential differential(rules);
  Event event(4096);
  fillEvent(event, {{"a", "ab"}, {"b", "cd"}, {"c", "bc"}});
  EXPECT_EQ(differential.check(event, "split"), 0u);
  EXPECT_EQ(ruleCounter(differential.metrics(), "vigil_detection_prefilter_hits_total", "bc"), 0u);
  fillEvent(event, {{"b", "cd"}, {"a", "abc"}});
  EXPECT_EQ(differential.check(event, "inside"), 1u);
}

// The values of one scan group are copied back to back and scanned as one block, so a
// literal that spans two of them must not count, while one at either end of a value does.
TEST(PrefilterTest, BlockKeepsValueBoundaries) {
  auto rules = loadRuleSet(R"(
title: bc
id: bc
detection: {sel: {a|contains: 'bc'}, condition: sel}
---
title: cd
id: cd
detection: {sel: {b|contains: 'cd'}, condition: sel}
)");
  ASSERT_EQ(rules->index->groupCount(), 1u);
  Differential differential(rules);
  MetricsRegistry& metrics = differential.metrics();
  Event event(4096);
  // "ab" then "cd": the block reads "abcd", whose "bc" spans both values.
  fillEvent(event, {{"a", "ab"}, {"b", "cd"}});
  EXPECT_EQ(differential.check(event, "spanning"), 1u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "bc"), 0u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "cd"), 1u);
  fillEvent(event, {{"a", "bc"}, {"b", "xcd"}});
  EXPECT_EQ(differential.check(event, "at the ends"), 2u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "bc"), 1u);
}

// Values that do not fit the scan buffer together take several blocks, and a value longer
// than the buffer is scanned where it lies. Literals at the start and end of each value
// still count.
TEST(PrefilterTest, LongValuesTakeSeveralBlocks) {
  auto rules = loadRuleSet(R"(
title: f1
id: f1
detection: {sel: {f1|endswith: 'needle'}, condition: sel}
---
title: f2
id: f2
detection: {sel: {f2|endswith: 'needle'}, condition: sel}
---
title: f3
id: f3
detection: {sel: {f3|endswith: 'needle'}, condition: sel}
---
title: f4
id: f4
detection: {sel: {f4|startswith: 'needle'}, condition: sel}
---
title: f5
id: f5
detection: {sel: {f5|contains: 'needle'}, condition: sel}
)");
  ASSERT_EQ(rules->index->groupCount(), 1u);
  constexpr size_t kBuffer = internal::PrefilterScratch::kTextBytes;
  Differential differential(rules);
  MetricsRegistry& metrics = differential.metrics();
  Event event(1 << 16);
  // f1 fills most of the buffer, f2 starts the second block, f3 is longer than the
  // buffer, and f4 and f5 share the block after it.
  fillEvent(event, {{"f1", std::string(kBuffer - 100, 'x') + "needle"},
                    {"f2", std::string(kBuffer / 2, 'x') + "needle"},
                    {"f3", std::string(kBuffer + 10, 'x') + "needle"},
                    {"f4", "needle" + std::string(20, 'y')},
                    {"f5", "yneedley"}});
  EXPECT_EQ(differential.check(event, "long values"), 5u);
  for (const char* rule : {"f1", "f2", "f3", "f4", "f5"}) {
    EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", rule), 1u) << rule;
  }
  // A value of exactly the buffer's size fits one block.
  fillEvent(event, {{"f1", std::string(kBuffer - 6, 'x') + "needle"}, {"f2", "needle"}});
  EXPECT_EQ(differential.check(event, "full buffer"), 2u);
  // The same values with the literal missing match nothing and fire nothing.
  fillEvent(event, {{"f1", std::string(kBuffer - 100, 'x')},
                    {"f2", std::string(kBuffer / 2, 'x')},
                    {"f3", std::string(kBuffer + 10, 'x')},
                    {"f4", std::string(20, 'y')},
                    {"f5", "y"}});
  EXPECT_EQ(differential.check(event, "no literal"), 0u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "f1"), 2u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "f5"), 1u);
}

// Which rule shapes are prefiltered: OR needs a literal or a presence on every branch,
// AND on one, `all` on one value. Values without a literal that are false on an absent
// field leave the field's presence; `not`, `exists: false`, `null` and a keyword without a
// literal leave nothing.
TEST(PrefilterTest, ClassifiesConditions) {
  auto rules = loadRuleSet(R"(
title: or_both
detection: {a: {x|contains: foo}, b: {y: bar}, condition: a or b}
---
title: or_one_present
detection: {a: {x|contains: foo}, b: {y|exists: true}, condition: a or b}
---
title: and_one
detection: {a: {x|contains: foo}, b: {y|cidr: 10.0.0.0/8}, condition: a and b}
---
title: all_one
detection: {a: {x|contains|all: ['*', 'foo']}, condition: a}
---
title: list_with_wildcard
detection: {a: {x: ['foo', '*']}, condition: a}
---
title: keywords
detection: {k: [evil, bad], condition: k}
---
title: regex
detection: {a: {x|re: 'fo+'}, condition: a}
---
title: empty_value
detection: {a: {x: ''}, condition: a}
---
title: one_of_them
detection: {a: {x: foo}, b: {y|startswith: bar}, condition: 1 of them}
---
title: windash
detection: {a: {x|windash|contains: ' -enc '}, condition: a}
---
title: negated
detection: {a: {x|contains: foo}, condition: not a}
---
title: absent
detection: {a: {z|exists: false}, condition: a}
---
title: null_value
detection: {a: {z: null}, condition: a}
---
title: or_one_absent
detection: {a: {x|contains: foo}, b: {z|exists: false}, condition: a or b}
---
title: keyword_wildcard
detection: {k: ['*'], condition: k}
---
title: intel
detection: {a: {intel.list: bad}, condition: a}
)");
  ASSERT_EQ(rules->detections.size(), 16u);
  const internal::DetectionIndex& index = *rules->index;
  std::vector<bool> expected = {true,  true,  true,  true,  true,  true,  true,  true,
                                true,  true,  false, false, false, false, false, false};
  for (uint32_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(index.prefiltered(i), expected[i]) << rules->detections[i].title;
  }
  Differential differential(rules);
  Event event(4096);
  // Matches or_both, or_one_present, all_one, list_with_wildcard, keywords, one_of_them,
  // absent, null_value, or_one_absent and keyword_wildcard.
  fillEvent(event, {{"x", "a FOO b"}, {"y", "bar"}, {"message", "very evil"}});
  event.message = event.arena.copy("very evil");
  EXPECT_EQ(differential.check(event, "mixed"), 10u);
  fillEvent(event, {{"x",
                     "run \xE2\x80\x93"
                     "enc AAA"}});
  // list_with_wildcard, windash, negated, absent, null_value, or_one_absent and
  // keyword_wildcard.
  EXPECT_EQ(differential.check(event, "windash"), 7u);
}

// A rule that needs a field present runs only on events that have the field: an empty
// value counts as present, a numeric canonical field only when set, and of two fields with
// one name only the first is read, as by Event::get().
TEST(PrefilterTest, PresenceFields) {
  auto rules = loadRuleSet(R"(
title: regex
id: regex
detection: {a: {x|re: '^ab+c$'}, condition: a}
---
title: empty
id: empty
detection: {a: {y: ''}, condition: a}
---
title: port
id: port
detection: {a: {dst_port|gt: 1000}, condition: a}
---
title: same
id: same
detection: {a: {x|fieldref: y}, condition: a}
---
title: literal
id: literal
detection: {a: {x|contains: bc}, condition: a}
)");
  for (uint32_t i = 0; i < rules->detections.size(); ++i) {
    EXPECT_TRUE(rules->index->prefiltered(i)) << rules->detections[i].title;
  }
  Differential differential(rules);
  MetricsRegistry& metrics = differential.metrics();
  auto evaluations = [&](const char* rule) {
    return ruleCounter(metrics, "vigil_detection_evaluations_total", rule);
  };
  Event event(4096);
  fillEvent(event, {{"w", "abbc"}});
  EXPECT_EQ(differential.check(event, "none present"), 0u);
  for (const char* rule : {"regex", "empty", "port", "same"}) EXPECT_EQ(evaluations(rule), 0u);

  fillEvent(event, {{"x", "abbc"}, {"y", ""}});
  event.dst_port = 3389;
  EXPECT_EQ(differential.check(event, "all present"), 4u);  // regex, empty, port, literal
  for (const char* rule : {"regex", "empty", "port", "same"}) EXPECT_EQ(evaluations(rule), 1u);

  fillEvent(event, {{"x", "abbc"}, {"y", "abbc"}});
  EXPECT_EQ(differential.check(event, "same values"), 3u);  // regex, same, literal
  EXPECT_EQ(evaluations("port"), 1u);                         // dst_port unset

  // The second "x" would match the expression and hold the literal; Event::get() reads
  // the first, and so does the prefilter scan.
  fillEvent(event, {{"w", "1"}});
  event.addField("x", "zzz");
  event.addField("x", "abc");
  EXPECT_EQ(differential.check(event, "duplicate name"), 0u);
  EXPECT_EQ(evaluations("literal"), 2u);
}

// Cased values only fire on the exact letter case; the evaluation decides either way.
TEST(PrefilterTest, CasedLiteral) {
  auto rules = loadRuleSet(R"(
title: cased
id: cased
detection: {a: {x|cased|contains: MiXeD}, condition: a}
)");
  Differential differential(rules);
  Event event(4096);
  fillEvent(event, {{"x", "a mixed b"}});
  EXPECT_EQ(differential.check(event, "lower"), 0u);
  EXPECT_EQ(ruleCounter(differential.metrics(), "vigil_detection_evaluations_total", "cased"), 0u);
  fillEvent(event, {{"x", "a MiXeD b"}});
  EXPECT_EQ(differential.check(event, "exact"), 1u);
}

// Canonical fields (numbers formatted per event) and the keyword text on raw events.
TEST(PrefilterTest, CanonicalFieldsAndRawKeywords) {
  auto rules = loadRuleSet(R"(
title: port
detection: {a: {dst_port: 3389}, condition: a}
---
title: ip
detection: {a: {src_ip|startswith: '192.0.2.'}, condition: a}
---
title: raw
detection: {k: ['Failed password'], condition: k}
)");
  Differential differential(rules);
  Event event(4096);
  fillEvent(event, {{"src_ip", "192.0.2.7"}});
  event.dst_port = 3389;
  event.raw = event.arena.copy("sshd: Failed password for bob");
  EXPECT_EQ(differential.check(event, "all three"), 3u);
}

// The literal every match of an expression contains, and expressions whose literal this
// reading cannot tell.
TEST(RegexLiteralTest, RequiredLiterals) {
  const std::pair<const char*, const char*> kCases[] = {
      {R"((?i)\.exe[\"\']?\s+[^\"]{0,64}werfaultsecure\.exe[\"\']?\s+\d{2,10})",
       "werfaultsecure.exe"},
      {"Invoke-Mimikatz", "invoke-mimikatz"},
      {R"(^C:\\Windows\\Temp\\[a-z]+\.dll$)", "c:\\windows\\temp\\"},
      {"abcd?efghi", "efghi"},      // d is optional
      {"abc*defg", "defg"},         // c may be absent
      {"ab+cdef", "cdef"},          // b repeats, so ab and cdef need not be adjacent
      {"xy{2,3}zzzz", "zzzz"},      // a repeat count drops its byte
      {"abcd*?efgh", "efgh"},       // lazy repeat
      {"(foo|bar)bazz", "bazz"},    // alternation inside a group
      {"abc[]x]defg", "defg"},      // `]` first in a class is a member
      {"abc[[:alpha:]]defg", "defg"},
      {"pre(?:a(b)c)*post", "post"},
      {"\xC3\xA9t\xC3\xA9" "abc", "abc"},  // bytes above 0x7F end a run
      {"foo|barbaz", ""},           // alternation outside a group
      {"(?x)a b c d e", ""},        // spaces do not count in (?x)
      {"(*UTF8)abcdef", ""},
      {"(?#comment)abcdef", ""},
      {R"(\x41BCDE)", ""},          // an escape that takes more bytes
      {R"(\QAB|CD\E)", ""},
      {"a{b|c}", ""},               // not a repeat count: the `|` is an alternation
      {"ab)cd", ""},
      {"*abc", ""},
      {R"(abc\)", ""},
      {R"(\d+\.\d+)", "."},
      {"", ""},
  };
  for (const auto& [expression, expected] : kCases) {
    EXPECT_EQ(internal::requiredRegexLiteral(expression), expected) << expression;
  }
}

// A rule with a `re` value that has a literal is evaluated only when the literal occurs,
// in any letter case even when the expression is case-sensitive. An expression that the
// prefilter cannot read, or whose literal is short, leaves the field's presence.
TEST(PrefilterTest, RegexLiterals) {
  auto rules = loadRuleSet(R"(
title: caseless
id: caseless
detection: {a: {x|re: '(?i)run\s+evilthing\.exe'}, condition: a}
---
title: cased
id: cased
detection: {a: {x|re: 'Mimikatz[0-9]*'}, condition: a}
---
title: alternation
id: alternation
detection: {a: {x|re: 'abcdef|ghijkl'}, condition: a}
---
title: short
id: short
detection: {a: {x|re: 'ab.cd'}, condition: a}
)");
  ASSERT_EQ(rules->detections.size(), 4u);
  Differential differential(rules);
  MetricsRegistry& metrics = differential.metrics();
  auto evaluations = [&](const char* rule) {
    return ruleCounter(metrics, "vigil_detection_evaluations_total", rule);
  };
  Event event(4096);
  fillEvent(event, {{"x", "nothing here"}});
  EXPECT_EQ(differential.check(event, "no literal"), 0u);
  EXPECT_EQ(evaluations("caseless"), 0u);
  EXPECT_EQ(evaluations("cased"), 0u);
  EXPECT_EQ(evaluations("alternation"), 1u);  // presence of x
  EXPECT_EQ(evaluations("short"), 1u);

  fillEvent(event, {{"x", "RUN   EvilThing.EXE"}});
  EXPECT_EQ(differential.check(event, "caseless"), 1u);
  EXPECT_EQ(evaluations("caseless"), 1u);

  // The folded literal fires, and the case-sensitive expression decides.
  fillEvent(event, {{"x", "mimikatz"}});
  EXPECT_EQ(differential.check(event, "other case"), 0u);
  EXPECT_EQ(evaluations("cased"), 1u);
  fillEvent(event, {{"x", "a Mimikatz2 b"}, {"y", "run evilthing.exe"}});
  EXPECT_EQ(differential.check(event, "cased"), 1u);
  EXPECT_EQ(evaluations("caseless"), 1u);  // its literal lies in y, which it does not read

  fillEvent(event, {{"x", "ghijkl ab-cd"}});
  EXPECT_EQ(differential.check(event, "alternation and short"), 2u);
}

// Field names that hash alike (same length, same first and last eight bytes) and short
// names each find their own slot, and names never added are not found.
TEST(SlotNameTableTest, CollidingAndShortNames) {
  internal::SlotNameTable table;
  EXPECT_EQ(table.find("Image"), internal::SlotNameTable::kNotFound);
  std::vector<std::string> names = {"", "a", "ab", "Image", "CommandL", "CommandLine"};
  for (int i = 0; i < 100; ++i) names.push_back("Prefix__" + std::to_string(1000 + i) + "Suffix__");
  ASSERT_EQ(internal::SlotNameTable::hashName(names[6]), internal::SlotNameTable::hashName(names[7]));
  for (uint32_t i = 0; i < names.size(); ++i) table.add(names[i], i);
  table.add("Image", 999);  // a name added again keeps its first slot
  for (uint32_t i = 0; i < names.size(); ++i) EXPECT_EQ(table.find(names[i]), i) << names[i];
  EXPECT_EQ(table.find("Prefix__2000Suffix__"), internal::SlotNameTable::kNotFound);
  EXPECT_EQ(table.find("image"), internal::SlotNameTable::kNotFound);
  EXPECT_EQ(table.find("abc"), internal::SlotNameTable::kNotFound);
}

// Rules on fields whose names hash alike: the scan reads each field under its own name,
// so a literal in a neighbour's field neither fires a rule nor hides a match.
TEST(PrefilterTest, FieldNamesThatHashAlike) {
  auto rules = loadRuleSet(R"(
title: first
id: first
detection: {a: {Prefix__1Suffix__|contains: alpha}, condition: a}
---
title: second
id: second
detection: {a: {Prefix__2Suffix__|contains: bravo}, condition: a}
---
title: second_absent
id: second_absent
detection: {a: {Prefix__2Suffix__|endswith: charlie}, condition: a}
)");
  ASSERT_EQ(rules->detections.size(), 3u);
  Differential differential(rules);
  MetricsRegistry& metrics = differential.metrics();
  Event event(4096);
  fillEvent(event, {{"Prefix__1Suffix__", "bravo"}, {"Prefix__2Suffix__", "alpha"}});
  EXPECT_EQ(differential.check(event, "swapped"), 0u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_evaluations_total", "first"), 0u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_evaluations_total", "second"), 0u);

  fillEvent(event, {{"Prefix__2Suffix__", "x bravo charlie"}, {"Prefix__1Suffix__", "alpha"}});
  EXPECT_EQ(differential.check(event, "own fields"), 3u);
  EXPECT_EQ(ruleCounter(metrics, "vigil_detection_prefilter_hits_total", "second_absent"), 1u);
}

// ---------------------------------------------------------------------------------------
// Logsource selection

FieldMapping windowsMapping() {
  FieldMapping mapping = FieldMapping::defaults();
  LogSourceDefinition sysmon;
  sysmon.name = "sysmon_process";
  sysmon.logsource = {"windows", "process_creation", "sysmon"};
  sysmon.conditions = {{"Channel", "Microsoft-Windows-Sysmon/Operational"}, {"EventID", "1"}};
  EXPECT_TRUE(mapping.addLogSource(sysmon).ok());
  LogSourceDefinition security;
  security.name = "security_process";
  security.logsource = {"windows", "process_creation", "security"};
  security.conditions = {{"Channel", "Security"}, {"EventID", "4688"}};
  security.field_mapping = {{"Image", "NewProcessName"}, {"ParentImage", "ParentProcessName"}};
  EXPECT_TRUE(mapping.addLogSource(security).ok());
  LogSourceDefinition auth;
  auth.name = "linux_auth";
  auth.logsource = {"linux", "", "auth"};
  auth.conditions = {{"process.name", "sshd"}};
  EXPECT_TRUE(mapping.addLogSource(auth).ok());
  return mapping;
}

constexpr char kLogSourceRules[] = R"(
title: windows process
id: win_proc
logsource: {product: windows, category: process_creation}
detection: {sel: {Image|endswith: '\whoami.exe'}, condition: sel}
---
title: linux auth
id: linux_auth
logsource: {product: linux, service: auth}
detection: {k: ['whoami'], condition: k}
---
title: any source
id: any
detection: {k: ['whoami'], condition: k}
)";

std::shared_ptr<const RuleSet> loadWith(const FieldMapping& mapping, const std::string& yaml) {
  RuleLoader loader(mapping);
  EXPECT_TRUE(loader.addText(yaml, "test.yml").ok());
  absl::StatusOr<RuleSet> rules = loader.finish();
  EXPECT_TRUE(rules.ok()) << rules.status();
  return std::make_shared<RuleSet>(std::move(*rules));
}

std::vector<std::string> matchingIds(Engine& engine, DetectScratch& scratch, const Event& event) {
  std::array<uint32_t, 16> out;
  size_t count = engine.detect(event, scratch, out);
  std::vector<std::string> ids;
  for (size_t i = 0; i < count; ++i) ids.push_back(engine.rules().detections[out[i]].id);
  return ids;
}

// Rules run only on events of a compatible definition, with that definition's field
// mapping; a rule without logsource runs on every event.
TEST(LogSourceTest, SelectsRulesAndMapsFields) {
  auto rules = loadWith(windowsMapping(), kLogSourceRules);
  MetricsRegistry metrics;
  Engine engine(rules, {}, &metrics);
  DetectScratch scratch(*rules);
  Event event(4096);
  using Ids = std::vector<std::string>;

  fillEvent(event, {{"Channel", "Microsoft-Windows-Sysmon/Operational"},
                    {"EventID", "1"},
                    {"Image", "C:\\Windows\\System32\\whoami.exe"}});
  event.message = event.arena.copy("whoami");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{"win_proc", "any"}));
  EXPECT_EQ(metrics.sum("vigil_detection_logsource_skipped_total"), 1u);

  // Security 4688 names the image NewProcessName; the definition maps Image to it.
  fillEvent(event, {{"Channel", "security"},
                    {"EventID", "4688"},
                    {"NewProcessName", "C:\\Windows\\System32\\whoami.exe"}});
  event.message = event.arena.copy("whoami");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{"win_proc", "any"}));

  fillEvent(event, {{"Image", "C:\\Windows\\System32\\whoami.exe"}});
  event.app = event.arena.copy("sshd");
  event.message = event.arena.copy("whoami");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{"linux_auth", "any"}));

  // An event of no definition runs only the rule without logsource.
  fillEvent(event, {{"Image", "C:\\Windows\\System32\\whoami.exe"}});
  event.message = event.arena.copy("whoami");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{"any"}));
}

// Without definitions, logsource is not used and every rule runs on every event.
TEST(LogSourceTest, NoDefinitionsRunsEveryRule) {
  auto rules = loadWith(FieldMapping::defaults(), kLogSourceRules);
  Engine engine(rules, {});
  DetectScratch scratch(*rules);
  Event event(4096);
  fillEvent(event, {{"Image", "C:\\Windows\\System32\\whoami.exe"}});
  event.message = event.arena.copy("whoami");
  EXPECT_EQ(matchingIds(engine, scratch, event),
            (std::vector<std::string>{"win_proc", "linux_auth", "any"}));
}

// The masks follow product, category and service, ignoring letter case.
TEST(LogSourceTest, RuleMasks) {
  auto rules = loadWith(windowsMapping(), std::string(kLogSourceRules) + R"(
---
title: sysmon only
id: sysmon
logsource: {product: Windows, service: Sysmon}
detection: {k: [x], condition: k}
---
title: macos
id: macos
logsource: {product: macos}
detection: {k: [x], condition: k}
)");
  ASSERT_EQ(rules->detections.size(), 5u);
  EXPECT_EQ(rules->detections[0].logsource_mask, 0b011u);
  EXPECT_FALSE(rules->detections[0].logsource_any);
  EXPECT_EQ(rules->detections[1].logsource_mask, 0b100u);
  EXPECT_TRUE(rules->detections[2].logsource_any);
  EXPECT_EQ(rules->detections[3].logsource_mask, 0b001u);
  EXPECT_EQ(rules->detections[4].logsource_mask, 0u);
}

// Definitions that share a condition (tested once per event) still differ by the rest.
TEST(LogSourceTest, SharedConditions) {
  FieldMapping mapping = FieldMapping::defaults();
  const std::pair<const char*, const char*> kDefinitions[] = {
      {"1", "process_creation"}, {"11", "file_event"}, {"13", "registry_set"}};
  for (const auto& [id, category] : kDefinitions) {
    LogSourceDefinition definition;
    definition.logsource = {"windows", category, "sysmon"};
    definition.conditions = {{"Channel", "Sysmon"}, {"EventID", id}};
    ASSERT_TRUE(mapping.addLogSource(definition).ok());
  }
  auto rules = loadWith(mapping, R"(
title: process
id: process
logsource: {product: windows, category: process_creation}
detection: {k: [x], condition: k}
---
title: file
id: file
logsource: {product: windows, category: file_event}
detection: {k: [x], condition: k}
---
title: sysmon
id: sysmon
logsource: {product: windows, service: sysmon}
detection: {k: [x], condition: k}
)");
  Engine engine(rules, {});
  DetectScratch scratch(*rules);
  Event event(4096);
  using Ids = std::vector<std::string>;
  fillEvent(event, {{"Channel", "SYSMON"}, {"EventID", "11"}});
  event.message = event.arena.copy("x");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{"file", "sysmon"}));
  fillEvent(event, {{"Channel", "Sysmon"}, {"EventID", "13"}});
  event.message = event.arena.copy("x");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{"sysmon"}));
  fillEvent(event, {{"Channel", "Other"}, {"EventID", "1"}});
  event.message = event.arena.copy("x");
  EXPECT_EQ(matchingIds(engine, scratch, event), (Ids{}));
}

// Invalid definitions are rejected with the reason.
TEST(LogSourceTest, RejectsInvalidDefinitions) {
  FieldMapping mapping;
  LogSourceDefinition empty;
  empty.name = "nothing";
  absl::Status status = mapping.addLogSource(empty);
  EXPECT_NE(status.message().find("needs at least one of product"), std::string::npos) << status;
  LogSourceDefinition bad_condition;
  bad_condition.logsource.product = "windows";
  bad_condition.conditions = {{"", "x"}};
  EXPECT_FALSE(mapping.addLogSource(bad_condition).ok());
  LogSourceDefinition ok;
  ok.logsource.product = "windows";
  for (size_t i = 0; i < kMaxLogSources; ++i) EXPECT_TRUE(mapping.addLogSource(ok).ok());
  status = mapping.addLogSource(ok);
  EXPECT_NE(status.message().find("at most 64"), std::string::npos) << status;
}

}  // namespace
}  // namespace vigil::correlate
