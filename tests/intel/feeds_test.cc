// CSV, MISP and STIX feeds and MISP warninglists, on hand-made inputs and on every feed
// of the shared corpus.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"

namespace vigil::intel {
namespace {

const std::string kIntelDir = std::string(VIGIL_SHARED_DIR) + "/corpus/intel";
const absl::Time kNow = absl::FromUnixSeconds(1'760'000'000);  // 2025-10-09

BuilderOptions fixedNow() {
  BuilderOptions options;
  options.now = kNow;
  return options;
}

size_t loadedOf(const LoadReport& report, IndicatorType type) {
  return report.loaded_by_type[static_cast<size_t>(type)];
}

std::string reasons(const LoadReport& report) {
  std::string out;
  for (const Rejection& r : report.rejections) out += r.location + ": " + r.reason + "\n";
  return out;
}

// ---------------------------------------------------------------------------------------
// CSV

// Quoted fields may hold the delimiter, doubled quotes and line breaks.
TEST(CsvFeedTest, QuotedFields) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.value.name = "ioc";
  options.tags.name = "tags";
  absl::StatusOr<LoadReport> report = builder.addCsvText(
      "csv",
      "# comment\n"
      "\"note\",ioc,tags\n"
      "\"a, \"\"quoted\"\"\nnote\",bad.example,c2|tlp:white\r\n"
      "plain,198.51.100.7,\n"
      "\n"
      "x,,y\n",
      "t.csv", options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 2u) << reasons(*report);
  ASSERT_EQ(report->rejected, 1u);
  EXPECT_EQ(report->rejections[0].location, "t.csv:7");
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 2u);
  EXPECT_EQ(set->indicator(0).text, "bad.example");
  EXPECT_EQ(set->indicator(0).origin, "t.csv:3");
  EXPECT_EQ(set->indicator(0).tags, (std::vector<std::string>{"c2", "tlp:white"}));
  EXPECT_EQ(set->indicator(1).origin, "t.csv:5");
}

// Columns by index, a type column, confidence and first_seen, another delimiter.
TEST(CsvFeedTest, ColumnsByIndex) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.header = false;
  options.delimiter = ';';
  options.value.index = 1;
  options.type.index = 0;
  options.confidence.index = 2;
  options.first_seen.index = 3;
  absl::StatusOr<LoadReport> report = builder.addCsvText(
      "csv",
      "email;Phish@Bad.Example;90;2025-01-02T03:04:05Z\n"
      "sha256;nothex;10;\n"
      "colour;red;10;\n"
      "domain;ok.example;101;\n",
      "t.csv", options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 1u);
  ASSERT_EQ(report->rejected, 3u);
  EXPECT_NE(report->rejections[0].reason.find("invalid sha256 'nothex'; expected 64 hex digits"), std::string::npos);
  EXPECT_NE(report->rejections[1].reason.find("unknown indicator type 'colour'"),
            std::string::npos);
  EXPECT_NE(report->rejections[2].reason.find("invalid confidence '101'"), std::string::npos);
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 1u);
  EXPECT_EQ(set->indicator(0).type, IndicatorType::kEmail);
  EXPECT_EQ(set->indicator(0).confidence, 90);
  EXPECT_EQ(set->indicator(0).first_seen, absl::FromUnixSeconds(1735787045));
}

// An empty confidence cell is no confidence: the indicator loads with the default.
TEST(CsvFeedTest, EmptyConfidenceGetsDefault) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.header = false;
  options.value.index = 0;
  options.type.index = 1;
  options.confidence.index = 2;
  absl::StatusOr<LoadReport> report =
      builder.addCsvText("csv", "203.0.113.10,ipv4,\n198.51.100.7,ipv4, \n", "t.csv", options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 2u);
  EXPECT_EQ(report->rejected, 0u);
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 2u);
  EXPECT_EQ(set->indicator(0).confidence, BuilderOptions{}.default_confidence);
  EXPECT_EQ(set->indicator(1).confidence, BuilderOptions{}.default_confidence);
}

// A column name missing from the header fails the load with the name.
TEST(CsvFeedTest, MissingColumn) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.value.name = "indicator";
  absl::StatusOr<LoadReport> report = builder.addCsvText("csv", "a,b\n1,2\n", "t.csv", options);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("'indicator' is not in the header row"),
            std::string::npos);
  CsvOptions unset;
  EXPECT_FALSE(builder.addCsvText("csv", "a\n", "t.csv", unset).ok());
}

// A column index beyond the header, or beyond every record of a feed without a header,
// fails the load instead of rejecting every record.
TEST(CsvFeedTest, ColumnIndexOutOfRange) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions with_header;
  with_header.value.index = 7;
  absl::StatusOr<LoadReport> report =
      builder.addCsvText("csv", "a,b\nbad.example,2\n", "t.csv", with_header);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("CSV value column 7 is out of range"), std::string::npos)
      << report.status();
  EXPECT_NE(report.status().message().find("2 columns (0 to 1)"), std::string::npos)
      << report.status();

  CsvOptions no_header;
  no_header.header = false;
  no_header.value.index = 0;
  no_header.tags.index = 3;
  report = builder.addCsvText("csv", "bad.example,x\nother.example,y,z\n", "t.csv", no_header);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("CSV tags column 3 is out of range"), std::string::npos)
      << report.status();
  EXPECT_NE(report.status().message().find("3 columns (0 to 2)"), std::string::npos)
      << report.status();

  // The last column of the widest record is in range, and an empty feed has no columns
  // to check.
  no_header.tags.index = 2;
  report = builder.addCsvText("csv", "bad.example,x\nother.example,y,z\n", "t.csv", no_header);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 2u);
  report = builder.addCsvText("csv", "", "t.csv", with_header);
  EXPECT_TRUE(report.ok()) << report.status();
}

// An unterminated quoted field is one rejection with its line.
TEST(CsvFeedTest, UnclosedQuote) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.value.index = 0;
  options.header = false;
  absl::StatusOr<LoadReport> report =
      builder.addCsvText("csv", "ok.example\n\"bad.example\n", "t.csv", options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->loaded, 1u);
  ASSERT_EQ(report->rejected, 1u);
  EXPECT_EQ(report->rejections[0].location, "t.csv:line 2: quoted field is not closed");
}

