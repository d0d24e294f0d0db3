// Runs the built "vigilctl rules test" over rule and event files written by each test.
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

namespace vigil::mgmt {
namespace {

constexpr const char* kVigilctl = VIGIL_BINARY_DIR "/mgmt/vigilctl";

struct CommandRun {
  int exit_code = -1;
  std::vector<nlohmann::json> lines;
  std::string out;
  std::string err;
};

// Three failed SSH logins from one address and one accepted login, in RFC 3164.
constexpr char kSyslog[] =
    "<38>May  1 10:00:01 host1 sshd[100]: Failed password for bob from 192.0.2.50 port 4000 "
    "ssh2\n"
    "<38>May  1 10:00:02 host1 sshd[100]: Failed password for bob from 192.0.2.50 port 4001 "
    "ssh2\n"
    "<38>May  1 10:00:03 host1 sshd[100]: Accepted password for bob from 192.0.2.50 port 4002 "
    "ssh2\n"
    "<38>May  1 10:00:04 host1 sshd[100]: Failed password for bob from 192.0.2.50 port 4003 "
    "ssh2\n";

constexpr char kRules[] = R"(title: SSH login failed
id: ssh_failed
name: ssh_failed
level: low
detection:
  keywords: ['Failed password']
  condition: keywords
---
title: SSH brute force
id: ssh_burst
level: high
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [host]
  timespan: 60s
  condition: {gte: 3}
  generate: true
)";

class VigilctlRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kVigilctl))
        << kVigilctl << " is missing; build the vigilctl target before these tests";
    dir_ = std::filesystem::temp_directory_path() /
           ("vigilctl-rules-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  // Runs "vigilctl ARGS" under a 20 s timeout (exit code 124 when it runs out), keeping
  // stdout (also parsed as JSON lines) and stderr.
  CommandRun run(const std::string& args) {
    const std::string err_path = (dir_ / "stderr.txt").string();
    const std::string command =
        "timeout 20 " + std::string(kVigilctl) + " " + args + " 2>" + err_path;
    CommandRun result;
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr) << command;
    if (pipe == nullptr) return result;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::istringstream lines(result.out);
    std::string line;
    while (std::getline(lines, line)) {
      nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
      EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
      result.lines.push_back(parsed);
    }
    std::ifstream err(err_path);
    std::stringstream text;
    text << err.rdbuf();
    result.err = text.str();
    return result;
  }

  // Checks the output of kRules over kSyslog: three matches, one alert after the third.
  static void expectSshResults(const CommandRun& r) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.lines.size(), 4u) << r.out;
    const int match_lines[] = {1, 2, 4};
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(r.lines[i]["type"], "match");
      EXPECT_EQ(r.lines[i]["rule_id"], "ssh_failed");
      EXPECT_EQ(r.lines[i]["line"], match_lines[i]);
    }
    EXPECT_EQ(r.lines[3]["type"], "correlation_alert");
    EXPECT_EQ(r.lines[3]["rule_id"], "ssh_burst");
    EXPECT_EQ(r.lines[3]["line"], 4);
    EXPECT_EQ(r.lines[3]["event_count"], 3);
    EXPECT_NE(r.err.find("3 matches, 1 correlation alerts"), std::string::npos) << r.err;
  }

  std::filesystem::path dir_;
};

// Raw log lines are parsed with --format and run through the rules.
TEST_F(VigilctlRulesTest, RawLinesWithFormat) {
  std::string rules = write("ssh.yml", kRules);
  std::string log = write("auth.log", kSyslog);
  expectSshResults(run("rules test --format rfc3164 " + rules + " " + log));
}

// --allowed-lateness-s keeps a window open as vigild's pipeline.allowed_lateness_s does,
// so an event up to that late still joins it.
TEST_F(VigilctlRulesTest, AllowedLatenessKeepsWindowOpen) {
  std::string rules = write("few.yml", R"(title: Login ok
id: ok
detection:
  selection: {action: ok}
  condition: selection
---
title: Single login
id: c-upper
correlation:
  type: event_count
  rules: [ok]
  group-by: [user]
  timespan: 60s
  condition: {lt: 2}
)");
  std::string events =
      write("events.jsonl",
            "{\"@timestamp\":\"2026-12-01T10:00:00Z\",\"action\":\"ok\",\"user\":\"e\"}\n"
            "{\"@timestamp\":\"2026-12-01T10:01:05Z\",\"action\":\"noop\"}\n"
            "{\"@timestamp\":\"2026-12-01T10:01:00Z\",\"action\":\"ok\",\"user\":\"e\"}\n"
            "{\"@timestamp\":\"2026-12-01T10:05:00Z\",\"action\":\"noop\"}\n");
  auto alerts = [](const CommandRun& r) {
    size_t count = 0;
    for (const nlohmann::json& line : r.lines) count += line["type"] == "correlation_alert";
    return count;
  };
  CommandRun strict = run("rules test " + rules + " " + events);
  ASSERT_EQ(strict.exit_code, 0) << strict.err;
  EXPECT_EQ(alerts(strict), 1u) << strict.out;  // the window closed at line 2
  CommandRun late = run("rules test --allowed-lateness-s 10 " + rules + " " + events);
  ASSERT_EQ(late.exit_code, 0) << late.err;
  EXPECT_EQ(alerts(late), 0u) << late.out;  // line 3 joined the window: 2 events
}

