// Indicator metadata, expiry, scores, the email / file name / regex types, punycode and
// URL normalization, through the builder's public API and the matcher.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/event.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/internal/punycode.h"
#include "intel/matcher.h"

namespace vigil::intel {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

BuilderOptions fixedNow() {
  BuilderOptions options;
  options.now = kNow;
  return options;
}

std::shared_ptr<const IndicatorSet> buildOrFail(IndicatorSetBuilder& builder) {
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *set : nullptr;
}

std::optional<Indicator> find(const IndicatorSet& set, std::string_view text) {
  for (uint32_t i = 0; i < set.size(); ++i) {
    if (set.text(i) == text) return set.indicator(i);
  }
  return std::nullopt;
}

// Expired values are dropped and counted; others keep every metadata field.
TEST(MetadataTest, ExpiryAndFields) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  IndicatorMeta old;
  old.valid_until = kNow - absl::Seconds(1);
  builder.addIndicator("feed", std::nullopt, "old.example", old, "t:1", report);
  IndicatorMeta fresh;
  fresh.confidence = 80;
  fresh.tags = {"tlp:white", "c2"};
  fresh.first_seen = kNow - absl::Hours(48);
  fresh.last_seen = kNow - absl::Hours(1);
  fresh.valid_from = kNow - absl::Hours(72);
  fresh.valid_until = kNow + absl::Hours(1);
  builder.addIndicator("feed", std::nullopt, "new.example", fresh, "t:2", report);
  EXPECT_EQ(report.expired, 1u);
  EXPECT_EQ(report.loaded, 1u);
  EXPECT_EQ(report.loaded_by_type[static_cast<size_t>(IndicatorType::kDomain)], 1u);

  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(set->size(), 1u);
  const Indicator& indicator = set->indicator(0);
  EXPECT_EQ(indicator.confidence, 80);
  EXPECT_EQ(indicator.tags, (std::vector<std::string>{"tlp:white", "c2"}));
  EXPECT_EQ(indicator.first_seen, fresh.first_seen);
  EXPECT_EQ(indicator.last_seen, fresh.last_seen);
  EXPECT_EQ(indicator.valid_from, fresh.valid_from);
  EXPECT_EQ(indicator.valid_until, fresh.valid_until);
  EXPECT_EQ(indicator.feed_count, 1u);
}

// Scores follow confidence, halve per half-life of age and grow with more feeds.
TEST(MetadataTest, Scores) {
  BuilderOptions options = fixedNow();
  options.score_half_life = absl::Hours(24);
  IndicatorSetBuilder builder(options);
  LoadReport report;
  IndicatorMeta recent;
  recent.confidence = 80;
  recent.last_seen = kNow;
  builder.addIndicator("a", std::nullopt, "recent.example", recent, "t:1", report);
  IndicatorMeta aged = recent;
  aged.last_seen = kNow - absl::Hours(24);
  builder.addIndicator("a", std::nullopt, "aged.example", aged, "t:2", report);
  IndicatorMeta unknown_age;
  unknown_age.confidence = 50;
  builder.addIndicator("a", std::nullopt, "twice.example", unknown_age, "t:3", report);
  builder.addIndicator("b", std::nullopt, "twice.example", unknown_age, "t:4", report);
  builder.addIndicator("a", std::nullopt, "twice.example", unknown_age, "t:5", report);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(find(*set, "recent.example")->score, 80);
  EXPECT_EQ(find(*set, "aged.example")->score, 40);
  std::optional<Indicator> twice = find(*set, "twice.example");
  ASSERT_TRUE(twice.has_value());
  EXPECT_EQ(twice->feed_count, 2u);
  EXPECT_EQ(twice->lists, "a,b");
  EXPECT_EQ(twice->score, 75);  // 1 - (1 - 0.5)^2
}

