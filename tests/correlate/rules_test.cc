#include "correlate/rules.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "correlate/engine.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;
using testing::readFile;
using testing::readJsonDocuments;
using testing::sharedPath;

std::string loadError(const std::string& yaml) {
  RuleLoader loader;
  absl::Status status = loader.addText(yaml, "bad.yml");
  if (status.ok()) {
    absl::StatusOr<RuleSet> rules = loader.finish();
    status = rules.status();
  }
  return std::string(status.message());
}

// Returns the detection rule indices that match each event of `events_path`.
std::vector<bool> matchEach(const RuleSet& rules, const std::string& events_path) {
  std::vector<bool> matched;
  auto shared = std::make_shared<RuleSet>();
  DetectScratch scratch(rules);
  Event event(1 << 16);
  Engine engine(std::shared_ptr<const RuleSet>(&rules, [](const RuleSet*) {}), {});
  for (const nlohmann::json& document : readJsonDocuments(events_path)) {
    fillEvent(event, document);
    std::array<uint32_t, 8> out;
    matched.push_back(engine.detect(event, scratch, out) > 0);
  }
  return matched;
}

// A full detection rule loads with its header, selections and condition.
TEST(RuleLoaderTest, LoadsDetectionRule) {
  auto rules = loadRuleSet(R"(
title: Suspicious tool
id: 11111111-0000-4000-8000-000000000001
name: susp_tool
level: high
tags: [attack.execution, attack.t1059]
logsource: {product: windows, category: process_creation}
detection:
  sel_img:
    Image|endswith: ['\tool.exe', '\other.exe']
  sel_cli:
    - CommandLine|contains|all: [' -a ', ' -b ']
    - CommandLine|re: '^x+y$'
  keywords: [evil, 'bad*thing']
  filter:
    User: null
  condition: 1 of sel_* and not filter or keywords
)");
  ASSERT_EQ(rules->detections.size(), 1u);
  const DetectionRule& rule = rules->detections[0];
  EXPECT_EQ(rule.title, "Suspicious tool");
  EXPECT_EQ(rule.name, "susp_tool");
  EXPECT_EQ(rule.level, "high");
  EXPECT_EQ(rule.tags.size(), 2u);
  EXPECT_EQ(rule.logsource.size(), 2u);
  ASSERT_EQ(rule.selections.size(), 4u);
  EXPECT_EQ(rule.selections[1].alternatives.size(), 2u);
  EXPECT_EQ(rule.selections[2].alternatives[0][0].source, FieldTest::Source::kKeyword);
  EXPECT_EQ(rule.selections[3].alternatives[0][0].event_name, "user.name");
  EXPECT_EQ(rule.condition.toString(rule.selection_names),
            "(((sel_img or sel_cli) and not filter) or keywords)");
  EXPECT_TRUE(rule.generates_alerts);
}

