// CEF and LEEF records: edge cases br09, br10 and br12 from corpus/edge, the cef-parser
// corpus compared field by field, and the tenzir CEF and LEEF samples.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <map>
#include <random>
#include <utility>
#include <vector>
#include <string>
#include <string_view>

#include "common/ip.h"
#include "dataplane/internal/device_time.h"
#include "parser_test_util.h"

namespace vigil::dataplane {
namespace {

using testing::get;
using testing::ParsedEvent;
using testing::readLines;
using testing::sharedPath;
using testing::timeOf;

// The value of a generic field, looked up among the event's fields only.
std::string field(const Event& event, std::string_view name) {
  for (size_t i = 0; i < event.field_count; ++i) {
    if (event.fields[i].name == name) return std::string(event.fields[i].value);
  }
  return "<missing>";
}

size_t countFieldsWithPrefix(const Event& event, std::string_view prefix) {
  size_t count = 0;
  for (size_t i = 0; i < event.field_count; ++i) {
    if (event.fields[i].name.substr(0, prefix.size()) == prefix) ++count;
  }
  return count;
}

IpAddr ip(std::string_view text) { return parseIp(text).value(); }

// br09: `\|` and `\\` in header fields; a bare pipe in an extension value is data.
TEST(CefTest, Br09EscapedPipeInHeader) {
  const auto lines = readLines("edge/br09-cef-escaped-pipe-in-header.log");
  ASSERT_EQ(lines.size(), 2u);
  ParsedEvent slot;

  Event& e1 = slot.parse(lines[0]);
  EXPECT_EQ(e1.format, EventFormat::kCef);
  EXPECT_FALSE(e1.has(kFlagParseError));
  EXPECT_EQ(field(e1, "cef.cef_version"), "1");
  EXPECT_EQ(field(e1, "cef.vendor"), "Product");
  EXPECT_EQ(field(e1, "cef.product"), "Vendor");
  EXPECT_EQ(field(e1, "cef.version"), "7");
  EXPECT_EQ(field(e1, "cef.signature_id"), "operation1|operation2");
  EXPECT_EQ(field(e1, "cef.name"), "Information");
  EXPECT_EQ(field(e1, "cef.severity"), "Unknown");
  EXPECT_EQ(field(e1, "cef.eventId"), "7685828129");
  EXPECT_EQ(field(e1, "cef.msg"), "MessageTest");
  EXPECT_EQ(e1.message, "MessageTest");

  Event& e2 = slot.parse(lines[1]);
  EXPECT_EQ(e2.format, EventFormat::kCef);
  EXPECT_EQ(field(e2, "cef.vendor"), "Example|Corp");
  EXPECT_EQ(field(e2, "cef.product"), "Gate\\way");
  EXPECT_EQ(field(e2, "cef.name"), "escaped | pipe in name");
  EXPECT_EQ(field(e2, "cef.severity"), "5");
  EXPECT_EQ(field(e2, "cef.request"), "https://example.com/a|b");
  EXPECT_EQ(field(e2, "cef.src"), "192.0.2.1");
  EXPECT_EQ(e2.src_ip, ip("192.0.2.1"));
}

// br10: `\n`, `\r`, `\\` and `\=` decode in extension values; an empty last value is kept.
TEST(CefTest, Br10ExtensionEscapes) {
  const auto lines = readLines("edge/br10-cef-extension-escapes.log");
  ASSERT_EQ(lines.size(), 2u);
  ParsedEvent slot;

  Event& e1 = slot.parse(lines[0]);
  EXPECT_EQ(e1.format, EventFormat::kCef);
  EXPECT_EQ(field(e1, "cef.cs1Label"), "note");
  EXPECT_EQ(field(e1, "cef.cs1"), "line one\nline two\rend");
  EXPECT_EQ(field(e1, "cef.label.note"), "line one\nline two\rend");
  EXPECT_EQ(field(e1, "cef.msg"), "path C:\\Temp\\x.exe key=value kept");
  EXPECT_EQ(field(e1, "cef.key"), "<missing>");
  EXPECT_EQ(field(e1, "cef.act"), "blocked");
  EXPECT_EQ(e1.action, "blocked");
  EXPECT_EQ(e1.message, "path C:\\Temp\\x.exe key=value kept");

  Event& e2 = slot.parse(lines[1]);
  EXPECT_EQ(e2.format, EventFormat::kCef);
  EXPECT_FALSE(e2.has(kFlagParseError));
  EXPECT_EQ(field(e2, "cef.src"), "198.51.100.9");
  EXPECT_EQ(field(e2, "cef.spt"), "46117");
  EXPECT_EQ(field(e2, "cef.dpt"), "");
  EXPECT_EQ(e2.src_ip, ip("198.51.100.9"));
  EXPECT_EQ(e2.src_port, 46117);
  EXPECT_EQ(e2.dst_port, 0);
}

// br12: every LEEF 2.0 delimiter spelling, and a LEEF 1.0 devTime with devTimeFormat.
TEST(LeefTest, Br12DelimiterVariants) {
  const auto lines = readLines("edge/br12-leef2-delimiter-variants.log");
  ASSERT_EQ(lines.size(), 6u);
  ParsedEvent slot;

  Event& e1 = slot.parse(lines[0]);
  EXPECT_EQ(e1.format, EventFormat::kLeef);
  EXPECT_EQ(field(e1, "leef.src"), "192.0.2.1");
  EXPECT_EQ(field(e1, "leef.dst"), "198.51.100.2");
  EXPECT_EQ(field(e1, "leef.usrName"), "alice");
  EXPECT_EQ(field(e1, "leef.msg"), "a=b tab\tkept");
  EXPECT_EQ(e1.user, "alice");
  EXPECT_EQ(e1.src_ip, ip("192.0.2.1"));
  EXPECT_EQ(e1.dst_ip, ip("198.51.100.2"));
  EXPECT_EQ(e1.message, "a=b tab\tkept");

  for (size_t i = 1; i < 5; ++i) {
    Event& e = slot.parse(lines[i]);
    EXPECT_EQ(e.format, EventFormat::kLeef) << lines[i];
    EXPECT_EQ(field(e, "leef.src"), "192.0.2.1") << lines[i];
    EXPECT_EQ(field(e, "leef.dst"), "198.51.100.2") << lines[i];
    EXPECT_EQ(e.src_ip, ip("192.0.2.1")) << lines[i];
    EXPECT_EQ(e.dst_ip, ip("198.51.100.2")) << lines[i];
  }
  EXPECT_EQ(field(slot.parse(lines[1]), "leef.usrName"), "alice");
  EXPECT_EQ(countFieldsWithPrefix(slot.parse(lines[2]), "leef."), 7u);
  EXPECT_EQ(field(slot.parse(lines[3]), "leef.usrName"), "alice");
  EXPECT_EQ(field(slot.parse(lines[3]), "leef.event_id"), "103");
  EXPECT_EQ(countFieldsWithPrefix(slot.parse(lines[4]), "leef."), 7u);

  Event& e6 = slot.parse(lines[5]);
  EXPECT_EQ(e6.format, EventFormat::kLeef);
  EXPECT_EQ(field(e6, "leef.leef_version"), "1.0");
  EXPECT_EQ(e6.timestamp_ns, timeOf("2024-01-01T10:00:00Z"));

  ParseOptions plus_two;
  plus_two.default_utc_offset_s = 2 * 3600;
  EXPECT_EQ(slot.parse(lines[5], plus_two).timestamp_ns, timeOf("2024-01-01T08:00:00Z"));
}

// Expected-parse keys of the cef-parser corpus and the event field each one maps to.
const std::map<std::string, std::string>& headerFieldNames() {
  static const auto* names = new std::map<std::string, std::string>{
      {"deviceVendor", "cef.vendor"},         {"deviceProduct", "cef.product"},
      {"deviceVersion", "cef.version"},       {"deviceEventClassId", "cef.signature_id"},
      {"name", "cef.name"},                   {"severity", "cef.severity"},
  };
  return *names;
}

// Deliberate differences from the cef-parser expectations, by file name.
// The *004 records carry rt=1305034099211. Vigil takes rt (the device's event time) as
// the event time, while the expected parse keeps the syslog header time.
const std::map<std::string, std::string>& timestampAllowlist() {
  static const auto* files = new std::map<std::string, std::string>{
      {"Message1004.json", "rt wins over the header time"},
      {"Message2004.json", "rt wins over the header time"},
      {"Message3004.json", "rt wins over the header time"},
      {"Message4004.json", "rt wins over the header time"},
      {"Message5004.json", "rt wins over the header time"},
      {"Message6004.json", "rt wins over the header time"},
      {"Message7004.json", "rt wins over the header time"},
  };
  return *files;
}

void checkCefParserCase(const std::filesystem::path& path, simdjson::dom::element doc,
                        ParsedEvent& slot) {
  const std::string name = path.filename().string();
  SCOPED_TRACE(name);
  const std::string input(std::string_view(doc["input"].get_string().value()));
  const simdjson::dom::object expected = doc["expected"].get_object().value();
  // The headers without a year ("May 02 15:27:43") take it from the receive time.
  Event& e = slot.parse(input, {}, timeOf("2017-05-03T00:00:00Z"));
  ASSERT_EQ(e.format, EventFormat::kCef);
  ASSERT_FALSE(e.has(kFlagParseError));

  size_t extension_count = 0;
  for (auto [key, value] : expected) {
    const std::string k(key);
    if (k == "cefVersion") {
      EXPECT_EQ(field(e, "cef.cef_version"), std::to_string(value.get_int64().value()));
    } else if (k == "timestamp") {
      if (timestampAllowlist().count(name) != 0) {
        EXPECT_EQ(e.timestamp_ns, 1305034099211 * 1'000'000);
      } else {
        EXPECT_EQ(e.timestamp_ns, value.get_int64().value() * 1'000'000);
      }
    } else if (k == "host") {
      EXPECT_EQ(e.host, std::string_view(value.get_string().value()));
    } else if (k == "extensions") {
      const simdjson::dom::object extensions = value.get_object().value();
      for (auto [ext_key, ext_value] : extensions) {
        ++extension_count;
        EXPECT_EQ(field(e, "cef." + std::string(ext_key)),
                  std::string_view(ext_value.get_string().value()))
            << ext_key;
      }
    } else {
      ASSERT_EQ(headerFieldNames().count(k), 1u) << "unknown expected key " << k;
      EXPECT_EQ(field(e, headerFieldNames().at(k)), std::string_view(value.get_string().value()));
    }
  }
  const size_t labels = countFieldsWithPrefix(e, "cef.label.");
  EXPECT_EQ(countFieldsWithPrefix(e, "cef.") - labels - 7, extension_count);
}

// Every cef-parser case matches its expected parse field by field, except the allowlist.
TEST(CefTest, CefParserCorpus) {
  const std::filesystem::path dir = sharedPath("cef/cef-parser");
  simdjson::dom::parser parser;
  ParsedEvent slot;
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.load(entry.path().string()).get(doc), simdjson::SUCCESS) << entry.path();
    checkCefParserCase(entry.path(), doc, slot);
  }
  EXPECT_EQ(files, 72u);
}