// A rule with an upper bound is decided when a later event moves the watermark past
// its window, and the alert is printed at that event's line.
TEST_F(VigilctlRulesTest, WindowClosesAtLaterEvent) {
  std::string rules = write("rare.yml", R"(title: SSH login failed
id: ssh_failed
detection:
  keywords: ['Failed password']
  condition: keywords
---
title: Few SSH failures
id: ssh_few
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [host]
  timespan: 60s
  condition: {lt: 3}
)");
  std::string log = write(
      "auth.log",
      "<38>May  1 10:00:01 host1 sshd[100]: Failed password for bob from 192.0.2.50 port 4000 "
      "ssh2\n"
      "<38>May  1 10:02:00 host1 sshd[100]: Accepted password for bob from 192.0.2.50 port 4002 "
      "ssh2\n");
  CommandRun r = run("rules test --format rfc3164 " + rules + " " + log);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 2u) << r.out;
  EXPECT_EQ(r.lines[0]["type"], "match");
  EXPECT_EQ(r.lines[0]["line"], 1);
  EXPECT_EQ(r.lines[1]["type"], "correlation_alert");
  EXPECT_EQ(r.lines[1]["rule_id"], "ssh_few");
  EXPECT_EQ(r.lines[1]["line"], 2);
  EXPECT_EQ(r.lines[1]["event_count"], 1);
}

// The JSON lines that "vigilctl parse" prints give the same results.
TEST_F(VigilctlRulesTest, ParseOutputGivesSameResults) {
  std::string rules = write("ssh.yml", kRules);
  std::string log = write("auth.log", kSyslog);
  CommandRun parsed = run("parse --format rfc3164 " + log);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  std::string events = write("events.jsonl", parsed.out);
  expectSshResults(run("rules test " + rules + " " + events));
}

// Plain JSON documents (not parse output) are read by their leaf member names.
TEST_F(VigilctlRulesTest, PlainJsonDocuments) {
  std::string rules = write("proc.yml", R"(title: Whoami
id: whoami
detection:
  sel: {Image|endswith: '\whoami.exe'}
  condition: sel
)");
  std::string events = write(
      "events.jsonl",
      "{\"Event\": {\"EventData\": {\"Image\": \"C:\\\\Windows\\\\System32\\\\whoami.exe\"}}}\n"
      "{\"Event\": {\"EventData\": {\"Image\": \"C:\\\\Windows\\\\System32\\\\cmd.exe\"}}}\n");
  CommandRun r = run("rules test " + rules + " " + events);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 1u) << r.out;
  EXPECT_EQ(r.lines[0]["rule_id"], "whoami");
  EXPECT_EQ(r.lines[0]["line"], 1);
}

// Plain JSON documents take their event time from @timestamp, timestamp or ts, so windows
// apply to them. Without a time every event counts at the epoch, and the summary reports it.
TEST_F(VigilctlRulesTest, PlainJsonEventTime) {
  std::string rules = write("pair.yml", R"(title: SSH failure
id: ssh_failed
name: ssh_failed
detection:
  sel: {rule: ssh_failed}
  condition: sel
---
title: Two failures
id: ssh_pair
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [src_ip]
  timespan: 10s
  condition: {gte: 2}
)");
  std::string timed = write("timed.jsonl",
                            "{\"ts\": \"2024-05-01T10:00:00Z\", \"rule\": \"ssh_failed\", "
                            "\"src_ip\": \"192.0.2.50\"}\n"
                            "{\"ts\": \"2024-05-01T10:00:30Z\", \"rule\": \"ssh_failed\", "
                            "\"src_ip\": \"192.0.2.50\"}\n"
                            "{\"ts\": \"2024-05-01T10:00:31Z\", \"rule\": \"ssh_failed\", "
                            "\"src_ip\": \"192.0.2.50\"}\n");
  CommandRun r = run("rules test " + rules + " " + timed);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> alerts;
  for (const nlohmann::json& line : r.lines) {
    if (line["type"] == "correlation_alert") alerts.push_back(line);
  }
  ASSERT_EQ(alerts.size(), 1u) << r.out;
  EXPECT_EQ(alerts[0]["line"], 3);
  EXPECT_EQ(alerts[0]["first_event"], "2024-05-01T10:00:30Z");
  EXPECT_EQ(r.err.find("have no time"), std::string::npos) << r.err;

  std::string untimed = write("untimed.jsonl",
                              "{\"rule\": \"ssh_failed\", \"src_ip\": \"192.0.2.50\"}\n"
                              "{\"rule\": \"ssh_failed\", \"src_ip\": \"192.0.2.50\"}\n");
  CommandRun epoch = run("rules test " + rules + " " + untimed);
  ASSERT_EQ(epoch.exit_code, 0) << epoch.err;
  EXPECT_NE(epoch.err.find("2 of 2 events have no time (@timestamp, timestamp or ts"),
            std::string::npos)
      << epoch.err;
}

