// Runs the built "vigilctl intel load" over feeds written by the test and checks its exit
// status, JSON lines and messages.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "vigilctl_command_test.h"

namespace vigil::mgmt {
namespace {

using LoadRun = testing::CommandRun;

class VigilctlIntelLoadTest : public testing::VigilctlCommandTest {
 protected:
  VigilctlIntelLoadTest() : VigilctlCommandTest("intel load") {}

  // The "feed" line of a run, or an empty object when there is none.
  static nlohmann::json feedLine(const LoadRun& r) {
    for (const std::string& line : r.lines) {
      nlohmann::json json = nlohmann::json::parse(line);
      if (json["kind"] == "feed") return json;
    }
    return nlohmann::json::object();
  }
};

// A FIFO is rejected at once with its path, instead of blocking in open().
TEST_F(VigilctlIntelLoadTest, FifoRejected) {
  const std::string fifo = (dir_ / "feed.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  for (const char* format : {"list", "regex", "csv --csv-value 0", "stix"}) {
    LoadRun r = run(std::string("--format ") + format + " " + fifo);
    EXPECT_EQ(r.exit_code, 1) << format << ": " << r.err;
    EXPECT_NE(r.err.find(fifo + " is not a regular file"), std::string::npos)
        << format << ": " << r.err;
  }
}

// A CSV column is written as vigild's configuration writes it: all digits is a 0-based
// index. "#N" stays valid.
TEST_F(VigilctlIntelLoadTest, CsvColumnIndexAsInConfig) {
  const std::string feed = write("feed.csv", "host,note\nbad.example,c2\nworse.example,phish\n");
  for (const char* column : {"0", "'#0'"}) {
    LoadRun r = run(std::string("--format csv --csv-value ") + column + " " + feed);
    ASSERT_EQ(r.exit_code, 0) << column << ": " << r.err;
    nlohmann::json feed_line = feedLine(r);
    EXPECT_EQ(feed_line["loaded"], 2) << column << ": " << feed_line;
    EXPECT_EQ(feed_line["rejected"], 0) << column << ": " << feed_line;
  }
  LoadRun by_name = run("--format csv --csv-value host " + feed);
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(feedLine(by_name)["loaded"], 2);
}

// --csv-last-seen reads the column as vigild's csv.last_seen_column does: a time that is
// no RFC 3339 timestamp rejects its record.
TEST_F(VigilctlIntelLoadTest, CsvLastSeenColumnRead) {
  const std::string feed =
      write("feed.csv", "host,seen\nbad.example,2026-11-30T10:00:00Z\nworse.example,yesterday\n");
  LoadRun with_column = run("--format csv --csv-value host --csv-last-seen seen " + feed);
  ASSERT_EQ(with_column.exit_code, 0) << with_column.err;
  EXPECT_EQ(feedLine(with_column)["loaded"], 1) << feedLine(with_column);
  EXPECT_EQ(feedLine(with_column)["rejected"], 1) << feedLine(with_column);
  LoadRun without = run("--format csv --csv-value host " + feed);
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(feedLine(without)["loaded"], 2) << feedLine(without);
}

// A column number beyond the columns of the file exits 2 with the number and the range,
// as an invalid #N does, instead of exiting 0 with every record rejected.
TEST_F(VigilctlIntelLoadTest, CsvColumnOutOfRangeExitsTwo) {
  const std::string feed = write("feed.csv", "host,note\nbad.example,c2\n");
  for (const char* column : {"'#7'", "7"}) {
    LoadRun r = run(std::string("--format csv --csv-value ") + column + " " + feed);
    EXPECT_EQ(r.exit_code, 2) << column << ": " << r.err;
    EXPECT_NE(r.err.find("CSV value column 7 is out of range"), std::string::npos)
        << column << ": " << r.err;
    EXPECT_NE(r.err.find("2 columns (0 to 1)"), std::string::npos) << column << ": " << r.err;
  }
  LoadRun tags = run("--format csv --csv-value 0 --csv-tags 2 " + feed);
  EXPECT_EQ(tags.exit_code, 2) << tags.err;
  EXPECT_NE(tags.err.find("CSV tags column 2 is out of range"), std::string::npos) << tags.err;

  LoadRun negative = run("--format csv --csv-value '#-1' " + feed);
  EXPECT_EQ(negative.exit_code, 2) << negative.err;
  EXPECT_NE(negative.err.find("invalid CSV column '#-1'"), std::string::npos) << negative.err;
}

// A regex line whose score is no number 0 to 100 is a rejection naming the value.
TEST_F(VigilctlIntelLoadTest, RegexInvalidScoreRejected) {
  const std::string feed =
      write("regex.txt", "evil\\.example;x\nevil\\.example;-5\nevil\\.example;1000\nok;80\n");
  LoadRun r = run("--format regex " + feed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json feed_line = feedLine(r);
  EXPECT_EQ(feed_line["loaded"], 1) << feed_line;
  EXPECT_EQ(feed_line["rejected"], 3) << feed_line;
  std::vector<std::string> reasons;
  for (const std::string& line : r.lines) {
    nlohmann::json json = nlohmann::json::parse(line);
    if (json["kind"] == "rejection") reasons.push_back(json["reason"]);
  }
  ASSERT_EQ(reasons.size(), 3u);
  EXPECT_NE(reasons[0].find("invalid score 'x'"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[1].find("invalid score '-5'"), std::string::npos) << reasons[1];
  EXPECT_NE(reasons[2].find("invalid score '1000'"), std::string::npos) << reasons[2];
}

}  // namespace
}  // namespace vigil::mgmt
