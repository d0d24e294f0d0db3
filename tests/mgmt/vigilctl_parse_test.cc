// Runs the built "vigilctl parse" over the shared edge-case corpus and checks its JSON lines.
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

constexpr const char* kEdge = VIGIL_SHARED_DIR "/corpus/edge/";

using ParseRun = testing::CommandRun;

class VigilctlParseTest : public testing::VigilctlCommandTest {
 protected:
  VigilctlParseTest() : VigilctlCommandTest("parse") {}
};

bool hasFlag(const nlohmann::json& event, const std::string& flag) {
  for (const auto& f : event["flags"]) {
    if (f == flag) return true;
  }
  return false;
}

// br06 is one RFC 6587 stream: octet framing gives its 4 messages, embedded LF included.
TEST_F(VigilctlParseTest, OctetCountingStream) {
  ParseRun r =
      run(std::string("--framing octet_counting ") + kEdge + "br06-rfc6587-octet-counting.bin");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 4u) << r.err;
  const size_t lengths[] = {43, 111, 95, 71};
  for (size_t i = 0; i < r.lines.size(); ++i) {
    nlohmann::json event = nlohmann::json::parse(r.lines[i]);
    EXPECT_EQ(event["raw"].get<std::string>().size(), lengths[i]) << r.lines[i];
  }
  nlohmann::json first = nlohmann::json::parse(r.lines[0]);
  EXPECT_EQ(first["format"], "rfc3164");
  EXPECT_EQ(first["host.name"], "localhost");
  EXPECT_EQ(first["message"], "hello!");
  nlohmann::json second = nlohmann::json::parse(r.lines[1]);
  EXPECT_EQ(second["format"], "rfc5424");
  EXPECT_NE(second["message"].get<std::string>().find('\n'), std::string::npos);
  EXPECT_NE(r.err.find("4 events"), std::string::npos) << r.err;
}

// br08 keeps all 5 lines, and lines 2 to 5, which hold invalid sequences, are flagged.
TEST_F(VigilctlParseTest, InvalidUtf8Flagged) {
  ParseRun r = run(std::string(kEdge) + "br08-invalid-utf8.log");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 5u) << r.err;
  std::vector<bool> flagged;
  for (const std::string& line : r.lines) {
    flagged.push_back(hasFlag(nlohmann::json::parse(line), "invalid_utf8"));
  }
  EXPECT_FALSE(flagged[0]) << r.lines[0];
  for (size_t i = 1; i < flagged.size(); ++i) EXPECT_TRUE(flagged[i]) << r.lines[i];
  nlohmann::json first = nlohmann::json::parse(r.lines[0]);
  EXPECT_NE(first["message"].get<std::string>().find("caf\xc3\xa9"), std::string::npos);
  // Fields still extract from the Latin-1 line.
  nlohmann::json latin1 = nlohmann::json::parse(r.lines[3]);
  EXPECT_EQ(latin1["source.ip"], "192.0.2.5") << r.lines[3];
  EXPECT_NE(r.err.find("4 with invalid UTF-8"), std::string::npos) << r.err;
}

// raw_base64 carries the exact bytes of a line with invalid UTF-8, which raw cannot.
TEST_F(VigilctlParseTest, InvalidUtf8RawKeptAsBase64) {
  const std::string path = (dir_ / "latin1.log").string();
  std::ofstream(path, std::ios::binary) << "<13>Oct 11 22:14:15 h app: caf\xe9 \x80\n"
                                        << "<13>Oct 11 22:14:15 h app: plain\n";
  ParseRun r = run(path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 2u) << r.err;
  nlohmann::json bad = nlohmann::json::parse(r.lines[0]);
  // base64 of "<13>Oct 11 22:14:15 h app: caf\xe9 \x80"
  EXPECT_EQ(bad["raw_base64"], "PDEzPk9jdCAxMSAyMjoxNDoxNSBoIGFwcDogY2Fm6SCA") << r.lines[0];
  nlohmann::json good = nlohmann::json::parse(r.lines[1]);
  EXPECT_FALSE(good.contains("raw_base64")) << r.lines[1];
}