// A JSON line nested deeper than the JSON depth limit is an invalid line, not a crash.
TEST_F(VigilctlRulesTest, DeeplyNestedLineIsInvalid) {
  std::string rules = write("ssh.yml", kRules);
  std::string events =
      write("deep.jsonl", "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}\n");
  CommandRun r = run("rules test " + rules + " " + events);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(events + ":1: nests arrays and objects deeper than 128 levels"),
            std::string::npos)
      << r.err.substr(0, 400);
}

// A rule error is reported with file and line, the other rules still run, and the exit
// status is 1.
TEST_F(VigilctlRulesTest, RuleErrorExitsNonZero) {
  std::string good = write("ssh.yml", kRules);
  std::string bad = write("bad.yml",
                          "title: Good\ndetection: {s: {a: b}, condition: s}\n---\ntitle: Bad\n"
                          "detection:\n  sel: {a|utf16le: x}\n  condition: sel\n");
  std::string log = write("auth.log", kSyslog);
  CommandRun r = run("rules test --format rfc3164 " + good + " " + bad + " " + log);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":3: document 2 rule 'Bad'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("modifier 'utf16le' is not supported yet"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 rule errors"), std::string::npos) << r.err;
  EXPECT_EQ(r.lines.size(), 4u) << r.out;
}

