// Known patterns: sshd (real lines from corpus/syslog/loghub/OpenSSH_2k.log, read at
// run time, plus hand-written lines for forms that file lacks), Zeek JSON, Suricata EVE
// and Windows events sent as @cee JSON over RFC 5424.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::get;
using testing::ParsedEvent;
using testing::readLines;
using testing::timeOf;

// Every "Failed password" line yields ssh_login/failure with the user, address and port
// that an independent regular expression reads from the same line.
TEST(ParserPatternsTest, SshdFailedPasswordLoghub) {
  const auto lines = readLines("syslog/loghub/OpenSSH_2k.log");
  ASSERT_EQ(lines.size(), 2000u);
  const std::regex failed(R"(Failed password for (invalid user )?(\S+) from (\S+) port (\d+) ssh2$)");
  ParsedEvent slot;
  size_t checked = 0;
  for (const auto& line : lines) {
    std::smatch m;
    if (!std::regex_search(line, m, failed)) continue;
    SCOPED_TRACE(line);
    Event& e = slot.parse(line, {}, timeOf("2017-12-20T00:00:00Z"));
    ASSERT_EQ(e.format, EventFormat::kRfc3164);
    EXPECT_EQ(e.host, "LabSZ");
    EXPECT_EQ(e.app, "sshd");
    EXPECT_EQ(e.action, "ssh_login");
    EXPECT_EQ(e.outcome, "failure");
    EXPECT_EQ(e.user, m[2].str());
    EXPECT_EQ(get(e, "source.ip"), m[3].str());
    EXPECT_EQ(get(e, "source.port"), m[4].str());
    ++checked;
  }
  EXPECT_GE(checked, 400u);
}

// Every loghub sshd line of the other known forms gets its action and source address.
TEST(ParserPatternsTest, SshdOtherFormsLoghub) {
  const auto lines = readLines("syslog/loghub/OpenSSH_2k.log");
  ASSERT_FALSE(lines.empty());
  struct Form {
    std::regex pattern;
    std::string_view action;
    std::string_view outcome;
    size_t seen = 0;
  };
  Form forms[] = {
      {std::regex(R"(sshd\[\d+\]: Invalid user (\S*) from (\S+)$)"), "ssh_invalid_user", "failure"},
      {std::regex(R"(sshd\[\d+\]: Connection closed by ()(\S+) \[preauth\]$)"),
       "ssh_connection_closed", ""},
      {std::regex(R"(sshd\[\d+\]: Received disconnect from ()([0-9.]+): )"), "ssh_disconnect", ""},
      {std::regex(R"(authentication failure; .* rhost=([0-9.]+)\s+user=(\S+)$)"), "pam_auth_failure",
       "failure"},
      {std::regex(R"(Accepted password for (\S+) from (\S+) port \d+ ssh2$)"), "ssh_login",
       "success"},
  };
  ParsedEvent slot;
  for (const auto& line : lines) {
    for (auto& form : forms) {
      std::smatch m;
      if (!std::regex_search(line, m, form.pattern)) continue;
      SCOPED_TRACE(line);
      Event& e = slot.parse(line, {}, timeOf("2017-12-20T00:00:00Z"));
      EXPECT_EQ(e.action, form.action);
      EXPECT_EQ(e.outcome, form.outcome);
      const bool pam = form.action == "pam_auth_failure";
      const std::string user = pam ? m[2].str() : m[1].str();
      const std::string addr = pam ? m[1].str() : m[2].str();
      EXPECT_EQ(std::string(e.user), user);
      EXPECT_EQ(get(e, "source.ip"), addr);
      ++form.seen;
    }
  }
  for (const auto& form : forms) EXPECT_GT(form.seen, 0u) << form.action;
}

struct SshdCase {
  const char* msg;
  const char* action;
  const char* outcome;
  const char* user;
  const char* src_ip;
  uint16_t src_port;
};

