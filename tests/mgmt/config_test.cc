#include "mgmt/config.h"

#include <gtest/gtest.h>

namespace vigil::mgmt {
namespace {

absl::StatusOr<DaemonConfig> parse(const std::string& yaml) {
  return parseConfig(yaml, "test.yaml", "/etc/vigil");
}

constexpr const char* kFullConfig = R"(
daemon: {log_level: debug}
state_dir: state
pipeline: {workers: 3, shards: 2}
sources:
  - {name: replay, type: file, paths: [a.log, /abs/b.log], tenant: t1}
  - {name: udp, type: udp, listen: "127.0.0.1:5514"}
  - {name: tcp, type: tcp, listen: "[::1]:6514", framing: octet_counting}
intel:
  lists: [{name: watch, path: intel/w.txt}]
rules:
  paths: rules
  field_mapping: {src_ip: source.ip}
alerts: {output: stdout}
api: {listen: "127.0.0.1:0"}
)";

// A complete config fills every section and resolves relative paths.
TEST(ConfigTest, ParsesFullConfig) {
  auto c = parse(kFullConfig);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->workers, 3u);
  ASSERT_EQ(c->sources.size(), 3u);
  EXPECT_EQ(c->sources[0].paths[0], "/etc/vigil/a.log");
  EXPECT_EQ(c->sources[0].paths[1], "/abs/b.log");
  EXPECT_EQ(c->sources[0].tenant, "t1");
  EXPECT_EQ(c->sources[1].where.text, "test.yaml:7: sources[1]");
  // A setting that only moved to another line is the same setting.
  auto moved = parse("\n\n" + std::string(kFullConfig));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->sources[1].where.text, "test.yaml:9: sources[1]");
  EXPECT_TRUE(moved->sources == c->sources);
  EXPECT_TRUE(*moved == *c);
  EXPECT_EQ(c->sources[2].framing, "octet_counting");
  EXPECT_EQ(c->intel_lists[0].path, "/etc/vigil/intel/w.txt");
  EXPECT_EQ(c->rule_paths[0], "/etc/vigil/rules");
  // Errors about the rule files found later (a missing folder) name this line.
  EXPECT_EQ(c->rule_paths_key.text, "test.yaml:12: rules.paths");
  EXPECT_EQ(c->field_mapping.at("src_ip"), "source.ip");
  EXPECT_EQ(c->case_db, "/etc/vigil/state/cases.db");
}

// intel.lists[].tenant scopes a feed to one tenant; a bad or empty name is rejected with
// the key and the rule, and a list without it belongs to every tenant.
TEST(ConfigTest, IntelListTenant) {
  auto c = parse("intel:\n  lists: [{name: a, path: a.txt, tenant: acme}, {name: b, path: b.txt}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->intel_lists.size(), 2u);
  EXPECT_EQ(c->intel_lists[0].tenant, "acme");
  EXPECT_EQ(c->intel_lists[1].tenant, "");
  for (const char* bad : {"'acme corp'", "''", "'-acme'"}) {
    auto rejected =
        parse(std::string("intel:\n  lists: [{name: a, path: a.txt, tenant: ") + bad + "}]\n");
    ASSERT_FALSE(rejected.ok()) << bad;
    const std::string message(rejected.status().message());
    EXPECT_NE(message.find("intel.lists[0].tenant"), std::string::npos) << message;
    EXPECT_NE(message.find("every tenant"), std::string::npos) << message;
  }
}

// The correlation state keys: lateness in seconds and the per-tenant key limit.
TEST(ConfigTest, CorrelationStateKeys) {
  auto c = parse("pipeline: {allowed_lateness_s: 30, max_keys_per_tenant: 500}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->allowed_lateness_s, 30);
  EXPECT_EQ(c->max_keys_per_tenant, 500u);
  auto defaults = parse("pipeline: {workers: 1}\n");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->allowed_lateness_s, 0);
  EXPECT_EQ(defaults->max_keys_per_tenant, 0u);
  auto late = parse("pipeline: {allowed_lateness_s: -1}\n");
  ASSERT_FALSE(late.ok());
  EXPECT_NE(std::string(late.status().message()).find("pipeline.allowed_lateness_s"),
            std::string::npos)
      << late.status();
}

// rules.logsources entries keep their log source, conditions and field mapping.
TEST(ConfigTest, ParsesRuleLogSources) {
  auto c = parse(R"(
rules:
  logsources:
    - name: sysmon
      product: windows
      category: process_creation
      conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 1}
    - service: auth
      field_mapping: {User: user.name}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->logsources.size(), 2u);
  EXPECT_EQ(c->logsources[0].name, "sysmon");
  EXPECT_EQ(c->logsources[0].product, "windows");
  EXPECT_EQ(c->logsources[0].category, "process_creation");
  ASSERT_EQ(c->logsources[0].conditions.size(), 2u);
  EXPECT_EQ(c->logsources[0].conditions[1],
            (std::pair<std::string, std::string>{"EventID", "1"}));
  EXPECT_EQ(c->logsources[1].name, "//auth");
  ASSERT_EQ(c->logsources[1].field_mapping.size(), 1u);
  EXPECT_EQ(c->logsources[1].field_mapping[0].second, "user.name");
}

