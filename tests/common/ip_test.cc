#include "common/ip.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace vigil
