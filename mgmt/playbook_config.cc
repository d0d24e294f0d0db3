#include "mgmt/playbook_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/internal/yaml_reader.h"
#include "mgmt/webhook_connector.h"

namespace vigil::mgmt {
namespace {

const std::set<std::string> kConnectorTypes = {"webhook", "notify",    "syslog",
                                               "blocklist", "case",    "intel"};

// Keys each connector type accepts besides `type`.
const std::map<std::string, std::set<std::string>> kTypeKeys = {
    {"webhook", {"url", "timeout_ms", "headers", "idempotency_header", "max_response_bytes"}},
    {"notify",
     {"url", "timeout_ms", "headers", "channel", "idempotency_header", "max_response_bytes"}},
    {"syslog",
     {"address", "transport", "format", "app_name", "timeout_ms", "tls_ca_file", "tls_cert_file",
      "tls_key_file", "tls_server_name"}},
    {"blocklist",
     {"path", "table", "set", "default_duration_s", "max_entries", "apply_command"}},
    {"case", {"author"}},
    {"intel", {}},
};

class Reader : public internal::YamlReader {
 public:
  Reader(std::string origin_name, std::string base) {
    origin = std::move(origin_name);
    base_dir = std::move(base);
  }

  // A header value: a literal, {env: NAME} or {file: PATH} (trailing newlines dropped).
  absl::Status readSecret(const YAML::Node& n, const std::string& where, std::string& out) const {
    if (n.IsScalar()) {
      out = n.Scalar();
      return absl::OkStatus();
    }
    if (auto st = checkKeys(n, where, {"env", "file"}); !st.ok()) return st;
    if (n.size() != 1) return error(n, where, "give exactly one of env: NAME or file: PATH");
    if (YAML::Node env = n["env"]) {
      const char* value = std::getenv(env.Scalar().c_str());
      if (value == nullptr) {
        return error(env, where + ".env",
                     absl::StrCat("environment variable ", env.Scalar(),
                                  " is not set; export it before starting vigild"));
      }
      out = value;
      return absl::OkStatus();
    }
    std::string path = resolve(n["file"].Scalar());
    std::ifstream in(path);
    if (!in) {
      return error(n["file"], where + ".file",
                   absl::StrCat("cannot read ", path, "; check the path and its permissions"));
    }
    std::stringstream text;
    text << in.rdbuf();
    out = text.str();
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return absl::OkStatus();
  }