// Hand-written sshd lines cover the forms of newer OpenSSH releases and IPv6 peers.
TEST(ParserPatternsTest, SshdHandwrittenForms) {
  const SshdCase cases[] = {
      {"Accepted publickey for alice from 192.0.2.7 port 50022 ssh2: ED25519 SHA256:abc",
       "ssh_login", "success", "alice", "192.0.2.7", 50022},
      {"Accepted keyboard-interactive/pam for alice from 2001:db8::5 port 2222 ssh2", "ssh_login",
       "success", "alice", "2001:db8::5", 2222},
      {"Failed publickey for invalid user bob from 198.51.100.3 port 41000 ssh2", "ssh_login",
       "failure", "bob", "198.51.100.3", 41000},
      {"Invalid user admin from 203.0.113.9 port 51234", "ssh_invalid_user", "failure", "admin",
       "203.0.113.9", 51234},
      {"Connection closed by authenticating user root 192.0.2.8 port 40000 [preauth]",
       "ssh_connection_closed", "", "root", "192.0.2.8", 40000},
      {"Connection closed by invalid user test 192.0.2.9 port 40001 [preauth]",
       "ssh_connection_closed", "", "test", "192.0.2.9", 40001},
      {"Connection closed by 192.0.2.10 port 40002", "ssh_connection_closed", "", "", "192.0.2.10",
       40002},
      {"Disconnected from invalid user guest 192.0.2.11 port 40003 [preauth]", "ssh_disconnect", "",
       "guest", "192.0.2.11", 40003},
      {"Disconnected from user alice 192.0.2.12 port 40004", "ssh_disconnect", "", "alice",
       "192.0.2.12", 40004},
      {"Received disconnect from 192.0.2.13 port 40005:11: Bye Bye [preauth]", "ssh_disconnect", "",
       "", "192.0.2.13", 40005},
      {"error: maximum authentication attempts exceeded for invalid user oracle from 192.0.2.14 "
       "port 40006 ssh2 [preauth]",
       "ssh_max_auth_attempts", "failure", "oracle", "192.0.2.14", 40006},
      {"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
       "rhost=192.0.2.15  user=root",
       "pam_auth_failure", "failure", "root", "192.0.2.15", 0},
      // An empty user name, as OpenSSH writes it and after a relay collapsed the spaces.
      {"Invalid user  from 192.0.2.16 port 40007", "ssh_invalid_user", "failure", "",
       "192.0.2.16", 40007},
      {"Invalid user from 192.0.2.17 port 40008", "ssh_invalid_user", "failure", "", "192.0.2.17",
       40008},
      {"Failed password for invalid user from 192.0.2.18 port 40009 ssh2", "ssh_login", "failure",
       "", "192.0.2.18", 40009},
      {"error: maximum authentication attempts exceeded for invalid user from 192.0.2.19 port "
       "40010 ssh2 [preauth]",
       "ssh_max_auth_attempts", "failure", "", "192.0.2.19", 40010},
      // A user named "from" keeps its name.
      {"Invalid user from from 192.0.2.20 port 40011", "ssh_invalid_user", "failure", "from",
       "192.0.2.20", 40011},
  };
  ParsedEvent slot;
  for (const auto& c : cases) {
    const std::string line = std::string("<38>Mar  1 10:00:00 bastion sshd[77]: ") + c.msg;
    SCOPED_TRACE(line);
    Event& e = slot.parse(line);
    EXPECT_EQ(e.action, c.action);
    EXPECT_EQ(e.outcome, c.outcome);
    EXPECT_EQ(e.user, c.user);
    EXPECT_EQ(get(e, "source.ip"), c.src_ip);
    EXPECT_EQ(e.src_port, c.src_port);
  }
}

// A non-sshd program with the same words gets no sshd action.
TEST(ParserPatternsTest, SshdPatternNeedsSshdApp) {
  ParsedEvent slot;
  Event& e = slot.parse("<38>Mar  1 10:00:00 h myapp: Failed password for root from 192.0.2.1 port 1 ssh2");
  EXPECT_EQ(e.action, "");
  EXPECT_FALSE(e.src_ip.has_value());
}