// First-seen and last-seen texts that are no RFC 3339 timestamp reject the record, like
// an invalid confidence, instead of loading it without the time.
TEST(CsvFeedTest, InvalidTimesRejected) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.value.name = "ioc";
  options.first_seen.name = "first";
  options.last_seen.name = "last";
  absl::StatusOr<LoadReport> report = builder.addCsvText(
      "csv",
      "ioc,first,last\n"
      "a.example,garbage,\n"
      "b.example,,2024-13-45T00:00:00Z\n"
      "c.example,2024-05-01T10:00:00Z, 2024-06-01T10:00:00Z \n"
      "d.example,,\n",
      "t.csv", options);
  ASSERT_TRUE(report.ok()) << report.status();

  EXPECT_EQ(report->loaded, 2u) << reasons(*report);
  ASSERT_EQ(report->rejected, 2u);
  EXPECT_EQ(report->rejections[0].location, "t.csv:2");
  EXPECT_EQ(report->rejections[0].reason,
            "invalid first_seen 'garbage'; expected an RFC 3339 timestamp such as "
            "2024-05-01T10:00:00Z, in the years 1678 to 2261");
  EXPECT_EQ(report->rejections[0].text, "a.example");
  EXPECT_EQ(report->rejections[1].location, "t.csv:3");
  EXPECT_NE(report->rejections[1].reason.find("invalid last_seen '2024-13-45T00:00:00Z'"),
            std::string::npos)
      << report->rejections[1].reason;

  // A valid time keeps its value, with the spaces around it ignored.
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  for (uint32_t i = 0; i < set->size(); ++i) {
    if (set->indicator(i).text != "c.example") continue;
    EXPECT_EQ(set->indicator(i).first_seen, absl::FromUnixSeconds(1714557600));
    EXPECT_EQ(set->indicator(i).last_seen, absl::FromUnixSeconds(1717236000));
  }
}

// URLhaus's Splunk lookup: hosts alone, or host + path as URLs, with the updated time.
TEST(CsvFeedTest, UrlhausSplunk) {
  IndicatorSetBuilder builder(fixedNow());
  CsvOptions options;
  options.value.name = "host";
  options.url_path.name = "path";
  options.first_seen.name = "updated";
  absl::StatusOr<LoadReport> report =
      builder.addCsvFile("urlhaus", kIntelDir + "/lists/urlhaus-splunk-online.csv", options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 0u) << reasons(*report);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kIpv4), 2234u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kDomain), 619u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kUrl) + report->duplicates, 3510u);
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  const Indicator& first = set->indicator(0);
  EXPECT_EQ(first.text, "0022a601.pphost.net");
  EXPECT_EQ(first.first_seen, absl::FromUnixSeconds(1752927088));  // 2025-07-19T12:11:28Z
}

// ---------------------------------------------------------------------------------------
// Regex lists

// LOKI's filename IOCs are regexes with a score; each compiles or is rejected.
TEST(RegexListTest, SignatureBaseFilenames) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addRegexListFile(
      "loki-names", kIntelDir + "/lists/signature-base-filename-iocs.txt");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->loaded, 1000u);
  for (const Rejection& r : report->rejections) {
    bool known = r.reason.find("Hyperscan rejected it") != std::string::npos ||
                 r.reason.find("empty string") != std::string::npos ||
                 r.reason.find("invalid score") != std::string::npos;
    EXPECT_TRUE(known) << r.location << ": " << r.reason;
  }
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->stats().count(IndicatorType::kRegex) + (*set)->stats().rejected_regexes,
            report->loaded);
  EXPECT_GT((*set)->stats().hs_database_bytes, 0u);

  // The score column is the confidence, also before a false-positive regex column.
  const IndicatorSet& regexes = **set;
  std::optional<uint32_t> usbclass;
  std::optional<uint32_t> whatsapp;
  for (uint32_t i = 0; i < regexes.size(); ++i) {
    if (regexes.indicator(i).text == "\\\\usbclass\\.sys") usbclass = i;
    if (regexes.indicator(i).text == "\\\\whatsapp\\.exe") whatsapp = i;
  }
  ASSERT_TRUE(usbclass.has_value());
  ASSERT_TRUE(whatsapp.has_value());
  EXPECT_EQ(regexes.indicator(*usbclass).confidence, 80);
  EXPECT_EQ(regexes.indicator(*whatsapp).confidence, 55);

  Scratch scratch(regexes);
  Event event(4096);
  event.addField("file.path", "C:\\Windows\\System32\\USBCLASS.SYS");
  matchEvent(regexes, scratch, event);
  bool found = false;
  for (size_t i = 0; i < event.hit_count; ++i) {
    found = found || event.hits[i].indicator_id == *usbclass;
  }
  EXPECT_TRUE(found);
}

// The first ';' that no backslash escapes ends the regex, and the field after it must be
// a score 0 to 100. A typo there rejects the line instead of becoming part of the regex.
TEST(RegexListTest, InvalidScoreRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"evil\\.example;x", "'x'"},       {"evil\\.example;-5", "'-5'"},
      {"evil\\.example;1000", "'1000'"}, {"evil\\.example;999", "'999'"},
      {"evil\\.example;101", "'101'"},   {"evil\\.example;", "''"},
      {"evil\\.example;x;80", "'x'"},    {"evil\\.example;+5", "'+5'"},
  };
  for (const auto& [line, value] : cases) {
    IndicatorSetBuilder builder(fixedNow());
    absl::StatusOr<LoadReport> report = builder.addRegexListText("re", line + "\n", "r.txt");
    ASSERT_TRUE(report.ok()) << line << ": " << report.status();
    EXPECT_EQ(report->loaded, 0u) << line;
    ASSERT_EQ(report->rejected, 1u) << line;
    const Rejection& rejection = report->rejections[0];
    EXPECT_EQ(rejection.location, "r.txt:1") << line;
    EXPECT_NE(rejection.reason.find("invalid score " + value), std::string::npos)
        << line << ": " << rejection.reason;
    EXPECT_NE(rejection.reason.find("0 to 100"), std::string::npos) << rejection.reason;
    EXPECT_NE(rejection.reason.find("'\\;'"), std::string::npos) << rejection.reason;
  }
}