// Well-known extension keys fill the normalized event; suser wins over duser.
TEST(CefTest, WellKnownKeysFillEvent) {
  ParsedEvent slot;
  Event& e = slot.parse(
      "CEF:0|V|P|1|9|n|5|src=10.0.0.1 dst=2001:db8::1 spt=1232 dpt=443 duser=bob suser=alice "
      "act=deny outcome=Failure dvchost=fw1 rt=Jan 02 2024 03:04:05.678 UTC");
  EXPECT_EQ(e.src_ip, ip("10.0.0.1"));
  EXPECT_EQ(e.dst_ip, ip("2001:db8::1"));
  EXPECT_EQ(e.src_port, 1232);
  EXPECT_EQ(e.dst_port, 443);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.action, "deny");
  EXPECT_EQ(e.outcome, "failure");
  EXPECT_EQ(e.host, "fw1");
  EXPECT_EQ(e.timestamp_ns, timeOf("2024-01-02T03:04:05.678Z"));
  EXPECT_EQ(get(e, "user.name"), "alice");
}

// duser fills the user when suser is absent, and epoch-millisecond rt is the event time.
TEST(CefTest, DuserAndEpochRt) {
  ParsedEvent slot;
  Event& e = slot.parse("CEF:0|V|P|1|9|n|5|duser=bob rt=1305034099211");
  EXPECT_EQ(e.user, "bob");
  EXPECT_EQ(e.timestamp_ns, int64_t{1305034099211} * 1'000'000);
}