// Zeek ssh.json: addresses, ports, event time and ssh_login with the auth_success outcome.
TEST(ParserPatternsTest, ZeekSshJson) {
  const auto lines = readLines("json/zeek/wrccdc-json/ssh.json");
  ASSERT_FALSE(lines.empty());
  const std::regex fields(
      R"re("ts":"([^"]+)".*"id.orig_h":"([^"]+)","id.orig_p":(\d+),"id.resp_h":"([^"]+)","id.resp_p":(\d+))re");
  ParsedEvent slot;
  size_t success = 0;
  size_t failure = 0;
  for (const auto& line : lines) {
    SCOPED_TRACE(line);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(line, m, fields));
    Event& e = slot.parse(line);
    ASSERT_EQ(e.format, EventFormat::kJson);
    EXPECT_TRUE(e.has(kFlagJsonPayload));
    EXPECT_EQ(e.timestamp_ns, timeOf(m[1].str()));
    EXPECT_EQ(get(e, "source.ip"), m[2].str());
    EXPECT_EQ(get(e, "source.port"), m[3].str());
    EXPECT_EQ(get(e, "destination.ip"), m[4].str());
    EXPECT_EQ(get(e, "destination.port"), m[5].str());
    EXPECT_EQ(get(e, "_path"), "ssh");
    if (line.find("\"auth_success\":true") != std::string::npos) {
      EXPECT_EQ(e.action, "ssh_login");
      EXPECT_EQ(e.outcome, "success");
      ++success;
    } else if (line.find("\"auth_success\":false") != std::string::npos) {
      EXPECT_EQ(e.action, "ssh_login");
      EXPECT_EQ(e.outcome, "failure");
      ++failure;
    } else {
      EXPECT_EQ(e.action, "");
    }
  }
  EXPECT_EQ(success, 5u);
  EXPECT_EQ(failure, 2u);
}

// Zeek rdp.json: rdp_connection, the cookie as user, arrays flattened as name.0.
TEST(ParserPatternsTest, ZeekRdpJson) {
  const auto lines = readLines("json/zeek/wrccdc-json/rdp.json");
  ASSERT_EQ(lines.size(), 2000u);
  ParsedEvent slot;
  size_t with_cookie = 0;
  for (const auto& line : lines) {
    SCOPED_TRACE(line);
    Event& e = slot.parse(line);
    ASSERT_EQ(e.format, EventFormat::kJson);
    EXPECT_EQ(e.action, "rdp_connection");
    EXPECT_TRUE(e.src_ip.has_value());
    EXPECT_EQ(e.dst_port, 3389);
    if (line.find("\"cookie\":\"nessus\"") != std::string::npos) {
      EXPECT_EQ(e.user, "nessus");
      EXPECT_EQ(get(e, "client_channels.0"), "cliprdr");
      EXPECT_EQ(get(e, "cert_permanent"), "true");
      EXPECT_EQ(get(e, "desktop_width"), "1024");
      ++with_cookie;
    }
  }
  EXPECT_EQ(with_cookie, 7u);
}

// Suricata EVE: addresses, ports, the "+0200" timestamp and the alert signature.
TEST(ParserPatternsTest, SuricataEve) {
  const auto lines = readLines("json/suricata/tenzir-eve-excerpt.json");
  ASSERT_FALSE(lines.empty());
  ParsedEvent slot;
  Event& alert = slot.parse(lines[0]);
  EXPECT_EQ(alert.format, EventFormat::kJson);
  EXPECT_EQ(get(alert, "source.ip"), "147.32.84.165");
  EXPECT_EQ(alert.src_port, 1181);
  EXPECT_EQ(get(alert, "destination.ip"), "78.40.125.4");
  EXPECT_EQ(alert.dst_port, 6667);
  EXPECT_EQ(alert.timestamp_ns, timeOf("2011-08-12T12:52:57.716360Z"));
  EXPECT_EQ(alert.action, "ET CURRENT_EVENTS SUSPICIOUS IRC - PRIVMSG *.(exe|tar|tgz|zip)  download command");
  EXPECT_EQ(get(alert, "alert.signature_id"), "2017318");
  EXPECT_EQ(get(alert, "flow_id"), "1031464864740687");
  // The escaped "\r\n" in payload_printable is decoded into the arena.
  EXPECT_EQ(get(alert, "payload_printable"), "PRIVMSG #zarasa48 : smss.exe (368)\r\n");

  Event& dns = slot.parse(lines[1]);
  EXPECT_EQ(get(dns, "dns.rrname"), "irc.freenode.net");
  EXPECT_EQ(dns.action, "");
  EXPECT_EQ(dns.dst_port, 53);

  const auto capture = readLines("json/suricata/suricata8-docker-capture-shared.json");
  ASSERT_FALSE(capture.empty());
  for (const auto& line : capture) {
    Event& e = slot.parse(line);
    EXPECT_EQ(e.format, EventFormat::kJson) << line;
    EXPECT_TRUE(e.src_ip.has_value()) << line;
    EXPECT_NE(e.timestamp_ns, e.receive_ns) << line;
  }
}

// WRCCDC EvntSLog: RFC 5424 with "@cee: {json}" keeps the event id and the user, and a
// plain-text MSG from the same sender stays text.
TEST(ParserPatternsTest, EvntSLogCee) {
  const auto lines = readLines("syslog/wrccdc/evntslog-rfc5424-cee-shared.log");
  ASSERT_EQ(lines.size(), 1800u);
  ParsedEvent slot;
  size_t json = 0;
  for (const auto& line : lines) {
    SCOPED_TRACE(line.substr(0, 200));
    Event& e = slot.parse(line);
    ASSERT_EQ(e.format, EventFormat::kRfc5424);
    EXPECT_EQ(e.app, "EvntSLog");
    EXPECT_EQ(e.timestamp_ns % kNanosPerSecond, 0);
    if (line.find("@cee:") == std::string::npos) {
      EXPECT_FALSE(e.has(kFlagJsonPayload));
      continue;
    }
    ++json;
    EXPECT_TRUE(e.has(kFlagJsonPayload));
    EXPECT_NE(get(e, "id"), "<missing>");
    EXPECT_NE(get(e, "nteventlogtype"), "<missing>");
    if (line.find(R"("user": "NT AUTHORITY\\SYSTEM")") != std::string::npos) {
      EXPECT_EQ(e.user, "NT AUTHORITY\\SYSTEM");
    }
    // Logon events name their target account instead (WindowsLogonText checks those).
    const bool logon = line.find("logged on.") != std::string::npos ||
                       line.find("failed to log on.") != std::string::npos;
    if (line.find(R"("user": "N\\A")") != std::string::npos && !logon) {
      EXPECT_EQ(e.user, "");
    }
  }
  EXPECT_EQ(json, 278u);

  Event& first = slot.parse(lines[0]);
  EXPECT_EQ(get(first, "id"), "7036");
  EXPECT_EQ(get(first, "param1"), "Multimedia Class Scheduler");
  EXPECT_EQ(first.timestamp_ns, timeOf("2018-03-24T15:59:37Z"));
}

// key=value text (iptables style, any case) fills addresses and ports.
TEST(ParserPatternsTest, KeyValueText) {
  ParsedEvent slot;
  Event& e = slot.parse(
      "<4>Mar  6 16:57:54 fw kernel: DROP IN=eth1 OUT=eth0 SRC=192.0.2.78 DST=198.51.100.194 "
      "LEN=1182 PROTO=TCP SPT=33343 DPT=80");
  EXPECT_EQ(get(e, "source.ip"), "192.0.2.78");
  EXPECT_EQ(get(e, "destination.ip"), "198.51.100.194");
  EXPECT_EQ(e.src_port, 33343);
  EXPECT_EQ(e.dst_port, 80);
}

// Generic JSON names: source.ip with brackets and port, user.name and @timestamp.
TEST(ParserPatternsTest, GenericJsonNames) {
  ParsedEvent slot;
  Event& e = slot.parse(
      R"({"@timestamp":"2024-05-01T10:00:00Z","source":{"ip":"[::ffff:192.0.2.1]:443"},)"
      R"("destination":{"ip":"2001:DB8::1"},"user":{"name":"alice"},"n":-1.5e3,"z":null})");
  EXPECT_EQ(e.format, EventFormat::kJson);
  EXPECT_EQ(get(e, "source.ip"), "192.0.2.1");
  EXPECT_EQ(get(e, "destination.ip"), "2001:db8::1");
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.timestamp_ns, timeOf("2024-05-01T10:00:00Z"));
  EXPECT_EQ(get(e, "n"), "-1.5e3");
  EXPECT_EQ(get(e, "z"), "<missing>");
}