// Merged duplicates keep the widest validity, the earliest first_seen and all tags.
TEST(MetadataTest, MergesDuplicates) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  IndicatorMeta first;
  first.confidence = 30;
  first.tags = {"x"};
  first.first_seen = kNow - absl::Hours(5);
  first.valid_until = kNow + absl::Hours(1);
  IndicatorMeta second;
  second.confidence = 90;
  second.tags = {"y", "x"};
  second.first_seen = kNow - absl::Hours(9);
  second.valid_until = kNow + absl::Hours(2);
  builder.addIndicator("a", std::nullopt, "198.51.100.7", first, "t:1", report);
  builder.addIndicator("b", std::nullopt, "198.51.100.7", second, "t:2", report);
  EXPECT_EQ(report.duplicates, 1u);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  const Indicator& merged = set->indicator(0);
  EXPECT_EQ(merged.confidence, 90);
  EXPECT_EQ(merged.tags, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(merged.first_seen, second.first_seen);
  EXPECT_EQ(merged.valid_until, second.valid_until);
}

// Indicators with equal metadata share one row, and each keeps its own origin text.
TEST(MetadataTest, SharedRowsKeepOrigins) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  IndicatorMeta meta;
  meta.confidence = 70;
  meta.tags = {"c2"};
  const std::vector<std::pair<std::string, std::string>> values = {
      {"a.example", "feed.csv:7"},
      {"b.example", "feed.csv:12"},
      {"198.51.100.1", "x.json:response[2].Attribute[5]"},
      {"198.51.100.2", "x.json:007"},
      {"198.51.100.3", "bundle.json:indicator--id"},
      {"198.51.100.4", "f:99999999999"},
  };
  for (const auto& [value, origin] : values) {
    builder.addIndicator("feed", std::nullopt, value, meta, origin, report);
  }
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(set->size(), values.size());
  for (uint32_t id = 0; id < set->size(); ++id) {
    const Indicator indicator = set->indicator(id);
    EXPECT_EQ(indicator.text, values[id].first);
    EXPECT_EQ(indicator.origin, values[id].second);
    EXPECT_EQ(indicator.tags, std::vector<std::string>{"c2"});
    EXPECT_EQ(indicator.confidence, 70);
  }
  // The two "feed.csv:N" origins share a row; the other four origins differ around
  // their number, or have none that prints back the same.
  EXPECT_EQ(set->stats().metadata_rows, 5u);
  EXPECT_GT(set->stats().table_bytes, 0u);
}

// An indicator longer than a snapshot record can describe is rejected, not cut.
TEST(MetadataTest, RejectsOverlongIndicator) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("feed", IndicatorType::kEmail, std::string(70000, 'a') + "@bad.example",
                       IndicatorMeta{}, "t:1", report);
  EXPECT_EQ(report.loaded, 0u);
  EXPECT_EQ(report.rejected, 1u);
  ASSERT_EQ(report.rejections.size(), 1u);
  EXPECT_NE(report.rejections[0].reason.find("the maximum is 65535"), std::string::npos)
      << report.rejections[0].reason;
}

// Matcher hits carry the indicator id and score of the snapshot.
TEST(MetadataTest, HitCarriesIdAndScore) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  IndicatorMeta meta;
  meta.confidence = 64;
  builder.addIndicator("a", std::nullopt, "first.example", meta, "t:1", report);
  builder.addIndicator("a", std::nullopt, "bad.example", meta, "t:2", report);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  Scratch scratch(*set);
  Event event(4096);
  event.raw = event.arena.copy("query for bad.example from host");
  event.message = event.raw;
  ASSERT_EQ(matchEvent(*set, scratch, event), 1u);
  EXPECT_EQ(event.hits[0].indicator_id, 1u);
  EXPECT_EQ(event.hits[0].score, 64);
}

// Email indicators are lower-cased and hit at address boundaries in text.
TEST(MetadataTest, EmailMatching) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("m", IndicatorType::kEmail, "Phish@Bad.Example", {}, "t:1", report);
  builder.addIndicator("m", IndicatorType::kEmail, "no-at-sign", {}, "t:2", report);
  ASSERT_EQ(report.rejected, 1u);
  EXPECT_NE(report.rejections[0].reason.find("expected LOCAL@DOMAIN"), std::string::npos);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->indicator(0).text, "phish@bad.example");
  Scratch scratch(*set);
  Event event(4096);
  auto hits = [&](std::string_view message) {
    event.reset();
    event.raw = event.arena.copy(message);
    event.message = event.raw;
    return matchEvent(*set, scratch, event);
  };
  EXPECT_EQ(hits("from=<PHISH@bad.example> to=x"), 1u);
  EXPECT_EQ(hits("from=xphish@bad.example"), 0u);
  EXPECT_EQ(hits("from=phish@bad.example.org"), 0u);
}