// Bad rules.logsources entries name the entry, the key and the fix.
TEST(ConfigTest, RuleLogSourceErrors) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"rules:\n  logsources: {product: windows}\n", "rules.logsources: must be a list"},
      {"rules:\n  logsources:\n    - {name: x}\n",
       "rules.logsources[0]: needs at least one of product, category, service"},
      {"rules:\n  logsources:\n    - {product: w, color: red}\n",
       "rules.logsources[0].color: unknown key"},
      {"rules:\n  logsources:\n    - {product: w, conditions: {EventID: [1, 2]}}\n",
       "rules.logsources[0].conditions.EventID: must be a non-empty string"},
      {"rules:\n  logsources:\n    - {name: a, product: w}\n    - {name: a, service: s}\n",
       "rules.logsources[1].name: 'a' is used twice"},
  };
  for (const Case& c : cases) {
    auto config = parse(c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_NE(config.status().message().find(c.expected), std::string::npos)
        << config.status().message();
  }
}

// Listeners default to loopback when no address is given.
TEST(ConfigTest, ListenDefaultsToLoopback) {
  auto c = parse("sources: [{name: u, type: udp}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sources[0].listen, "127.0.0.1:514");
}

// Each bad value is rejected with the line, the key, the value and what is accepted.
TEST(ConfigTest, ErrorsNameKeyValueAndChoices) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"sources:\n  - {name: x, type: tpc}\n",
       "test.yaml:2: sources[0].type: 'tpc' is not one of dpdk, file, tcp, tls, udp"},
      {"sources:\n  - {name: x, type: udp, listen: nowhere}\n",
       "sources[0].listen: 'nowhere' is not host:port"},
      {"sources:\n  - {name: x, type: udp, listen: '127.0.0.1:70000'}\n",
       "'127.0.0.1:70000' is not host:port"},
      {"pipeline: {workers: lots}\n", "pipeline.workers: 'lots' is not a number in [1, 256]"},
      {"pipeline: {workers: 0}\n", "pipeline.workers: '0' is not a number in [1, 256]"},
      {"sources:\n  - {name: f, type: file}\n", "sources[0].paths: missing"},
      {"sources: [{name: a, type: udp}, {name: a, type: tcp}]\n", "'a' is used by two sources"},
      {"daemon: {log_level: loud}\n", "'loud' is not one of"},
      {"apii: {}\n", "apii: unknown key; accepted keys:"},
      {"sources: [{name: x, type: udp, lisen: '127.0.0.1:1'}]\n", "sources[0].lisen: unknown key"},
      {"sources: [\n", "test.yaml:2: invalid YAML"},
      {"state_dir: ''\n", "test.yaml:1: state_dir: is empty; name the folder"},
      {"daemon: {state_dir: ''}\n", "daemon.state_dir: is empty"},
      {"daemon: {state_dir: /a}\nstate_dir: /b\n",
       "test.yaml:2: state_dir: also given as daemon.state_dir; keep one of the two"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
  // Past yaml-cpp's depth limit the message names the depth, where yaml-cpp's is "bad file".
  auto deep = parse("sources: " + std::string(3000, '[') + "\n");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(std::string(deep.status().message()).find("levels deep, past the YAML parser's limit"),
            std::string::npos)
      << deep.status();
}