// CEF as the MSG of RFC 5424 and RFC 3164 messages keeps the syslog header.
TEST(CefTest, InsideSyslog) {
  ParsedEvent slot;
  Event& ietf = slot.parse("<13>1 2024-05-01T10:00:00Z fw1 app - - - CEF:0|V|P|1|9|n|5|src=10.0.0.1");
  EXPECT_EQ(ietf.format, EventFormat::kCef);
  EXPECT_EQ(ietf.host, "fw1");
  EXPECT_EQ(ietf.app, "app");
  EXPECT_EQ(ietf.severity, 5);
  EXPECT_EQ(ietf.timestamp_ns, timeOf("2024-05-01T10:00:00Z"));
  EXPECT_EQ(ietf.src_ip, ip("10.0.0.1"));

  Event& bsd = slot.parse("<13>May  1 10:00:00 fw2 CEF:0|V|P|1|9|n|5|src=10.0.0.2");
  EXPECT_EQ(bsd.format, EventFormat::kCef);
  EXPECT_EQ(bsd.host, "fw2");
  EXPECT_EQ(bsd.app, "");
  EXPECT_EQ(bsd.src_ip, ip("10.0.0.2"));

  Event& tagged = slot.parse("<13>May  1 10:00:00 fw3 agent[7]: LEEF:1.0|V|P|1|9|src=10.0.0.3");
  EXPECT_EQ(tagged.format, EventFormat::kLeef);
  EXPECT_EQ(tagged.app, "agent");
  EXPECT_EQ(tagged.procid, "7");
  EXPECT_EQ(tagged.src_ip, ip("10.0.0.3"));
}

