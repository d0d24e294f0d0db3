// The `cases:` section: evidence folder and size limit, SLA targets per severity.
#include <gtest/gtest.h>

#include "mgmt/config.h"

namespace vigil::mgmt {
namespace {

constexpr int64_t kMinuteNs = 60'000'000'000;

absl::StatusOr<DaemonConfig> parse(const std::string& yaml) {
  return parseConfig(yaml, "test.yaml", "/etc/vigil");
}

// Durations parse per severity; unnamed severities keep no target.
TEST(ConfigCasesTest, ParsesSla) {
  auto c = parse(R"(
state_dir: /var/lib/vigil
cases:
  evidence_dir: files
  evidence_max_bytes: 1048576
  sla:
    critical: {acknowledge: 15m, resolve: 4h}
    high: {resolve: 1h30m}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->evidence_dir, "/etc/vigil/files");
  EXPECT_EQ(c->evidence_max_bytes, 1048576);
  const SlaTarget& critical = c->sla[static_cast<size_t>(Severity::kCritical)];
  EXPECT_EQ(critical.acknowledge_ns, 15 * kMinuteNs);
  EXPECT_EQ(critical.resolve_ns, 240 * kMinuteNs);
  EXPECT_EQ(c->sla[static_cast<size_t>(Severity::kHigh)].acknowledge_ns, 0);
  EXPECT_EQ(c->sla[static_cast<size_t>(Severity::kHigh)].resolve_ns, 90 * kMinuteNs);
  EXPECT_EQ(c->sla[static_cast<size_t>(Severity::kLow)].resolve_ns, 0);
}

// Without a cases section the evidence folder sits in the state folder.
TEST(ConfigCasesTest, Defaults) {
  auto c = parse("state_dir: /srv/vigil\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->evidence_dir, "/srv/vigil/evidence");
  EXPECT_EQ(c->evidence_max_bytes, 8 << 20);
}

// Bad durations, unknown severities and keys are errors with line and key.
TEST(ConfigCasesTest, RejectsBadValues) {
  struct Bad {
    const char* yaml;
    const char* expect;
  };
  for (const Bad& bad : {
           Bad{"cases: {sla: {critical: {acknowledge: soon}}}",
               "cases.sla.critical.acknowledge: 'soon' is not a positive duration"},
           Bad{"cases: {sla: {critical: {acknowledge: -5m}}}", "'-5m' is not a positive"},
           Bad{"cases: {sla: {urgent: {resolve: 1h}}}", "cases.sla.urgent: unknown key"},
           Bad{"cases: {sla: {low: {close: 1h}}}", "cases.sla.low.close: unknown key"},
           Bad{"cases: {evidence_max_bytes: 0}", "cases.evidence_max_bytes"},
           Bad{"cases: {evidence: x}", "cases.evidence: unknown key"},
       }) {
    auto c = parse(bad.yaml);
    ASSERT_FALSE(c.ok()) << bad.yaml;
    EXPECT_NE(c.status().message().find(bad.expect), absl::string_view::npos)
        << bad.yaml << " -> " << c.status();
    EXPECT_NE(c.status().message().find("test.yaml:1"), absl::string_view::npos) << c.status();
  }
}

}  // namespace
}  // namespace vigil::mgmt
