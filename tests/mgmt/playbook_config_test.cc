// The `playbooks:` configuration section: defaults, connectors, secrets from the
// environment and files, and errors that name the file, line and key.
#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/config.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<DaemonConfig> parse(const std::string& yaml, const std::string& base = "/etc/vigil") {
  return parseConfig("state_dir: /var/lib/vigil\n" + yaml, "vigil.yaml", base);
}

std::string errorOf(const std::string& yaml) {
  auto config = parse(yaml);
  EXPECT_FALSE(config.ok()) << yaml;
  return config.ok() ? "" : std::string(config.status().message());
}

// Without the section the runner is off; with it, paths resolve and defaults apply.
TEST(PlaybookConfigTest, DefaultsAndPaths) {
  auto off = parse("");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->playbooks.enabled);

  auto on = parse("playbooks:\n  paths: [playbooks]\n");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->playbooks.enabled);
  ASSERT_EQ(on->playbooks.paths.size(), 1u);
  EXPECT_EQ(on->playbooks.paths[0], "/etc/vigil/playbooks");
  EXPECT_EQ(on->playbooks.paths_key.text, "vigil.yaml:3: playbooks.paths");
  EXPECT_EQ(on->playbooks.db, "/var/lib/vigil/runs.db");
  EXPECT_EQ(on->playbooks.workers, 1u);
  EXPECT_EQ(on->playbooks.worker_spin_us, 50u);
  EXPECT_EQ(on->playbooks.queue_capacity, 1024u);

  auto no_spin = parse("playbooks:\n  paths: [playbooks]\n  worker_spin_us: 0\n");
  ASSERT_TRUE(no_spin.ok()) << no_spin.status();
  EXPECT_EQ(no_spin->playbooks.worker_spin_us, 0u);
}

// Every connector type parses with its keys, and routes keep their order.
TEST(PlaybookConfigTest, ConnectorsAndRoutes) {
  auto config = parse(R"(playbooks:
  paths: [p.yml]
  workers: 2
  connectors:
    hook: {type: webhook, url: 'http://127.0.0.1:9/x', timeout_ms: 100, headers: {X-Token: abc}}
    chat: {type: notify, url: 'https://chat.example/h', channel: '#soc'}
    siem: {type: syslog, address: '127.0.0.1:514', transport: tcp, format: cef}
    fw: {type: blocklist, path: block.nft, default_duration_s: 60, apply_command: [nft, -f, x]}
    cases: {type: case}
    intel: {type: intel}
  actions:
    firewall.*: fw
    '*': hook
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const PlaybookRunnerConfig& p = config->playbooks;
  ASSERT_EQ(p.connectors.size(), 6u);
  EXPECT_EQ(p.connectors[0].headers.at(0).second, "abc");
  EXPECT_EQ(p.connectors[1].channel, "#soc");
  EXPECT_EQ(p.connectors[2].transport, "tcp");
  EXPECT_EQ(p.connectors[3].path, "/etc/vigil/block.nft");
  EXPECT_EQ(p.connectors[3].apply_command.size(), 3u);
  ASSERT_EQ(p.actions.size(), 2u);
  EXPECT_EQ(p.actions[0].pattern, "firewall.*");
  EXPECT_EQ(p.actions[1].connector, "hook");
}

// Header secrets come from the environment or a file, never only from the config text.
TEST(PlaybookConfigTest, SecretsFromEnvAndFile) {
  testing::TempDir dir;
  std::ofstream(dir.file("token")) << "s3cret\n";
  setenv("VIGIL_TEST_TOKEN", "from-env", 1);
  auto config = parse(R"(playbooks:
  paths: [p.yml]
  connectors:
    a: {type: webhook, url: 'http://127.0.0.1:9/', headers: {A: {env: VIGIL_TEST_TOKEN}}}
    b: {type: webhook, url: 'http://127.0.0.1:9/', headers: {B: {file: token}}}
)",
                      std::filesystem::path(dir.file("token")).parent_path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->playbooks.connectors[0].headers[0].second, "from-env");
  EXPECT_EQ(config->playbooks.connectors[1].headers[0].second, "s3cret");
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    a: {type: webhook, url: "
                      "'http://x/', headers: {A: {env: VIGIL_NOT_SET_ANYWHERE}}}\n"),
              HasSubstr("environment variable VIGIL_NOT_SET_ANYWHERE is not set"));
}

