// The `intel:` section: feed formats, CSV layouts, warninglists and builder limits, and a
// daemon that loads the real corpus feeds in each format through that section.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "mgmt/config.h"
#include "mgmt/daemon.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

absl::StatusOr<DaemonConfig> parse(const std::string& yaml) {
  return parseConfig(yaml, "test.yaml", "/etc/vigil");
}

std::string corpus(const std::string& relative) {
  return std::string(VIGIL_SHARED_DIR) + "/corpus/intel/" + relative;
}

// Each format and CSV key lands in the config, with paths resolved against the base dir.
TEST(ConfigIntel, FormatsAndCsvLayout) {
  auto c = parse(
      "intel:\n"
      "  min_ipv4_prefix_len: 12\n"
      "  default_confidence: 70\n"
      "  score_half_life_days: 0\n"
      "  warninglists: [wl]\n"
      "  lists:\n"
      "    - {name: plain, path: a.txt}\n"
      "    - {name: names, path: f.txt, format: regex}\n"
      "    - name: uh\n"
      "      path: u.csv\n"
      "      format: csv\n"
      "      csv: {value_column: url, url_path_column: 3, type: domain, delimiter: '\\t',\n"
      "            header: false}\n"
      "    - {name: misp, path: feed, format: misp_feed}\n"
      "    - {name: stix, path: /abs/b.json, format: stix}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->intel_min_ipv4_prefix_len, 12);
  EXPECT_EQ(c->intel_min_ipv6_prefix_len, 32);
  EXPECT_EQ(c->intel_default_confidence, 70);
  EXPECT_EQ(c->intel_score_half_life_days, 0);
  ASSERT_EQ(c->intel_warninglists.size(), 1u);
  EXPECT_EQ(c->intel_warninglists[0], "/etc/vigil/wl");
  ASSERT_EQ(c->intel_lists.size(), 5u);
  EXPECT_EQ(c->intel_lists[0].format, "list");
  EXPECT_EQ(c->intel_lists[1].format, "regex");
  const IntelListConfig& csv = c->intel_lists[2];
  EXPECT_EQ(csv.format, "csv");
  EXPECT_EQ(csv.path, "/etc/vigil/u.csv");
  EXPECT_EQ(csv.csv.value_column, "url");
  EXPECT_EQ(csv.csv.url_path_column, "3");
  EXPECT_EQ(csv.csv.type, "domain");
  EXPECT_EQ(csv.csv.delimiter, '\t');
  EXPECT_FALSE(csv.csv.header);
  EXPECT_EQ(c->intel_lists[3].format, "misp_feed");
  EXPECT_EQ(c->intel_lists[4].path, "/abs/b.json");
}

// Bad intel settings are rejected with the key, the value and what is accepted.
TEST(ConfigIntel, ErrorsNameValueAndFix) {
  const std::pair<const char*, const char*> cases[] = {
      {"intel: {lists: [{name: a, path: x, format: txt}]}\n",
       "intel.lists[0].format: 'txt' is not one of csv, list, misp, misp_feed, regex, stix"},
      {"intel: {lists: [{name: a, path: x, format: csv}]}\n",
       "intel.lists[0].csv: missing; format csv needs at least {value_column: NAME_OR_INDEX}"},
      {"intel: {lists: [{name: a, path: x, format: csv, csv: {type: ip}}]}\n",
       "intel.lists[0].csv.value_column: missing"},
      {"intel: {lists: [{name: a, path: x, format: csv, csv: {value_column: 0, type: ip}}]}\n",
       "intel.lists[0].csv.type: 'ip' is not one of"},
      {"intel: {lists: [{name: a, path: x, format: csv, csv: {value_column: 0, delimiter: ';;'}}]}\n",
       "intel.lists[0].csv.delimiter: ';;' is not one character"},
      {"intel: {lists: [{name: a, path: x, csv: {value_column: 0}}]}\n",
       "intel.lists[0].csv: applies only to format csv, not 'list'"},
      {"intel: {lists: [{name: a, path: x}, {name: a, path: y}]}\n",
       "intel.lists[1].name: 'a' is used by an earlier list"},
      {"intel: {lists: [{name: a}]}\n", "intel.lists[0].path: missing"},
      {"intel: {lists: [{name: a, path: x, url: 'http://127.0.0.1/x'}]}\n",
       "intel.lists[0].url: given together with path"},
      {"intel: {lists: [{name: a, url: 'ftp://127.0.0.1/x'}]}\n",
       "intel.lists[0].url: 'ftp://127.0.0.1/x' is not an http:// or https:// URL"},
      {"intel: {lists: [{url: 'http://127.0.0.1/x'}]}\n",
       "intel.lists[0].name: missing; a url feed needs a name"},
      {"intel: {lists: [{name: a, url: 'http://127.0.0.1/x', format: misp_feed}]}\n",
       "intel.lists[0].url: format misp_feed needs a local folder"},
      {"intel: {refresh_s: -1}\n", "intel.refresh_s: '-1' is not a number in [0, 604800]"},
      {"intel: {min_ipv4_prefix_len: 0}\n",
       "intel.min_ipv4_prefix_len: '0' is not a number in [1, 32]"},
      {"intel: {default_confidence: 101}\n",
       "intel.default_confidence: '101' is not a number in [0, 100]"},
      {"intel: {feeds: []}\n", "intel.feeds: unknown key"},
  };
  for (const auto& [yaml, expected] : cases) {
    auto c = parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(expected), std::string::npos)
        << yaml << " gave: " << c.status().message();
  }
}