// A ';' escaped with a backslash is part of the regex. An escaped backslash before ';'
// does not escape the ';'. A line without ';' has no score.
TEST(RegexListTest, EscapedSemicolonInRegex) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addRegexListText("re",
                                                               "evil\\;x\\.example;80\n"
                                                               "C:\\\\temp\\\\;70;fp\n"
                                                               "plain\\.example\n",
                                                               "r.txt");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 0u) << reasons(*report);
  EXPECT_EQ(report->loaded, 3u);
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  std::map<std::string, uint8_t> confidence;
  for (uint32_t i = 0; i < set->size(); ++i) {
    confidence[set->indicator(i).text] = set->indicator(i).confidence;
  }
  ASSERT_EQ(confidence.count("evil\\;x\\.example"), 1u);
  EXPECT_EQ(confidence["evil\\;x\\.example"], 80);
  ASSERT_EQ(confidence.count("C:\\\\temp\\\\"), 1u);
  EXPECT_EQ(confidence["C:\\\\temp\\\\"], 70);
  EXPECT_EQ(confidence.count("plain\\.example"), 1u);

  Scratch scratch(*set);
  Event event(4096);
  event.addField("url.path", "/evil;x.example");
  matchEvent(*set, scratch, event);
  ASSERT_EQ(event.hit_count, 1u);
  EXPECT_EQ(event.hits[0].indicator, "evil\\;x\\.example");
}

// ---------------------------------------------------------------------------------------
// MISP

// Attribute types map to indicator types; to_ids false and unknown types are counted.
TEST(MispFeedTest, AttributeTypes) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addMispText("misp", R"({"Event": {
    "Tag": [{"name": "tlp:green"}],
    "Attribute": [
      {"type": "ip-dst|port", "value": "198.51.100.7|443", "to_ids": true},
      {"type": "domain|ip", "value": "bad.example|203.0.113.5", "to_ids": true},
      {"type": "filename|sha256", "to_ids": true, "value":
       "evil.exe|ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"},
      {"type": "email-src", "value": "x@bad.example", "to_ids": true,
       "Tag": [{"name": "osint:certainty=\"93\""}], "timestamp": "1603642920"},
      {"type": "regexp", "value": "gate[0-9]+\\.php", "to_ids": true},
      {"type": "url", "value": "http://bad.example/a", "to_ids": false},
      {"type": "AS", "value": "AS174", "to_ids": true},
      {"type": "AS", "value": "AS175", "to_ids": true},
      {"type": "ip-src|port", "value": "198.51.100.9", "to_ids": true}
    ],
    "Object": [{"Attribute": [{"type": "md5", "value": "8764605c6f388c89096b534d33565802"}]}]
  }})",
                                                          "e.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 8u) << reasons(*report);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kIpv4), 2u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kFilename), 1u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kEmail), 1u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kRegex), 1u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kMd5), 1u);
  EXPECT_EQ(report->not_for_detection, 1u);
  EXPECT_EQ(report->unknown_types.at("AS"), 2u);
  ASSERT_EQ(report->rejected, 1u);
  EXPECT_NE(report->rejections[0].reason.find("has 1 parts separated by '|'; expected 2"),
            std::string::npos);
  EXPECT_EQ(report->rejections[0].location, "e.json:Event.Attribute[8]");

  std::shared_ptr<const IndicatorSet> set = *builder.build();
  for (uint32_t i = 0; i < set->size(); ++i) {
    const Indicator& indicator = set->indicator(i);
    if (indicator.type != IndicatorType::kEmail) continue;
    EXPECT_EQ(indicator.confidence, 93);
    EXPECT_EQ(indicator.tags,
              (std::vector<std::string>{"tlp:green", "osint:certainty=\"93\""}));
    EXPECT_EQ(indicator.first_seen, absl::FromUnixSeconds(1603642920));
  }
}

// The corpus feed folder loads the events that manifest.json lists.
TEST(MispFeedTest, FeedFolder) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report =
      builder.addMispFeedFolder("circl", kIntelDir + "/misp/feed");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 0u) << reasons(*report);
  EXPECT_EQ(report->loaded, 28u);
  EXPECT_EQ(report->duplicates, 2u);
  EXPECT_EQ(report->not_for_detection, 12u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kDomain), 4u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kFilename), 3u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kMd5), 12u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kSha1), 4u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kSha256), 4u);
  EXPECT_EQ(loadedOf(*report, IndicatorType::kUrl), 1u);
  EXPECT_EQ(report->unknown_types.at("ssdeep"), 3u);
}

// A missing feed folder is an error; a manifest entry without its file is a rejection.
TEST(MispFeedTest, FeedFolderErrors) {
  IndicatorSetBuilder builder(fixedNow());
  EXPECT_EQ(builder.addMispFeedFolder("f", "/nonexistent/feed").status().code(),
            absl::StatusCode::kNotFound);
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "vigil_misp_feed_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "manifest.json") << R"({"missing-uuid": {}, "../escape": {}})";
  absl::StatusOr<LoadReport> report = builder.addMispFeedFolder("f", dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->rejected, 2u);
  EXPECT_NE(reasons(*report).find("is not an event uuid"), std::string::npos);
  EXPECT_NE(reasons(*report).find("cannot open"), std::string::npos);
}

// Every MISP JSON file of the corpus loads; the collections give their known values.
TEST(MispFeedTest, CorpusCollections) {
  for (const char* file : {"misp-stix-test_attributes_collection_1.json",
                           "misp-stix-test_events_collection_1.json",
                           "misp-stix-test_objects_collection_1.json"}) {
    IndicatorSetBuilder builder(fixedNow());
    absl::StatusOr<LoadReport> report =
        builder.addMispFile("misp", kIntelDir + "/misp/" + file);
    ASSERT_TRUE(report.ok()) << file << ": " << report.status();
    EXPECT_EQ(report->rejected, 0u) << file << "\n" << reasons(*report);
    EXPECT_GT(report->loaded + report->not_for_detection + report->unknown_types.size(), 0u)
        << file;
  }
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> attributes =
      builder.addMispFile("misp", kIntelDir + "/misp/misp-stix-test_attributes_collection_1.json");
  ASSERT_TRUE(attributes.ok());
  EXPECT_EQ(attributes->loaded, 1u);
  EXPECT_EQ(attributes->unknown_types.at("AS"), 1u);
}

