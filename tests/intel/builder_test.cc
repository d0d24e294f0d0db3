// Plain-list loading: line syntax, type detection, normalization and rejections.
#include "intel/builder.h"

#include <gtest/gtest.h>

#include <string>

#include "intel/indicator_set.h"

namespace vigil::intel {
namespace {

// Loads `text` as one list and builds the set; fails the test on any Status error.
struct Loaded {
  LoadReport report;
  std::shared_ptr<const IndicatorSet> set;
};

Loaded load(std::string_view text, BuilderOptions options = {}) {
  IndicatorSetBuilder builder(options);
  absl::StatusOr<LoadReport> report = builder.addListText("test", text, "test.txt");
  EXPECT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return {report.ok() ? *report : LoadReport{}, set.ok() ? *set : nullptr};
}

// Returns the one indicator loaded from `line`, or fails the test.
Indicator only(std::string_view line) {
  Loaded loaded = load(line);
  EXPECT_EQ(loaded.report.rejected, 0u)
      << (loaded.report.rejections.empty() ? "" : loaded.report.rejections[0].reason);
  if (loaded.set == nullptr || loaded.set->size() != 1) {
    ADD_FAILURE() << "expected one indicator from '" << line << "'";
    return {};
  }
  return loaded.set->indicator(0);
}

// Returns the reason `line` was rejected, or an empty string when it was not.
std::string rejectReason(std::string_view line, BuilderOptions options = {}) {
  Loaded loaded = load(line, options);
  if (loaded.report.rejections.empty()) return "";
  return loaded.report.rejections[0].reason;
}

// Comments, blank lines and whitespace are skipped; the rest are indicators.
TEST(BuilderTest, SkipsCommentsAndBlanks) {
  Loaded loaded = load(
      "# header comment\n"
      "\n"
      "   \t\n"
      "  bad.example  \n"
      "evil.example # trailing comment\n"
      "198.51.100.7\t# tab before the comment\r\n");
  EXPECT_EQ(loaded.report.loaded, 3u);
  EXPECT_EQ(loaded.report.rejected, 0u);
  ASSERT_EQ(loaded.set->size(), 3u);
  EXPECT_EQ(loaded.set->indicator(0).text, "bad.example");
  EXPECT_EQ(loaded.set->indicator(1).text, "evil.example");
  EXPECT_EQ(loaded.set->indicator(2).text, "198.51.100.7");
  EXPECT_EQ(loaded.set->indicator(2).origin, "test.txt:6");
}

// Hosts-file lines give the names after the address, which may be several.
TEST(BuilderTest, HostsLines) {
  Loaded loaded = load(
      "0.0.0.0 bad.example\n"
      "127.0.0.1 evil.example other.example\n"
      "0.0.0.0 203.0.113.9\n"
      "0.0.0.0 http://bad.example/x\n");
  EXPECT_EQ(loaded.report.loaded, 4u);
  ASSERT_EQ(loaded.set->size(), 4u);
  EXPECT_EQ(loaded.set->indicator(0).type, IndicatorType::kDomain);
  EXPECT_EQ(loaded.set->indicator(2).text, "other.example");
  EXPECT_EQ(loaded.set->indicator(3).type, IndicatorType::kIpv4);
  ASSERT_EQ(loaded.report.rejected, 1u);
  EXPECT_EQ(loaded.report.rejections[0].location, "test.txt:4");
  EXPECT_NE(loaded.report.rejections[0].reason.find("is a url"), std::string::npos);
}

// The IPsum count column and LOKI ";description" are dropped; other extra text is not.
TEST(BuilderTest, ExtraColumns) {
  EXPECT_EQ(only("77.90.185.20\t10").text, "77.90.185.20");
  EXPECT_EQ(only("0C2674C3A97C53082187D930EFB645C2;Sakula - http://x.example/ # y").text,
            "0c2674c3a97c53082187d930efb645c2");
  EXPECT_EQ(only("http://bad.example/a;b=1").text, "http://bad.example/a;b=1");
  EXPECT_NE(rejectReason("bad.example evil.example").find("unexpected text 'evil.example'"),
            std::string::npos);
  EXPECT_NE(rejectReason(";only a description").find("no indicator before ';'"), std::string::npos);
}

// Each type is detected and normalized.
TEST(BuilderTest, DetectsAndNormalizesTypes) {
  struct Case {
    std::string_view line;
    IndicatorType type;
    std::string_view text;
  };
  const Case cases[] = {
      {"192.0.2.1", IndicatorType::kIpv4, "192.0.2.1"},
      {"::FFFF:192.0.2.1", IndicatorType::kIpv4, "192.0.2.1"},
      {"2001:DB8:0:0::1", IndicatorType::kIpv6, "2001:db8::1"},
      {"198.51.100.77/24", IndicatorType::kCidr, "198.51.100.0/24"},
      {"::ffff:198.51.100.0/120", IndicatorType::kCidr, "198.51.100.0/24"},
      {"2001:DB8:1::/48", IndicatorType::kCidr, "2001:db8:1::/48"},
      {"WWW.Bad.Example.", IndicatorType::kDomain, "www.bad.example"},
      {"xn--80ak6aa92e.com", IndicatorType::kDomain, "xn--80ak6aa92e.com"},
      {"D41D8CD98F00B204E9800998ECF8427E", IndicatorType::kMd5, "d41d8cd98f00b204e9800998ecf8427e"},
      {"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", IndicatorType::kSha1,
       "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
      {"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", IndicatorType::kSha256,
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    Indicator indicator = only(c.line);
    EXPECT_EQ(indicator.type, c.type);
    EXPECT_EQ(indicator.text, c.text);
  }
}

// URLs get a lower-case scheme and host and lose a default port; the path keeps its case.
TEST(BuilderTest, UrlNormalization) {
  EXPECT_EQ(only("HTTP://Bad.EXAMPLE:80/Path/A.php?Q=1").text, "http://bad.example/Path/A.php?Q=1");
  EXPECT_EQ(only("https://User@Bad.Example:443").text, "https://User@bad.example");
  EXPECT_EQ(only("https://bad.example:8443/x").text, "https://bad.example:8443/x");
  EXPECT_EQ(only("http://[2001:DB8::1]:80/x").text, "http://[2001:db8::1]/x");
  EXPECT_EQ(only("ftp://198.51.100.1:21/a").text, "ftp://198.51.100.1/a");
  EXPECT_EQ(only("http://my_host.example/").text, "http://my_host.example/");
  EXPECT_NE(rejectReason("http://bad.example:99999/").find("invalid port"), std::string::npos);
  EXPECT_NE(rejectReason("http:///path").find("URL without a host"), std::string::npos);
  EXPECT_NE(rejectReason("1http://bad.example/").find("invalid URL scheme"), std::string::npos);
}

// Domain names break the LDH rules in each of these ways and are rejected with a reason.
TEST(BuilderTest, RejectsInvalidDomains) {
  std::string long_label(64, 'a');
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'b') + ".";
  long_name += "example";
  EXPECT_NE(rejectReason(long_label + ".example").find("label of 64 bytes"), std::string::npos);
  EXPECT_NE(rejectReason(long_name).find("domain name of 312 bytes"), std::string::npos);
  EXPECT_NE(rejectReason("bad_name.example").find("invalid character '_'"), std::string::npos);
  EXPECT_NE(rejectReason("b\xc3"
                         "d.example")
                .find("invalid UTF-8"),
            std::string::npos);
  EXPECT_NE(rejectReason("localhost").find("name without a dot"), std::string::npos);
  EXPECT_NE(rejectReason("word").find("name without a dot"), std::string::npos);
  EXPECT_NE(rejectReason("a..example").find("empty label"), std::string::npos);
  EXPECT_NE(rejectReason("-bad.example").find("starting or ending with '-'"), std::string::npos);
  EXPECT_NE(rejectReason("1.2.3.256").find("invalid IPv4 address"), std::string::npos);
  EXPECT_NE(rejectReason("foo.localhost").find("local host name"), std::string::npos);
  EXPECT_NE(rejectReason("0123456789abcdef01").find("hex string of 18 digits"), std::string::npos);
}

// Addresses with ports or brackets are rejected: the port would be dropped silently.
TEST(BuilderTest, RejectsAddressForms) {
  EXPECT_NE(rejectReason("192.0.2.1:80").find("address with a port"), std::string::npos);
  EXPECT_NE(rejectReason("[2001:db8::1]").find("bracketed address"), std::string::npos);
  EXPECT_NE(rejectReason("2001:db8::zz").find("invalid IPv6 address"), std::string::npos);
  EXPECT_NE(rejectReason("192.0.2.0/33").find("invalid CIDR"), std::string::npos);
}

// /0, prefixes shorter than the minimum, and IPv6 prefixes over ::ffff:0:0/96 are rejected.
TEST(BuilderTest, RejectsOverBroadCidrs) {
  EXPECT_NE(rejectReason("0.0.0.0/0").find("every IPv4 address"), std::string::npos);
  EXPECT_NE(rejectReason("::/0").find("every address"), std::string::npos);
  EXPECT_NE(rejectReason("10.0.0.0/7").find("shorter than /8"), std::string::npos);
  EXPECT_NE(rejectReason("2001::/31").find("shorter than /32"), std::string::npos);
  EXPECT_NE(rejectReason("::/80").find("IPv4-mapped"), std::string::npos);
  EXPECT_EQ(rejectReason("10.0.0.0/8"), "");
  EXPECT_EQ(rejectReason("2001::/32"), "");
  EXPECT_NE(rejectReason("10.0.0.0/7").find("or lower intel.min_ipv4_prefix_len (vigilctl: --min-ipv4-prefix)"),
            std::string::npos);

  BuilderOptions strict;
  strict.min_ipv4_prefix_len = 16;
  strict.min_ipv6_prefix_len = 48;
  EXPECT_NE(rejectReason("10.0.0.0/8", strict).find("shorter than /16"), std::string::npos);
  EXPECT_NE(rejectReason("2001:db8::/47", strict).find("shorter than /48"), std::string::npos);
  EXPECT_NE(rejectReason("0.0.0.0/0", BuilderOptions{1, 1, 10}).find("every IPv4"),
            std::string::npos);
}

// Each rejection carries file:line, a reason and the line text.
TEST(BuilderTest, RejectionLocations) {
  Loaded loaded = load("bad.example\nnot_valid\n\n10.0.0.0/4\n");
  EXPECT_EQ(loaded.report.loaded, 1u);
  ASSERT_EQ(loaded.report.rejected, 2u);
  ASSERT_EQ(loaded.report.rejections.size(), 2u);
  EXPECT_EQ(loaded.report.rejections[0].location, "test.txt:2");
  EXPECT_EQ(loaded.report.rejections[0].text, "not_valid");
  EXPECT_NE(loaded.report.rejections[0].reason.find("'not_valid'"), std::string::npos);
  EXPECT_EQ(loaded.report.rejections[1].location, "test.txt:4");
  EXPECT_EQ(loaded.report.rejections[1].text, "10.0.0.0/4");
}

// Only max_kept_rejections rejections are kept; every one is counted.
TEST(BuilderTest, KeepsFirstRejections) {
  std::string text;
  for (int i = 0; i < 1500; ++i) text += "not_an_indicator\n";
  Loaded loaded = load(text);
  EXPECT_EQ(loaded.report.rejected, 1500u);
  ASSERT_EQ(loaded.report.rejections.size(), 1000u);
  EXPECT_EQ(loaded.report.rejections.back().location, "test.txt:1000");
}

// A duplicate is stored once, names every list it came from and is counted.
TEST(BuilderTest, DuplicatesKeepListNames) {
  IndicatorSetBuilder builder;
  absl::StatusOr<LoadReport> first =
      builder.addListText("alpha", "bad.example\nBAD.example.\n", "a");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->loaded, 1u);
  EXPECT_EQ(first->duplicates, 1u);
  absl::StatusOr<LoadReport> second = builder.addListText("beta", "bad.example\n", "b");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->loaded, 0u);
  EXPECT_EQ(second->duplicates, 1u);
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ((*set)->size(), 1u);
  EXPECT_EQ((*set)->indicator(0).lists, "alpha,beta");
  EXPECT_EQ((*set)->indicator(0).origin, "a:1");
  EXPECT_EQ((*set)->stats().duplicate_lines, 2u);
}

// Bad names, options and paths fail with a message naming the value.
TEST(BuilderTest, ControlErrors) {
  IndicatorSetBuilder builder;
  absl::StatusOr<LoadReport> bad_name = builder.addListText("bad name", "x.example", "o");
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_name.status().message().find("'bad name'"), absl::string_view::npos);

