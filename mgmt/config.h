// The daemon's YAML configuration: what vigild reads with --config, validated in full
// before any listener opens. See docs/configuration.md for every key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/source.h"
#include "mgmt/case_store.h"
#include "mgmt/config_origin.h"
#include "mgmt/playbook_config.h"

namespace vigil::mgmt {

// The names a source's `format:` key and `vigilctl parse --format` accept, in the order
// that help and error texts list them.
const std::vector<std::string>& formatNames();

// Maps a name from formatNames() to its dataplane::Format. Returns nullopt for any other.
std::optional<dataplane::Format> formatFromName(std::string_view name);

struct SourceConfig {
  std::string name;
  // The source's place in the configuration file ("FILE:LINE: sources[N]"), which errors
  // found when the source is created begin with. Empty when not read from a file.
  ConfigOrigin where;
  std::string type;  // file, udp, tcp, tls, dpdk
  std::string tenant = "default";
  std::string format = "auto";  // auto, rfc3164, rfc5424, json, cef, leef
  size_t max_message_bytes = 64 * 1024;
  size_t ring_capacity = 4096;  // messages buffered between the source and the pipeline

  // file
  std::vector<std::string> paths;  // resolved against the config file's folder
  std::string pace = "fast";       // fast, event_time
  double speed = 1.0;              // event_time only: 10 = ten times faster than recorded
  double max_pace_wait_s = 60.0;   // event_time only: a longer jump re-anchors the replay

  // udp, tcp, tls
  std::string listen;              // host:port; default 127.0.0.1:514 (tls: 127.0.0.1:6514)
  int receive_buffer_bytes = 0;    // SO_RCVBUF; 0 keeps the kernel default

  // tcp, tls
  std::string framing = "auto";    // auto, lf, octet_counting
  size_t max_connections = 1024;
  int idle_timeout_s = 300;

  // tls: PEM files, resolved against the config file's folder and checked to be readable
  std::string certificate;         // the server certificate chain
  std::string private_key;         // unencrypted
  std::string ca_file;             // CAs for client certificates; needed unless verify_client=none
  std::string verify_client = "none";  // none, optional, required

  // dpdk (see docs/dpdk.md)
  std::vector<std::string> eal_args;
  std::string port;                 // port id or EAL device name; empty takes the first port
  std::vector<uint16_t> udp_ports = {514};
  uint16_t burst_size = 32;
  uint32_t mbuf_count = 8191;       // mbufs in the pool shared by all RX queues
  uint16_t rx_queues = 1;           // one RX thread and one ring per queue
  std::vector<uint16_t> lcores;     // CPU of each RX thread; empty leaves them unpinned
  uint16_t rx_descriptors = 1024;   // RX ring size per queue
  uint32_t idle_sleep_us = 20;      // pause after an empty burst; 0 polls without pause
  bool reassemble_fragments = false;
  uint32_t fragment_max_flows = 1024;   // datagrams reassembled at once, per queue
  uint32_t fragment_timeout_ms = 2000;  // incomplete datagrams are dropped after this
  std::string exception = "drop";   // drop, kernel
  std::string exception_port;       // net_tap device name, required with exception: kernel

  bool operator==(const SourceConfig&) const = default;
};

// One `tenants:` rule. Exactly one of cidr, field or vlan is set; a field rule has exactly
// one of equals or suffix. Rules are tried in order after parsing and the first match
// sets the event's tenant; events that match none keep their source's tenant.
struct TenantRuleConfig {
  std::string tenant;
  std::string cidr;  // the peer's address is inside this prefix, e.g. 192.0.2.0/24
  std::string field;  // an Event::get name such as host.name
  std::string equals;
  std::string suffix;
  int vlan = -1;  // 1..4094; only DPDK can see VLAN tags, other events never match

  bool operator==(const TenantRuleConfig&) const = default;
};

// One `tenant_quotas:` entry: a token bucket on the events of `tenant`, checked after the
// tenant rules. Events over the quota are counted and not correlated.
struct TenantQuotaConfig {
  std::string tenant;
  double max_events_per_second = 0;  // refill rate; fractions allowed
  double burst = 0;  // bucket size in events; 0 means one second's worth (at least 1)

  bool operator==(const TenantQuotaConfig&) const = default;
};

// Column layout of a CSV feed. Each column is a header name, or a 0-based index when it
// is all digits; empty means the column is not used.
struct IntelCsvConfig {
  std::string value_column;  // required for format csv
  std::string type_column;
  std::string type;  // fixed indicator type when there is no type column; empty = detect
  std::string confidence_column;
  std::string first_seen_column;
  std::string last_seen_column;
  std::string tags_column;
  std::string url_path_column;
  char delimiter = ',';
  bool header = true;

  bool operator==(const IntelCsvConfig&) const = default;
};

// One `intel.lists` entry: a feed file (or a MISP feed folder) and its format.
struct IntelListConfig {
  std::string name;
  std::string path;
  std::string url;              // http(s) URL fetched instead of `path`; one of them is set
  std::string format = "list";  // list, regex, csv, misp, misp_feed, stix
  IntelCsvConfig csv;
  // The tenant whose events the list's indicators match; empty for every tenant.
  std::string tenant;
  // Location that errors about the list print: "FILE:LINE: intel.lists[N] (NAME)" when the
  // list was read from a configuration file.
  ConfigOrigin where;