// Text that is not MISP JSON fails with the reason.
TEST(MispFeedTest, RejectsNonMisp) {
  IndicatorSetBuilder builder(fixedNow());
  EXPECT_NE(builder.addMispText("m", "{not json", "x").status().message().find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(builder.addMispText("m", R"({"a": 1})", "x").status().message().find("no \"Event\""),
            std::string::npos);
}

// Attribute times that are neither Unix seconds nor RFC 3339 reject the attribute with
// its position; null, empty and integer times are accepted.
TEST(MispFeedTest, InvalidTimesRejected) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addMispText("misp", R"({"Event": {"Attribute": [
    {"type": "domain", "value": "a.example", "timestamp": "garbage"},
    {"type": "domain", "value": "b.example", "first_seen": "2024-13-45T00:00:00Z"},
    {"type": "domain", "value": "c.example", "last_seen": {"x": 1}},
    {"type": "domain", "value": "d.example", "timestamp": "99999999999999"},
    {"type": "domain", "value": "e.example", "timestamp": 1603642920, "first_seen": null,
     "last_seen": ""},
    {"type": "domain", "value": "f.example", "timestamp": "1603642920",
     "first_seen": "2020-10-24T18:22:00.000000+02:00"}
  ]}})",
                                                          "e.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 2u) << reasons(*report);
  ASSERT_EQ(report->rejected, 4u) << reasons(*report);
  EXPECT_EQ(report->rejections[0].location, "e.json:Event.Attribute[0]");
  EXPECT_EQ(report->rejections[0].reason,
            "invalid timestamp 'garbage'; expected Unix seconds or an RFC 3339 timestamp such "
            "as 2024-05-01T10:00:00Z, in the years 1678 to 2261");
  EXPECT_EQ(report->rejections[0].text, "a.example");
  EXPECT_EQ(report->rejections[1].location, "e.json:Event.Attribute[1]");
  EXPECT_NE(report->rejections[1].reason.find("invalid first_seen '2024-13-45T00:00:00Z'"),
            std::string::npos);
  EXPECT_EQ(report->rejections[2].location, "e.json:Event.Attribute[2]");
  EXPECT_NE(report->rejections[2].reason.find("invalid last_seen '{\"x\":1}'"),
            std::string::npos)
      << report->rejections[2].reason;
  EXPECT_EQ(report->rejections[3].location, "e.json:Event.Attribute[3]");
  EXPECT_NE(report->rejections[3].reason.find("invalid timestamp '99999999999999'"),
            std::string::npos);

  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 2u);
  for (uint32_t i = 0; i < set->size(); ++i) {
    const Indicator& indicator = set->indicator(i);
    EXPECT_EQ(indicator.last_seen, absl::FromUnixSeconds(1603642920)) << indicator.text;
    // 2020-10-24T16:22:00Z for f.example, else the timestamp.
    const int64_t first_seen = indicator.text == "f.example" ? 1603556520 : 1603642920;
    EXPECT_EQ(indicator.first_seen, absl::FromUnixSeconds(first_seen)) << indicator.text;
  }
}

// A member of the wrong JSON type fails the load with the file, the JSON path and the
// expected type, instead of loading an empty feed.
TEST(MispFeedTest, WrongStructureRejected) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {R"({"Event": "notamap"})",
       "MISP file e.json has Event as a JSON string; expected an object (a MISP event)"},
      {R"({"response": {"Attribute": {"type": "md5", "value": "x"}}})",
       "MISP file e.json has response.Attribute as a JSON object; expected an array of MISP "
       "attributes"},
      {R"({"response": 5})", "MISP file e.json has response as a JSON number; expected an array"},
      {R"({"response": [{"Event": {"Object": {"Attribute": []}}}]})",
       "MISP file e.json has response[0].Event.Object as a JSON object; expected an array of "
       "MISP objects"},
      {R"({"Event": {"Object": [{"Attribute": "x"}]}})",
       "MISP file e.json has Event.Object[0].Attribute as a JSON string; expected an array"},
  };
  for (const Case& c : cases) {
    IndicatorSetBuilder builder(fixedNow());
    absl::StatusOr<LoadReport> report = builder.addMispText("misp", c.text, "e.json");
    ASSERT_FALSE(report.ok()) << c.text;
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(report.status().message().find(c.message), std::string::npos)
        << c.text << "\n" << report.status();
  }
}

// Attribute, object and search-result entries that are no JSON object are rejections
// with their position.
TEST(MispFeedTest, NonObjectEntriesCounted) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addMispText("misp", R"({"Event": {
    "Attribute": [7, {"type": "md5", "value": "8764605c6f388c89096b534d33565802"}, "x"],
    "Object": [null]}})",
                                                          "e.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 1u);
  ASSERT_EQ(report->rejected, 3u) << reasons(*report);
  EXPECT_EQ(report->rejections[0].location, "e.json:Event.Attribute[0]");
  EXPECT_EQ(report->rejections[0].reason,
            "entry is a JSON number; expected a MISP attribute object");
  EXPECT_EQ(report->rejections[0].text, "7");
  EXPECT_EQ(report->rejections[1].location, "e.json:Event.Attribute[2]");
  EXPECT_EQ(report->rejections[2].location, "e.json:Event.Object[0]");
  EXPECT_EQ(report->rejections[2].reason, "entry is a JSON null; expected a MISP object");

  absl::StatusOr<LoadReport> search = builder.addMispText("misp2", R"({"response": [1]})",
                                                          "r.json");
  ASSERT_TRUE(search.ok()) << search.status();
  ASSERT_EQ(search->rejected, 1u);
  EXPECT_EQ(search->rejections[0].location, "r.json:response[0]");
}