// A device time that replaces the syslog header time also drops the header time's flags:
// the event time then has no inferred year and no assumed zone.
TEST(CefLeefTest, DeviceTimeClearsHeaderTimeFlags) {
  ParsedEvent slot;
  const int64_t received = timeOf("2024-06-01T00:00:00Z");
  const int64_t device = timeOf("2024-05-01T09:59:58Z");

  Event& rt = slot.parse("<13>May  1 10:00:00 fw CEF:0|V|P|1|9|n|5|rt=1714557598000", {}, received);
  EXPECT_EQ(rt.format, EventFormat::kCef);
  EXPECT_EQ(rt.timestamp_ns, device);
  EXPECT_FALSE(rt.has(kFlagYearInferred));

  Event& end =
      slot.parse("<13>May  1 10:00:00 fw CEF:0|V|P|1|9|n|5|end=1714557598000", {}, received);
  EXPECT_EQ(end.timestamp_ns, device);
  EXPECT_FALSE(end.has(kFlagYearInferred));

  Event& leef = slot.parse(
      "<13>May  1 10:00:00 fw LEEF:1.0|V|P|1|9|devTime=1714557598000\tsrc=10.0.0.1", {}, received);
  EXPECT_EQ(leef.format, EventFormat::kLeef);
  EXPECT_EQ(leef.timestamp_ns, device);
  EXPECT_FALSE(leef.has(kFlagYearInferred));

  Event& ietf = slot.parse(
      "<13>1 2024-05-01T10:00:00 fw app - - - CEF:0|V|P|1|9|n|5|rt=1714557598000", {}, received);
  EXPECT_EQ(ietf.format, EventFormat::kCef);
  EXPECT_EQ(ietf.timestamp_ns, device);
  EXPECT_FALSE(ietf.has(kFlagZoneAssumed));

  Event& json = slot.parse(
      R"(<13>May  1 10:00:00 fw app: {"timestamp":"2024-05-01T09:59:58Z","src_ip":"10.0.0.1"})", {},
      received);
  EXPECT_TRUE(json.has(kFlagJsonPayload));
  EXPECT_EQ(json.timestamp_ns, device);
  EXPECT_FALSE(json.has(kFlagYearInferred));

  // A header without a usable time is flagged, until a device time takes its place.
  Event& no_header_time = slot.parse("<13>CEF:0|V|P|1|9|n|5|rt=1714557598000", {}, received);
  EXPECT_EQ(no_header_time.format, EventFormat::kCef);
  EXPECT_EQ(no_header_time.timestamp_ns, device);
  EXPECT_FALSE(no_header_time.has(kFlagTimestampInvalid));
  Event& no_time_at_all = slot.parse("<13>CEF:0|V|P|1|9|n|5|src=10.0.0.1", {}, received);
  EXPECT_EQ(no_time_at_all.timestamp_ns, received);
  EXPECT_TRUE(no_time_at_all.has(kFlagTimestampInvalid));

  // Without a usable device time the header time and its flags stay.
  Event& no_rt = slot.parse("<13>May  1 10:00:00 fw CEF:0|V|P|1|9|n|5|src=10.0.0.1", {}, received);
  EXPECT_EQ(no_rt.timestamp_ns, timeOf("2024-05-01T10:00:00Z"));
  EXPECT_TRUE(no_rt.has(kFlagYearInferred));
  Event& bad_rt = slot.parse("<13>May  1 10:00:00 fw CEF:0|V|P|1|9|n|5|rt=yesterday", {}, received);
  EXPECT_EQ(bad_rt.timestamp_ns, timeOf("2024-05-01T10:00:00Z"));
  EXPECT_TRUE(bad_rt.has(kFlagYearInferred));
  Event& ietf_no_rt =
      slot.parse("<13>1 2024-05-01T10:00:00 fw app - - - CEF:0|V|P|1|9|n|5|src=10.0.0.1");
  EXPECT_TRUE(ietf_no_rt.has(kFlagZoneAssumed));
}