  bool operator==(const IntelListConfig&) const = default;
};

// One `rules.logsources` entry: which events are of this Sigma log source and how the
// rules' field names map to their fields (see correlate::LogSourceDefinition).
struct LogSourceConfig {
  std::string name;
  std::string product;
  std::string category;
  std::string service;
  std::vector<std::pair<std::string, std::string>> conditions;     // event field -> value
  std::vector<std::pair<std::string, std::string>> field_mapping;  // Sigma -> event field

  bool operator==(const LogSourceConfig&) const = default;
};

struct DaemonConfig {
  std::string config_path;  // the file this was read from
  std::string log_level = "info";
  // On SIGTERM, how long the pipeline may keep working on messages the sources already
  // accepted; what is left after it is counted as vigil_pipeline_dropped_total{shutdown}.
  int drain_timeout_s = 10;

  // pipeline
  size_t workers = 2;        // TBB threads for parse and match
  size_t shards = 4;         // correlation shards (serial pipeline filters)
  size_t batch_size = 64;    // events per pipeline token
  size_t max_keys_per_rule = 4096;
  size_t max_keys_per_tenant = 0;  // per rule and tenant; 0 = only max_keys_per_rule
  int32_t default_utc_offset_s = 0;  // zone for timestamps that carry none (RFC 3164)
  // Seconds between correlation checkpoints in <state_dir>; 0 saves only at shutdown.
  int checkpoint_interval_s = 60;
  int allowed_lateness_s = 0;  // how far out of order events may reach absence windows

  std::vector<SourceConfig> sources;
  std::vector<TenantRuleConfig> tenant_rules;
  std::vector<TenantQuotaConfig> tenant_quotas;
  std::vector<IntelListConfig> intel_lists;
  std::vector<std::string> intel_warninglists;  // MISP warninglist files or folders of them
  int intel_min_ipv4_prefix_len = 8;   // shorter IPv4 CIDRs are rejected as over-broad
  int intel_min_ipv6_prefix_len = 32;  // shorter IPv6 CIDRs are rejected as over-broad
  int intel_default_confidence = 50;   // 0..100, for values whose feed gives none
  int intel_score_half_life_days = 30;  // age at which confidence counts half; 0 = no decay
  int intel_refresh_s = 0;        // full rebuild (files re-read, URLs fetched) period; 0 = none
  int intel_fetch_timeout_s = 30;  // connect and read timeout of each feed download
  std::vector<std::string> rule_paths;  // files or folders of Sigma YAML
  // How errors about rule_paths name the setting: "FILE:LINE: rules.paths" when it was
  // read from a configuration file.
  ConfigOrigin rule_paths_key{"rules.paths"};
  std::map<std::string, std::string> field_mapping;  // Sigma field -> event field
  std::vector<LogSourceConfig> logsources;

  std::string alerts_output;  // "stdout", a file path, or empty for none
  std::string state_dir = "/var/lib/vigil";
  std::string case_db;        // default: <state_dir>/cases.db
  // How errors found after parsing, such as a state_dir that is a file, name these keys:
  // "FILE:LINE: state_dir" when the key was read from a configuration file.
  ConfigOrigin state_dir_key{"state_dir"};
  ConfigOrigin case_db_key{"api.case_db"};
  ConfigOrigin evidence_dir_key{"cases.evidence_dir"};
  ConfigOrigin alerts_output_key{"alerts.output"};
  bool api_enabled = true;
  std::string api_listen = "127.0.0.1:8080";
  // api.tls: PEM files, resolved against the config file's folder. Without a certificate
  // the API speaks plain HTTP, which validation allows only on a loopback listen address.
  std::string api_tls_certificate;
  std::string api_tls_private_key;
  std::string api_tls_client_ca_file;  // set: clients must present a certificate it signs
  bool api_metrics_public_on_loopback = false;  // /metrics without a token from loopback

  // cases
  std::string evidence_dir;                  // default: <state_dir>/evidence
  int64_t evidence_max_bytes = 8 << 20;      // largest uploaded evidence file
  SlaPolicy sla{};                           // by severity; 0 = no target

  PlaybookRunnerConfig playbooks;  // `playbooks:`; disabled when the section is absent

  bool operator==(const DaemonConfig&) const = default;
};

// Reads and validates `path`. Errors name the file, line, key, the bad value and what is
// accepted, e.g. "vigil.yaml:12: sources[0].type: 'tpc' is not one of dpdk, file, tcp, tls, udp".
absl::StatusOr<DaemonConfig> loadConfig(const std::string& path);

// Same for YAML text; relative paths are resolved against `base_dir`.
absl::StatusOr<DaemonConfig> parseConfig(const std::string& yaml_text, const std::string& origin,
                                         const std::string& base_dir);

// Splits "host:port" or "[v6]:port". Returns false when malformed or the port is not 0..65535.
bool splitHostPort(const std::string& text, std::string& host, uint16_t& port);

}  // namespace vigil::mgmt