// A UTF-8 byte order mark at the start of a plain list, a CSV feed or a regex list is
// removed, so it neither joins the first value nor hides the first header name.
TEST(ListFeedTest, ByteOrderMarkStripped) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> list =
      builder.addListText("list", "\xEF\xBB\xBF" "bad.example\n198.51.100.7\n", "l.txt");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->rejected, 0u) << reasons(*list);
  EXPECT_EQ(list->loaded, 2u);

  CsvOptions options;
  options.value.name = "ioc";
  absl::StatusOr<LoadReport> csv =
      builder.addCsvText("csv", "\xEF\xBB\xBF" "ioc,note\nother.example,x\n", "c.csv", options);
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(csv->rejected, 0u) << reasons(*csv);
  EXPECT_EQ(csv->loaded, 1u);

  options.header = false;
  options.value = CsvColumn{"", 0};
  absl::StatusOr<LoadReport> no_header =
      builder.addCsvText("csv2", "\xEF\xBB\xBF" "third.example\n", "d.csv", options);
  ASSERT_TRUE(no_header.ok()) << no_header.status();
  EXPECT_EQ(no_header->rejected, 0u) << reasons(*no_header);
  EXPECT_EQ(no_header->loaded, 1u);

  absl::StatusOr<LoadReport> regex =
      builder.addRegexListText("re", "\xEF\xBB\xBF" "gate[0-9]+\\.php;80\n", "r.txt");
  ASSERT_TRUE(regex.ok()) << regex.status();
  EXPECT_EQ(regex->rejected, 0u) << reasons(*regex);
  EXPECT_EQ(regex->loaded, 1u);

  std::shared_ptr<const IndicatorSet> set = *builder.build();
  std::vector<std::string> texts;
  for (uint32_t i = 0; i < set->size(); ++i) texts.push_back(set->indicator(i).text);
  EXPECT_THAT(texts, ::testing::UnorderedElementsAre("bad.example", "198.51.100.7",
                                                     "other.example", "third.example",
                                                     "gate[0-9]+\\.php"));
}

// A folder given as a list, CSV or STIX file is an error, not an empty feed.
TEST(ListFeedTest, FolderIsRejected) {
  IndicatorSetBuilder builder(fixedNow());
  const std::string folder = ::testing::TempDir();
  absl::StatusOr<LoadReport> list = builder.addListFile("l", folder);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(list.status().message().find("is a folder; give the path of a feed file"),
            std::string::npos)
      << list.status();
  EXPECT_FALSE(builder.addStixFile("s", folder).ok());
}

// JSON feeds nested deeper than kMaxJsonDepth are rejected before parsing. A warninglist
// of 100,000 nested arrays once crashed the loader, which quoted a rejected value with a
// recursive dump().
TEST(JsonFeedTest, DeepNestingRejected) {
  const size_t levels = 100000;
  const std::string deep = std::string(levels, '[') + std::string(levels, ']');
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<WarninglistReport> list = builder.addWarninglistText(
      R"({"name": "x", "type": "string", "list": [)" + deep + "]}", "w.json");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(list.status().message().find("warninglist w.json nests arrays and objects deeper "
                                         "than 128 levels"),
            std::string::npos)
      << list.status();

  absl::StatusOr<LoadReport> misp = builder.addMispText(
      "m", R"({"Event": {"Attribute": [{"type": "ip-dst", "value": )" + deep + "}]}}", "e.json");
  ASSERT_FALSE(misp.ok());
  EXPECT_NE(misp.status().message().find("MISP file e.json nests arrays and objects deeper"),
            std::string::npos)
      << misp.status();

  absl::StatusOr<LoadReport> stix = builder.addStixText(
      "s", R"({"type": "bundle", "objects": [{"pattern": )" + deep + "}]}", "b.json");
  ASSERT_FALSE(stix.ok());
  EXPECT_NE(stix.status().message().find("STIX file b.json nests arrays and objects deeper"),
            std::string::npos)
      << stix.status();

  // A bundle at the limit still loads (its one object is not an indicator).
  const std::string shallow = std::string(120, '[') + std::string(120, ']');
  EXPECT_TRUE(builder.addStixText("s", R"({"type": "bundle", "objects": [{"x": )" + shallow + "}]}",
                                  "b.json")
                  .ok());
}

// ---------------------------------------------------------------------------------------
// Warninglists

// Each list type suppresses the values it names, counted per list.
TEST(WarninglistTest, SuppressesPerType) {
  IndicatorSetBuilder builder(fixedNow());
  auto add = [&](const char* text) {
    absl::StatusOr<WarninglistReport> report = builder.addWarninglistText(text, "w.json");
    EXPECT_TRUE(report.ok()) << report.status();
  };
  add(R"({"name": "cidrs", "type": "cidr", "list": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"],
          "matching_attributes": ["ip-src", "ip-dst"]})");
  add(R"({"name": "hosts", "type": "hostname", "list": ["cdn.example", ".parked.example"],
          "matching_attributes": ["domain", "hostname", "url"]})");
  add(R"({"name": "strings", "type": "string", "list": ["D41D8CD98F00B204E9800998ECF8427E"],
          "matching_attributes": ["md5"]})");
  add(R"({"name": "subs", "type": "substring", "list": ["sinkhole"]})");
  add(R"({"name": "regexes", "type": "regex", "list": ["^test[0-9]+\\.example$"]})");
  LoadReport report;
  for (const char* value :
       {"10.1.2.3", "10.9.0.0/16", "2001:db8::5", "192.0.2.1", "192.0.2.2", "cdn.example",
        "a.cdn.example", "parked.example", "x.parked.example", "http://a.cdn.example/p",
        "d41d8cd98f00b204e9800998ecf8427e", "sinkhole.bad.example", "test42.example",
        "bad.example"}) {
    builder.addIndicator("feed", std::nullopt, value, {}, "t:1", report);
  }
  ASSERT_EQ(report.loaded, 14u) << reasons(report);
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  const std::map<std::string, size_t>& counts = set->stats().suppressed_by_warninglist;
  EXPECT_EQ(counts.at("cidrs"), 4u);
  EXPECT_EQ(counts.at("hosts"), 4u);
  EXPECT_EQ(counts.at("strings"), 1u);
  EXPECT_EQ(counts.at("subs"), 1u);
  EXPECT_EQ(counts.at("regexes"), 1u);
  ASSERT_EQ(set->size(), 3u);
  EXPECT_EQ(set->indicator(0).text, "192.0.2.2");
  EXPECT_EQ(set->indicator(1).text, "parked.example");
  EXPECT_EQ(set->indicator(2).text, "bad.example");
}

