// Config keys for accounting and formats: tenant_quotas and the cef and leef formats.
#include <gtest/gtest.h>

#include "mgmt/config.h"

namespace vigil::mgmt {
namespace {

absl::StatusOr<DaemonConfig> parse(const std::string& yaml) {
  return parseConfig(yaml, "test.yaml", "/etc/vigil");
}

// Every format name maps to its parser format, and cef and leef are accepted on sources.
TEST(ConfigFormat, NamesMapToFormats) {
  EXPECT_EQ(formatFromName("auto"), dataplane::Format::kAuto);
  EXPECT_EQ(formatFromName("rfc3164"), dataplane::Format::kRfc3164);
  EXPECT_EQ(formatFromName("rfc5424"), dataplane::Format::kRfc5424);
  EXPECT_EQ(formatFromName("json"), dataplane::Format::kJson);
  EXPECT_EQ(formatFromName("cef"), dataplane::Format::kCef);
  EXPECT_EQ(formatFromName("leef"), dataplane::Format::kLeef);
  EXPECT_EQ(formatFromName("CEF"), std::nullopt);
  for (const std::string& name : formatNames()) {
    EXPECT_TRUE(formatFromName(name).has_value()) << name;
  }
  auto c = parse(
      "sources:\n"
      "  - {name: a, type: udp, listen: '127.0.0.1:5514', format: cef}\n"
      "  - {name: b, type: tcp, listen: '127.0.0.1:5515', format: leef}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sources[0].format, "cef");
  EXPECT_EQ(c->sources[1].format, "leef");
}

// An unknown format names the value and lists cef and leef among the choices.
TEST(ConfigFormat, UnknownFormatListsChoices) {
  auto c = parse("sources: [{name: a, type: udp, format: arcsight}]\n");
  ASSERT_FALSE(c.ok());
  const std::string message(c.status().message());
  EXPECT_NE(message.find("sources[0].format: 'arcsight' is not one of"), std::string::npos)
      << message;
  EXPECT_NE(message.find("cef"), std::string::npos) << message;
  EXPECT_NE(message.find("leef"), std::string::npos) << message;
}

// Quotas keep their rate and burst, and a missing burst becomes one second's worth.
TEST(ConfigQuota, ParsesQuotas) {
  auto c = parse(
      "tenant_quotas:\n"
      "  - {tenant: acme, max_events_per_second: 5000, burst: 20000}\n"
      "  - {tenant: globex, max_events_per_second: 250}\n"
      "  - {tenant: lab, max_events_per_second: 0.5}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->tenant_quotas.size(), 3u);
  EXPECT_EQ(c->tenant_quotas[0].tenant, "acme");
  EXPECT_EQ(c->tenant_quotas[0].max_events_per_second, 5000);
  EXPECT_EQ(c->tenant_quotas[0].burst, 20000);
  EXPECT_EQ(c->tenant_quotas[1].burst, 250);
  EXPECT_EQ(c->tenant_quotas[2].max_events_per_second, 0.5);
  EXPECT_EQ(c->tenant_quotas[2].burst, 1);
}

// Each quota mistake is rejected with the key, the value and what to write instead.
TEST(ConfigQuota, Errors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tenant_quotas: {acme: 5}\n", "tenant_quotas: must be a list"},
      {"tenant_quotas: [{max_events_per_second: 5}]\n", "tenant_quotas[0].tenant: missing"},
      {"tenant_quotas: [{tenant: a}]\n", "tenant_quotas[0].max_events_per_second: missing"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: 0}]\n",
       "max_events_per_second: '0' is not a number in [0.001, 1e+08]"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: fast}]\n", "'fast' is not a number"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: 5, burst: 0.5}]\n",
       "tenant_quotas[0].burst: '0.5' is not a number in [1, 1e+08]"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: 5, rate: 2}]\n",
       "tenant_quotas[0].rate: unknown key"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: 5}, "
       "{tenant: a, max_events_per_second: 6}]\n",
       "tenant_quotas[1].tenant: 'a' already has a quota"},
      // NaN compares false with both bounds; it must still be rejected.
      {"tenant_quotas: [{tenant: a, max_events_per_second: .nan}]\n",
       "max_events_per_second: '.nan' is not a number in [0.001, 1e+08]"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: 10, burst: .nan}]\n",
       "tenant_quotas[0].burst: '.nan' is not a number in [1, 1e+08]"},
      {"tenant_quotas: [{tenant: a, max_events_per_second: .inf}]\n",
       "max_events_per_second: '.inf' is not a number"},
  };
  for (const auto& [yaml, expected] : cases) {
    auto c = parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    const std::string message(c.status().message());
    EXPECT_NE(message.find(expected), std::string::npos) << yaml << " gave: " << message;
  }
}

}  // namespace
}  // namespace vigil::mgmt
