// Runs the built "vigilctl intel check" over feeds and events written by the test and
// checks each event's JSON line of matches.
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
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vigilctl_command_test.h"

namespace vigil::mgmt {
namespace {

using CheckRun = testing::CommandRun;

class VigilctlIntelCheckTest : public testing::VigilctlCommandTest {
 protected:
  VigilctlIntelCheckTest() : VigilctlCommandTest("intel check") {}
};

std::set<std::string> matchedIndicators(const nlohmann::json& line) {
  std::set<std::string> out;
  for (const auto& match : line["matches"]) out.insert(match["indicator"].get<std::string>());
  return out;
}

// Each event gets one line with its line number and matches from both feeds; blank
// lines are skipped and an event without matches gets an empty array.
TEST_F(VigilctlIntelCheckTest, PrintsMatchesPerEvent) {
  const std::string domains = write("domains.txt", "bad.example\nevil.example\n");
  const std::string addresses = write("addresses.txt", "203.0.113.7\n10.20.0.0/16\n");
  const std::string events =
      write("events.jsonl",
            "{\"message\": \"lookup of bad.example\", \"src\": \"203.0.113.7\"}\n"
            "\n"
            "{\"message\": \"nothing to see\"}\n"
            "<13>May  1 10:00:00 host1 app: beacon to www.evil.example\n"
            "{\"message\": \"flow\", \"dst\": \"10.20.3.4\"}\n");
  CheckRun r = run("--feed " + domains + " --feed " + addresses + " " + events);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 4u) << r.err;

  nlohmann::json first = nlohmann::json::parse(r.lines[0]);
  EXPECT_EQ(first["line"], 1);
  EXPECT_EQ(matchedIndicators(first), (std::set<std::string>{"bad.example", "203.0.113.7"}));
  for (const auto& match : first["matches"]) {
    if (match["indicator"] == "203.0.113.7") {
      EXPECT_EQ(match["type"], "ipv4");
      EXPECT_EQ(match["lists"], "addresses.txt");
      EXPECT_EQ(match["field"], "src");
    } else {
      EXPECT_EQ(match["type"], "domain");
      EXPECT_EQ(match["lists"], "domains.txt");
    }
    EXPECT_GE(match["score"].get<int>(), 1);
  }

  nlohmann::json second = nlohmann::json::parse(r.lines[1]);
  EXPECT_EQ(second["line"], 3);
  EXPECT_TRUE(second["matches"].empty());

  nlohmann::json third = nlohmann::json::parse(r.lines[2]);
  EXPECT_EQ(third["line"], 4);
  EXPECT_EQ(matchedIndicators(third), (std::set<std::string>{"evil.example"}));

  nlohmann::json fourth = nlohmann::json::parse(r.lines[3]);
  EXPECT_EQ(fourth["line"], 5);
  EXPECT_EQ(matchedIndicators(fourth), (std::set<std::string>{"10.20.0.0/16"}));
}

// A warninglist leaves its values out of the matches.
TEST_F(VigilctlIntelCheckTest, WarninglistSuppresses) {
  const std::string feed = write("feed.txt", "bad.example\ngood.example\n");
  const std::string warninglist =
      write("allow.json",
            R"({"name": "allow", "type": "hostname", "list": ["good.example"], "version": 1})");
  const std::string events =
      write("events.jsonl", "{\"message\": \"bad.example and good.example\"}\n");
  CheckRun r = run("--warninglist " + warninglist + " --feed " + feed + " " + events);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(matchedIndicators(nlohmann::json::parse(r.lines[0])),
            (std::set<std::string>{"bad.example"}));
}

// A feed or events file that cannot be read fails with status 1 and says which.
TEST_F(VigilctlIntelCheckTest, MissingFilesFail) {
  const std::string feed = write("feed.txt", "bad.example\n");
  const std::string events = write("events.jsonl", "{\"message\": \"x\"}\n");

  CheckRun no_feed = run("--feed " + (dir_ / "absent.txt").string() + " " + events);
  EXPECT_EQ(no_feed.exit_code, 1);
  EXPECT_NE(no_feed.err.find("absent.txt"), std::string::npos) << no_feed.err;
  EXPECT_TRUE(no_feed.lines.empty());

  CheckRun no_events = run("--feed " + feed + " " + (dir_ / "absent.jsonl").string());
  EXPECT_EQ(no_events.exit_code, 1);
  EXPECT_NE(no_events.err.find("absent.jsonl"), std::string::npos) << no_events.err;
}

// An events path that is a folder or that fails mid-read exits 1 with the reason,
// instead of printing nothing and exiting 0.
TEST_F(VigilctlIntelCheckTest, UnreadableEventsFail) {
  const std::string feed = write("feed.txt", "bad.example\n");

  CheckRun folder = run("--feed " + feed + " " + dir_.string());
  EXPECT_EQ(folder.exit_code, 1);
  EXPECT_NE(folder.err.find("cannot read the events file " + dir_.string() +
                            ": it is a folder; give one events file"),
            std::string::npos)
      << folder.err;
  EXPECT_TRUE(folder.lines.empty());

  // Reading /proc/self/mem at offset 0 fails with EIO: the file opens but read() fails.
  CheckRun io_error = run("--feed " + feed + " /proc/self/mem");
  EXPECT_EQ(io_error.exit_code, 1);
  EXPECT_NE(io_error.err.find("failed to read the events file /proc/self/mem after line 0: "
                              "Input/output error"),
            std::string::npos)
      << io_error.err;
  EXPECT_TRUE(io_error.lines.empty());
}

// A FIFO as the events file or as a feed is rejected at once with its path, instead of
// blocking in open().
TEST_F(VigilctlIntelCheckTest, FifoRejected) {
  const std::string feed = write("feed.txt", "bad.example\n");
  const std::string events = write("events.jsonl", "{\"message\": \"x\"}\n");
  const std::string fifo = (dir_ / "pipe.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);

  CheckRun fifo_events = run("--feed " + feed + " " + fifo);
  EXPECT_EQ(fifo_events.exit_code, 1) << fifo_events.err;
  EXPECT_NE(fifo_events.err.find("cannot read the events file " + fifo +
                                 ": it is not a regular file (a FIFO)"),
            std::string::npos)
      << fifo_events.err;

  CheckRun fifo_feed = run("--feed " + fifo + " " + events);
  EXPECT_EQ(fifo_feed.exit_code, 1) << fifo_feed.err;
  EXPECT_NE(fifo_feed.err.find(fifo + " is not a regular file"), std::string::npos)
      << fifo_feed.err;
}

// Without --feed the command line is rejected before anything is read.
TEST_F(VigilctlIntelCheckTest, FeedIsRequired) {
  const std::string events = write("events.jsonl", "{\"message\": \"x\"}\n");
  CheckRun r = run(events);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--feed"), std::string::npos) << r.err;
  EXPECT_TRUE(r.lines.empty());
}

}  // namespace
}  // namespace vigil::mgmt
