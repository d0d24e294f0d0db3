// The run side: address and prefix lookups, Hyperscan hits with boundary checks, one
// hit per distinct indicator, field names in hits, and the edge cases br13 and br15.
#include "intel/matcher.h"

#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dataplane/parser.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/json_event.h"

namespace vigil::intel {
namespace {

constexpr size_t kArenaBytes = 8192;
const std::string kEdgeDir = std::string(VIGIL_SHARED_DIR) + "/corpus/edge/";

std::shared_ptr<const IndicatorSet> buildSet(std::string_view text) {
  IndicatorSetBuilder builder;
  absl::StatusOr<LoadReport> report = builder.addListText("test", text, "test.txt");
  EXPECT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rejected, 0u) << report->rejections[0].reason;
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

std::shared_ptr<const IndicatorSet> buildSetFromFile(const std::string& path) {
  IndicatorSetBuilder builder;
  absl::StatusOr<LoadReport> report = builder.addListFile("edge", path);
  EXPECT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Sets the message of `event` (copied into the arena).
void setMessage(Event& event, std::string_view text) {
  event.reset();
  event.raw = event.arena.copy(text);
  event.message = event.raw;
}

std::vector<std::string> hitTexts(const Event& event) {
  std::vector<std::string> out;
  for (size_t i = 0; i < event.hit_count; ++i) out.emplace_back(event.hits[i].indicator);
  return out;
}

class MatcherTest : public ::testing::Test {
 protected:
  // Matches a message-only event against `set` and returns the hit texts.
  std::vector<std::string> matchMessage(const IndicatorSet& set, std::string_view message) {
    Scratch scratch(set);
    setMessage(event_, message);
    size_t added = matchEvent(set, scratch, event_);
    EXPECT_EQ(added, event_.hit_count);
    return hitTexts(event_);
  }

  Event event_{kArenaBytes};
};

using Hits = std::vector<std::string>;

// br13: domain IOCs hit the domain and its subdomains at label boundaries only.
TEST_F(MatcherTest, Br13DomainBoundaries) {
  auto set = buildSetFromFile(kEdgeDir + "br13-domain-ioc-boundaries.intel");
  Scratch scratch(*set);
  const std::set<int> must_match = {1, 3, 5, 6, 8};
  std::vector<std::string> lines = readLines(kEdgeDir + "br13-domain-ioc-boundaries.events.jsonl");
  ASSERT_EQ(lines.size(), 8u);
  for (size_t i = 0; i < lines.size(); ++i) {
    int id = static_cast<int>(i) + 1;
    SCOPED_TRACE(lines[i]);
    ASSERT_TRUE(testing::JsonFlattener::fill(lines[i], event_));
    size_t added = matchEvent(*set, scratch, event_);
    if (must_match.count(id) == 0) {
      EXPECT_EQ(added, 0u);
      continue;
    }
    ASSERT_EQ(added, 1u);
    const IndicatorHit& hit = event_.hits[0];
    EXPECT_EQ(hit.type, IndicatorType::kDomain);
    EXPECT_EQ(hit.list, "edge");
    std::string_view expected_indicator = id == 5 || id == 6 ? "evil.example.com" : "bad.example";
    std::string_view expected_field = "url";
    if (id <= 4) {
      expected_field = "dns.rrname";
    } else if (id <= 7) {
      expected_field = "http.hostname";
    }
    EXPECT_EQ(hit.indicator, expected_indicator);
    EXPECT_EQ(hit.field, expected_field);
  }
}

// br15: IPv4-mapped IPv6 source addresses in any spelling hit IPv4 indicators and CIDRs.
TEST_F(MatcherTest, Br15MappedAddresses) {
  auto set = buildSetFromFile(kEdgeDir + "br15-ipv4-mapped-ipv6.intel");
  Scratch scratch(*set);
  const std::map<int, std::string> expected = {{1, "192.0.2.10"},      {2, "192.0.2.10"},
                                               {3, "198.51.100.0/24"}, {4, "198.51.100.0/24"},
                                               {6, "2001:db8:1::/48"}, {7, "2001:db8:1::/48"}};
  std::vector<std::string> lines = readLines(kEdgeDir + "br15-ipv4-mapped-ipv6.events.jsonl");
  ASSERT_EQ(lines.size(), 8u);
  for (size_t i = 0; i < lines.size(); ++i) {
    int id = static_cast<int>(i) + 1;
    SCOPED_TRACE(lines[i]);
    ASSERT_TRUE(testing::JsonFlattener::fill(lines[i], event_));
    std::array<char, 64> scratch_text;
    std::optional<std::string_view> src = event_.get("src_ip", scratch_text);
    ASSERT_TRUE(src.has_value());
    event_.src_ip = parseIp(*src);
    ASSERT_TRUE(event_.src_ip.has_value());
    size_t added = matchEvent(*set, scratch, event_);
    auto want = expected.find(id);
    if (want == expected.end()) {
      EXPECT_EQ(added, 0u);
      continue;
    }
    // The generic "src_ip" field contains the same address; it must not add a second hit.
    ASSERT_EQ(added, 1u);
    EXPECT_EQ(event_.hits[0].indicator, want->second);
    EXPECT_EQ(event_.hits[0].field, "source.ip");
  }
}

// br13 and br15 give the same results when the events come from the dataplane parser.
TEST_F(MatcherTest, EdgeCasesThroughParser) {
  struct Case {
    std::string intel;
    std::string events;
    std::set<int> must_match;
  };
  const Case cases[] = {
      {"br13-domain-ioc-boundaries.intel",
       "br13-domain-ioc-boundaries.events.jsonl",
       {1, 3, 5, 6, 8}},
      {"br15-ipv4-mapped-ipv6.intel", "br15-ipv4-mapped-ipv6.events.jsonl", {1, 2, 3, 4, 6, 7}},
  };
  for (const Case& c : cases) {
    auto set = buildSetFromFile(kEdgeDir + c.intel);
    Scratch scratch(*set);
    std::vector<std::string> lines = readLines(kEdgeDir + c.events);
    for (size_t i = 0; i < lines.size(); ++i) {
      SCOPED_TRACE(lines[i]);
      event_.reset();
      event_.raw = event_.arena.copy(lines[i]);
      dataplane::parseEvent(event_, dataplane::ParseOptions{});
      size_t added = matchEvent(*set, scratch, event_);
      EXPECT_EQ(added, c.must_match.count(static_cast<int>(i) + 1));
    }
  }
}

// An address inside several CIDRs hits only the longest prefix; an exact address wins.
TEST_F(MatcherTest, LongestPrefixWins) {
  auto set = buildSet(
      "10.0.0.0/8\n10.1.0.0/16\n10.1.2.0/24\n10.1.2.3\n2001:db8::/32\n"
      "2001:db8:5::/48\n");
  auto lookup = [&](std::string_view text) -> std::string {
    std::optional<uint32_t> id = set->lookupAddress(*parseIp(text));
    return id ? set->indicator(*id).text : "";
  };
  EXPECT_EQ(lookup("10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(lookup("10.1.2.4"), "10.1.2.0/24");
  EXPECT_EQ(lookup("10.1.3.4"), "10.1.0.0/16");
  EXPECT_EQ(lookup("10.200.3.4"), "10.0.0.0/8");
  EXPECT_EQ(lookup("11.0.0.1"), "");
  EXPECT_EQ(lookup("2001:db8:5::1"), "2001:db8:5::/48");
  EXPECT_EQ(lookup("2001:db8:6::1"), "2001:db8::/32");
  EXPECT_EQ(lookup("::ffff:10.1.2.9"), "10.1.2.0/24");
  EXPECT_EQ(lookup("::10.1.2.9"), "");  // IPv4-compatible, not mapped: a different address
}

// Source, destination and address-valued generic fields are checked, each named in its hit.
TEST_F(MatcherTest, AddressFields) {
  auto set = buildSet("192.0.2.1\n198.51.100.0/24\n2001:db8::7\n");
  Scratch scratch(*set);
  event_.reset();
  event_.src_ip = parseIp("::ffff:192.0.2.1");
  event_.dst_ip = parseIp("198.51.100.200");
  ASSERT_TRUE(event_.addField("id.resp_h", "[2001:DB8::7]:443"));
  ASSERT_TRUE(event_.addField("id.orig_h", "192.0.2.1"));  // same indicator as source.ip
  ASSERT_EQ(matchEvent(*set, scratch, event_), 3u);
  EXPECT_EQ(event_.hits[0].field, "source.ip");
  EXPECT_EQ(event_.hits[0].type, IndicatorType::kIpv4);
  EXPECT_EQ(event_.hits[1].field, "destination.ip");
  EXPECT_EQ(event_.hits[1].indicator, "198.51.100.0/24");
  EXPECT_EQ(event_.hits[2].field, "id.resp_h");
  EXPECT_EQ(event_.hits[2].indicator, "2001:db8::7");
}

// A hash hits only between non-hex neighbours, so an MD5 inside a SHA-256 is no hit.
TEST_F(MatcherTest, HashBoundary) {
  const std::string md5 = "d41d8cd98f00b204e9800998ecf8427e";
  auto set = buildSet(md5 + "\n");
  EXPECT_EQ(matchMessage(*set, "md5=" + md5 + " size=0"), Hits{md5});
  EXPECT_EQ(matchMessage(*set, "MD5:" + std::string("D41D8CD98F00B204E9800998ECF8427E")),
            Hits{md5});
  EXPECT_EQ(matchMessage(*set, md5), Hits{md5});
  EXPECT_EQ(matchMessage(*set, "sha256=" + md5 + "0123456789abcdef0123456789abcdef"), Hits{});
  EXPECT_EQ(matchMessage(*set, "x=a" + md5), Hits{});
  EXPECT_EQ(matchMessage(*set, "x=" + md5 + "F"), Hits{});
  EXPECT_EQ(matchMessage(*set, "x=g" + md5 + "g"), Hits{md5});
}

// A literal with a long run of one byte, next to another pattern, still hits. Hyperscan
// 5.4.0 misses it (and hs_scan() fails) when the database is compiled in literal mode.
TEST_F(MatcherTest, RepetitiveHashNextToOtherPattern) {
  const std::string hash = "1100010000010110000000000000100000000000000000000000000000000000";
  auto set = buildSet(hash + "\nhttps://ab.x-y.example\n");
  Scratch scratch(*set);
  setMessage(event_, "sha256=" + hash + " url=https://ab.x-y.example");
  EXPECT_EQ(matchEvent(*set, scratch, event_), 2u);
  EXPECT_EQ(hitTexts(event_), (Hits{hash, "https://ab.x-y.example"}));
  EXPECT_EQ(scratch.scanErrors(), 0u);
}

// A normalized URL indicator hits in text regardless of case.
TEST_F(MatcherTest, UrlMatchesCaseless) {
  auto set = buildSet("HTTP://Bad.Example:80/Drop/Payload.exe\n");
  const Hits want = {"http://bad.example/Drop/Payload.exe"};
  EXPECT_EQ(matchMessage(*set, "GET http://bad.example/Drop/Payload.exe 200"), want);
  EXPECT_EQ(matchMessage(*set, "url=HTTP://BAD.EXAMPLE/drop/payload.exe?x=1"), want);
  EXPECT_EQ(matchMessage(*set, "url=http://bad.example:80/Drop/Payload.exe"), Hits{});
}

// Domain boundaries: subdomains and a root dot hit; longer labels and parent names do not.
TEST_F(MatcherTest, DomainBoundary) {
  auto set = buildSet("bad.example\n");
  const Hits hit = {"bad.example"};
  EXPECT_EQ(matchMessage(*set, "query www.BAD.example. A"), hit);
  EXPECT_EQ(matchMessage(*set, "bad.example"), hit);
  EXPECT_EQ(matchMessage(*set, "x@bad.example:25"), hit);
  EXPECT_EQ(matchMessage(*set, "bad.example.."), hit);
  EXPECT_EQ(matchMessage(*set, "notbad.example"), Hits{});
  EXPECT_EQ(matchMessage(*set, "bad.example.org"), Hits{});
  EXPECT_EQ(matchMessage(*set, "bad.example-cdn.org"), Hits{});
  EXPECT_EQ(matchMessage(*set, "bad.examples"), Hits{});
  // The first occurrence fails the boundary check, the second passes.
  EXPECT_EQ(matchMessage(*set, "notbad.example then bad.example"), hit);
}

// A run that ends in an all-digit label is skipped as an address only when it has no
// "..", which ends a name before it.
TEST_F(MatcherTest, AddressRunWithDoubleDot) {
  auto set = buildSet("bad.example\n");
  const Hits hit = {"bad.example"};
  EXPECT_EQ(matchMessage(*set, "to bad.example..10.0.0.53"), hit);
  EXPECT_EQ(matchMessage(*set, "to www.bad.example..53"), hit);
  EXPECT_EQ(matchMessage(*set, "to bad.example.10.0.0.53"), Hits{});
  EXPECT_EQ(matchMessage(*set, "to 10.0.0.53"), Hits{});
}

// Internationalized names in events match the punycode form the builder stores, at the
// same label boundaries as ASCII names. Letters past ASCII join a name; punctuation,
// spaces, symbols and invalid UTF-8 end it.
TEST_F(MatcherTest, InternationalizedNames) {
  const std::string buecher = "b\u00fccher.example";  // bücher.example
  const std::string rei = "\u4f8b\u3048.example";     // 例え.example
  const std::string e_acute = "\u00e9";
  const std::string md5 = "d41d8cd98f00b204e9800998ecf8427e";
  auto set = buildSet(buecher + "\nevil.example\n" + rei + "\n" + md5 + "\n");

  const Hits buecher_hit = {"xn--bcher-kva.example"};
  const Hits evil_hit = {"evil.example"};
  EXPECT_EQ(matchMessage(*set, "query www." + buecher + " A"), buecher_hit);
  EXPECT_EQ(matchMessage(*set, "query WWW.B\u00fccher.EXAMPLE. A"), buecher_hit);
  EXPECT_EQ(matchMessage(*set, "query www.xn--bcher-kva.example A"), buecher_hit);
  EXPECT_EQ(matchMessage(*set, buecher), buecher_hit);

  // « and » (U+00AB, U+00BB), curly quotes (U+201C, U+201D) and the ideographic full
  // stop (U+3002) end a name.
  EXPECT_EQ(matchMessage(*set, "\u00ab" + buecher + "\u00bb"), buecher_hit);
  EXPECT_EQ(matchMessage(*set, "\u201cevil.example\u201d"), evil_hit);
  EXPECT_EQ(matchMessage(*set, "sub." + rei + "\u3002"), Hits{"xn--r8jz45g.example"});

  // An invalid byte ends a name too.
  EXPECT_EQ(matchMessage(*set,
                         "\xff"
                         "evil.example\xfe"),
            evil_hit);

  // Label boundaries hold: a letter past ASCII is part of its label.
  EXPECT_EQ(matchMessage(*set, e_acute + "evil.example"), Hits{});
  EXPECT_EQ(matchMessage(*set, "not" + buecher), Hits{});
  EXPECT_EQ(matchMessage(*set, buecher + ".org"), Hits{});
  EXPECT_EQ(matchMessage(*set, buecher + "..10.0.0.53"), buecher_hit);

  // A long run keeps its end, as an ASCII one does.
  std::string long_run;
  for (int i = 0; i < 80; ++i) long_run += e_acute + "t" + e_acute + ".";
  EXPECT_EQ(matchMessage(*set, long_run + buecher), buecher_hit);

  // Hashes next to letters past ASCII are still hashes.
  EXPECT_EQ(matchMessage(*set, e_acute + md5 + e_acute), Hits{md5});

  // Two names in one run of letters, each found once.
  EXPECT_EQ(matchMessage(*set, buecher + "..evil.example"),
            (Hits{"evil.example", "xn--bcher-kva.example"}));
}

// A hit in an internationalized field value is reported under that field.
TEST_F(MatcherTest, InternationalizedNameInField) {
  auto set = buildSet("b\u00fccher.example\n");
  Scratch scratch(*set);
  const std::string line = "{\"dns\":{\"rrname\":\"cdn.B\u00fccher.example\"},\"msg\":\"x\"}";
  ASSERT_TRUE(testing::JsonFlattener::fill(line, event_));
  ASSERT_EQ(matchEvent(*set, scratch, event_), 1u);
  EXPECT_EQ(event_.hits[0].indicator, "xn--bcher-kva.example");
  EXPECT_EQ(event_.hits[0].field, "dns.rrname");
}

// br13: in a URL field only the host counts for a domain indicator, not the path, the
// query or the userinfo. Free text and other fields keep every host name.
TEST_F(MatcherTest, DomainInUrlFieldCountsOnlyInHost) {
  auto set = buildSet("bad.example\n");
  Scratch scratch(*set);
  struct Case {
    const char* json;
    const char* field;  // nullptr: no hit
  };
  const Case cases[] = {
      {R"({"url":"https://user@good.example/path?x=bad.example"})", nullptr},
      {R"({"url":"https://good.example/bad.example"})", nullptr},
      {R"({"url":"https://bad.example@good.example/"})", nullptr},
      {R"({"url":"https://good.example/#bad.example"})", nullptr},
      {R"({"http":{"url":"/index.php?q=bad.example"}})", nullptr},
      {R"({"url":{"original":"https://good.example/?r=bad.example"}})", nullptr},
      {R"({"url":"https://bad.example/?q=notbad.example"})", "url"},
      {R"({"url":"https://x@WWW.BAD.example:8443/p"})", "url"},
      {R"({"url":"bad.example/x"})", "url"},
      {R"({"http":{"hostname":"good.example","url":"https://good.example/?r=bad.example"},)"
       R"("dns":{"rrname":"bad.example"}})",
       "dns.rrname"},
      {R"({"note":"see https://good.example/?r=bad.example"})", "note"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    ASSERT_TRUE(testing::JsonFlattener::fill(c.json, event_));
    const size_t added = matchEvent(*set, scratch, event_);
    if (c.field == nullptr) {
      EXPECT_EQ(added, 0u);
      continue;
    }
    ASSERT_EQ(added, 1u);
    EXPECT_EQ(event_.hits[0].field, c.field);
  }
  // In a syslog message, which is free text, every host name counts.
  EXPECT_EQ(matchMessage(*set, "GET https://good.example/?r=bad.example 200"), Hits{"bad.example"});
}

// An indicator found several times and in several fields is reported once.
TEST_F(MatcherTest, OneHitPerIndicator) {
  auto set = buildSet("bad.example\n");
  Scratch scratch(*set);
  setMessage(event_, "bad.example bad.example www.bad.example");
  // A decoded copy outside the message is scanned separately and must not add a hit.
  std::string_view copy = event_.arena.copy("host=bad.example");
  ASSERT_TRUE(event_.addField("decoded", copy));
  EXPECT_EQ(matchEvent(*set, scratch, event_), 1u);
  EXPECT_EQ(event_.hits[0].field, "message");
  // Matching the next event starts with a clean slate.
  setMessage(event_, "other.example");
  ASSERT_TRUE(event_.addField("decoded", event_.arena.copy("bad.example")));
  EXPECT_EQ(matchEvent(*set, scratch, event_), 1u);
  EXPECT_EQ(event_.hits[0].field, "decoded");
}

// More distinct hits than Event::kMaxHits fill the event, set the overflow flag and stop.
TEST_F(MatcherTest, HitsOverflow) {
  std::string list;
  std::string message;
  for (int i = 0; i < 20; ++i) {
    list += "host" + std::to_string(i) + ".example\n";
    message += "host" + std::to_string(i) + ".example ";
  }
  auto set = buildSet(list);
  Scratch scratch(*set);
  setMessage(event_, message);
  EXPECT_EQ(matchEvent(*set, scratch, event_), Event::kMaxHits);
  EXPECT_EQ(event_.hit_count, Event::kMaxHits);
  EXPECT_TRUE(event_.has(kFlagHitsOverflow));
}

// The matcher queues up to 64 lookups and 4096 bytes of keys before it probes them. A
// message with far more host names and hashes than that still gives every hit, in the
// order of the text, and the first 16 when the event fills up.
TEST_F(MatcherTest, LongMessageKeepsHitOrder) {
  const std::string md5 = "d41d8cd98f00b204e9800998ecf8427e";
  auto set = buildSet("first.example\nmid.example\nlast.example\n" + md5 + "\n");
  std::string message = "FIRST.example ";
  for (int i = 0; i < 150; ++i) message += "a" + std::to_string(i) + ".filler-name.example ";
  message += "x=" + md5 + " ";
  for (int i = 0; i < 150; ++i) message += "b" + std::to_string(i) + ".filler-name.example ";
  message += "www.mid.example ";
  for (int i = 0; i < 150; ++i) message += "c" + std::to_string(i) + ".filler-name.example ";
  message += "last.example";
  ASSERT_GT(message.size(), 4096u * 2);
  Event event(64 * 1024);
  Scratch scratch(*set);
  event.raw = event.arena.copy(message);
  event.message = event.raw;
  ASSERT_EQ(event.message.size(), message.size());
  EXPECT_EQ(matchEvent(*set, scratch, event), 4u);
  EXPECT_EQ(hitTexts(event), (Hits{"first.example", md5, "mid.example", "last.example"}));

  std::string list;
  std::string many;
  for (int i = 0; i < 100; ++i) {
    list += "h" + std::to_string(i) + ".example\n";
    many += "h" + std::to_string(i) + ".example filler" + std::to_string(i) + ".example ";
  }
  auto big = buildSet(list);
  Scratch big_scratch(*big);
  event.reset();
  event.raw = event.arena.copy(many);
  event.message = event.raw;
  EXPECT_EQ(matchEvent(*big, big_scratch, event), Event::kMaxHits);
  EXPECT_TRUE(event.has(kFlagHitsOverflow));
  for (size_t i = 0; i < Event::kMaxHits; ++i) {
    EXPECT_EQ(event.hits[i].indicator, "h" + std::to_string(i) + ".example");
  }
}

// A set without patterns or without indicators matches nothing and needs no database.
TEST_F(MatcherTest, EmptySets) {
  auto empty = buildSet("");
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(matchMessage(*empty, "bad.example 192.0.2.1"), Hits{});
  auto addresses = buildSet("192.0.2.1\n");
  EXPECT_EQ(matchMessage(*addresses, "bad.example 192.0.2.1"), Hits{});
}

// Hits name every list that contains the indicator.
TEST_F(MatcherTest, HitNamesLists) {
  IndicatorSetBuilder builder;
  ASSERT_TRUE(builder.addListText("urlhaus", "bad.example\n", "a").ok());
  ASSERT_TRUE(builder.addListText("local", "0.0.0.0 bad.example\n", "b").ok());
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  ASSERT_TRUE(set.ok());
  Scratch scratch(**set);
  setMessage(event_, "resolved bad.example");
  ASSERT_EQ(matchEvent(**set, scratch, event_), 1u);
  EXPECT_EQ(event_.hits[0].list, "urlhaus,local");
}

}  // namespace
}  // namespace vigil::intel
