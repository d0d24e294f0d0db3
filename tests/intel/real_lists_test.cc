// Loads every real list in the shared corpus into one builder. Each file must load, and
// every rejected line must fall into a category that the file's format explains.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "intel/builder.h"
#include "intel/indicator_set.h"

namespace vigil::intel {
namespace {

const std::string kListDir = std::string(VIGIL_SHARED_DIR) + "/corpus/intel/lists";

struct ListExpectation {
  bool indicators_expected;            // false for files that are not plain lists
  std::set<std::string> reject_kinds;  // reason text before the first quote
};

// Why each file's rejects are expected:
//   - signature-base-filename-iocs.txt contains regular expressions, not indicators;
//   - urlhaus-splunk-online.csv is a CSV table, not one indicator per line;
//   - the hosts file maps "localhost" and a few names with '_' or a query string.
const std::map<std::string, ListExpectation> kExpectations = {
    {"hacked-malware-sites.hosts", {true, {"invalid character ", "name without a dot "}}},
    {"ipsum-level3.txt", {true, {}}},
    {"ipsum-level5.txt", {true, {}}},
    {"ipsum-level6.txt", {true, {}}},
    {"ipsum-level7.txt", {true, {}}},
    {"ipsum-level8.txt", {true, {}}},
    {"ipsum.txt", {true, {}}},
    {"signature-base-c2-iocs.txt", {true, {}}},
    {"signature-base-filename-iocs.txt",
     {false,
      {"invalid character ", "unexpected text ", "name without a dot ", "invalid IPv6 address ",
       // Regex lines with characters such as U+201D or U+00B1, read as list values.
       "character that ends host names in domain name "}}},
    {"signature-base-hash-iocs.txt", {true, {}}},
    {"threatfox-ips.txt", {true, {}}},
    {"urlhaus-domains-online.txt", {true, {}}},
    {"urlhaus-splunk-online.csv", {false, {"invalid character ", "unexpected text "}}},
};

std::string reasonKind(const std::string& reason) { return reason.substr(0, reason.find('\'')); }

// Every list loads, and each rejection has a file:line location, a known reason and the text.
TEST(RealListsTest, EveryListLoads) {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(kListDir)) {
    paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  ASSERT_EQ(paths.size(), kExpectations.size());

  IndicatorSetBuilder builder;
  for (const std::filesystem::path& path : paths) {
    std::string name = path.filename().string();
    SCOPED_TRACE(name);
    auto expected = kExpectations.find(name);
    ASSERT_NE(expected, kExpectations.end()) << "no expectation for a new list file";

    absl::StatusOr<LoadReport> report = builder.addListFile(name, path.string());
    ASSERT_TRUE(report.ok()) << report.status();
    if (expected->second.indicators_expected) {
      EXPECT_GT(report->loaded + report->duplicates, 0u);
    } else {
      EXPECT_EQ(report->loaded, 0u);
    }
    if (expected->second.reject_kinds.empty()) {
      EXPECT_EQ(report->rejected, 0u);
    }
    EXPECT_EQ(report->rejections.size(), std::min<size_t>(report->rejected, 1000));
    for (const Rejection& r : report->rejections) {
      EXPECT_EQ(r.location.rfind(path.string() + ":", 0), 0u) << r.location;
      EXPECT_EQ(expected->second.reject_kinds.count(reasonKind(r.reason)), 1u)
          << r.location << ": " << r.reason;
      EXPECT_FALSE(r.text.empty()) << r.location;
    }
  }

  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  ASSERT_TRUE(set.ok()) << set.status();
  const IndicatorSetStats& stats = (*set)->stats();
  EXPECT_GT(stats.count(IndicatorType::kIpv4), 100000u);
  EXPECT_GT(stats.count(IndicatorType::kDomain), 10000u);
  EXPECT_GT(stats.count(IndicatorType::kMd5), 0u);
  EXPECT_GT(stats.count(IndicatorType::kSha256), 0u);
  // Hashes go to a hash table, so only URLs, emails and regexes are Hyperscan patterns.
  EXPECT_EQ(stats.pattern_count, stats.count(IndicatorType::kUrl) +
                                     stats.count(IndicatorType::kEmail) +
                                     stats.count(IndicatorType::kRegex));
  size_t hashes_found = 0;
  for (uint32_t id = 0; id < (*set)->size(); ++id) {
    if ((*set)->type(id) != IndicatorType::kMd5 && (*set)->type(id) != IndicatorType::kSha256) {
      continue;
    }
    EXPECT_EQ((*set)->lookupHash((*set)->text(id)), id) << (*set)->text(id);
    ++hashes_found;
  }
  EXPECT_EQ(hashes_found,
            stats.count(IndicatorType::kMd5) + stats.count(IndicatorType::kSha256));
  EXPECT_GT(stats.duplicate_lines, 0u);
}

}  // namespace
}  // namespace vigil::intel