// Every unsupported or invalid construct is rejected with origin, rule and reason.
TEST(RuleLoaderTest, RejectsWithReason) {
  const std::string head = "title: T\nid: abc\ndetection:\n";
  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"  sel: {a|utf16le: x}\n  condition: sel",
       "bad.yml:1: document 1 rule 'T' (id abc): selection 'sel' field 'a|utf16le': modifier "
       "'utf16le' is not supported yet"},
      {"  sel: {a|bogus: x}\n  condition: sel", "unknown modifier 'bogus'"},
      {"  sel: {a|cidr: 300.1.1.1/8}\n  condition: sel",
       "invalid CIDR prefix '300.1.1.1/8'; expected ADDRESS/LENGTH such as 192.0.2.0/24"},
      {"  sel: {a|gt: ten}\n  condition: sel", "'gt' needs a number, not 'ten'"},
      {"  sel: {a|gt: .inf}\n  condition: sel", "'gt' needs a number, not '.inf'"},
      {"  sel: {a|lt: inf}\n  condition: sel", "'lt' needs a number, not 'inf'"},
      {"  sel: {a|gte: -Infinity}\n  condition: sel", "'gte' needs a number, not '-Infinity'"},
      {"  sel: {a|gt: nan}\n  condition: sel", "'gt' needs a number, not 'nan'"},
      {"  sel: {a|lte: 1e999}\n  condition: sel", "'lte' needs a number, not '1e999'"},
      {"  sel: {a|cidr|cased: 10.0.0.0/8}\n  condition: sel",
       "cased cannot be combined with 'cidr'"},
      {"  sel: {a|fieldref|windash: b}\n  condition: sel",
       "windash cannot be combined with 'fieldref'"},
      {"  sel: {a|exists: maybe}\n  condition: sel", "exists takes true or false, not 'maybe'"},
      {"  sel: {a|re: '(a)\\1'}\n  condition: sel", "is not supported by Hyperscan"},
      {"  sel: {a|contains|re: x}\n  condition: sel",
       "contains/startswith/endswith cannot be combined with 're'"},
      {"  sel: {a|contains|endswith: x}\n  condition: sel",
       "more than one of contains/startswith/endswith"},
      {"  sel: {a: {b: c}}\n  condition: sel", "a map is not a valid field value"},
      {"  sel: [{a: b}, keyword]\n  condition: sel", "cannot mix maps and keywords"},
      {"  sel: {a: b}\n  condition: sel | count() > 5", "aggregation expressions"},
      {"  sel: {a: b}\n  timeframe: 5m\n  condition: sel", "'timeframe' belongs to the deprecated"},
      {"  sel: {a: b}", "'detection.condition' is missing"},
      {"  sel: {a: b}\n  condition: other", "unknown selection at 'other'"},
  };
  for (const Case& c : cases) {
    std::string error = loadError(head + c.body + "\n");
    EXPECT_NE(error.find(c.message), std::string::npos) << "got: " << error;
    EXPECT_NE(error.find("bad.yml:1: document 1 rule 'T' (id abc)"), std::string::npos) << error;
  }
  EXPECT_NE(loadError("id: x\ndetection: {s: {a: b}, condition: s}\n").find("'title' is missing"),
            std::string::npos);
  std::string yaml_error = loadError("title: [unclosed\n");
  EXPECT_EQ(yaml_error.rfind("bad.yml:", 0), 0u) << yaml_error;
  EXPECT_NE(yaml_error.find(": invalid YAML: "), std::string::npos) << yaml_error;
  // Past yaml-cpp's depth limit the message names the depth, where yaml-cpp's is "bad file".
  std::string deep = loadError("title: " + std::string(20000, '[') + std::string(20000, ']') + "\n");
  EXPECT_NE(deep.find("invalid YAML: lists and maps nest 500 levels deep, past the YAML "
                      "parser's limit; flatten the document"),
            std::string::npos)
      << deep;
}

// A failing document leaves nothing from its text behind.
TEST(RuleLoaderTest, FailedTextLoadsNothing) {
  RuleLoader loader;
  ASSERT_TRUE(loader.addText("title: A\ndetection: {s: {a: b}, condition: s}\n", "a.yml").ok());
  absl::Status status = loader.addText(
      "title: B\ndetection: {s: {a: b}, condition: s}\n---\ntitle: C\ndetection: {condition: "
      "s}\n",
      "b.yml");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("b.yml:3: document 2 rule 'C'"), std::string::npos)
      << status;
  absl::StatusOr<RuleSet> rules = loader.finish();
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->detections.size(), 1u);
  EXPECT_EQ(rules->detections[0].title, "A");
}