// Entries written in UTF-8 suppress indicators of internationalized names, which are
// kept in punycode.
TEST(WarninglistTest, InternationalizedEntries) {
  IndicatorSetBuilder builder(fixedNow());
  ASSERT_TRUE(builder
                  .addWarninglistText(R"({"name": "hosts", "type": "hostname",
                    "list": ["B\u00fccher.example", ".m\u00fcnchen.example"]})",
                                      "w.json")
                  .ok());
  absl::StatusOr<WarninglistReport> strings = builder.addWarninglistText(
      R"({"name": "strings", "type": "string", "list": ["\u4f8b\u3048.example", "\u00ff\u00fe"]})",
      "s.json");
  ASSERT_TRUE(strings.ok()) << strings.status();
  EXPECT_EQ(strings->entries, 2u);
  LoadReport report;
  for (const char* value : {"b\u00fccher.example", "www.xn--bcher-kva.example",
                            "x.m\u00fcnchen.example", "m\u00fcnchen.example",
                            "\u4f8b\u3048.example", "other.example"}) {
    builder.addIndicator("feed", std::nullopt, value, {}, "t:1", report);
  }
  ASSERT_EQ(report.loaded, 6u) << reasons(report);
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  const std::map<std::string, size_t>& counts = set->stats().suppressed_by_warninglist;
  EXPECT_EQ(counts.at("hosts"), 3u);
  EXPECT_EQ(counts.at("strings"), 1u);
  ASSERT_EQ(set->size(), 2u);
  EXPECT_EQ(set->indicator(0).text, "xn--mnchen-3ya.example");
  EXPECT_EQ(set->indicator(1).text, "other.example");
}

// Invalid lists fail; invalid entries are rejections.
TEST(WarninglistTest, InvalidLists) {
  IndicatorSetBuilder builder(fixedNow());
  EXPECT_NE(builder.addWarninglistText(R"({"type": "glob", "list": []})", "w.json")
                .status()
                .message()
                .find("unknown type 'glob'"),
            std::string::npos);
  EXPECT_FALSE(builder.addWarninglistText(R"({"type": "cidr"})", "w.json").ok());
  absl::StatusOr<WarninglistReport> report = builder.addWarninglistText(
      R"({"name": "n", "type": "cidr", "list": ["10.0.0.0/8", "nonsense", 5]})", "w.json");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->entries, 1u);
  ASSERT_EQ(report->rejected, 2u);
  EXPECT_EQ(report->rejections[0].location, "w.json:list[1]");
}

// Every corpus warninglist loads, and they suppress RFC 1918 and public DNS entries.
TEST(WarninglistTest, CorpusLists) {
  IndicatorSetBuilder builder(fixedNow());
  for (const auto& entry :
       std::filesystem::directory_iterator(kIntelDir + "/misp-warninglists")) {
    absl::StatusOr<WarninglistReport> report = builder.addWarninglistFile(entry.path().string());
    ASSERT_TRUE(report.ok()) << entry.path() << ": " << report.status();
    EXPECT_GT(report->entries, 0u) << entry.path();
    EXPECT_EQ(report->rejected, 0u) << entry.path();
  }
  LoadReport report;
  for (const char* value : {"10.0.0.1", "8.8.8.8", "dns.google", "bit.ly", "x.bad.example"}) {
    builder.addIndicator("feed", std::nullopt, value, {}, "t:1", report);
  }
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 1u);
  EXPECT_EQ(set->indicator(0).text, "x.bad.example");
}

// ---------------------------------------------------------------------------------------
// STIX

// An indicator's metadata comes from the object; expired indicators are counted.
TEST(StixFeedTest, Metadata) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addStixText("stix", R"({"type": "bundle",
    "objects": [
      {"type": "indicator", "id": "indicator--1", "pattern_type": "stix",
       "pattern": "[domain-name:value = 'bad.example'] OR [ipv4-addr:value = '198.51.100.0/24']",
       "valid_from": "2025-01-01T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z",
       "confidence": 85, "labels": ["c2"], "created": "2025-01-01T00:00:00Z",
       "modified": "2025-02-01T00:00:00Z"},
      {"type": "indicator", "id": "indicator--2", "pattern_type": "stix",
       "pattern": "[url:value = 'http://old.example/']", "valid_until": "2020-01-01T00:00:00Z"},
      {"type": "indicator", "id": "indicator--3", "pattern_type": "sigma", "pattern": "x"},
      {"type": "indicator", "id": "indicator--4", "pattern_type": "stix",
       "pattern": "[domain-name:value = 'ok.example' OR domain-name:value = 'bad_name']"},
      {"type": "malware", "id": "malware--1"}
    ]})",
                                                          "b.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 2u);
  EXPECT_EQ(report->expired, 1u);
  ASSERT_EQ(report->rejected, 2u);
  EXPECT_EQ(report->rejections[0].location, "b.json:indicator--3");
  EXPECT_NE(report->rejections[0].reason.find("pattern_type 'sigma'"), std::string::npos);
  // The valid value of indicator--4 is not loaded either: a pattern loads whole.
  EXPECT_EQ(report->rejections[1].location, "b.json:indicator--4");
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 2u);
  const Indicator& domain = set->indicator(0);
  EXPECT_EQ(domain.confidence, 85);
  EXPECT_EQ(domain.tags, std::vector<std::string>{"c2"});
  EXPECT_EQ(domain.valid_until, absl::FromUnixSeconds(1893456000));
  EXPECT_EQ(domain.last_seen, absl::FromUnixSeconds(1738368000));
  EXPECT_EQ(set->indicator(1).type, IndicatorType::kCidr);
}