// A rule file without rules is a warning that names the file: the other rules still run
// and the exit status stays 0.
TEST_F(VigilctlRulesTest, EmptyRuleFileWarns) {
  std::string good = write("ssh.yml", kRules);
  std::string empty = write("empty.yml", "");
  std::string separators = write("separators.yml", "# nothing yet\n---\n---\n");
  std::string log = write("auth.log", kSyslog);
  CommandRun r =
      run("rules test --format rfc3164 " + good + " " + empty + " " + separators + " " + log);
  EXPECT_NE(r.err.find("vigilctl: rule warning: " + empty + ": contains no rule"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("vigilctl: rule warning: " + separators + ": contains no rule"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("rule warning: " + good), std::string::npos) << r.err;
  expectSshResults(r);
}

// A match of a rule without an id names the rule by its title, as alerts do.
TEST_F(VigilctlRulesTest, MatchWithoutIdUsesTitle) {
  std::string rules = write("noid.yml", R"(title: SSH login failed
detection:
  keywords: ['Failed password']
  condition: keywords
)");
  std::string log = write("auth.log", kSyslog);
  CommandRun r = run("rules test --format rfc3164 " + rules + " " + log);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 3u) << r.out;
  EXPECT_EQ(r.lines[0]["rule_id"], "SSH login failed");
  EXPECT_EQ(r.lines[0]["title"], "SSH login failed");
}

// An event line that is not JSON is reported with file and line and counted.
TEST_F(VigilctlRulesTest, InvalidEventLine) {
  std::string rules = write("ssh.yml", kRules);
  std::string events = write("events.jsonl",
                             "{\"message\": \"x\", \"raw\": \"x\", \"fields\": []}\n"
                             "not json\n");
  CommandRun r = run("rules test " + rules + " " + events);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(events + ":2: is not a JSON object"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 events, 1 invalid lines"), std::string::npos) << r.err;
}

// Usage errors exit with status 2 and name the expected input.
TEST_F(VigilctlRulesTest, UsageErrors) {
  std::string rules = write("ssh.yml", kRules);
  CommandRun missing = run("rules test " + rules + " " + (dir_ / "none.jsonl").string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("check the file name"), std::string::npos) << missing.err;
  CommandRun alone = run("rules test " + rules);
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_NE(alone.err.find("give at least one rule file and the events file"), std::string::npos)
      << alone.err;
  CommandRun format = run("rules test --format xml " + rules + " " + rules);
  EXPECT_EQ(format.exit_code, 2);
  EXPECT_NE(format.err.find("--format 'xml' is invalid"), std::string::npos) << format.err;
}

// Rule folders expand as vigild expands rules.paths: a folder without rule files and a
// path that does not exist exit 2, as they stop the daemon's start, instead of testing
// zero rules.
TEST_F(VigilctlRulesTest, RulePathsExpandAsInTheDaemon) {
  std::string events = write("events.jsonl", "{\"message\": \"x\"}\n");
  std::filesystem::create_directories(dir_ / "empty" / "sub");
  write("empty/sub/notes.txt", "not a rule\n");
  CommandRun empty = run("rules test " + (dir_ / "empty").string() + " " + events);
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("folder " + (dir_ / "empty").string() +
                           " contains no *.yml or *.yaml file"),
            std::string::npos)
      << empty.err;
  EXPECT_TRUE(empty.lines.empty());

  CommandRun missing = run("rules test " + (dir_ / "none.yml").string() + " " + events);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("none.yml is neither a rule file nor a folder"), std::string::npos)
      << missing.err;

  // Rules in sub-folders count, as in the daemon.
  std::filesystem::create_directories(dir_ / "nested" / "deep");
  write("nested/deep/ssh.yml", kRules);
  CommandRun nested = run("rules test " + (dir_ / "nested").string() + " " + events);
  EXPECT_EQ(nested.exit_code, 0) << nested.err;
  EXPECT_NE(nested.err.find("1 detection rules, 1 correlation rules, 0 rule errors"),
            std::string::npos)
      << nested.err;

  // Upper-case extensions count; hidden folders and files are skipped.
  std::filesystem::create_directories(dir_ / "nested" / ".git");
  write("nested/.git/old.yml", "not: [a rule\n");
  write("nested/.draft.yml", "not: [a rule\n");
  write("nested/UPPER.YML", "title: Upper\nid: upper\ndetection: {s: {a: b}, condition: s}\n");
  CommandRun hidden = run("rules test " + (dir_ / "nested").string() + " " + events);
  EXPECT_EQ(hidden.exit_code, 0) << hidden.err;
  EXPECT_NE(hidden.err.find("2 detection rules, 1 correlation rules, 0 rule errors"),
            std::string::npos)
      << hidden.err;
  std::filesystem::remove(dir_ / "nested" / "UPPER.YML");

  // A file reached twice, named and inside a named folder, is loaded once.
  const std::string file = (dir_ / "nested" / "deep" / "ssh.yml").string();
  CommandRun twice = run("rules test " + (dir_ / "nested").string() + " " + file + " " + events);
  EXPECT_EQ(twice.exit_code, 0) << twice.err;
  EXPECT_NE(twice.err.find("1 detection rules, 1 correlation rules, 0 rule errors"),
            std::string::npos)
      << twice.err;

  CommandRun empty_path = run("rules test '' " + events);
  EXPECT_EQ(empty_path.exit_code, 2);
  EXPECT_NE(empty_path.err.find("an entry is empty; give a rule file or a folder of them"),
            std::string::npos)
      << empty_path.err;
}

// An events file that opens but fails to read exits 2 with the reason, instead of
// reporting zero events and exiting 0. A folder is rejected before it is opened.
TEST_F(VigilctlRulesTest, UnreadableEventsFail) {
  std::string rules = write("ssh.yml", kRules);
  // Reading /proc/self/mem at offset 0 fails with EIO: the file opens but read() fails.
  CommandRun io_error = run("rules test " + rules + " /proc/self/mem");
  EXPECT_EQ(io_error.exit_code, 2);
  EXPECT_NE(io_error.err.find("failed to read /proc/self/mem after line 0: Input/output error"),
            std::string::npos)
      << io_error.err;
  EXPECT_TRUE(io_error.lines.empty());

  CommandRun folder = run("rules test " + rules + " " + dir_.string());
  EXPECT_EQ(folder.exit_code, 2);
  EXPECT_NE(folder.err.find("it is a folder; give one events file"), std::string::npos)
      << folder.err;

  // A FIFO is rejected at once instead of blocking in open().
  const std::string fifo = (dir_ / "events.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  CommandRun fifo_run = run("rules test " + rules + " " + fifo);
  EXPECT_EQ(fifo_run.exit_code, 2) << fifo_run.err;
  EXPECT_NE(fifo_run.err.find("cannot read " + fifo + ": it is not a regular file (a FIFO)"),
            std::string::npos)
      << fifo_run.err;
}

}  // namespace
}  // namespace vigil::mgmt