// Tenant rules keep their order and each kind of match is read into its own member.
TEST(ConfigTest, ParsesTenantRules) {
  auto c = parse(R"(
tenants:
  - {cidr: 192.0.2.0/24, tenant: acme}
  - {field: host.name, suffix: ".globex.example", tenant: globex}
  - {field: app, equals: sshd, tenant: ops}
  - {vlan: 100, tenant: lab}
  - {field: source.ip, equals: "2001:db8::1", tenant: v6}
  - {field: source.port, equals: "443", tenant: web}
  - {field: log.syslog.facility.code, equals: "0", tenant: kern}
  - {field: sd.origin.ip, equals: "10.0.0.005", tenant: raw}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->tenant_rules.size(), 8u);
  EXPECT_EQ(c->tenant_rules[0].cidr, "192.0.2.0/24");
  EXPECT_EQ(c->tenant_rules[0].tenant, "acme");
  EXPECT_EQ(c->tenant_rules[1].field, "host.name");
  EXPECT_EQ(c->tenant_rules[1].suffix, ".globex.example");
  EXPECT_TRUE(c->tenant_rules[1].equals.empty());
  EXPECT_EQ(c->tenant_rules[2].equals, "sshd");
  EXPECT_EQ(c->tenant_rules[3].vlan, 100);
  EXPECT_EQ(c->tenant_rules[3].tenant, "lab");
  // Canonical addresses, ports and codes are accepted. A generic field keeps its text as
  // received, so any value is accepted there.
  EXPECT_EQ(c->tenant_rules[4].equals, "2001:db8::1");
  EXPECT_EQ(c->tenant_rules[5].equals, "443");
  EXPECT_EQ(c->tenant_rules[6].equals, "0");
  EXPECT_EQ(c->tenant_rules[7].equals, "10.0.0.005");
}

// Each malformed tenant rule is rejected with its line, key and value.
TEST(ConfigTest, TenantRuleErrors) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"tenants: {cidr: 10.0.0.0/8}\n", "tenants: must be a list"},
      {"tenants:\n  - {cidr: 10.0.0.0/8}\n", "test.yaml:2: tenants[0].tenant: missing"},
      {"tenants:\n  - {cidr: 10.0.0.0/33, tenant: a}\n",
       "test.yaml:2: tenants[0].cidr: '10.0.0.0/33' is not an address prefix"},
      {"tenants:\n  - {tenant: a}\n", "tenants[0]: needs exactly one of cidr, field or vlan"},
      {"tenants:\n  - {cidr: 10.0.0.0/8, vlan: 3, tenant: a}\n",
       "tenants[0]: needs exactly one of cidr, field or vlan"},
      {"tenants:\n  - {field: host.name, tenant: a}\n",
       "tenants[0]: a field rule needs exactly one of equals or suffix"},
      {"tenants:\n  - {field: host.name, equals: x, suffix: y, tenant: a}\n",
       "a field rule needs exactly one of equals or suffix"},
      {"tenants:\n  - {field: host.name, suffix: '', tenant: a}\n",
       "tenants[0].suffix: must not be empty"},
      {"tenants:\n  - {cidr: 10.0.0.0/8, equals: x, tenant: a}\n",
       "equals and suffix apply only to a field rule"},
      // get() writes addresses, ports and syslog codes in one canonical text, and returns
      // nothing for an empty field, so these values could never match.
      {"tenants:\n  - {field: process.name, equals: '', tenant: a}\n",
       "tenants[0].equals: must not be empty"},
      {"tenants:\n  - {field: source.ip, equals: 10.0.0.005, tenant: a}\n",
       "tenants[0].equals: '10.0.0.005' is not a valid IP address"},
      {"tenants:\n  - {field: destination.ip, equals: '2001:DB8::1', tenant: a}\n",
       "'2001:DB8::1' never matches, because destination.ip is compared as '2001:db8::1'"},
      {"tenants:\n  - {field: source.ip, equals: '2001:db8:0:0::1', tenant: a}\n",
       "is compared as '2001:db8::1'; write it that way"},
      {"tenants:\n  - {field: source.port, equals: '0443', tenant: a}\n",
       "'0443' never matches, because source.port is compared as '443'"},
      {"tenants:\n  - {field: destination.port, equals: '0', tenant: a}\n",
       "'0' is not a number in [1, 65535], the values of destination.port"},
      {"tenants:\n  - {field: log.syslog.facility.code, equals: '03', tenant: a}\n",
       "is compared as '3'"},
      {"tenants:\n  - {field: log.syslog.severity.code, equals: '8', tenant: a}\n",
       "'8' is not a number in [0, 7]"},
      {"tenants:\n  - {field: source.ip, equals: 'not-an-ip', tenant: a}\n",
       "'not-an-ip' is not a valid IP address; source.ip contains only addresses"},
      {"tenants:\n  - {vlan: 4095, tenant: a}\n",
       "tenants[0].vlan: '4095' is not a number in [1, 4094]"},
      {"tenants:\n  - {vlan: 7, tenant: a, sufix: x}\n", "tenants[0].sufix: unknown key"},
      {"sources:\n  - {name: u, type: udp, tenant: ''}\n",
       "test.yaml:2: sources[0].tenant: is empty; name a tenant"},
      // "*" names the every-tenant content scope and "_other" the metrics overflow label.
      {"tenants:\n  - {cidr: 10.0.0.0/8, tenant: '*'}\n",
       "test.yaml:2: tenants[0].tenant: tenant name '*' is invalid"},
      {"sources:\n  - {name: u, type: udp, tenant: 'bad tenant'}\n",
       "sources[0].tenant: tenant name 'bad tenant' is invalid"},
      {"tenant_quotas:\n  - {tenant: _other, max_events_per_second: 5}\n",
       "tenant_quotas[0].tenant: tenant name '_other' is invalid"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
}