// File names match exactly, without case, on file fields and the process name.
TEST(MetadataTest, FilenameMatching) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("f", IndicatorType::kFilename, "Evil.EXE", {}, "t:1", report);
  builder.addIndicator("f", IndicatorType::kFilename, "C:\\dir\\x.exe", {}, "t:2", report);
  ASSERT_EQ(report.rejected, 1u);
  EXPECT_NE(report.rejections[0].reason.find("file name with a directory"), std::string::npos);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  Scratch scratch(*set);
  Event event(4096);
  event.addField("file.path", "C:\\Users\\x\\EVIL.exe");
  ASSERT_EQ(matchEvent(*set, scratch, event), 1u);
  EXPECT_EQ(event.hits[0].field, "file.path");
  EXPECT_EQ(event.hits[0].type, IndicatorType::kFilename);
  event.reset();
  event.app = "evil.exe";
  ASSERT_EQ(matchEvent(*set, scratch, event), 1u);
  EXPECT_EQ(event.hits[0].field, "process.name");
  event.reset();
  event.addField("user.name", "evil.exe");
  EXPECT_EQ(matchEvent(*set, scratch, event), 0u);
  event.reset();
  event.addField("file.name", "notevil.exe");
  EXPECT_EQ(matchEvent(*set, scratch, event), 0u);
}

// Regexes compile into Hyperscan; ones it rejects are reported with its error text.
TEST(MetadataTest, RegexIndicators) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("r", IndicatorType::kRegex, "\\\\temp\\\\[a-z]{8}\\.exe", {}, "t:1", report);
  builder.addIndicator("r", IndicatorType::kRegex, "(a)\\1", {}, "t:2", report);
  builder.addIndicator("r", IndicatorType::kRegex, "x*", {}, "t:3", report);
  ASSERT_EQ(report.rejected, 2u);
  EXPECT_NE(report.rejections[0].reason.find("Hyperscan rejected it: "), std::string::npos);
  EXPECT_NE(report.rejections[1].reason.find("empty string"), std::string::npos);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->stats().count(IndicatorType::kRegex), 1u);
  Scratch scratch(*set);
  Event event(4096);
  event.raw = event.arena.copy("created C:\\TEMP\\abcdefgh.exe now");
  event.message = event.raw;
  ASSERT_EQ(matchEvent(*set, scratch, event), 1u);
  EXPECT_EQ(event.hits[0].type, IndicatorType::kRegex);
  EXPECT_EQ(event.hits[0].field, "message");
}

// Non-ASCII labels become punycode, in domains and in URL hosts.
TEST(MetadataTest, Punycode) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("p", std::nullopt,
                       "B\xc3\xbc"
                       "cher.Example",
                       {}, "t:1", report);
  builder.addIndicator("p", std::nullopt, "m\xc3\xbcnchen.example", {}, "t:2", report);
  builder.addIndicator("p", std::nullopt, "\xe4\xbe\x8b\xe3\x81\x88.example", {}, "t:3", report);
  builder.addIndicator("p", std::nullopt, "https://\xc3\xbc.example/a", {}, "t:4", report);
  EXPECT_EQ(report.rejected, 0u);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(set->size(), 4u);
  EXPECT_EQ(set->indicator(0).text, "xn--bcher-kva.example");
  EXPECT_EQ(set->indicator(1).text, "xn--mnchen-3ya.example");
  EXPECT_EQ(set->indicator(2).text, "xn--r8jz45g.example");
  EXPECT_EQ(set->indicator(3).text, "https://xn--tda.example/a");
}

