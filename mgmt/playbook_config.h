// The `playbooks:` section of the daemon configuration: which playbook files vigild runs,
// the runner's queue and budgets, the connectors that perform actions and the table that
// routes each action name to a connector. docs/playbooks.md describes every key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "mgmt/config_origin.h"

namespace YAML {
class Node;
}

namespace vigil::mgmt {

// One `playbooks.connectors` entry. Which fields apply depends on `type`.
struct ConnectorConfig {
  std::string name;
  std::string type;  // webhook, notify, syslog, blocklist, case, intel
  int line = 0;      // line of the entry in the config file, for later errors

  // webhook, notify
  std::string url;
  int timeout_ms = 5000;
  // Header values are resolved at load: a literal, {env: NAME} or {file: PATH}. They are
  // secrets (tokens) and never logged.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string channel;  // notify: the default channel when the action gives none
  // Header that carries each action's idempotency key; empty sends none.
  std::string idempotency_header = "Idempotency-Key";
  int64_t max_response_bytes = 1 << 20;  // webhook, notify: largest response body read

  // syslog
  std::string address;  // host:port of the collector
  std::string transport = "udp";  // udp, tcp, tls (RFC 5425)
  // tls: PEM CA bundle that verifies the collector (empty: the system's default CAs),
  // optional client certificate and key, and the name the collector's certificate must
  // carry (empty: its IP address). The key file's content is never logged.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
  std::string format = "rfc5424";  // rfc5424, cef
  std::string app_name = "vigil";

  // blocklist
  std::string path;                        // the nftables file the firewall loads
  std::string table = "inet vigil";        // family and table of the sets
  std::string set = "blocklist";           // set names: <set>_v4 and <set>_v6
  int64_t default_duration_s = 0;          // 0: entries never expire
  size_t max_entries = 65536;
  std::vector<std::string> apply_command;  // argv run after each rewrite; empty for none

  // case
  std::string author = "playbook";  // author of notes the connector adds

  bool operator==(const ConnectorConfig&) const = default;
};

// One `playbooks.actions` entry: an action name ("firewall.block_ip"), a prefix
// ("case.*") or "*", and the connector that performs the matching actions. The most
// specific pattern wins: exact name, then the longest prefix, then "*".
struct ActionRoute {
  std::string pattern;
  std::string connector;

  bool operator==(const ActionRoute&) const = default;
};

struct PlaybookRunnerConfig {
  bool enabled = false;            // true when the section is present with paths
  // True when the configuration has a `playbooks:` section; only then does vigild run
  // pushed playbooks (content kind playbooks).
  bool section = false;
  // Runs the built-in default-case playbook, which files every alert in its case
  // (configs/playbooks/default_case.yml). With false, vigild opens no case from alerts
  // unless a playbook under `paths` calls case.attach_alert.
  bool default_case = true;
  std::vector<std::string> paths;  // playbook files or folders (*.yml, *.yaml), resolved
  // How errors about paths name the setting: "FILE:LINE: playbooks.paths" when it was read
  // from a configuration file.
  ConfigOrigin paths_key{"playbooks.paths"};
  std::string db;                  // default <state_dir>/runs.db
  size_t workers = 1;              // threads that run playbooks
  // How long an idle worker polls the queue before it sleeps on the condition variable,
  // in microseconds. An alert queued in that time does not wait for a sleeping thread to
  // be woken (a median of about 2 us and a 99th percentile of up to 5 ms in
  // bench/playbook_runner_bench on a loaded 2-core host). Each worker spends up to that much CPU after each job.
  // With 0 workers sleep at once.
  uint32_t worker_spin_us = 50;
  size_t queue_capacity = 1024;    // alerts waiting for a worker
  // How long the pipeline waits for room in a full queue before the alert's runs are
  // counted as dropped (vigil_playbook_queue_dropped_total{reason="full"}).
  int enqueue_wait_ms = 0;
  uint64_t max_steps = 1'000'000;        // VM instruction budget per run segment
  uint32_t max_memory_bytes = 1u << 20;  // VM run heap per run
  // "process" or "full"; see RunDurability in run_store.h.
  std::string durability = "process";
  std::vector<ConnectorConfig> connectors;
  std::vector<ActionRoute> actions;

  bool operator==(const PlaybookRunnerConfig&) const = default;
};

// Reads the `playbooks:` node into `out`. Relative paths resolve against `base_dir`;
// `state_dir` gives the default database path. `paths` may be left out only when the
// section sets `default_case`. Errors are InvalidArgument of the form
// "vigil.yaml:41: playbooks.connectors.fw.type: 'nft' is not one of ...".
absl::Status parsePlaybookConfig(const YAML::Node& node, const std::string& origin,
                                 const std::string& base_dir, const std::string& state_dir,
                                 PlaybookRunnerConfig& out);

}  // namespace vigil::mgmt