// host:port splitting accepts bracketed IPv6 and rejects unbracketed IPv6.
TEST(ConfigTest, SplitHostPort) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(splitHostPort("[::1]:514", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 514);
  EXPECT_FALSE(splitHostPort("::1:514", host, port));
  EXPECT_FALSE(splitHostPort(":514", host, port));
  EXPECT_FALSE(splitHostPort("127.0.0.1:", host, port));
}

// Mistakes that YAML accepts but would silently do the wrong thing are rejected: a key
// given twice, a key of another source type, port 0 and two listeners on one address.
TEST(ConfigTest, RejectsSilentMistakes) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"api: {listen: '127.0.0.1:1'}\napi: {listen: '127.0.0.1:2'}\n",
       "test.yaml:2: api: given twice"},
      {"sources:\n  - {name: u, type: udp, framing: octet_counting}\n",
       "sources[0].framing: does not apply to a udp source; keys for udp sources: listen, "
       "receive_buffer_bytes"},
      {"sources:\n  - {name: f, type: file, paths: [a], listen: '127.0.0.1:5'}\n",
       "sources[0].listen: does not apply to a file source"},
      {"sources:\n  - {name: u, type: udp, listen: '127.0.0.1:0'}\n", "has port 0"},
      {"sources:\n  - {name: a, type: tcp, listen: '127.0.0.1:5514'}\n"
       "  - {name: b, type: tcp, listen: '127.0.0.1:5514'}\n",
       "sources[1].listen: '127.0.0.1:5514' is already used by the tcp source 'a' "
       "(sources[0].listen); give each TCP listener its own address or port"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
  // UDP and TCP on the same port is the usual syslog setup and stays valid.
  auto both = parse("sources:\n  - {name: u, type: udp, listen: '127.0.0.1:5514'}\n"
                    "  - {name: t, type: tcp, listen: '127.0.0.1:5514'}\n");
  EXPECT_TRUE(both.ok()) << both.status();
}

// Listeners that cannot bind together fail the check, with the other listener's type:
// a wildcard address against any address of its family, and sources against the API.
TEST(ConfigTest, RejectsOverlappingListeners) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"sources:\n  - {name: a, type: tcp, listen: '127.0.0.1:5514'}\n"
       "  - {name: b, type: tcp, listen: '0.0.0.0:5514'}\n",
       "test.yaml:3: sources[1].listen: '0.0.0.0:5514' overlaps '127.0.0.1:5514' of the tcp "
       "source 'a' (sources[0].listen), because 0.0.0.0 binds every IPv4 address"},
      {"sources:\n  - {name: a, type: udp, listen: '0.0.0.0:5514'}\n"
       "  - {name: b, type: udp, listen: '127.0.0.1:5514'}\n",
       "sources[1].listen: '127.0.0.1:5514' overlaps '0.0.0.0:5514' of the udp source 'a'"},
      {"sources:\n  - {name: a, type: tcp, listen: '[::]:5514'}\n"
       "  - {name: b, type: tcp, listen: '[::1]:5514'}\n",
       "because :: binds every IPv6 address"},
      {"api: {listen: '127.0.0.1:8080'}\n"
       "sources:\n  - {name: a, type: tcp, listen: '127.0.0.1:8080'}\n",
       "test.yaml:1: api.listen: '127.0.0.1:8080' is already used by the tcp source 'a' "
       "(sources[0].listen)"},
      {"sources:\n  - {name: a, type: tcp, listen: '0.0.0.0:8080'}\n",
       "api.listen: '127.0.0.1:8080' overlaps '0.0.0.0:8080' of the tcp source 'a'"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
  // Different families, different protocols, or the API switched off do not conflict.
  for (const char* yaml :
       {"sources:\n  - {name: a, type: tcp, listen: '0.0.0.0:5514'}\n"
        "  - {name: b, type: tcp, listen: '[::1]:5514'}\n",
        "sources:\n  - {name: a, type: udp, listen: '0.0.0.0:5514'}\n"
        "  - {name: b, type: tcp, listen: '127.0.0.1:5514'}\n",
        "sources:\n  - {name: a, type: udp, listen: '127.0.0.1:8080'}\n",
        "api: {enabled: false}\nsources:\n  - {name: a, type: tcp, listen: '127.0.0.1:8080'}\n"}) {
    auto ok = parse(yaml);
    EXPECT_TRUE(ok.ok()) << yaml << "\nerror: " << ok.status();
  }
}