// An invalid confidence or time member rejects the indicator with its id and the
// reason, instead of loading it without that member.
TEST(StixFeedTest, InvalidMetadataRejected) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addStixText("stix", R"({"type": "bundle",
    "objects": [
      {"type": "indicator", "id": "indicator--1", "confidence": 500,
       "pattern": "[domain-name:value = 'a.example']"},
      {"type": "indicator", "id": "indicator--2", "confidence": -1,
       "pattern": "[domain-name:value = 'b.example']"},
      {"type": "indicator", "id": "indicator--3", "confidence": "85",
       "pattern": "[domain-name:value = 'c.example']"},
      {"type": "indicator", "id": "indicator--4", "valid_until": "garbage",
       "pattern": "[domain-name:value = 'd.example']"},
      {"type": "indicator", "id": "indicator--5", "valid_from": 7,
       "pattern": "[domain-name:value = 'e.example']"},
      {"type": "indicator", "id": "indicator--6", "created": "2024-13-45T00:00:00Z",
       "pattern": "[domain-name:value = 'f.example']"},
      {"type": "indicator", "id": "indicator--7", "confidence": 100, "valid_from":
       "2025-01-01T00:00:00Z", "pattern": "[domain-name:value = 'g.example']"}
    ]})",
                                                          "b.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 1u) << reasons(*report);
  ASSERT_EQ(report->rejected, 6u) << reasons(*report);
  const char* expected[] = {
      "invalid confidence '500'; expected an integer 0 to 100",
      "invalid confidence '-1'; expected an integer 0 to 100",
      "invalid confidence '\"85\"'; expected an integer 0 to 100",
      "invalid valid_until 'garbage'; expected an RFC 3339 timestamp such as "
      "2024-05-01T10:00:00Z, in the years 1678 to 2261",
      "invalid valid_from '7'; expected an RFC 3339 timestamp",
      "invalid created '2024-13-45T00:00:00Z'; expected an RFC 3339 timestamp",
  };
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(report->rejections[i].location, "b.json:indicator--" + std::to_string(i + 1));
    EXPECT_NE(report->rejections[i].reason.find(expected[i]), std::string::npos)
        << report->rejections[i].reason;
  }
  std::shared_ptr<const IndicatorSet> set = *builder.build();
  ASSERT_EQ(set->size(), 1u);
  EXPECT_EQ(set->indicator(0).confidence, 100);
}

// An address must belong to the family its object type names: an IPv6 value on
// ipv4-addr loaded as an IPv6 indicator before, with no word in the report.
TEST(StixFeedTest, AddressFamilyChecked) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addStixText("stix", R"({"type": "bundle",
    "objects": [
      {"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '2001:db8::1']"},
      {"type": "indicator", "id": "indicator--2", "pattern": "[ipv6-addr:value = '198.51.100.7']"},
      {"type": "indicator", "id": "indicator--3",
       "pattern": "[ipv4-addr:value ISSUBSET '2001:db8::/32']"},
      {"type": "indicator", "id": "indicator--4",
       "pattern": "[ipv4-addr:value = '198.51.100.8'] OR [ipv6-addr:value = '198.51.100.9']"},
      {"type": "indicator", "id": "indicator--5", "pattern": "[ipv4-addr:value = '198.51.100.7']"},
      {"type": "indicator", "id": "indicator--6", "pattern": "[ipv6-addr:value = '2001:db8::7']"},
      {"type": "indicator", "id": "indicator--7",
       "pattern": "[ipv6-addr:value = '::ffff:198.51.100.10']"},
      {"type": "indicator", "id": "indicator--8",
       "pattern": "[ipv4-addr:value ISSUBSET '203.0.113.0/24']"},
      {"type": "indicator", "id": "indicator--9",
       "pattern": "[ipv6-addr:value ISSUBSET '2001:db8:1::/48']"}
    ]})",
                                                          "f.json");
  ASSERT_TRUE(report.ok()) << report.status();

  ASSERT_EQ(report->rejected, 4u) << reasons(*report);
  const char* expected[] = {
      "ipv4-addr:value holds the IPv6 value '2001:db8::1'; write it as ipv6-addr:value",
      "ipv6-addr:value holds the IPv4 value '198.51.100.7'; write it as ipv4-addr:value",
      "ipv4-addr:value holds the IPv6 value '2001:db8::/32'",
      "ipv6-addr:value holds the IPv4 value '198.51.100.9'",
  };
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(report->rejections[i].location, "f.json:indicator--" + std::to_string(i + 1));
    EXPECT_NE(report->rejections[i].reason.find(expected[i]), std::string::npos)
        << report->rejections[i].reason;
  }

  // An invalid address is reported as one, not with a reason about domain names.
  {
    IndicatorSetBuilder other(fixedNow());
    absl::StatusOr<LoadReport> invalid = other.addStixText("stix", R"({"type": "bundle",
      "objects": [
        {"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '999.1.1.1']"},
        {"type": "indicator", "id": "indicator--2", "pattern": "[ipv6-addr:value = 'fe80::1%eth0']"}
      ]})",
                                                           "g.json");
    ASSERT_TRUE(invalid.ok()) << invalid.status();
    ASSERT_EQ(invalid->rejected, 2u) << reasons(*invalid);
    EXPECT_NE(invalid->rejections[0].reason.find(
                  "invalid ipv4-addr value '999.1.1.1'; expected an IPv4 address or CIDR"),
              std::string::npos)
        << invalid->rejections[0].reason;
    EXPECT_NE(invalid->rejections[1].reason.find(
                  "invalid ipv6-addr value 'fe80::1%eth0'; expected an IPv6 address or CIDR"),
              std::string::npos)
        << invalid->rejections[1].reason;
  }

  // indicator--4 loads whole or not at all: 198.51.100.8 is not in the set.
  EXPECT_EQ(report->loaded, 5u) << reasons(*report);

  std::shared_ptr<const IndicatorSet> set = *builder.build();
  std::vector<std::string> texts;
  for (uint32_t i = 0; i < set->size(); ++i) texts.push_back(set->indicator(i).text);
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(texts, (std::vector<std::string>{"198.51.100.10", "198.51.100.7", "2001:db8:1::/48",
                                             "2001:db8::7", "203.0.113.0/24"}));
}