// --receive-time fixes the year an RFC 3164 stamp is placed in, so output is repeatable.
TEST_F(VigilctlParseTest, ReceiveTimeSetsInferredYear) {
  const std::string path = (dir_ / "newyear.log").string();
  std::ofstream(path) << "<13>Dec 31 23:59:58 h app: late\n<13>Jan  1 00:00:02 h app: early\n";
  ParseRun r = run("--receive-time 2025-01-01T00:00:05Z " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 2u) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.lines[0])["@timestamp"], "2024-12-31T23:59:58Z") << r.lines[0];
  EXPECT_EQ(nlohmann::json::parse(r.lines[1])["@timestamp"], "2025-01-01T00:00:02Z") << r.lines[1];

  ParseRun bad = run("--receive-time yesterday " + path);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--receive-time 'yesterday' is invalid"), std::string::npos) << bad.err;
}

// An RFC 5424 TIMESTAMP without a UTC offset is read as UTC, flagged zone_assumed and
// counted in the summary.
TEST_F(VigilctlParseTest, ZoneAssumedFlagged) {
  const std::string path = (dir_ / "zones.log").string();
  std::ofstream(path) << "<14>1 2026-03-01T10:00:00 h app - - - bare\n"
                      << "<14>1 2026-03-01T10:00:00Z h app - - - zulu\n";
  ParseRun r = run(path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 2u) << r.err;
  const nlohmann::json bare = nlohmann::json::parse(r.lines[0]);
  EXPECT_EQ(bare["@timestamp"], "2026-03-01T10:00:00Z") << r.lines[0];
  EXPECT_TRUE(hasFlag(bare, "zone_assumed")) << r.lines[0];
  EXPECT_FALSE(hasFlag(nlohmann::json::parse(r.lines[1]), "zone_assumed")) << r.lines[1];
  EXPECT_NE(r.err.find("1 with an assumed UTC zone"), std::string::npos) << r.err;
}

