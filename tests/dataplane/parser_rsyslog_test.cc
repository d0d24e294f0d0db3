// The rsyslog test bench vectors (corpus/syslog/rsyslog-testbench): each *.parse1 case
// is an input line followed by rsyslog's rendering
//   PRI,facility,severity,timestamp,hostname,programname,syslogtag,msg
// or by the timestamp alone; *.ts3164 and master.ts3339 pair an input with its
// timestamp. Every field is compared; the deliberate differences are listed in
// kKnownDifferences with their reason.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::ParsedEvent;
using testing::readLines;
using testing::timeOf;

struct KnownDifference {
  std::string_view file;
  std::string_view input_prefix;  // start of the input line
  std::string_view field;
  std::string_view reason;
};

// Expectations this parser does not meet on purpose. The test fails when one of them
// starts to match, so the list cannot go stale.
constexpr KnownDifference kKnownDifferences[] = {
    {"rfc5424-1.parse1", "<34>1 ", "programname",
     "rsyslog leaves programname empty for RFC 5424; the event keeps APP-NAME"},
    {"rfc5424-2.parse1", "<165>1 ", "programname", "as for rfc5424-1.parse1"},
};

constexpr std::string_view kFacilities[] = {
    "kern",  "user",   "mail",   "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",  "cron",   "authpriv", "ftp",  "ntp",    "audit",  "alert",  "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};
constexpr std::string_view kSeverities[] = {"emerg",  "alert",  "crit", "err",
                                            "warning", "notice", "info", "debug"};
constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string testbenchDir() { return testing::sharedPath("syslog/rsyslog-testbench"); }

// Seconds east of UTC of the timestamp in an RFC 5424 line ("...-07:00 host").
int64_t rfc5424Offset(std::string_view line) {
  const size_t start = line.find(' ') + 1;
  const std::string_view ts = line.substr(start, line.find(' ', start) - start);
  if (ts.empty() || ts.back() == 'Z' || ts.size() < 6) return 0;
  const std::string_view zone = ts.substr(ts.size() - 6);
  if (zone[0] != '+' && zone[0] != '-') return 0;
  const int64_t secs = std::stoi(std::string(zone.substr(1, 2))) * 3600 +
                       std::stoi(std::string(zone.substr(4, 2))) * 60;
  return zone[0] == '-' ? -secs : secs;
}

// rsyslog's "Mmm dd hh:mm:ss" (day padded with a space) of `ns` shifted by `offset_s`.
std::string renderBsd(int64_t ns, int64_t offset_s) {
  const int64_t secs = ns / kNanosPerSecond + offset_s;
  const int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  const int64_t day_secs = secs - days * 86400;
  const CivilDate date = civilFromDays(days);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s %2u %02d:%02d:%02d",
                std::string(kMonths[date.month - 1]).c_str(), date.day,
                static_cast<int>(day_secs / 3600), static_cast<int>(day_secs / 60 % 60),
                static_cast<int>(day_secs % 60));
  return buf;
}