// Members of the wrong JSON type are read as absent instead of throwing: a fuzzer found
// "revoked": "yes" aborting the loader through nlohmann's type_error.
TEST(StixFeedTest, WrongMemberTypes) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> report = builder.addStixText("stix", R"({"type": "bundle",
    "objects": [
      {"type": "indicator", "id": "indicator--1", "pattern_type": "stix", "revoked": "yes",
       "pattern": "[domain-name:value = 'bad.example']"},
      {"type": "indicator", "id": "indicator--2", "pattern_type": "stix", "revoked": true,
       "pattern": "[domain-name:value = 'gone.example']"},
      {"type": 7, "id": "indicator--3", "pattern": "[domain-name:value = 'x.example']"}
    ]})",
                                                          "b.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 1u);
  ASSERT_EQ(report->rejected, 1u);
  EXPECT_EQ(report->rejections[0].reason, "indicator is revoked");

  absl::StatusOr<LoadReport> not_bundle = builder.addStixText("s2", R"({"type": 1})", "c.json");
  EXPECT_FALSE(not_bundle.ok());
  absl::StatusOr<WarninglistReport> list =
      builder.addWarninglistText(R"({"name": 5, "type": 3, "list": ["a.example"]})", "w.json");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("3"), std::string::npos) << list.status();
}

// A bundle whose objects member is no array fails the load. Entries of the objects array
// that are no JSON object are rejections with their position.
TEST(StixFeedTest, WrongStructure) {
  IndicatorSetBuilder builder(fixedNow());
  absl::StatusOr<LoadReport> bad =
      builder.addStixText("stix", R"({"type": "bundle", "objects": {"a": 1}})", "b.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "STIX file b.json has objects as a JSON object; expected an array of STIX objects");

  absl::StatusOr<LoadReport> report = builder.addStixText("stix", R"({"type": "bundle",
    "objects": ["x", {"type": "indicator", "id": "indicator--1",
                      "pattern": "[domain-name:value = 'bad.example']"}, [1]]})",
                                                          "b.json");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 1u);
  ASSERT_EQ(report->rejected, 2u) << reasons(*report);
  EXPECT_EQ(report->rejections[0].location, "b.json:objects[0]");
  EXPECT_EQ(report->rejections[0].reason, "entry is a JSON string; expected a STIX object");
  EXPECT_EQ(report->rejections[1].location, "b.json:objects[2]");
  EXPECT_EQ(report->rejections[1].reason, "entry is a JSON array; expected a STIX object");

  absl::StatusOr<LoadReport> empty = builder.addStixText("s2", R"({"type": "bundle"})", "e.json");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->rejected, 0u);
}

// Per corpus file: indicators loaded and patterns rejected (with the reason kind).
struct StixExpectation {
  size_t loaded;
  size_t rejected;
};

// Every bundle in the corpus loads; each rejection is a pattern that is not runnable.
TEST(StixFeedTest, CorpusBundles) {
  const std::map<std::string, StixExpectation> expected = {
      {"misp-stix-test_attributes_collection_stix21.json", {2, 1}},
      {"misp-stix-test_event1_stix21.json", {1, 0}},
      {"misp-stix-test_events_collection_stix21.json", {2, 1}},
      {"misp-stix-test_objects_collection_stix21.json", {1, 2}},
      {"oasis-apt1.json", {10, 2}},
      {"oasis-doc-indicator-for-malicious-url.json", {1, 0}},
      {"oasis-doc-malware-indicator-for-file-hash.json", {1, 0}},
      {"oasis-doc-sighting-of-an-indicator.json", {1, 0}},
      {"oasis-doc-using-granular-markings.json", {1, 0}},
      {"oasis-indicator-for-c2-ip-address.json", {1, 0}},
      {"oasis-indicator-to-campaign-relationship.json", {1, 0}},
      {"oasis-indicators-for-C2-with-COA.json", {2, 0}},
      {"oasis-infrastructure.json", {0, 0}},
      {"oasis-malicious-email-indicator-with-attachment.json", {0, 2}},
      {"oasis-viz-test.json", {1, 3}},
  };
  for (const auto& [file, want] : expected) {
    IndicatorSetBuilder builder(fixedNow());
    absl::StatusOr<LoadReport> report = builder.addStixFile("stix", kIntelDir + "/stix/" + file);
    ASSERT_TRUE(report.ok()) << file << ": " << report.status();
    EXPECT_EQ(report->loaded, want.loaded) << file << "\n" << reasons(*report);
    EXPECT_EQ(report->rejected, want.rejected) << file << "\n" << reasons(*report);
    for (const Rejection& r : report->rejections) {
      EXPECT_NE(r.reason.find("only single values joined by OR"), std::string::npos)
          << file << ": " << r.reason;
    }
    EXPECT_TRUE(builder.build().ok()) << file;
  }
}

// The MISP-to-STIX mapping examples: every STIX array loads as a collection of objects.
TEST(StixFeedTest, MispMappingExamples) {
  std::ifstream in(kIntelDir + "/stix/misp-attributes-to-stix21-mapping.json");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json mapping = nlohmann::json::parse(text.str());
  IndicatorSetBuilder builder(fixedNow());
  size_t loaded = 0;
  size_t rejected = 0;
  for (const auto& [misp_type, example] : mapping.items()) {
    // Most examples give an array of objects; a few give one object.
    nlohmann::json objects = example["STIX"];
    if (objects.is_object()) objects = nlohmann::json::array({objects});
    absl::StatusOr<LoadReport> report = builder.addStixText("mapping", objects.dump(), misp_type);
    ASSERT_TRUE(report.ok()) << misp_type << ": " << report.status();
    loaded += report->loaded;
    rejected += report->rejected;
    if (misp_type == "domain" || misp_type == "md5" || misp_type == "url" ||
        misp_type == "email-src" || misp_type == "filename") {
      EXPECT_EQ(report->loaded + report->duplicates, 1u) << misp_type << "\n" << reasons(*report);
    }
    // MISP writes addresses as network-traffic refs joined by AND.
    if (misp_type == "ip-dst") {
      EXPECT_EQ(report->rejected, 1u) << misp_type;
    }
  }
  EXPECT_GT(loaded, 10u);
  EXPECT_GT(rejected, 0u);
  EXPECT_TRUE(builder.build().ok());
}

}  // namespace
}  // namespace vigil::intel