// Zeek epoch-float ts keeps its microseconds exactly.
TEST(ParserPatternsTest, ZeekEpochTs) {
  ParsedEvent slot;
  Event& e = slot.parse(R"({"ts":1521911799.739898,"uid":"C1","id.orig_h":"192.0.2.1"})");
  EXPECT_EQ(e.timestamp_ns, int64_t{1521911799739898000});
  EXPECT_EQ(get(e, "ts"), "1521911799.739898");
}

}  // namespace
}  // namespace vigil::dataplane

namespace vigil::dataplane {
namespace {

// Windows 4625/4624 text from the WRCCDC EvntSLog file: every failed and successful logon
// gets action windows_logon, the target account (not the "-" subject) and the source.
TEST(ParserPatternsTest, WindowsLogonText) {
  const auto lines = testing::readLines("syslog/wrccdc/evntslog-rfc5424-cee-shared.log");
  testing::ParsedEvent slot;
  size_t failures = 0;
  size_t successes = 0;
  size_t json_successes = 0;
  for (const auto& line : lines) {
    Event& e = slot.parse(line);
    if (line.find("An account failed to log on.") != std::string::npos) {
      ++failures;
      EXPECT_EQ(e.action, "windows_logon");
      EXPECT_EQ(e.outcome, "failure");
      EXPECT_EQ(testing::get(e, "source.ip"), "10.150.0.20") << line.substr(0, 300);
      EXPECT_TRUE(e.user == "administrator" || e.user == "Administrator") << e.user;
      EXPECT_EQ(testing::get(e, "windows.logon_type"), "3");
    } else if (line.find("An account was successfully logged on.") != std::string::npos) {
      ++successes;
      EXPECT_EQ(e.action, "windows_logon");
      EXPECT_EQ(e.outcome, "success");
      EXPECT_FALSE(e.user.empty()) << line.substr(0, 300);
      EXPECT_NE(e.user, "-");
      if (line.find("@cee:") != std::string::npos) ++json_successes;
    }
  }
  EXPECT_EQ(failures, 8u);
  EXPECT_GT(successes, 0u);
  EXPECT_GT(json_successes, 0u);

  // "-" as the source address leaves the source unset; the Guest logon names Guest.
  Event& local = slot.parse(
      "<133>1 2018-03-24T09:06:26-07:00 dc EvntSLog - - - An account was successfully logged "
      "on. Subject: Security ID: S-1-0-0 Account Name: - Logon Type: 3 New Logon: Security ID: "
      "S-1-5-21-1-501 Account Name: Guest Account Domain: JERRY Network Information: "
      "Source Network Address: - Source Port: -");
  EXPECT_EQ(local.user, "Guest");
  EXPECT_FALSE(local.src_ip.has_value());
  EXPECT_EQ(local.src_port, 0);
}

// A JSON key given twice fills its member from the first, as get() returns the first.
TEST(ParserPatternsTest, JsonRepeatedKeyFirstWins) {
  testing::ParsedEvent slot;
  Event& e = slot.parse(
      R"({"src_ip":"192.0.2.1","src_ip":"192.0.2.99","user":"a","user":"b","dest_port":22,"dest_port":23})");
  EXPECT_EQ(testing::get(e, "source.ip"), "192.0.2.1");
  EXPECT_EQ(testing::get(e, "user.name"), "a");
  EXPECT_EQ(testing::get(e, "destination.port"), "22");
}

// A bare JSON event whose time member does not parse keeps the receive time, flagged.
TEST(ParserPatternsTest, JsonBadTimeFlagged) {
  testing::ParsedEvent slot;
  const int64_t received = testing::timeOf("2024-06-01T00:00:00Z");
  for (const char* line : {R"({"ts":"2024-13-45T99:99:99Z","a":1})",
                           R"({"ts":99999999999999999999,"a":1})"}) {
    Event& e = slot.parse(line);
    EXPECT_EQ(e.format, EventFormat::kJson) << line;
    EXPECT_TRUE(e.has(kFlagTimestampInvalid)) << line;
    EXPECT_EQ(e.timestamp_ns, received) << line;
  }
  Event& good = slot.parse(R"({"ts":"2024-05-01T10:00:00Z","a":1})");
  EXPECT_FALSE(good.has(kFlagTimestampInvalid));
  EXPECT_EQ(good.timestamp_ns, testing::timeOf("2024-05-01T10:00:00Z"));
}

}  // namespace
}  // namespace vigil::dataplane