// A CEF header with fewer than seven fields is no CEF record.
TEST(CefTest, IncompleteHeaderRejected) {
  ParsedEvent slot;
  Event& bare = slot.parse("CEF:0|V|P|1|9|name");
  EXPECT_EQ(bare.format, EventFormat::kRaw);
  EXPECT_TRUE(bare.has(kFlagParseError));
  EXPECT_EQ(bare.field_count, 0u);

  // The RFC 3164 parser then keeps "CEF" as the tag, as for any other message.
  Event& wrapped = slot.parse("<13>May  1 10:00:00 fw CEF:x|V|P|1|9|a name|5|");
  EXPECT_EQ(wrapped.format, EventFormat::kRfc3164);
  EXPECT_EQ(wrapped.app, "CEF");
  EXPECT_EQ(wrapped.message, "x|V|P|1|9|a name|5|");
}

// An extension that does not start with key=value is no CEF record.
TEST(CefTest, ExtensionWithoutKeyRejected) {
  ParsedEvent slot;
  Event& e = slot.parse("CEF:0|V|P|1|9|n|5|just text");
  EXPECT_EQ(e.format, EventFormat::kRaw);
}

// Forcing the CEF format rejects other lines as raw events.
TEST(CefTest, ForcedFormat) {
  ParsedEvent slot;
  ParseOptions cef;
  cef.format = Format::kCef;
  EXPECT_EQ(slot.parse("CEF:0|V|P|1|9|n|5|", cef).format, EventFormat::kCef);
  EXPECT_EQ(slot.parse("<13>May  1 10:00:00 fw sshd: hello", cef).format, EventFormat::kRaw);
  ParseOptions leef;
  leef.format = Format::kLeef;
  EXPECT_EQ(slot.parse("LEEF:1.0|V|P|1|9|", leef).format, EventFormat::kLeef);
  EXPECT_EQ(slot.parse("CEF:0|V|P|1|9|n|5|", leef).format, EventFormat::kRaw);
}

// A full arena keeps the parse and sets kFlagArenaFull instead of writing past the end.
TEST(CefTest, ArenaFullFlagged) {
  std::string line = "CEF:0|V|P|1|9|n|5|";
  for (int i = 0; i < 40; ++i) line += "key" + std::to_string(i) + "=a\\\\b ";
  Event event(line.size() + 64);
  event.raw = event.arena.copy(line);
  parseEvent(event, {});
  EXPECT_EQ(event.format, EventFormat::kCef);
  EXPECT_TRUE(event.has(kFlagArenaFull));
  EXPECT_LE(event.arena.used(), event.arena.capacity());
}

// Pairs past Event::kMaxFields go to the overflow area and are found by name.
TEST(CefTest, FieldsOverflowReachable) {
  std::string line = "CEF:0|V|P|1|9|n|5|";
  for (size_t i = 0; i < 200; ++i) {
    line += "k" + std::to_string(i) + "=v" + std::to_string(i) + " ";
  }
  ParsedEvent slot;
  Event& e = slot.parse(line);
  EXPECT_EQ(e.format, EventFormat::kCef);
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_EQ(e.field_count, Event::kMaxFields);
  EXPECT_GE(e.totalFields(), 200u);  // plus the header fields
  EXPECT_EQ(get(e, "cef.k0"), "v0");
  EXPECT_EQ(get(e, "cef.k150"), "v150");
  EXPECT_EQ(get(e, "cef.k199"), "v199");
}

// LEEF attributes past Event::kMaxFields go to the overflow area as well.
TEST(LeefTest, FieldsOverflowReachable) {
  std::string line = "LEEF:1.0|V|P|1|E|";
  for (size_t i = 0; i < 200; ++i) {
    line += "k" + std::to_string(i) + "=v" + std::to_string(i) + "\t";
  }
  ParsedEvent slot;
  Event& e = slot.parse(line);
  EXPECT_EQ(e.format, EventFormat::kLeef);
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_EQ(get(e, "leef.k150"), "v150");
  EXPECT_EQ(get(e, "leef.k199"), "v199");
}

// Invalid UTF-8 inside a CEF record is repaired before the fields are cut out.
TEST(CefTest, InvalidUtf8Repaired) {
  ParsedEvent slot;
  Event& e = slot.parse("CEF:0|V|P\xC0|1|9|n|5|msg=a\xFF");
  EXPECT_EQ(e.format, EventFormat::kCef);
  EXPECT_TRUE(e.has(kFlagInvalidUtf8));
  EXPECT_EQ(field(e, "cef.product"), "P\xEF\xBF\xBD");
  EXPECT_EQ(e.message, "a\xEF\xBF\xBD");
}

