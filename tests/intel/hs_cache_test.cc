// The compiled-database cache: a second build of the same patterns reads the database
// back, matches the same, and a damaged or foreign file is replaced, never trusted.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"

namespace vigil::intel {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kList =
    "http://bad.example/payload.exe\n"
    "44d88612fea8a899d97fc2d6a4e4e2ba\n"
    "198.51.100.7\n";

class HsCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "vigil-hs-cache-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::shared_ptr<const IndicatorSet> build(std::string_view extra = "") {
    BuilderOptions options;
    options.hs_cache_dir = (dir_ / "cache").string();
    options.hs_cache_keep = 2;
    IndicatorSetBuilder builder(options);
    EXPECT_TRUE(builder.addListText("t", std::string(kList) + std::string(extra), "t.txt").ok());
    LoadReport report;
    builder.addIndicator("r", IndicatorType::kRegex, "beacon-[0-9]{4}\\.example", {}, "r:1",
                         report);
    builder.addIndicator("m", IndicatorType::kEmail, "ceo@bad.example", {}, "m:1", report);
    EXPECT_EQ(report.rejected, 0u);
    auto set = builder.build();
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *set : nullptr;
  }

  std::vector<std::string> hits(const IndicatorSet& set, std::string_view message) {
    Event event(8192);
    event.reset();
    event.raw = event.arena.copy(message);
    event.message = event.raw;
    Scratch scratch(set);
    matchEvent(set, scratch, event);
    std::vector<std::string> out;
    for (size_t i = 0; i < event.hit_count; ++i) out.emplace_back(event.hits[i].indicator);
    return out;
  }

  std::vector<fs::path> entries() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "cache", ec)) out.push_back(e.path());
    return out;
  }

  fs::path dir_;
};

constexpr std::string_view kMessage =
    "GET http://bad.example/payload.exe md5=44d88612FEA8A899D97FC2D6A4E4E2BA host "
    "beacon-2024.example from ceo@bad.example";
// Hits of kMessage: the URL, the hash, the regex and the email.
constexpr size_t kMessageHits = 4;

TEST_F(HsCacheTest, SecondBuildHitsAndMatchesTheSame) {
  auto first = build();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->stats().hs_cache, "miss");
  ASSERT_EQ(entries().size(), 1u);
  auto second = build();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->stats().hs_cache, "hit") << second->stats().hs_cache_error;
  EXPECT_EQ(second->stats().pattern_count, first->stats().pattern_count);
  EXPECT_EQ(second->stats().hs_database_bytes, first->stats().hs_database_bytes);
  // One file contains both databases.
  EXPECT_EQ(entries().size(), 1u);
  EXPECT_NE(second->urlEmailDatabase(), nullptr);
  EXPECT_NE(second->regexDatabase(), nullptr);
  const auto expected = hits(*first, kMessage);
  EXPECT_EQ(expected.size(), kMessageHits);
  EXPECT_EQ(hits(*second, kMessage), expected);
}

// Other patterns get another entry; the folder keeps hs_cache_keep of them.
TEST_F(HsCacheTest, OtherPatternsMissAndOldEntriesArePruned) {
  build();
  auto other = build("http://other.example/\n");
  EXPECT_EQ(other->stats().hs_cache, "miss");
  EXPECT_EQ(entries().size(), 2u);
  build("http://third.example/\n");
  EXPECT_EQ(entries().size(), 2u);
  EXPECT_EQ(hits(*other, "see http://other.example/ now").size(), 1u);
}

// A corrupted entry fails its checksum: it is removed, reported and compiled again.
TEST_F(HsCacheTest, DamagedEntryIsReplaced) {
  build();
  ASSERT_EQ(entries().size(), 1u);
  const fs::path entry = entries()[0];
  {
    std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  auto rebuilt = build();
  ASSERT_NE(rebuilt, nullptr);
  EXPECT_EQ(rebuilt->stats().hs_cache, "miss");
  EXPECT_NE(rebuilt->stats().hs_cache_error.find("fails its checksum"), std::string::npos)
      << rebuilt->stats().hs_cache_error;
  EXPECT_TRUE(rebuilt->stats().hs_cache_rejected);
  EXPECT_EQ(hits(*rebuilt, kMessage).size(), kMessageHits);
  EXPECT_EQ(build()->stats().hs_cache, "hit");

  // A truncated file is no valid entry either.
  fs::resize_file(entries()[0], 5);
  auto again = build();
  EXPECT_EQ(again->stats().hs_cache, "miss");
  EXPECT_NE(again->stats().hs_cache_error.find("no valid header"), std::string::npos);
}

// A file of cache format version 1 (one database) is rejected, removed and replaced by
// a version 2 file, and the rejection is reported.
TEST_F(HsCacheTest, OldFormatVersionIsRejected) {
  build();
  ASSERT_EQ(entries().size(), 1u);
  const fs::path entry = entries()[0];
  {
    std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(7);  // the version digit after the 7-byte magic
    f.put('1');
  }
  auto rebuilt = build();
  ASSERT_NE(rebuilt, nullptr);
  EXPECT_EQ(rebuilt->stats().hs_cache, "miss");
  EXPECT_TRUE(rebuilt->stats().hs_cache_rejected);
  EXPECT_NE(rebuilt->stats().hs_cache_error.find("has cache format version 1"), std::string::npos)
      << rebuilt->stats().hs_cache_error;
  EXPECT_EQ(hits(*rebuilt, kMessage).size(), kMessageHits);
  ASSERT_EQ(entries().size(), 1u);
  auto again = build();
  EXPECT_EQ(again->stats().hs_cache, "hit") << again->stats().hs_cache_error;
  EXPECT_FALSE(again->stats().hs_cache_rejected);
}

// A set with only one of the two databases stores an empty slot for the other and reads
// it back as absent.
TEST_F(HsCacheTest, MissingDatabaseRoundTrips) {
  auto buildUrls = [&] {
    BuilderOptions options;
    options.hs_cache_dir = (dir_ / "cache").string();
    IndicatorSetBuilder builder(options);
    EXPECT_TRUE(builder.addListText("t", "http://bad.example/x\n", "t.txt").ok());
    auto set = builder.build();
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *set : nullptr;
  };
  ASSERT_EQ(buildUrls()->stats().hs_cache, "miss");
  auto cached = buildUrls();
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->stats().hs_cache, "hit") << cached->stats().hs_cache_error;
  EXPECT_NE(cached->urlEmailDatabase(), nullptr);
  EXPECT_EQ(cached->regexDatabase(), nullptr);
  EXPECT_EQ(hits(*cached, "GET HTTP://BAD.EXAMPLE/x").size(), 1u);
}

// A cache folder that cannot be created leaves the build working, with the reason.
TEST_F(HsCacheTest, UnwritableFolderStillBuilds) {
  std::ofstream(dir_ / "cache") << "a file where the folder should be\n";
  auto set = build();
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->stats().hs_cache, "error");
  EXPECT_NE(set->stats().hs_cache_error.find("cannot create cache folder"), std::string::npos);
  EXPECT_EQ(hits(*set, kMessage).size(), kMessageHits);
}

// Without a folder the cache is off.
TEST_F(HsCacheTest, OffByDefault) {
  IndicatorSetBuilder builder;
  ASSERT_TRUE(builder.addListText("t", kList, "t.txt").ok());
  auto set = builder.build();
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->stats().hs_cache, "off");
}

}  // namespace
}  // namespace vigil::intel