// TLS syslog keys resolve against the config folder, and the webhook idempotency header and
// response limit are kept. TLS keys without transport: tls and a certificate without its
// key are errors.
TEST(PlaybookConfigTest, TlsSyslogAndIdempotencyHeader) {
  auto config = parse(R"(playbooks:
  paths: [p.yml]
  connectors:
    siem: {type: syslog, address: '127.0.0.1:6514', transport: tls, tls_ca_file: ca.pem,
           tls_cert_file: c.pem, tls_key_file: c.key, tls_server_name: siem.test}
    hook: {type: webhook, url: 'http://127.0.0.1:9/x', idempotency_header: X-Request-Key,
           max_response_bytes: 4096}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const ConnectorConfig& siem = config->playbooks.connectors[0];
  EXPECT_EQ(siem.transport, "tls");
  EXPECT_EQ(siem.tls_ca_file, "/etc/vigil/ca.pem");
  EXPECT_EQ(siem.tls_cert_file, "/etc/vigil/c.pem");
  EXPECT_EQ(siem.tls_key_file, "/etc/vigil/c.key");
  EXPECT_EQ(siem.tls_server_name, "siem.test");
  EXPECT_EQ(config->playbooks.connectors[1].idempotency_header, "X-Request-Key");
  EXPECT_EQ(config->playbooks.connectors[1].max_response_bytes, 4096);
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    h: {type: webhook, url: "
                      "'http://127.0.0.1:9/x', max_response_bytes: 0}\n"),
              HasSubstr("playbooks.connectors.h.max_response_bytes: '0' is not a number in [1, "
                        "1073741824]"));

  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    s: {type: syslog, address: "
                      "'127.0.0.1:514', tls_ca_file: ca.pem}\n"),
              HasSubstr("playbooks.connectors.s.tls_ca_file: applies only with transport: tls"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    s: {type: syslog, address: "
                      "'127.0.0.1:514', transport: tls, tls_cert_file: c.pem}\n"),
              HasSubstr("give tls_cert_file and tls_key_file together"));
}

// Bad values name the file, the line and the key.
TEST(PlaybookConfigTest, ErrorsNameLineAndKey) {
  EXPECT_THAT(errorOf("playbooks:\n  workers: 2\n"),
              HasSubstr("vigil.yaml:3: playbooks.paths: missing or empty"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    fw: {type: nft}\n"),
              HasSubstr("vigil.yaml:5: playbooks.connectors.fw.type: 'nft' is not one of"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    fw: {type: blocklist}\n"),
              HasSubstr("playbooks.connectors.fw.path: missing"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    s: {type: syslog, address: "
                      "'127.0.0.1:514', url: 'http://x/'}\n"),
              HasSubstr("playbooks.connectors.s.url: unknown key"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  actions:\n    firewall.*: fw\n"),
              HasSubstr("vigil.yaml:5: playbooks.actions.firewall.*: 'fw' is not a connector"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors: {c: {type: case}}\n  actions:\n"
                      "    'Bad Name': c\n"),
              HasSubstr("not an action pattern"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  workers: 99\n"),
              HasSubstr("playbooks.workers: '99' is not a number in [1, 16]"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  worker_spin_us: 20000\n"),
              HasSubstr("playbooks.worker_spin_us: '20000' is not a number in [0, 10000]"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  worker_spin_us: -1\n"),
              HasSubstr("playbooks.worker_spin_us: '-1' is not a number in [0, 10000]"));
  EXPECT_THAT(errorOf("playbooks:\n  paths: [p]\n  connectors:\n    h: {type: webhook, url: "
                      "'ftp://x/'}\n"),
              HasSubstr("must be an http:// or https:// URL"));
  // A password in the URL is not repeated in the error.
  const std::string with_password = errorOf(
      "playbooks:\n  paths: [p]\n  connectors:\n    h: {type: webhook, url: "
      "'ftp://admin:Hunter2@x/'}\n");
  EXPECT_THAT(with_password, HasSubstr("'ftp://admin:***@x/' must be an http:// or https://"));
  EXPECT_THAT(with_password, Not(HasSubstr("Hunter2")));
  EXPECT_THAT(errorOf("playbooks:\n  default_case: maybe\n"),
              HasSubstr("vigil.yaml:3: playbooks.default_case: 'maybe' is not true or false"));
}

// default_case takes the boolean spellings that every other boolean key takes.
TEST(PlaybookConfigTest, DefaultCaseTakesYamlBooleans) {
  for (const char* off : {"false", "no", "off", "False"}) {
    auto c = parse(std::string("playbooks:\n  default_case: ") + off + "\n");
    ASSERT_TRUE(c.ok()) << off << ": " << c.status();
    EXPECT_FALSE(c->playbooks.default_case) << off;
  }
  for (const char* on : {"true", "yes", "on", "TRUE"}) {
    auto c = parse(std::string("playbooks:\n  default_case: ") + on + "\n");
    ASSERT_TRUE(c.ok()) << on << ": " << c.status();
    EXPECT_TRUE(c->playbooks.default_case) << on;
  }
}

}  // namespace
}  // namespace vigil::mgmt