// The epoch-prefixed form some collectors forward: "<epoch ms> <host> CEF:...".
TEST(CefTest, EpochPrefix) {
  ParsedEvent slot;
  Event& e = slot.parse("1493738863000 fw.example.com CEF:0|V|P|1|9|n|5|src=10.0.0.1");
  EXPECT_EQ(e.format, EventFormat::kCef);
  EXPECT_EQ(e.host, "fw.example.com");
  EXPECT_EQ(e.timestamp_ns, int64_t{1493738863000} * 1'000'000);
}

// The tenzir CEF sample parses with its extensions.
TEST(CefTest, TenzirCynet) {
  const auto lines = readLines("cef/tenzir/cynet.log");
  ASSERT_EQ(lines.size(), 1u);
  ParsedEvent slot;
  Event& e = slot.parse(lines[0]);
  EXPECT_EQ(e.format, EventFormat::kCef);
  EXPECT_FALSE(e.has(kFlagParseError));
  EXPECT_EQ(field(e, "cef.externalId"), "6");
  EXPECT_EQ(field(e, "cef.scanGroupName"), "Manually Installed Agents");
  EXPECT_EQ(field(e, "cef.duser"), "tikasrv01\\administrator");
  EXPECT_EQ(field(e, "cef.actRem"), "Kill, Rename");
  EXPECT_EQ(e.src_ip, ip("172.31.5.93"));
  EXPECT_EQ(e.user, "tikasrv01\\administrator");
}

// Every line of every file in corpus/leef parses as LEEF without a parse error.
TEST(LeefTest, CorpusFilesParse) {
  size_t lines_seen = 0;
  ParsedEvent slot;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(sharedPath("leef"))) {
    if (!entry.is_regular_file() || entry.path().extension() != ".log") continue;
    const std::string relative =
        "leef/" + std::filesystem::relative(entry.path(), sharedPath("leef")).string();
    for (const std::string& line : readLines(relative)) {
      if (line.empty()) continue;
      ++lines_seen;
      Event& e = slot.parse(line);
      EXPECT_EQ(e.format, EventFormat::kLeef) << line;
      EXPECT_FALSE(e.has(kFlagParseError)) << line;
      EXPECT_NE(field(e, "leef.vendor"), "<missing>") << line;
    }
  }
  EXPECT_EQ(lines_seen, 10u);
}

// The x7C delimiter splits attributes at '|', and the syslog header of LEEF over RFC 5424
// stays.
TEST(LeefTest, TenzirSamplesFields) {
  ParsedEvent slot;
  const auto pan = readLines("leef/tenzir/leef2-x7C-delimiter.log");
  ASSERT_FALSE(pan.empty());
  Event& e = slot.parse(pan[0]);
  EXPECT_EQ(field(e, "leef.cat"), "$type");
  EXPECT_EQ(field(e, "leef.msg"), "$cmd");

  const auto syslog = readLines("leef/tenzir/leef-over-syslog.log");
  ASSERT_EQ(syslog.size(), 2u);
  Event& zscaler = slot.parse(syslog[1]);
  EXPECT_EQ(zscaler.host, "ZSCALER");
  EXPECT_EQ(zscaler.timestamp_ns, timeOf("2019-11-21T13:44:37Z"));
  EXPECT_EQ(field(zscaler, "leef.vendor"), "Zscaler");
  EXPECT_EQ(field(zscaler, "leef.event_id"), "ALLOW");
}

// A LEEF 2.0 delimiter field that is neither one character nor hex rejects the record.
TEST(LeefTest, InvalidDelimiterRejected) {
  ParsedEvent slot;
  EXPECT_EQ(slot.parse("LEEF:2.0|V|P|1|9|ab|src=1").format, EventFormat::kRaw);
  EXPECT_EQ(slot.parse("LEEF:2.0|V|P|1|9|0xZZ|src=1").format, EventFormat::kRaw);
  EXPECT_EQ(slot.parse("LEEF:3.0|V|P|1|9|src=1").format, EventFormat::kRaw);
  EXPECT_EQ(slot.parse("LEEF:1.0|V|P|1").format, EventFormat::kRaw);
}