// A daemon loads a CSV, a MISP feed folder, a STIX bundle and a regex list from the real
// corpus, applies the warninglists folder, and exports per-list counters.
TEST(ConfigIntel, DaemonLoadsEveryFormat) {
  testing::TempDir state;
  auto c = parse(
      "state_dir: " + state.file("state") + "\n"
      "intel:\n"
      "  warninglists: [" + corpus("misp-warninglists") + "]\n"
      "  lists:\n"
      "    - name: urlhaus\n"
      "      path: " + corpus("lists/urlhaus-splunk-online.csv") + "\n"
      "      format: csv\n"
      "      csv: {value_column: host, url_path_column: path, last_seen_column: updated}\n"
      "    - {name: misp, path: " + corpus("misp/feed") + ", format: misp_feed}\n"
      "    - {name: apt1, path: " + corpus("stix/oasis-apt1.json") + ", format: stix}\n"
      "    - {name: c2, path: " + corpus("stix/oasis-indicator-for-c2-ip-address.json") +
      ", format: stix}\n"
      "    - {name: names, path: " + corpus("lists/signature-base-filename-iocs.txt") +
      ", format: regex}\n"
      "    - {name: ips, path: " + corpus("lists/threatfox-ips.txt") + "}\n"
      "api: {enabled: false}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  Daemon daemon(*c, DaemonOptions{});
  absl::Status st = daemon.validate();
  ASSERT_TRUE(st.ok()) << st;
  const MetricsRegistry& m = daemon.metrics();
  for (const char* list : {"urlhaus", "misp", "c2", "names", "ips"}) {
    EXPECT_GT(m.sum("vigil_intel_indicators_loaded_total", {{"list", list}}), 0u) << list;
  }
}

// A feed path of the wrong kind is a clear error naming the list and the fix.
TEST(ConfigIntel, DaemonRejectsMissingFeed) {
  testing::TempDir state;
  auto c = parse("state_dir: " + state.file("state") +
                 "\nintel: {lists: [{name: m, path: /nonexistent/feed, format: misp_feed}]}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  testing::LogCapture log;
  Daemon daemon(*c, DaemonOptions{});
  absl::Status st = daemon.validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("test.yaml:2: intel.lists[0] (m): /nonexistent/feed is not a folder"),
            std::string::npos)
      << st;
  // The error is returned once, not also logged by the snapshot build.
  EXPECT_EQ(log.text().find("/nonexistent/feed"), std::string::npos) << log.text();
}

// Folders vigild could not create fail validation with the key that names them, and a
// folder that does not exist yet is left as it was.
TEST(ConfigIntel, DaemonRejectsUnusableFolders) {
  testing::TempDir dir;
  struct Case {
    std::string yaml;
    std::string expected;
  };
  std::ofstream(dir.file("plain-file")) << "x";
  const Case cases[] = {
      {"state_dir: /proc/vigil-check\n",
       "test.yaml:1: state_dir: folder '/proc/vigil-check' cannot be created in /proc"},
      {"state_dir: " + dir.file("plain-file/state") + "\n",
       "test.yaml:1: state_dir: '" + dir.file("plain-file/state") +
           "' cannot be a folder, because " + dir.file("plain-file") + " is not one"},
      {"daemon:\n  state_dir: " + dir.file("plain-file/state") + "\n",
       "test.yaml:2: daemon.state_dir: '" + dir.file("plain-file/state") + "' cannot be a folder"},
      {"state_dir: " + dir.file("state") + "\nalerts: {output: /proc/vigil-check/a.jsonl}\n",
       "test.yaml:2: alerts.output: folder '/proc/vigil-check' cannot be created"},
      {"state_dir: " + dir.file("state") +
           "\napi: {enabled: false, case_db: /proc/vigil-check/cases.db}\n",
       "test.yaml:2: api.case_db: folder '/proc/vigil-check' cannot be created"},
      {"state_dir: " + dir.file("state") + "\ncases: {evidence_dir: /proc/vigil-check/ev}\n",
       "test.yaml:2: cases.evidence_dir: folder '/proc/vigil-check/ev' cannot be created"},
  };
  for (const Case& c : cases) {
    const bool has_api = c.yaml.find("api:") != std::string::npos;
    auto config = parse(c.yaml + (has_api ? "" : "api: {enabled: false}\n"));
    ASSERT_TRUE(config.ok()) << config.status();
    Daemon daemon(*config, DaemonOptions{});
    absl::Status st = daemon.validate();
    ASSERT_FALSE(st.ok()) << c.yaml;
    EXPECT_NE(st.message().find(c.expected), std::string::npos) << st;
  }
  auto fine = parse("state_dir: " + dir.file("new/state") + "\napi: {enabled: false}\n");
  ASSERT_TRUE(fine.ok()) << fine.status();
  Daemon daemon(*fine, DaemonOptions{});
  absl::Status st = daemon.validate();
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_FALSE(std::filesystem::exists(dir.file("new")));
}

}  // namespace
}  // namespace vigil::mgmt