// Every line is a JSON object with the canonical fields, generic fields, flags and tenant.
TEST_F(VigilctlParseTest, JsonLinesCarryEveryPart) {
  const std::string path = (dir_ / "mixed.log").string();
  std::ofstream(path) << "<165>1 2024-05-01T10:00:00Z host1 sshd 411 ID47 "
                         "[origin ip=\"192.0.2.1\"] Failed password for alice from "
                         "198.51.100.7 port 52011 ssh2\n"
                         "\n"
                         "not syslog at all\n";
  ParseRun r = run("--tenant acme " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 2u) << r.err;
  nlohmann::json event = nlohmann::json::parse(r.lines[0]);
  ASSERT_TRUE(event.is_object());
  EXPECT_EQ(event["@timestamp"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(event["host.name"], "host1");
  EXPECT_EQ(event["process.name"], "sshd");
  EXPECT_EQ(event["process.pid"], "411");
  EXPECT_EQ(event["log.syslog.msgid"], "ID47");
  EXPECT_EQ(event["log.syslog.facility.code"], "20");
  EXPECT_EQ(event["log.syslog.severity.code"], "5");
  EXPECT_EQ(event["source.ip"], "198.51.100.7");
  EXPECT_EQ(event["source.port"], "52011");
  EXPECT_EQ(event["user.name"], "alice");
  EXPECT_EQ(event["event.action"], "ssh_login");
  EXPECT_EQ(event["event.outcome"], "failure");
  EXPECT_EQ(event["tenant"], "acme");
  EXPECT_EQ(event["format"], "rfc5424");
  ASSERT_TRUE(event["fields"].is_array());
  ASSERT_FALSE(event["fields"].empty());
  EXPECT_EQ(event["fields"][0]["name"], "sd.origin.ip");
  EXPECT_EQ(event["fields"][0]["value"], "192.0.2.1");
  EXPECT_TRUE(event["flags"].empty()) << r.lines[0];

  nlohmann::json raw = nlohmann::json::parse(r.lines[1]);
  EXPECT_EQ(raw["format"], "raw");
  EXPECT_TRUE(hasFlag(raw, "parse_error"));
  EXPECT_EQ(raw["raw"], "not syslog at all");
  EXPECT_NE(r.err.find("2 events, 1 parsed, 1 parse errors"), std::string::npos) << r.err;
}

// An unknown --format is rejected with exit status 2 and a message listing the choices.
TEST_F(VigilctlParseTest, BadFormatExitsTwo) {
  ParseRun r = run(std::string("--format syslog ") + kEdge + "br08-invalid-utf8.log");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.lines.empty());
  EXPECT_NE(r.err.find("--format 'syslog' is invalid; use one of auto, rfc3164, rfc5424, json"),
            std::string::npos)
      << r.err;
}

// --format cef and --format leef parse only records of that format; other lines are raw.
TEST_F(VigilctlParseTest, CefAndLeefFormats) {
  const std::string path = (dir_ / "vendor.log").string();
  std::ofstream(path) << "CEF:0|Acme|Firewall|1.0|100|Blocked|5|src=192.0.2.7\n"
                         "LEEF:2.0|Acme|Proxy|2.1|Denied|^|src=192.0.2.8^dst=198.51.100.3\n"
                         "<14>Oct 11 22:14:15 web1 app[7]: plain text\n";
  const std::vector<std::pair<std::string, size_t>> formats = {{"cef", 0}, {"leef", 1}};
  for (const auto& [format, record] : formats) {
    ParseRun r = run("--format " + format + " " + path);
    ASSERT_EQ(r.exit_code, 0) << format << ": " << r.err;
    ASSERT_EQ(r.lines.size(), 3u) << format << ": " << r.err;
    for (size_t i = 0; i < r.lines.size(); ++i) {
      nlohmann::json event = nlohmann::json::parse(r.lines[i]);
      if (i == record) {
        EXPECT_EQ(event["format"], format) << r.lines[i];
        EXPECT_FALSE(hasFlag(event, "parse_error")) << r.lines[i];
      } else {
        EXPECT_EQ(event["format"], "raw") << format << ": " << r.lines[i];
        EXPECT_TRUE(hasFlag(event, "parse_error")) << format << ": " << r.lines[i];
      }
    }
    EXPECT_NE(r.err.find("3 events, 1 parsed, 2 parse errors"), std::string::npos) << r.err;
  }
  ParseRun bad = run("--format syslog " + path);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("rfc5424, json, cef, leef"), std::string::npos) << bad.err;
}

// A missing file and a corrupt octet count are reported with the file name.
TEST_F(VigilctlParseTest, UnreadableInputFails) {
  ParseRun missing = run((dir_ / "nope.log").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;

  // A folder is not read as an empty file.
  ParseRun folder = run(dir_.string());
  EXPECT_EQ(folder.exit_code, 1);
  EXPECT_NE(folder.err.find("it is a folder"), std::string::npos) << folder.err;

  const std::string path = (dir_ / "bad.bin").string();
  std::ofstream(path) << "5 hello"
                      << "x7 oops";
  ParseRun bad = run("--framing octet_counting " + path);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.lines.size(), 1u);
  EXPECT_NE(bad.err.find("framing error"), std::string::npos) << bad.err;
}

// A FIFO is rejected at once with its path, instead of blocking in open().
TEST_F(VigilctlParseTest, FifoRejected) {
  const std::string fifo = (dir_ / "events.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  ParseRun r = run(fifo);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot read " + fifo + ": it is not a regular file (a FIFO)"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(r.lines.empty());
}

// A read error exits 1 with the path and the error, instead of "0 events" and status 0.
// Reading /proc/self/mem at offset 0 fails with EIO: the file opens but read() fails.
TEST_F(VigilctlParseTest, ReadErrorFails) {
  ParseRun r = run("/proc/self/mem");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("failed to read /proc/self/mem: Input/output error"), std::string::npos)
      << r.err;
  EXPECT_TRUE(r.lines.empty());
}

}  // namespace
}  // namespace vigil::mgmt