// The SimpleDateFormat subset: every letter, quoted literals, zones and rejections.
TEST(DeviceTimeTest, JavaPatterns) {
  using internal::parseWithJavaPattern;
  EXPECT_EQ(parseWithJavaPattern("2024-01-02T03:04:05.006", "yyyy-MM-dd'T'HH:mm:ss.SSS", 0),
            timeOf("2024-01-02T03:04:05.006Z"));
  EXPECT_EQ(parseWithJavaPattern("jan 02 2024 03:04:05 GMT+01:00", "MMM dd yyyy HH:mm:ss z", 0),
            timeOf("2024-01-02T02:04:05Z"));
  EXPECT_EQ(parseWithJavaPattern("02/01/2024 03:04 -0130", "dd/MM/yyyy HH:mm z", 0),
            timeOf("2024-01-02T04:34:00Z"));
  EXPECT_EQ(parseWithJavaPattern("2024-01-02", "yyyy-MM-dd", 3600),
            timeOf("2024-01-01T23:00:00Z"));
  EXPECT_FALSE(parseWithJavaPattern("2024-02-30", "yyyy-MM-dd", 0));
  EXPECT_FALSE(parseWithJavaPattern("2024-01-02 x", "yyyy-MM-dd", 0));
  EXPECT_FALSE(parseWithJavaPattern("24-01-02", "yy-MM-dd", 0));
  EXPECT_FALSE(parseWithJavaPattern("2024-01-02", "yyyy-MM-dd EEE", 0));
}

// Device times without a pattern: epoch seconds and milliseconds (rejected past the
// int64_t nanosecond range), the default, RFC 3339.
TEST(DeviceTimeTest, DefaultFormats) {
  using internal::parseDeviceTime;
  EXPECT_EQ(parseDeviceTime("1388577600000", 0), timeOf("2014-01-01T12:00:00Z"));
  EXPECT_EQ(parseDeviceTime("1388577600", 0), timeOf("2014-01-01T12:00:00Z"));
  EXPECT_EQ(parseDeviceTime("Mar 30 2022 10:55:34.688", 0), timeOf("2022-03-30T10:55:34.688Z"));
  EXPECT_EQ(parseDeviceTime("2022-03-30T10:55:34Z", 0), timeOf("2022-03-30T10:55:34Z"));
  EXPECT_FALSE(parseDeviceTime("3/30/2022 10:55:34 AM", 0));
  EXPECT_FALSE(parseDeviceTime("9341738863000", 0));
  EXPECT_FALSE(parseDeviceTime("9999999999", 0));
  EXPECT_EQ(parseDeviceTime("9223372036", 0), int64_t{9223372036} * 1'000'000'000);
}

// Every prefix of the edge-case lines parses: CEF or LEEF, or a raw event with the
// receive time, and never more fields than the limit.
TEST(CefLeefTest, TruncatedLinesParse) {
  std::vector<std::string> lines = readLines("edge/br09-cef-escaped-pipe-in-header.log");
  for (const char* name : {"edge/br10-cef-extension-escapes.log",
                           "edge/br12-leef2-delimiter-variants.log"}) {
    const auto more = readLines(name);
    lines.insert(lines.end(), more.begin(), more.end());
  }
  ASSERT_EQ(lines.size(), 10u);
  const int64_t receive_ns = timeOf("2024-06-01T00:00:00Z");
  ParsedEvent slot;
  for (const std::string& line : lines) {
    for (size_t cut = 0; cut <= line.size(); ++cut) {
      const std::string prefix = line.substr(0, cut);
      Event& e = slot.parse(prefix, {}, receive_ns);
      ASSERT_LE(e.field_count, Event::kMaxFields) << prefix;
      if (e.has(kFlagParseError)) {
        ASSERT_EQ(e.format, EventFormat::kRaw) << prefix;
        ASSERT_EQ(e.timestamp_ns, receive_ns) << prefix;
      } else {
        ASSERT_TRUE(e.format == EventFormat::kCef || e.format == EventFormat::kLeef) << prefix;
      }
    }
  }
}

// Splits a CEF extension the way the parser did before it searched for '=': walk the
// bytes, skip escape pairs, and end a value at a space that a `key=` follows. The parser
// must give the same pairs on any text.
std::vector<std::pair<std::string, std::string>> referenceExtensionPairs(std::string ext) {
  auto is_key = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  };
  auto key_at = [&](size_t pos) -> size_t {
    size_t end = pos;
    while (end < ext.size() && is_key(ext[end])) ++end;
    return end > pos && end < ext.size() && ext[end] == '=' ? end - pos : 0;
  };
  auto escape_at = [&](size_t pos) {
    return ext[pos] == '\\' && pos + 1 < ext.size() &&
           std::string_view("=\\nr").find(ext[pos + 1]) != std::string_view::npos;
  };
  while (!ext.empty() && ext.front() == ' ') ext.erase(0, 1);
  while (!ext.empty() && (ext.back() == ' ' || ext.back() == '\r')) ext.pop_back();
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t pos = 0;
  while (pos < ext.size()) {
    const size_t key_len = key_at(pos);
    if (key_len == 0) break;
    size_t end = pos + key_len + 1;
    while (end < ext.size() && !(ext[end] == ' ' && key_at(end + 1) > 0)) {
      end += escape_at(end) ? 2 : 1;
    }
    end = std::min(end, ext.size());
    std::string value = ext.substr(pos + key_len + 1, end - (pos + key_len + 1));
    while (!value.empty() && value.back() == ' ') value.pop_back();
    std::string decoded;
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) {
        const char next = value[i + 1];
        char out = next;
        if (next == 'n') out = '\n';
        if (next == 'r') out = '\r';
        if (next == '=' || next == '\\' || next == 'n' || next == 'r') {
          decoded += out;
          ++i;
          continue;
        }
      }
      decoded += value[i];
    }
    pairs.emplace_back("cef." + ext.substr(pos, key_len), decoded);
    pos = end + 1;
  }
  return pairs;
}

