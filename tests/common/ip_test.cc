#include "common/ip.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace vigil {
namespace {

// Every spelling of an IPv4-mapped address comes back as the plain IPv4 address.
TEST(IpTest, MappedSpellingsNormalizeToV4) {
  auto plain = parseIp("192.0.2.10");
  ASSERT_TRUE(plain.has_value());
  for (const char* text : {"::ffff:192.0.2.10", "0:0:0:0:0:ffff:c000:020a", "::FFFF:192.0.2.10",
                           "[::ffff:192.0.2.10]:443", "192.0.2.10:514"}) {
    auto parsed = parseIp(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, *plain) << text;
    EXPECT_TRUE(parsed->isV4()) << text;
  }
}

// Text that is not an address is rejected rather than half-parsed.
TEST(IpTest, RejectsGarbage) {
  for (const char* text : {"", "1.2.3", "256.1.1.1", "example.com", "1.2.3.4.5", "[::1"}) {
    EXPECT_FALSE(parseIp(text).has_value()) << text;
  }
}

// A port is 1 to 5 digits up to 65535; any other text after the address is rejected.
TEST(IpTest, RejectsMalformedPort) {
  for (const char* text : {"192.0.2.1:", "192.0.2.1:http", "192.0.2.1:65536", "192.0.2.1:123456",
                           "10.0.0.3:0000000000000000/word.word/", "[::1]x", "[::1]:",
                           "[::1]:80x"}) {
    EXPECT_FALSE(parseIp(text).has_value()) << text;
  }
  for (const char* text : {"192.0.2.1:0", "192.0.2.1:65535", "[::1]:443", "[::1]"}) {
    EXPECT_TRUE(parseIp(text).has_value()) << text;
  }
}

// IPv4 prefixes are stored in IPv6 bit terms and lose their host bits.
TEST(IpTest, PrefixClearsHostBits) {
  auto p = parsePrefix("198.51.100.77/24");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->len, 120);
  EXPECT_EQ(formatIp(p->addr), "198.51.100.0");
  auto p6 = parsePrefix("2001:DB8:1::5/48");
  ASSERT_TRUE(p6.has_value());
  EXPECT_EQ(p6->len, 48);
  EXPECT_EQ(formatIp(p6->addr), "2001:db8:1::");
  EXPECT_FALSE(parsePrefix("192.0.2.0/33").has_value());
  EXPECT_FALSE(parsePrefix("::/129").has_value());
}

// The IPv4 parser reads the text in place instead of calling inet_pton on a copy. It must
// accept and reject exactly what inet_pton(AF_INET) does, and formatIp() must write what
// inet_ntop writes.
TEST(IpTest, V4AgreesWithInetPton) {
  std::vector<std::string> texts = {
      "0.0.0.0", "255.255.255.255", "1.2.3.4", "10.0.0.53", "01.2.3.4", "1.2.3.04", "1.2.3.00",
      "0.0.0.00", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4",
      "1.2.3.-4", "+1.2.3.4", "1.2.3.0x4", "1.2.3", "1.2.3.4.5", "1234.1.1.1", "1.2.3.4a",
      "999.999.999.999", "100.200.250.199"};
  // Random strings over the characters an address is made of, of every length up to 17.
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789..";
  for (int i = 0; i < 200000; ++i) {
    std::string text(rng() % 18, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    texts.push_back(std::move(text));
  }
  // Random valid addresses, so that accepting is exercised as much as rejecting.
  for (int i = 0; i < 20000; ++i) {
    texts.push_back(std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + "." +
                    std::to_string(rng() % 256) + "." + std::to_string(rng() % 256));
  }
  size_t accepted = 0;
  for (const std::string& text : texts) {
    in_addr expected{};
    const bool valid = inet_pton(AF_INET, text.c_str(), &expected) == 1;
    const std::optional<IpAddr> parsed = parseIp(text);
    ASSERT_EQ(parsed.has_value(), valid) << "'" << text << "'";
    if (!valid) continue;
    ++accepted;
    ASSERT_TRUE(parsed->isV4()) << text;
    EXPECT_EQ(parsed->v4(), ntohl(expected.s_addr)) << text;
    char want[INET_ADDRSTRLEN];
    ASSERT_NE(inet_ntop(AF_INET, &expected, want, sizeof(want)), nullptr);
    EXPECT_EQ(formatIp(*parsed), want) << text;
  }
  EXPECT_GT(accepted, 20000u);
}

// A buffer too small for the text and its NUL gets nothing, as with inet_ntop.
TEST(IpTest, FormatV4NeedsRoom) {
  const IpAddr addr = *parseIp("192.0.2.1");
  char buf[INET_ADDRSTRLEN];
  EXPECT_EQ(formatIp(addr, buf, 9), 0u);
  EXPECT_EQ(formatIp(addr, buf, 10), 9u);
  EXPECT_STREQ(buf, "192.0.2.1");
  const IpAddr wide = *parseIp("255.255.255.255");
  EXPECT_EQ(formatIp(wide, buf, 15), 0u);
  EXPECT_EQ(formatIp(wide, buf, 16), 15u);
}

// Bytes after a NUL are part of the text, so an address followed by a NUL and more is not
// an address (inet_pton on a C string would stop at the NUL).
TEST(IpTest, RejectsEmbeddedNul) {
  EXPECT_FALSE(parseIp(std::string("1.2.3.4\0junk", 12)).has_value());
  EXPECT_FALSE(parseIp(std::string("::1\0", 4)).has_value());
}

}  // namespace
}  // namespace vigil