// Errors about the shape of the file name the line, the key and what to write instead.
TEST(ConfigTest, ShapeErrorsNameLineKeyAndFix) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"- a\n- b\n",
       "test.yaml:1: top level: must be a mapping of sections such as alerts, api, cases, "
       "daemon, intel, pipeline, playbooks, rules, sources, state_dir, tenant_quotas, "
       "tenants, not a list"},
      {"pipeline:\n\tworkers: 2\n  shards: 4\n",
       "line 2 is indented with a tab, and YAML allows only spaces for indentation"},
      {"", "test.yaml: empty configuration; give at least the sources to read"},
      {"# only a comment\n", "test.yaml: empty configuration; give at least the sources"},
      {"state_dir: [a, b]\n", "test.yaml:1: state_dir: must be a string, not a list"},
      {"pipeline:\n  workers:\n  shards: 4\n",
       "test.yaml:2: pipeline.workers: an empty value is not a number in [1, 256]"},
      {"pipeline:\n  workers: [1]\n", "test.yaml:2: pipeline.workers: a list is not a number"},
      {"pipeline: 3\n", "test.yaml:1: pipeline: must be a mapping, not '3'"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
}

// Keys checked after parsing carry the file and line they were read from.
TEST(ConfigTest, RecordsOriginsOfLaterCheckedKeys) {
  auto config = parse(
      "daemon:\n  state_dir: /var/lib/x\nalerts: {output: out.jsonl}\n"
      "api: {case_db: c.db}\ncases:\n  evidence_dir: ev\n"
      "intel:\n  lists:\n    - {name: watch, path: watch.txt}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->state_dir_key.text, "test.yaml:2: daemon.state_dir");
  EXPECT_EQ(config->alerts_output_key.text, "test.yaml:3: alerts.output");
  EXPECT_EQ(config->case_db_key.text, "test.yaml:4: api.case_db");
  EXPECT_EQ(config->evidence_dir_key.text, "test.yaml:6: cases.evidence_dir");
  ASSERT_EQ(config->intel_lists.size(), 1u);
  EXPECT_EQ(config->intel_lists[0].where.text, "test.yaml:9: intel.lists[0] (watch)");
}

// A folder given as the config file is named as such.
TEST(ConfigTest, DirectoryIsNotAConfig) {
  auto result = loadConfig("/tmp");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(std::string(result.status().message()).find("/tmp is a directory"), std::string::npos)
      << result.status();
}

// DaemonConfig's defaulted == compares every section, the nested playbook runner and SLA
// targets included. Calling it here makes every compiler reject a member type without ==.
TEST(ConfigTest, EqualityComparesNestedSections) {
  const std::string yaml = R"(
cases:
  sla:
    high: {acknowledge: 1h, resolve: 24h}
playbooks:
  paths: [p.yml]
  connectors:
    hook: {type: webhook, url: 'http://127.0.0.1:9/x', timeout_ms: 100}
  actions:
    '*': hook
)";
  auto base = parse(yaml);
  ASSERT_TRUE(base.ok()) << base.status();
  auto same = parse(yaml);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(*base == *same);

  DaemonConfig timeout = *base;
  timeout.playbooks.connectors[0].timeout_ms = 200;
  EXPECT_FALSE(*base == timeout);

  DaemonConfig route = *base;
  route.playbooks.actions[0].connector = "other";
  EXPECT_FALSE(*base == route);

  DaemonConfig sla = *base;
  sla.sla[0].resolve_ns += 1;
  EXPECT_FALSE(*base == sla);
}

}  // namespace
}  // namespace vigil::mgmt