// Correlations load from a multi-document file and resolve references by id and name.
TEST(RuleLoaderTest, LoadsCorrelation) {
  auto rules = loadRuleSet(R"(
title: Many failures
id: c1
level: high
correlation:
  type: event_count
  rules: [failed_login, d2]
  group-by: [src_ip, User]
  timespan: 5m
  condition: {gt: 3}
---
title: Failed login
name: failed_login
detection: {sel: {outcome: failure}, condition: sel}
---
title: Other failure
id: d2
detection: {sel: {outcome: error}, condition: sel}
---
title: Unreferenced
detection: {sel: {outcome: x}, condition: sel}
)");
  ASSERT_EQ(rules->correlations.size(), 1u);
  const CorrelationRule& rule = rules->correlations[0];
  EXPECT_EQ(rule.timespan_ns, 300'000'000'000);
  EXPECT_EQ(rule.type, CorrelationType::kEventCount);
  EXPECT_EQ(rule.minCount(), 4u);
  EXPECT_EQ(rule.detections, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(rule.group_fields, (std::vector<std::string>{"source.ip", "user.name"}));
  EXPECT_FALSE(rules->detections[0].generates_alerts);
  EXPECT_FALSE(rules->detections[1].generates_alerts);
  EXPECT_TRUE(rules->detections[2].generates_alerts);
}

// `generate: true` keeps per-event alerts for the referenced rules.
TEST(RuleLoaderTest, GenerateKeepsDetectionAlerts) {
  auto rules = loadRuleSet(R"(
title: Corr
correlation: {type: event_count, rules: [d], group-by: [host], timespan: 1h,
              condition: {gte: 2}, generate: true}
---
title: D
name: d
detection: {sel: {a: b}, condition: sel}
)");
  ASSERT_EQ(rules->detections.size(), 1u);
  EXPECT_TRUE(rules->detections[0].generates_alerts);
}

// Unsupported correlation features are rejected with the reason.
TEST(RuleLoaderTest, RejectsCorrelationWithReason) {
  const std::string tail = "\n---\ntitle: D\nname: d\ndetection: {sel: {a: b}, condition: sel}\n";
  auto correlation = [&](const std::string& body) {
    return loadError("title: C\nid: c\ncorrelation:\n" + body + tail);
  };
  EXPECT_NE(correlation("  type: value_median\n  rules: [d]\n  timespan: 1h")
                .find("correlation type 'value_median' is not supported; expected "
                      "event_count, value_count, value_sum, value_avg, value_percentile, "
                      "temporal, temporal_ordered or absence"),
            std::string::npos);
  // Bounds no count of 1 or more satisfies: a group exists only once it saw an event.
  for (const char* condition :
       {"{lt: 1}", "{lte: 0}", "{eq: 0}", "{gt: 5, lt: 6}", "{gte: 3, lte: 3, neq: 3}"}) {
    EXPECT_NE(correlation(std::string("  type: event_count\n  rules: [d]\n  timespan: 1h\n"
                                      "  condition: ") +
                          condition)
                  .find("condition can never hold"),
              std::string::npos)
        << condition;
  }
  EXPECT_NE(correlation("  type: event_count\n  rules: [d]\n  timespan: 90x\n  condition: {gte: 2}")
                .find("invalid timespan '90x'"),
            std::string::npos);
  EXPECT_NE(correlation("  type: event_count\n  rules: [d]\n  timespan: 1h\n  condition: {gte: 0}")
                .find("condition needs a count of 0; it must need 1 to 10000 events"),
            std::string::npos);
  EXPECT_NE(correlation("  type: event_count\n  rules: [nope]\n  timespan: 1h\n  condition: "
                        "{gte: 2}")
                .find("correlation.rules entry 'nope' matches no loaded detection or correlation "
                      "rule"),
            std::string::npos);
  EXPECT_NE(correlation("  type: event_count\n  rules: [c]\n  timespan: 1h\n  condition: {gte: 2}")
                .find("correlation.rules entry 'c' names the rule itself"),
            std::string::npos);
}

// A document with both detection and correlation fails with the rule and the fix,
// instead of loading only the correlation.
TEST(RuleLoaderTest, RejectsDetectionWithCorrelation) {
  std::string error = loadError(R"(title: Both
id: both
name: both
detection: {sel: {a: b}, condition: sel}
correlation: {type: event_count, rules: [both], group-by: [host], timespan: 1h,
              condition: {gte: 2}}
)");
  EXPECT_NE(error.find("bad.yml:1: document 1 rule 'Both' (id both): the rule has both "
                       "'detection' and 'correlation'; split it into two documents"),
            std::string::npos)
      << error;
}

// A second rule with a name already in use fails and names both rules, whether the
// first is a detection or a correlation rule.
TEST(RuleLoaderTest, RejectsDuplicateName) {
  std::string detections = loadError(R"(title: First
name: login
detection: {sel: {a: b}, condition: sel}
---
title: Second
name: login
detection: {sel: {a: c}, condition: sel}
---
title: Corr
correlation: {type: event_count, rules: [login], group-by: [host], timespan: 1h,
              condition: {gte: 2}}
)");
  EXPECT_NE(detections.find("bad.yml:4: document 2 rule 'Second' (id none): rule name 'login' is "
                            "already used by rule 'First' at bad.yml:1 (document 1); give each "
                            "rule its own name"),
            std::string::npos)
      << detections;

  std::string mixed = loadError(R"(title: D
name: dup
detection: {sel: {a: b}, condition: sel}
---
title: C
name: dup
correlation: {type: event_count, rules: [dup], group-by: [host], timespan: 1h,
              condition: {gte: 2}}
)");
  EXPECT_NE(mixed.find("bad.yml:4: document 2 rule 'C' (id none): rule name 'dup' is already "
                       "used by rule 'D' at bad.yml:1 (document 1)"),
            std::string::npos)
      << mixed;

  // Rules of different tenants may share a name.
  RuleLoader loader;
  loader.setScope("t1", 1);
  ASSERT_TRUE(loader.addText("title: A\nname: n\ndetection: {sel: {a: b}, condition: sel}\n",
                             "a.yml")
                  .ok());
  loader.setScope("t2", 1);
  ASSERT_TRUE(loader.addText("title: B\nname: n\ndetection: {sel: {a: b}, condition: sel}\n",
                             "b.yml")
                  .ok());
  EXPECT_TRUE(loader.finish().ok());
}

// A timespan over 100 years is rejected with the limit in the message.
TEST(RuleLoaderTest, TimespanLimitStated) {
  EXPECT_TRUE(parseTimespan("36500d").ok());
  EXPECT_TRUE(parseTimespan("876000h").ok());
  absl::StatusOr<int64_t> days = parseTimespan("36501d");
  ASSERT_FALSE(days.ok());
  EXPECT_EQ(days.status().message(),
            "invalid timespan '36501d'; expected a positive number and s, m, h or d (\"5m\"), "
            "at most 100 years (36500d)");
  absl::StatusOr<int64_t> hours = parseTimespan("876001h");
  ASSERT_FALSE(hours.ok());
  EXPECT_NE(hours.status().message().find("at most 100 years (36500d)"), std::string::npos);
}

// The five Sigma levels load in any letter case and are stored in lower case.
TEST(RuleLoaderTest, LevelStoredLowerCase) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"informational", "informational"}, {"Low", "low"}, {"MEDIUM", "medium"}, {"high", "high"},
      {"CriTical", "critical"},
  };
  for (const auto& [written, stored] : cases) {
    auto rules =
        loadRuleSet("title: T\nlevel: " + written + "\ndetection: {sel: {a: b}, condition: sel}\n");
    ASSERT_EQ(rules->detections.size(), 1u) << written;
    EXPECT_EQ(rules->detections[0].level, stored) << written;
  }
}