  absl::StatusOr<LoadReport> missing = builder.addListFile("missing", "/nonexistent/list.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/list.txt"), absl::string_view::npos);

  IndicatorSetBuilder bad_options(BuilderOptions{0, 16, 1000});
  absl::StatusOr<LoadReport> rejected = bad_options.addListText("x", "x.example", "o");
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.status().message().find("min_ipv4_prefix_len=0"), absl::string_view::npos);

  ASSERT_TRUE(builder.build().ok());
  EXPECT_EQ(builder.build().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(builder.addListText("late", "x.example", "o").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Stats count each type, and each database exists only when it has patterns.
TEST(BuilderTest, Stats) {
  Loaded loaded = load(
      "192.0.2.1\n2001:db8::1\n10.1.0.0/16\n10.2.3.0/24\n10.4.0.0/16\n"
      "bad.example\nhttp://bad.example/x\nd41d8cd98f00b204e9800998ecf8427e\n");
  const IndicatorSetStats& stats = loaded.set->stats();
  EXPECT_EQ(stats.count(IndicatorType::kIpv4), 1u);
  EXPECT_EQ(stats.count(IndicatorType::kIpv6), 1u);
  EXPECT_EQ(stats.count(IndicatorType::kCidr), 3u);
  EXPECT_EQ(stats.count(IndicatorType::kDomain), 1u);
  EXPECT_EQ(stats.count(IndicatorType::kUrl), 1u);
  EXPECT_EQ(stats.count(IndicatorType::kMd5), 1u);
  EXPECT_EQ(stats.pattern_count, 1u);  // the URL; domains and hashes are in hash tables
  EXPECT_EQ(stats.prefix_lengths, 2u);
  EXPECT_GT(stats.hs_database_bytes, 0u);
  EXPECT_NE(loaded.set->urlEmailDatabase(), nullptr);
  EXPECT_EQ(loaded.set->regexDatabase(), nullptr);

  Loaded addresses_only = load("192.0.2.1\n");
  EXPECT_EQ(addresses_only.set->urlEmailDatabase(), nullptr);
  EXPECT_EQ(addresses_only.set->regexDatabase(), nullptr);
  EXPECT_EQ(addresses_only.set->stats().hs_database_bytes, 0u);
}

}  // namespace
}  // namespace vigil::intel