// A name with a character that ends host names in events (emoji, punctuation, a byte
// order mark) is rejected: no event could hold it inside a name.
TEST(MetadataTest, DomainWithNameBreakingCharacterRejected) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("p", std::nullopt, "\U0001F600.example", {}, "t:1", report);
  builder.addIndicator("p", std::nullopt, "b\u00fccher\u00ab.example", {}, "t:2", report);
  builder.addIndicator("p", std::nullopt, "\ufeffbad.example", {}, "t:3", report);
  builder.addIndicator("p", std::nullopt, "b\u00fccher.example", {}, "t:4", report);
  EXPECT_EQ(report.loaded, 1u);
  ASSERT_EQ(report.rejected, 3u);
  EXPECT_NE(report.rejections[0].reason.find("character that ends host names in domain name"),
            std::string::npos)
      << report.rejections[0].reason;
  EXPECT_NE(report.rejections[0].reason.find("U+1F600"), std::string::npos);
  EXPECT_NE(report.rejections[1].reason.find("U+00AB"), std::string::npos);
  EXPECT_NE(report.rejections[2].reason.find("U+FEFF"), std::string::npos);
  EXPECT_NE(report.rejections[0].reason.find("could not match"), std::string::npos);
}

// The matcher's label encoder gives the builder's form without allocating, and refuses
// what does not fit or is not UTF-8.
TEST(MetadataTest, LabelToAscii) {
  std::array<char, 64> out{};
  auto encode = [&out](std::string_view label) {
    return std::string(out.data(), internal::labelToAscii(label, out));
  };
  EXPECT_EQ(encode("B\u00fccher"), "xn--bcher-kva");
  EXPECT_EQ(encode("\u4f8b\u3048"), "xn--r8jz45g");
  EXPECT_EQ(encode("MixedCase"), "mixedcase");
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("\xff"), "");
  EXPECT_EQ(encode("b\xc3"), "");  // cut sequence
  std::array<char, 8> small{};
  EXPECT_EQ(internal::labelToAscii("B\u00fccher", small), 0u);
  EXPECT_EQ(internal::labelToAscii("abcdefgh", small), 8u);
  EXPECT_EQ(internal::labelToAscii("abcdefghi", small), 0u);
  for (std::string_view label : {"m\u00fcnchen", "\u00e9t\u00e9", "a\U0001F600z"}) {
    EXPECT_EQ("xn--" + internal::punycodeEncode(label).value(), encode(label)) << label;
  }
}

// URL normalization: scheme and host lower case, default port gone, unreserved
// percent-escapes decoded and the rest written in upper-case hex.
TEST(MetadataTest, UrlNormalization) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("u", std::nullopt, "HTTP://Bad.Example:80/%7Euser/%41%2f%2F?q=%3d", {},
                       "t:1", report);
  builder.addIndicator("u", std::nullopt, "https://bad.example:8443/x", {}, "t:2", report);
  builder.addIndicator("u", std::nullopt, "http://bad.example/~user/A%2F%2F?q=%3D", {}, "t:3",
                       report);
  EXPECT_EQ(report.duplicates, 1u);
  std::shared_ptr<const IndicatorSet> set = buildOrFail(builder);
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(set->size(), 2u);
  EXPECT_EQ(set->indicator(0).text, "http://bad.example/~user/A%2F%2F?q=%3D");
  EXPECT_EQ(set->indicator(1).text, "https://bad.example:8443/x");
}

// A declared type must agree with the value.
TEST(MetadataTest, DeclaredTypeChecked) {
  IndicatorSetBuilder builder(fixedNow());
  LoadReport report;
  builder.addIndicator("d", IndicatorType::kMd5, "da39a3ee5e6b4b0d3255bfef95601890afd80709", {},
                       "t:1", report);
  builder.addIndicator("d", IndicatorType::kIpv4, "198.51.100.0/24", {}, "t:2", report);
  builder.addIndicator("d", IndicatorType::kDomain, "198.51.100.9", {}, "t:3", report);
  ASSERT_EQ(report.rejected, 2u);
  EXPECT_NE(report.rejections[0].reason.find("invalid md5"), std::string::npos);
  EXPECT_NE(report.rejections[0].reason.find("expected 32 hex digits"), std::string::npos);
  EXPECT_NE(report.rejections[1].reason.find("value declared as domain"), std::string::npos);
  EXPECT_NE(report.rejections[1].reason.find("reads as a ipv4"), std::string::npos);
  EXPECT_EQ(report.loaded, 1u);
}

}  // namespace
}  // namespace vigil::intel