// A detection or correlation rule without a level gets "medium".
TEST(RuleLoaderTest, MissingLevelIsMedium) {
  auto rules = loadRuleSet(R"(
title: D
name: d
detection: {sel: {a: b}, condition: sel}
---
title: C
correlation:
  type: event_count
  rules: [d]
  timespan: 1h
  condition: {gte: 2}
)");
  ASSERT_EQ(rules->detections.size(), 1u);
  ASSERT_EQ(rules->correlations.size(), 1u);
  EXPECT_EQ(rules->detections[0].level, "medium");
  EXPECT_EQ(rules->correlations[0].level, "medium");
}

// An unknown level rejects the rule, naming the file, the rule and the accepted values.
TEST(RuleLoaderTest, RejectsUnknownLevel) {
  const std::string accepted = "expected one of informational, low, medium, high, critical";
  std::string detection =
      loadError("title: T\nid: abc\nlevel: extreme\ndetection: {sel: {a: b}, condition: sel}\n");
  EXPECT_NE(detection.find("bad.yml:1: document 1 rule 'T' (id abc)"), std::string::npos) << detection;
  EXPECT_NE(detection.find("invalid level 'extreme'"), std::string::npos) << detection;
  EXPECT_NE(detection.find(accepted), std::string::npos) << detection;

  std::string correlation = loadError(
      "title: D\nname: d\ndetection: {sel: {a: b}, condition: sel}\n---\n"
      "title: C\nid: c\nlevel: severe\ncorrelation:\n  type: event_count\n  rules: [d]\n"
      "  timespan: 1h\n  condition: {gte: 2}\n");
  EXPECT_NE(correlation.find("bad.yml:4: document 2 rule 'C' (id c)"), std::string::npos)
      << correlation;
  EXPECT_NE(correlation.find("invalid level 'severe'"), std::string::npos) << correlation;
  EXPECT_NE(correlation.find(accepted), std::string::npos) << correlation;

  std::string list =
      loadError("title: T\nlevel: [high]\ndetection: {sel: {a: b}, condition: sel}\n");
  EXPECT_NE(list.find("'level' must be a string"), std::string::npos) << list;
}