  absl::Status readConnector(const YAML::Node& n, const std::string& name,
                             ConnectorConfig& c) const {
    const std::string where = "playbooks.connectors." + name;
    if (!n.IsMap()) return error(n, where, "must be a mapping with a type");
    c.name = name;
    c.line = n.Mark().line + 1;
    if (!n["type"]) {
      return error(n, where + ".type",
                   absl::StrCat("missing; use one of ", absl::StrJoin(kConnectorTypes, ", ")));
    }
    absl::Status st;
    if (!(st = readChoice(n, where, "type", kConnectorTypes, c.type)).ok()) return st;
    std::set<std::string> allowed = kTypeKeys.at(c.type);
    allowed.insert("type");
    if (!(st = checkKeys(n, where, allowed)).ok()) return st;

    if (c.type == "webhook" || c.type == "notify") {
      if (!(st = readString(n, where, "url", c.url)).ok()) return st;
      if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0) {
        return error(
            n["url"] ? n["url"] : n, where + ".url",
            absl::StrCat("'", urlForDisplay(c.url), "' must be an http:// or https:// URL"));
      }
      if (!(st = readNumber<int>(n, where, "timeout_ms", 1, 600000, c.timeout_ms)).ok()) return st;
      if (!(st = readString(n, where, "channel", c.channel)).ok()) return st;
      if (!(st = readNumber<int64_t>(n, where, "max_response_bytes", 1, int64_t{1} << 30,
                                     c.max_response_bytes))
               .ok()) {
        return st;
      }
      if (!(st = readString(n, where, "idempotency_header", c.idempotency_header)).ok()) {
        return st;
      }
      if (YAML::Node h = n["headers"]) {
        if (!h.IsMap()) return error(h, where + ".headers", "must map header names to values");
        for (const auto& kv : h) {
          std::string header = kv.first.Scalar();
          std::string value;
          if (!(st = readSecret(kv.second, where + ".headers." + header, value)).ok()) return st;
          c.headers.emplace_back(header, value);
        }
      }
    } else if (c.type == "syslog") {
      if (!(st = readString(n, where, "address", c.address)).ok()) return st;
      if (c.address.empty()) return error(n, where + ".address", "missing; use host:port");
      if (!(st = readChoice(n, where, "transport", {"udp", "tcp", "tls"}, c.transport)).ok()) {
        return st;
      }
      for (auto [key, field] : {std::pair{"tls_ca_file", &c.tls_ca_file},
                                std::pair{"tls_cert_file", &c.tls_cert_file},
                                std::pair{"tls_key_file", &c.tls_key_file},
                                std::pair{"tls_server_name", &c.tls_server_name}}) {
        if (!(st = readString(n, where, key, *field)).ok()) return st;
        if (!field->empty() && c.transport != "tls") {
          return error(n[key], where + "." + key, "applies only with transport: tls");
        }
      }
      c.tls_ca_file = resolve(c.tls_ca_file);
      c.tls_cert_file = resolve(c.tls_cert_file);
      c.tls_key_file = resolve(c.tls_key_file);
      if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
        return error(n, where + ".tls_cert_file",
                     "give tls_cert_file and tls_key_file together, or neither");
      }
      if (!(st = readChoice(n, where, "format", {"rfc5424", "cef"}, c.format)).ok()) return st;
      if (!(st = readString(n, where, "app_name", c.app_name)).ok()) return st;
      if (!(st = readNumber<int>(n, where, "timeout_ms", 1, 600000, c.timeout_ms)).ok()) return st;
    } else if (c.type == "blocklist") {
      if (!(st = readString(n, where, "path", c.path)).ok()) return st;
      if (c.path.empty()) return error(n, where + ".path", "missing; name the nftables file");
      c.path = resolve(c.path);
      if (!(st = readString(n, where, "table", c.table)).ok()) return st;
      if (!(st = readString(n, where, "set", c.set)).ok()) return st;
      if (!(st = readNumber<int64_t>(n, where, "default_duration_s", 0, 365LL * 86400,
                                     c.default_duration_s))
               .ok()) {
        return st;
      }
      if (!(st = readNumber<size_t>(n, where, "max_entries", 1, 10'000'000, c.max_entries))
               .ok()) {
        return st;
      }
      if (!(st = readStringList(n, where, "apply_command", c.apply_command)).ok()) return st;
    } else if (c.type == "case") {
      if (!(st = readString(n, where, "author", c.author)).ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status readRoutes(const YAML::Node& n, const PlaybookRunnerConfig& c,
                          std::vector<ActionRoute>& out) const {
    if (!n.IsMap()) return error(n, "playbooks.actions", "must map action patterns to connectors");
    std::set<std::string> names;
    for (const ConnectorConfig& cc : c.connectors) names.insert(cc.name);
    for (const auto& kv : n) {
      std::string pattern = kv.first.Scalar();
      std::string where = "playbooks.actions." + pattern;
      if (!validPattern(pattern)) {
        return error(kv.first, where,
                     "not an action pattern; use an action name such as firewall.block_ip, "
                     "a prefix such as case.*, or *");
      }
      if (!kv.second.IsScalar() || !names.count(kv.second.Scalar())) {
        return error(kv.second, where,
                     absl::StrCat("'", kv.second.IsScalar() ? kv.second.Scalar() : "",
                                  "' is not a connector under playbooks.connectors (",
                                  absl::StrJoin(names, ", "), ")"));
      }
      out.push_back({pattern, kv.second.Scalar()});
    }
    return absl::OkStatus();
  }

  static bool validPattern(const std::string& pattern) {
    if (pattern == "*") return true;
    std::string name = pattern;
    if (name.size() > 2 && name.compare(name.size() - 2, 2, ".*") == 0) {
      name.resize(name.size() - 2);
    }
    if (name.empty() || name.front() == '.' || name.back() == '.') return false;
    for (char ch : name) {
      bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
      if (!ok) return false;
    }
    return name.find("..") == std::string::npos;
  }

};

}  // namespace

absl::Status parsePlaybookConfig(const YAML::Node& n, const std::string& origin,
                                 const std::string& base_dir, const std::string& state_dir,
                                 PlaybookRunnerConfig& c) {
  Reader r(origin, base_dir);
  absl::Status st;
  c.section = true;
  if (!(st = r.checkKeys(n, "playbooks",
                         {"paths", "db", "workers", "worker_spin_us", "queue_capacity", "enqueue_wait_ms",
                          "max_steps", "max_memory_bytes", "durability", "connectors",
                          "actions", "default_case"}))
           .ok()) {
    return st;
  }
  if (YAML::Node d = n["default_case"]) {
    // The same spellings as every other boolean key (yaml-cpp: true/false, yes/no, on/off).
    bool ok = d.IsScalar();
    if (ok) {
      try {
        c.default_case = d.as<bool>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    if (!ok) {
      return r.error(d, "playbooks.default_case",
                     absl::StrCat("'", d.IsScalar() ? d.Scalar() : std::string("(not a scalar)"),
                                  "' is not true or false"));
    }
  }
  if (!(st = r.readStringList(n, "playbooks", "paths", c.paths)).ok()) return st;
  if (YAML::Node paths = n["paths"]) {
    c.paths_key.text = absl::StrCat(r.origin, ":", paths.Mark().line + 1, ": playbooks.paths");
  }
  if (c.paths.empty() && !n["default_case"]) {
    return r.error(n, "playbooks.paths",
                   "missing or empty; list playbook files or folders of *.yml playbooks");
  }
  for (std::string& p : c.paths) p = r.resolve(p);
  if (!(st = r.readString(n, "playbooks", "db", c.db)).ok()) return st;
  c.db = c.db.empty() ? (std::filesystem::path(state_dir) / "runs.db").string() : r.resolve(c.db);
  if (!(st = r.readNumber<size_t>(n, "playbooks", "workers", 1, 16, c.workers)).ok()) return st;
  if (!(st = r.readNumber<uint32_t>(n, "playbooks", "worker_spin_us", 0, 10'000,
                                    c.worker_spin_us))
           .ok()) {
    return st;
  }
  if (!(st = r.readNumber<size_t>(n, "playbooks", "queue_capacity", 1, 1'000'000,
                                  c.queue_capacity))
           .ok()) {
    return st;
  }
  if (!(st = r.readNumber<int>(n, "playbooks", "enqueue_wait_ms", 0, 10'000, c.enqueue_wait_ms))
           .ok()) {
    return st;
  }
  if (!(st = r.readNumber<uint64_t>(n, "playbooks", "max_steps", 1000, 1'000'000'000,
                                    c.max_steps))
           .ok()) {
    return st;
  }
  if (!(st = r.readNumber<uint32_t>(n, "playbooks", "max_memory_bytes", 4096, 1u << 30,
                                    c.max_memory_bytes))
           .ok()) {
    return st;
  }
  if (!(st = r.readChoice(n, "playbooks", "durability", {"full", "process"}, c.durability)).ok()) {
    return st;
  }
  if (YAML::Node cs = n["connectors"]) {
    if (!cs.IsMap()) {
      return r.error(cs, "playbooks.connectors", "must map connector names to {type: ...}");
    }
    std::set<std::string> seen;
    for (const auto& kv : cs) {
      std::string name = kv.first.Scalar();
      if (!seen.insert(name).second) {
        return r.error(kv.first, "playbooks.connectors." + name, "given twice");
      }
      ConnectorConfig connector;
      if (!(st = r.readConnector(kv.second, name, connector)).ok()) return st;
      c.connectors.push_back(std::move(connector));
    }
  }
  if (YAML::Node a = n["actions"]) {
    if (!(st = r.readRoutes(a, c, c.actions)).ok()) return st;
  }
  c.enabled = !c.paths.empty();
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