std::vector<std::string> splitFields(const std::string& line, size_t count) {
  std::vector<std::string> out;
  size_t start = 0;
  while (out.size() + 1 < count) {
    const size_t comma = line.find(',', start);
    if (comma == std::string::npos) break;
    out.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
  out.push_back(line.substr(start));
  return out;
}

struct Mismatch {
  std::string file;
  std::string input;
  std::string field;
  std::string expected;
  std::string actual;
};

class RsyslogBench {
 public:
  // A receive time in mid-2009, when most test bench samples were written.
  static constexpr std::string_view kReceivedAt = "2009-06-15T12:00:00Z";

  void compare(const std::string& file, const std::string& input, const std::string& expected) {
    const bool is5424 = input.size() > 4 && input.find(">1 ") != std::string::npos &&
                        input.find(">1 ") < 5;
    Event& e = slot_.parse(input, {}, timeOf(kReceivedAt));
    ++cases_;
    EXPECT_FALSE(e.has(kFlagParseError)) << file << ": " << input;
    const int64_t offset = is5424 ? rfc5424Offset(input) : 0;

    const auto fields = splitFields(expected, 8);
    if (fields.size() < 8) {
      // A timestamp-only expectation: RFC 3339 or rsyslog's BSD rendering.
      if (const auto ns = parseRfc3339(expected)) {
        check(file, input, "timestamp", std::to_string(*ns), std::to_string(e.timestamp_ns));
      } else {
        check(file, input, "timestamp", expected, renderBsd(e.timestamp_ns, offset));
      }
      return;
    }
    const int pri = e.facility < 0 ? -1 : e.facility * 8 + e.severity;
    check(file, input, "pri", fields[0], std::to_string(pri));
    check(file, input, "facility", fields[1],
          e.facility < 0 ? "" : std::string(kFacilities[static_cast<size_t>(e.facility)]));
    check(file, input, "severity", fields[2],
          e.severity < 0 ? "" : std::string(kSeverities[static_cast<size_t>(e.severity)]));
    check(file, input, "timestamp", fields[3], renderBsd(e.timestamp_ns, offset));
    check(file, input, "hostname", fields[4], std::string(e.host));
    check(file, input, "programname", fields[5], std::string(e.app));
    std::string tag = fields[6];
    if (!tag.empty() && tag.back() == ':') tag.pop_back();
    std::string our_tag(e.app);
    if (!e.procid.empty()) our_tag += "[" + std::string(e.procid) + "]";
    check(file, input, "syslogtag", tag, our_tag);
    // rsyslog keeps the space that follows an RFC 3164 tag at the start of MSG.
    std::string msg = fields[7];
    if (!is5424 && !msg.empty() && msg.front() == ' ') msg.erase(0, 1);
    check(file, input, "msg", msg, std::string(e.message));
  }

  void check(const std::string& file, const std::string& input, const std::string& field,
             const std::string& expected, const std::string& actual) {
    if (expected != actual) mismatches_.push_back({file, input, field, expected, actual});
  }

  size_t cases() const { return cases_; }
  const std::vector<Mismatch>& mismatches() const { return mismatches_; }

 private:
  ParsedEvent slot_;
  size_t cases_ = 0;
  std::vector<Mismatch> mismatches_;
};

const KnownDifference* findKnown(const Mismatch& m) {
  for (const auto& known : kKnownDifferences) {
    if (m.file == known.file && m.field == known.field &&
        std::string_view(m.input).substr(0, known.input_prefix.size()) == known.input_prefix) {
      return &known;
    }
  }
  return nullptr;
}

// Pairs of (input, expected) lines in a test bench file; '#' lines are comments.
std::vector<std::pair<std::string, std::string>> readCases(const std::string& file) {
  std::vector<std::string> lines;
  for (auto& line : readLines("syslog/rsyslog-testbench/" + file)) {
    if (!line.empty() && line[0] == '#') continue;
    lines.push_back(line);
  }
  std::vector<std::pair<std::string, std::string>> cases;
  for (size_t i = 0; i + 1 < lines.size(); i += 2) cases.emplace_back(lines[i], lines[i + 1]);
  return cases;
}

// Every field of every *.parse1, *.ts3164 and master.ts3339 case matches rsyslog's
// rendering, except the listed known differences, each of which still differs.
TEST(ParserRsyslogTest, TestbenchFieldsMatch) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(testbenchDir())) {
    const std::string name = entry.path().filename().string();
    const std::string ext = entry.path().extension().string();
    if (ext == ".parse1" || ext == ".ts3164" || name == "master.ts3339") files.push_back(name);
  }
  ASSERT_GE(files.size(), 29u) << "expected 16 *.parse1, 12 *.ts3164 and master.ts3339 in "
                                << testbenchDir();

  RsyslogBench bench;
  for (const auto& file : files) {
    const auto cases = readCases(file);
    EXPECT_FALSE(cases.empty()) << file;
    for (const auto& [input, expected] : cases) bench.compare(file, input, expected);
  }
  EXPECT_GE(bench.cases(), 37u);

  std::set<const KnownDifference*> seen;
  for (const auto& m : bench.mismatches()) {
    const KnownDifference* known = findKnown(m);
    if (known != nullptr) {
      seen.insert(known);
      continue;
    }
    ADD_FAILURE() << m.file << " field " << m.field << "\n  input:    " << m.input
                  << "\n  expected: '" << m.expected << "'\n  actual:   '" << m.actual << "'";
  }
  for (const auto& known : kKnownDifferences) {
    EXPECT_TRUE(seen.count(&known) == 1)
        << "known difference now matches; remove it from the list: " << known.file << " "
        << known.field;
  }
}

}  // namespace
}  // namespace vigil::dataplane