// Timespans take s, m, h and d.
TEST(RuleLoaderTest, ParsesTimespan) {
  EXPECT_EQ(*parseTimespan("30s"), 30'000'000'000);
  EXPECT_EQ(*parseTimespan("90m"), 5400'000'000'000);
  EXPECT_EQ(*parseTimespan("2h"), 7200'000'000'000);
  EXPECT_EQ(*parseTimespan("1d"), 86400'000'000'000);
  EXPECT_FALSE(parseTimespan("1w").ok());
  EXPECT_FALSE(parseTimespan("-1s").ok());
  EXPECT_FALSE(parseTimespan("s").ok());
  EXPECT_FALSE(parseTimespan("1H").ok());
}

// br20: a trailing backslash before the contains wildcard stays literal.
TEST(RuleLoaderTest, EdgeBr20) {
  RuleLoader loader;
  ASSERT_TRUE(loader.addFile(sharedPath("edge/br20-sigma-trailing-backslash-contains.yml")).ok());
  absl::StatusOr<RuleSet> rules = loader.finish();
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::vector<bool> matched =
      matchEach(*rules, sharedPath("edge/br20-sigma-trailing-backslash-contains.events.jsonl"));
  EXPECT_EQ(matched, (std::vector<bool>{true, false, false, true, false, true}));
}

// Value modifiers: cidr, numbers, exists, null, fieldref, base64offset, intel fields.
TEST(RuleLoaderTest, ModifiersMatch) {
  auto rules = loadRuleSet(R"(
title: cidr
detection: {sel: {src_ip|cidr: [192.0.2.0/24, '2001:db8::/32']}, condition: sel}
---
title: number
detection: {sel: {bytes|gte: 100, bytes|lt: 200}, condition: sel}
---
title: exists
detection: {sel: {proxy|exists: false, host|exists: true}, condition: sel}
---
title: null_value
detection: {sel: {user: null}, condition: sel}
---
title: fieldref
detection: {sel: {a|fieldref: b}, condition: sel}
---
title: base64offset
detection: {sel: {blob|base64offset|contains: 'http://'}, condition: sel}
---
title: intel
detection: {sel: {intel.list: 'abuse*', intel.type: ipv4}, condition: sel}
)");
  ASSERT_EQ(rules->detections.size(), 7u);
  auto matching = [&](const nlohmann::json& document, bool add_hit = false) {
    DetectScratch scratch(*rules);
    Engine engine(rules, {});
    Event event(1 << 14);
    fillEvent(event, document);
    if (add_hit) {
      event.addHit({"192.0.2.9", "abuse_ch", IndicatorType::kIpv4, "source.ip"});
    }
    std::array<uint32_t, 8> out;
    size_t n = engine.detect(event, scratch, out);
    std::vector<std::string> titles;
    for (size_t i = 0; i < n; ++i) titles.push_back(rules->detections[out[i]].title);
    return titles;
  };
  using Titles = std::vector<std::string>;
  EXPECT_EQ(matching({{"src_ip", "192.0.2.77"}, {"user", "alice"}}), Titles{"cidr"});
  EXPECT_EQ(matching({{"src_ip", "2001:db8::5"}, {"user", "alice"}}), Titles{"cidr"});
  EXPECT_EQ(matching({{"src_ip", "198.51.100.1"}, {"user", "alice"}}), Titles{});
  EXPECT_EQ(matching({{"bytes", 150}, {"user", "a"}}), Titles{"number"});
  EXPECT_EQ(matching({{"bytes", 200}, {"user", "a"}}), Titles{});
  EXPECT_EQ(matching({{"host", "h1"}, {"user", "a"}}), Titles{"exists"});
  EXPECT_EQ(matching({{"host", "h1"}, {"proxy", "p"}, {"user", "a"}}), Titles{});
  EXPECT_EQ(matching({{"other", "x"}}), Titles{"null_value"});
  EXPECT_EQ(matching({{"a", "same"}, {"b", "same"}, {"user", "u"}}), Titles{"fieldref"});
  EXPECT_EQ(matching({{"a", "same"}, {"b", "diff"}, {"user", "u"}}), Titles{});
  // "GET http://x" is R0VUIGh0dHA6Ly94 in Base64.
  EXPECT_EQ(matching({{"blob", "R0VUIGh0dHA6Ly94"}, {"user", "u"}}), Titles{"base64offset"});
  EXPECT_EQ(matching({{"user", "u"}}, true), Titles{"intel"});
}

// lt, lte, gt and gte read decimal numbers only: inf, infinity and nan in any letter case
// are not numbers, so they never match, whichever way the bound points.
TEST(RuleLoaderTest, NumbersExcludeInfinityAndNan) {
  auto rules = loadRuleSet(R"(
title: below zero
detection: {sel: {Size|lt: 0}, condition: sel}
---
title: above a million
detection: {sel: {Size|gt: 1000000}, condition: sel}
)");
  auto matching = [&](const std::string& size) {
    DetectScratch scratch(*rules);
    Engine engine(rules, {});
    Event event(1 << 14);
    fillEvent(event, {{"Size", size}});
    std::array<uint32_t, 8> out;
    size_t n = engine.detect(event, scratch, out);
    std::vector<std::string> titles;
    for (size_t i = 0; i < n; ++i) titles.push_back(rules->detections[out[i]].title);
    return titles;
  };
  using Titles = std::vector<std::string>;
  for (const char* size : {"inf", "INF", "-inf", "-infinity", "Infinity", "nan", "-nan", "NaN"}) {
    EXPECT_EQ(matching(size), Titles{}) << size;
  }
  EXPECT_EQ(matching("-1.5"), Titles{"below zero"});
  EXPECT_EQ(matching("1e308"), Titles{"above a million"});
  EXPECT_EQ(matching("2.5E6"), Titles{"above a million"});
  EXPECT_EQ(matching("1e999"), Titles{});
}

// The correlation bounds use the same number syntax as the detection modifiers.
TEST(RuleLoaderTest, CorrelationBoundsExcludeInfinity) {
  for (const char* bound : {"inf", ".inf", "-infinity", "nan"}) {
    std::string error =
        loadError(std::string("title: A\nname: a\ndetection: {sel: {r: a}, condition: sel}\n---\n"
                              "title: S\nid: s\ncorrelation:\n  type: value_sum\n"
                              "  rules: [a]\n  timespan: 1m\n  condition: {field: n, gt: ") +
                  bound + "}\n");
    EXPECT_NE(error.find(std::string("condition gt: '") + bound + "' must be a number"),
              std::string::npos)
        << error;
  }
}

// fieldref folds ASCII letters unless the field has |cased, as the string values do.
TEST(RuleLoaderTest, FieldrefCaseless) {
  auto rules = loadRuleSet(R"(
title: caseless
detection: {sel: {TargetUser|fieldref: SubjectUser}, condition: sel}
---
title: cased
detection: {sel: {TargetUser|fieldref|cased: SubjectUser}, condition: sel}
)");
  auto matching = [&](const nlohmann::json& document) {
    DetectScratch scratch(*rules);
    Engine engine(rules, {});
    Event event(1 << 14);
    fillEvent(event, document);
    std::array<uint32_t, 8> out;
    size_t n = engine.detect(event, scratch, out);
    std::vector<std::string> titles;
    for (size_t i = 0; i < n; ++i) titles.push_back(rules->detections[out[i]].title);
    return titles;
  };
  using Titles = std::vector<std::string>;
  EXPECT_EQ(matching({{"TargetUser", "alice"}, {"SubjectUser", "ALICE"}}), Titles{"caseless"});
  EXPECT_EQ(matching({{"TargetUser", "alice"}, {"SubjectUser", "alice"}}),
            (Titles{"caseless", "cased"}));
  EXPECT_EQ(matching({{"TargetUser", "alice"}, {"SubjectUser", "alicia"}}), Titles{});
  EXPECT_EQ(matching({{"TargetUser", "alice"}}), Titles{});
  // Only ASCII letters fold: an accented capital differs from its small letter.
  EXPECT_EQ(matching({{"TargetUser", "\u00e9"}, {"SubjectUser", "\u00c9"}}), Titles{});
}

// Errors found while references are resolved name the file, the line the document starts
// on, the document number, the rule's title and id, as errors of one document do.
TEST(RuleLoaderTest, ReferenceErrorsNameDocument) {
  const std::string detections = R"(title: det A
id: det-a
name: a
detection: {sel: {r: a}, condition: sel}
---
title: det B
id: det-b
name: b
detection: {sel: {r: b}, condition: sel}
)";
  struct Case {
    std::string yaml;
    std::string prefix;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"title: cycle a\nid: ka\ncorrelation: {type: event_count, rules: [kb], timespan: 1m, "
       "condition: {gte: 2}}\n---\ntitle: cycle b\nid: kb\ncorrelation: {type: event_count, "
       "rules: [ka], timespan: 1m, condition: {gte: 2}}\n",
       "k.yml:1: document 1 rule 'cycle a' (id ka): ",
       "correlation rules reference each other in a cycle: ka -> kb -> ka"},
      {"title: alias not in group-by\nid: k25\ncorrelation:\n  type: temporal\n"
       "  rules: [a, b]\n  group-by: [h]\n  timespan: 1m\n  aliases:\n    ip: {a: src, b: dst}\n",
       "k.yml:1: document 1 rule 'alias not in group-by' (id k25): ",
       "alias 'ip' is not used in correlation.group-by"},
      {"title: alias unknown rule\nid: k26\ncorrelation:\n  type: temporal\n"
       "  rules: [a, b]\n  group-by: [ip]\n  timespan: 1m\n  aliases:\n    ip: {a: src, c: dst}\n",
       "k.yml:1: document 1 rule 'alias unknown rule' (id k26): ",
       "alias 'ip' names rule 'c', which is not in correlation.rules"},
      {"title: dup name\nname: a\nid: k28\ndetection: {sel: {r: q}, condition: sel}\n",
       "k.yml:1: document 1 rule 'dup name' (id k28): ",
       "rule name 'a' is already used by rule 'det A' at det.yml:1 (document 1)"},
      {"title: dup id\nid: det-b\ndetection: {sel: {r: q}, condition: sel}\n",
       "k.yml:1: document 1 rule 'dup id' (id det-b): ",
       "rule id det-b is already used by rule 'det B' at det.yml:5 (document 2)"},
      {"title: same rule twice\nid: k29\ncorrelation: {type: temporal, rules: [a, det-a], "
       "timespan: 1m}\n",
       "k.yml:1: document 1 rule 'same rule twice' (id k29): ",
       "correlation.rules entries 'a' and 'det-a' name the same rule"},
      {"title: no target\nid: k9\ncorrelation:\n  type: event_count\n  rules: [a, nope]\n"
       "  timespan: 1m\n  condition: {gte: 2}\n",
       "k.yml:5: document 1 rule 'no target' (id k9): ",
       "correlation.rules entry 'nope' matches no loaded detection or correlation rule"},
  };
  for (const Case& c : cases) {
    RuleLoader loader;
    ASSERT_TRUE(loader.addText(detections, "det.yml").ok());
    absl::Status status = loader.addText(c.yaml, "k.yml");
    ASSERT_TRUE(status.ok()) << status;
    const std::string error(loader.finish().status().message());
    EXPECT_TRUE(error.starts_with(c.prefix + c.reason)) << error;
  }

  // Chains too deep: the error names the rule at the top.
  std::string deep;
  std::string below = "a";
  for (int level = 1; level <= static_cast<int>(kMaxChainDepth) + 2; ++level) {
    const std::string id = "d" + std::to_string(level);
    if (level > 1) deep += "---\n";
    deep += "title: " + id + "\nid: " + id + "\ncorrelation: {type: event_count, rules: [" + below +
            "], timespan: 1m, condition: {gte: 2}}\n";
    below = id;
  }
  RuleLoader loader;
  ASSERT_TRUE(loader.addText(detections, "det.yml").ok());
  ASSERT_TRUE(loader.addText(deep, "k.yml").ok());
  const std::string error(loader.finish().status().message());
  EXPECT_TRUE(
      error.starts_with("k.yml:20: document 6 rule 'd6' (id d6): chains 5 levels of "
                        "correlations; at most 4 are supported"))
      << error;
}

// An empty correlation.rules list is reported as empty, with what to list.
TEST(RuleLoaderTest, EmptyCorrelationRules) {
  const std::string empty = loadError(
      "title: empty rules\nid: k30\ncorrelation:\n  type: event_count\n  rules: []\n"
      "  timespan: 1m\n  condition: {gte: 2}\n");
  EXPECT_NE(empty.find("bad.yml:1: document 1 rule 'empty rules' (id k30): 'correlation.rules' "
                       "is empty; list the id or name of each rule to correlate"),
            std::string::npos)
      << empty;
  const std::string missing = loadError(
      "title: no rules\ncorrelation:\n  type: event_count\n  timespan: 1m\n"
      "  condition: {gte: 2}\n");
  EXPECT_NE(missing.find("'correlation.rules' is missing"), std::string::npos) << missing;
}

// A text without rules loads, with a warning that names it; a text with rules has none.
TEST(RuleLoaderTest, TextWithoutRulesWarns) {
  RuleLoader loader;
  ASSERT_TRUE(loader.addText("", "empty.yml").ok());
  ASSERT_TRUE(loader.addText("---\n", "separator.yml").ok());
  ASSERT_TRUE(loader.addText("# later\n---\n# more\n---\n", "comments.yml").ok());
  ASSERT_TRUE(
      loader.addText("title: A\ndetection: {sel: {a: b}, condition: sel}\n---\n", "rule.yml").ok());
  ASSERT_EQ(loader.warnings().size(), 3u);
  EXPECT_EQ(loader.warnings()[0],
            "empty.yml: contains no rule; the text is empty or has only comments and '---' "
            "lines");
  EXPECT_TRUE(loader.warnings()[1].starts_with("separator.yml: contains no rule"))
      << loader.warnings()[1];
  EXPECT_TRUE(loader.warnings()[2].starts_with("comments.yml: contains no rule"))
      << loader.warnings()[2];
  absl::StatusOr<RuleSet> rules = loader.finish();
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ(rules->detections.size(), 1u);
  EXPECT_EQ(loader.warnings().size(), 3u);
}

// Every rule in the SigmaHQ folders loads or is rejected with a reason; prints the report.
TEST(RuleLoaderTest, CorpusSupportReport) {
  size_t supported = 0;
  std::vector<std::pair<std::string, std::string>> unsupported;
  std::map<std::string, size_t> reasons;
  const std::filesystem::path root = sharedPath("sigma");
  for (const auto& folder : {"rules", "rules-emerging-threats", "rules-threat-hunting",
                             "legacy-correlation", "spec-tests/rules", "spec-tests/correlation"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root / folder)) {
      if (entry.path().extension() != ".yml") continue;
      RuleLoader loader;
      absl::Status status = loader.addFile(entry.path().string());
      if (status.ok()) status = loader.finish().status();
      if (status.ok()) {
        ++supported;
        continue;
      }
      std::string message(status.message());
      EXPECT_FALSE(message.empty()) << entry.path();
      unsupported.emplace_back(entry.path().string(), message);
      // Group by the reason text after the rule description.
      size_t colon = message.find("): ");
      std::string reason = colon == std::string::npos ? message : message.substr(colon + 3);
      size_t quote = reason.find(": ");
      reasons[reason.substr(
          0, std::min(reason.size(), quote == std::string::npos ? 80 : quote + 40))]++;
    }
  }
  size_t total = supported + unsupported.size();
  std::printf("sigma corpus: %zu of %zu rule files supported (%.1f %%)\n", supported, total,
              100.0 * static_cast<double>(supported) / static_cast<double>(total));
  for (const auto& [reason, count] : reasons) std::printf("  %4zu  %s\n", count, reason.c_str());
  std::printf("unsupported rule files:\n");
  for (const auto& [file, message] : unsupported) std::printf("  %s\n", message.c_str());
  ASSERT_GT(total, 500u);
  // Floor measured on the corpus: 95 % of the files loaded when this test was written.
  EXPECT_GE(static_cast<double>(supported), 0.90 * static_cast<double>(total));
}

// Each regression folder's rule matches the Windows events recorded for it.
TEST(RuleLoaderTest, RegressionFolders) {
  // Index the SigmaHQ rules by id.
  std::map<std::string, std::string> rule_files;
  const std::filesystem::path root = sharedPath("sigma");
  for (const auto& folder : {"rules", "rules-emerging-threats", "rules-threat-hunting"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root / folder)) {
      if (entry.path().extension() != ".yml") continue;
      YAML::Node document = YAML::LoadFile(entry.path().string());
      if (document["id"]) rule_files[document["id"].as<std::string>()] = entry.path().string();
    }
  }
  size_t checked = 0;
  size_t skipped = 0;
  for (const auto& folder : std::filesystem::directory_iterator(root / "regression")) {
    YAML::Node info = YAML::LoadFile((folder.path() / "info.yml").string());
    std::string id = info["rule_metadata"][0]["id"].as<std::string>();
    ASSERT_TRUE(rule_files.count(id)) << folder.path();
    RuleLoader loader;
    absl::Status status = loader.addFile(rule_files[id]);
    absl::StatusOr<RuleSet> rules = status.ok() ? loader.finish() : absl::StatusOr<RuleSet>(status);
    if (!rules.ok()) {
      ++skipped;  // unsupported rules are counted in CorpusSupportReport
      continue;
    }
    for (const auto& file : std::filesystem::directory_iterator(folder.path())) {
      if (file.path().extension() != ".json") continue;
      std::vector<bool> matched = matchEach(*rules, file.path().string());
      size_t hits = static_cast<size_t>(std::count(matched.begin(), matched.end(), true));
      size_t expected = info["regression_tests_info"][0]["match_count"]
                            ? info["regression_tests_info"][0]["match_count"].as<size_t>()
                            : 1;
      EXPECT_GE(hits, std::min<size_t>(expected, matched.size()))
          << file.path() << " rule " << rule_files[id];
      ++checked;
    }
  }
  std::printf("sigma regression: %zu event files checked, %zu folders skipped (rule unsupported)\n",
              checked, skipped);
  EXPECT_GT(checked, 100u);
}

}  // namespace
}  // namespace vigil::correlate