// Random extensions over the bytes that decide where a value ends (spaces, '=', escapes,
// key and non-key characters) give the same key and value pairs as the reference split.
TEST(CefTest, ExtensionSplitMatchesReference) {
  // No well-known key or header field name can be spelled from these characters.
  constexpr std::string_view kAlphabet = "qzx.n=  \\\\:/_";
  std::mt19937 rng(20261205);
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::uniform_int_distribution<size_t> length(0, 40);
  ParsedEvent slot;
  for (int round = 0; round < 20000; ++round) {
    std::string ext = "qq=";
    for (size_t i = length(rng); i > 0; --i) ext += kAlphabet[pick(rng)];
    const auto expected = referenceExtensionPairs(ext);
    Event& event = slot.parse("CEF:0|V|P|1|2|N|5|" + ext);
    ASSERT_EQ(event.format, EventFormat::kCef) << ext;
    std::vector<std::pair<std::string, std::string>> got;
    for (size_t i = 7; i < event.field_count; ++i) {
      got.emplace_back(std::string(event.fields[i].name), std::string(event.fields[i].value));
    }
    ASSERT_EQ(got, expected) << "extension: " << ext;
  }
}

// A repeated key gives the member the first value, the same one get() returns.
TEST(CefLeefTest, RepeatedKeyFirstWins) {
  ParsedEvent slot;
  Event& cef = slot.parse("CEF:0|V|P|1|2|N|5|src=192.0.2.1 src=192.0.2.99 suser=alice suser=bob");
  EXPECT_EQ(get(cef, "source.ip"), "192.0.2.1");
  EXPECT_EQ(get(cef, "cef.src"), "192.0.2.1");
  EXPECT_EQ(get(cef, "user.name"), "alice");

  ParsedEvent leef_slot;
  Event& leef =
      leef_slot.parse("LEEF:1.0|V|P|1|E|src=192.0.2.1\tsrc=192.0.2.99\tusrName=alice\tusrName=bob");
  EXPECT_EQ(get(leef, "source.ip"), "192.0.2.1");
  EXPECT_EQ(get(leef, "leef.src"), "192.0.2.1");
  EXPECT_EQ(get(leef, "user.name"), "alice");
}

// Well-known keys after more than Event::kMaxFields other keys still fill their members.
TEST(CefLeefTest, WellKnownKeysPastFieldLimit) {
  std::string cef = "CEF:0|V|P|1|2|N|5|";
  std::string leef = "LEEF:1.0|V|P|1|E|";
  for (size_t i = 0; i < Event::kMaxFields + 4; ++i) {
    cef += "k" + std::to_string(i) + "=v ";
    leef += "k" + std::to_string(i) + "=v\t";
  }
  cef += "src=203.0.113.9 suser=alice act=blocked";
  leef += "src=203.0.113.9\tusrName=alice";

  ParsedEvent cef_slot;
  Event& c = cef_slot.parse(cef);
  EXPECT_TRUE(c.has(kFlagFieldsOverflow));
  EXPECT_EQ(get(c, "source.ip"), "203.0.113.9");
  EXPECT_EQ(get(c, "user.name"), "alice");
  EXPECT_EQ(get(c, "event.action"), "blocked");

  ParsedEvent leef_slot;
  Event& l = leef_slot.parse(leef);
  EXPECT_TRUE(l.has(kFlagFieldsOverflow));
  EXPECT_EQ(get(l, "source.ip"), "203.0.113.9");
  EXPECT_EQ(get(l, "user.name"), "alice");
}

}  // namespace
}  // namespace vigil::dataplane
