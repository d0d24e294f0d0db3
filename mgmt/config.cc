#include "mgmt/config.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/event.h"
#include "common/ip.h"
#include "common/yaml_error.h"
#include "dataplane/tls_source.h"
#include "mgmt/auth_store.h"
#include "mgmt/internal/access_control.h"
#include "mgmt/internal/yaml_reader.h"

namespace vigil::mgmt {
namespace {

// Quota rates: one event per 1000 s up to 100 million events per second.
constexpr double kMinQuotaRate = 0.001;
constexpr double kMaxQuotaRate = 1e8;

// Carries the file name through the recursive readers so every error names its location.
// Returns an error when `value` can never equal the text Event::get() returns for `field`.
// That is an empty value, or an address, port or syslog code not written in get()'s
// canonical text, which the error then names.
absl::Status checkEqualsValue(const std::string& field, const std::string& value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(
        "must not be empty, because an empty field has no value and never matches");
  }
  const CanonicalField canonical = Event::resolve(field).canonical;
  if (canonical == CanonicalField::kSourceIp || canonical == CanonicalField::kDestinationIp) {
    const std::optional<IpAddr> addr = parseIp(value);
    if (!addr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", value, "' is not a valid IP address; ", field, " contains only addresses"));
    }
    const std::string text = formatIp(*addr);
    if (text != value) {
      return absl::InvalidArgumentError(absl::StrCat("'", value, "' never matches, because ",
                                                     field, " is compared as '", text,
                                                     "'; write it that way"));
    }
    return absl::OkStatus();
  }
  int max = 0;
  if (canonical == CanonicalField::kSourcePort || canonical == CanonicalField::kDestinationPort) {
    max = 65535;
  } else if (canonical == CanonicalField::kFacility) {
    max = 23;
  } else if (canonical == CanonicalField::kSeverity) {
    max = 7;
  } else {
    return absl::OkStatus();
  }
  const int min = max == 65535 ? 1 : 0;
  int number = 0;
  if (!absl::SimpleAtoi(value, &number) || number < min || number > max) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not a number in [", min,
                                                   ", ", max, "], the values of ", field));
  }
  if (absl::StrCat(number) != value) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' never matches, because ",
                                                   field, " is compared as '", number,
                                                   "'; write it that way"));
  }
  return absl::OkStatus();
}

struct Reader : internal::YamlReader {
  // Reads a map of scalars (`conditions`, `field_mapping`) into pairs.
  absl::Status readScalarMap(const YAML::Node& map, const std::string& where,
                             std::vector<std::pair<std::string, std::string>>& out) const {
    if (!map) return absl::OkStatus();
    if (!map.IsMap()) return error(map, where, "must map names to values");
    for (const auto& kv : map) {
      std::string key = kv.first.as<std::string>();
      if (key.empty()) return error(kv.first, where, "names must not be empty");
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
        return error(kv.second, where + "." + key, "must be a non-empty string");
      }
      out.emplace_back(key, kv.second.Scalar());
    }
    return absl::OkStatus();
  }

  // Reads `rules.logsources`: Sigma log sources, the events that belong to them and their
  // field mappings.
  absl::Status readLogSources(const YAML::Node& list, std::vector<LogSourceConfig>& out) const {
    if (!list.IsSequence()) return error(list, "rules.logsources", "must be a list");
    if (list.size() > 64) {
      return error(list, "rules.logsources",
                   absl::StrCat(list.size(), " entries; at most 64 are supported"));
    }
    std::set<std::string> names;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& entry = list[i];
      std::string where = absl::StrCat("rules.logsources[", i, "]");
      absl::Status st = checkKeys(entry, where,
                                  {"name", "product", "category", "service", "conditions",
                                   "field_mapping"});
      if (!st.ok()) return st;
      LogSourceConfig logsource;
      for (auto [key, target] : {std::pair{"name", &logsource.name},
                                 std::pair{"product", &logsource.product},
                                 std::pair{"category", &logsource.category},
                                 std::pair{"service", &logsource.service}}) {
        if (!(st = readString(entry, where, key, *target)).ok()) return st;
      }
      if (logsource.product.empty() && logsource.category.empty() && logsource.service.empty()) {
        return error(entry, where, "needs at least one of product, category, service");
      }
      if (logsource.name.empty()) {
        logsource.name = absl::StrCat(logsource.product, "/", logsource.category, "/",
                                      logsource.service);
      }
      if (!names.insert(logsource.name).second) {
        return error(entry, where + ".name",
                     absl::StrCat("'", logsource.name, "' is used twice; names must be unique"));
      }
      if (!(st = readScalarMap(entry["conditions"], where + ".conditions", logsource.conditions))
               .ok()) {
        return st;
      }
      if (!(st = readScalarMap(entry["field_mapping"], where + ".field_mapping",
                               logsource.field_mapping))
               .ok()) {
        return st;
      }
      out.push_back(std::move(logsource));
    }
    return absl::OkStatus();
  }

  // Reads `intel:`: lists with their formats, warninglists and the builder's limits.
  absl::Status readIntel(const YAML::Node& in, DaemonConfig& c) const {
    absl::Status st;
    if (!(st = checkKeys(in, "intel", {"lists", "warninglists", "min_ipv4_prefix_len",
                                       "min_ipv6_prefix_len", "default_confidence",
                                       "score_half_life_days", "refresh_s", "fetch_timeout_s"}))
             .ok()) {
      return st;
    }
    if (!(st = readNumber<int>(in, "intel", "min_ipv4_prefix_len", 1, 32,
                               c.intel_min_ipv4_prefix_len))
             .ok()) {
      return st;
    }
    if (!(st = readNumber<int>(in, "intel", "min_ipv6_prefix_len", 1, 128,
                               c.intel_min_ipv6_prefix_len))
             .ok()) {
      return st;
    }
    if (!(st = readNumber<int>(in, "intel", "default_confidence", 0, 100,
                               c.intel_default_confidence))
             .ok()) {
      return st;
    }
    if (!(st = readNumber<int>(in, "intel", "score_half_life_days", 0, 36500,
                               c.intel_score_half_life_days))
             .ok()) {
      return st;
    }
    if (!(st = readNumber<int>(in, "intel", "refresh_s", 0, 7 * 86400, c.intel_refresh_s)).ok()) {
      return st;
    }
    if (!(st = readNumber<int>(in, "intel", "fetch_timeout_s", 1, 3600, c.intel_fetch_timeout_s))
             .ok()) {
      return st;
    }
    if (!(st = readStringList(in, "intel", "warninglists", c.intel_warninglists)).ok()) return st;
    for (auto& p : c.intel_warninglists) p = resolve(p);
    YAML::Node lists = in["lists"];
    if (!lists) return absl::OkStatus();
    if (!lists.IsSequence()) {
      return error(lists, "intel.lists", "must be a list of {name, path, format}");
    }
    std::set<std::string> names;
    for (size_t i = 0; i < lists.size(); ++i) {
      std::string where = absl::StrCat("intel.lists[", i, "]");
      IntelListConfig l;
      if (!(st = readIntelList(lists[i], where, l)).ok()) return st;
      l.where.text =
          absl::StrCat(origin, ":", lists[i].Mark().line + 1, ": ", where, " (", l.name, ")");
      if (!names.insert(l.name).second) {
        return error(lists[i], where + ".name",
                     absl::StrCat("'", l.name, "' is used by an earlier list; give each list "
                                  "its own name"));
      }
      c.intel_lists.push_back(std::move(l));
    }
    return absl::OkStatus();
  }

  absl::Status readIntelList(const YAML::Node& n, const std::string& where,
                             IntelListConfig& l) const {
    absl::Status st;
    if (!(st = checkKeys(n, where, {"name", "path", "url", "format", "csv", "tenant"})).ok()) {
      return st;
    }
    if (!(st = readString(n, where, "name", l.name)).ok()) return st;
    if (!(st = readString(n, where, "tenant", l.tenant)).ok()) return st;
    if (n["tenant"]) {
      if (absl::Status valid = validateTenantName(l.tenant); !valid.ok()) {
        return error(n["tenant"], where + ".tenant",
                     absl::StrCat(valid.message(), "; leave the key out for a list of every "
                                                   "tenant"));
      }
    }
    if (!(st = readString(n, where, "path", l.path)).ok()) return st;
    if (!(st = readString(n, where, "url", l.url)).ok()) return st;
    if (l.path.empty() && l.url.empty()) {
      return error(n, where + ".path",
                   "missing; give the feed's file or folder, or a url (http:// or https://)");
    }
    if (!l.path.empty() && !l.url.empty()) {
      return error(n, where + ".url", "given together with path; give only one of them");
    }
    if (!l.url.empty() && !absl::StartsWith(l.url, "http://") &&
        !absl::StartsWith(l.url, "https://")) {
      return error(n, where + ".url", absl::StrCat("'", l.url, "' is not an http:// or https:// URL"));
    }
    if (!(st = readChoice(n, where, "format", {"list", "regex", "csv", "misp", "misp_feed", "stix"},
                          l.format))
             .ok()) {
      return st;
    }
    if (!l.url.empty() && l.format == "misp_feed") {
      return error(n, where + ".url", "format misp_feed needs a local folder; use path");
    }
    if (l.name.empty()) {
      if (!l.url.empty()) return error(n, where + ".name", "missing; a url feed needs a name");
      l.name = std::filesystem::path(l.path).stem().string();
    }
    if (!l.path.empty()) l.path = resolve(l.path);
    YAML::Node csv = n["csv"];
    if (csv && l.format != "csv") {
      return error(csv, where + ".csv", absl::StrCat("applies only to format csv, not '",
                                                     l.format, "'"));
    }
    if (l.format != "csv") return absl::OkStatus();
    if (!csv || !csv.IsMap()) {
      return error(csv ? csv : n, where + ".csv",
                   "missing; format csv needs at least {value_column: NAME_OR_INDEX}");
    }
    const std::string cw = where + ".csv";
    if (!(st = checkKeys(csv, cw, {"value_column", "type_column", "type", "confidence_column",
                                   "first_seen_column", "last_seen_column", "tags_column",
                                   "url_path_column", "delimiter", "header"}))
             .ok()) {
      return st;
    }
    IntelCsvConfig& o = l.csv;
    for (auto [key, out] : {std::pair{"value_column", &o.value_column},
                            std::pair{"type_column", &o.type_column},
                            std::pair{"confidence_column", &o.confidence_column},
                            std::pair{"first_seen_column", &o.first_seen_column},
                            std::pair{"last_seen_column", &o.last_seen_column},
                            std::pair{"tags_column", &o.tags_column},
                            std::pair{"url_path_column", &o.url_path_column}}) {
      if (!(st = readString(csv, cw, key, *out)).ok()) return st;
    }
    if (o.value_column.empty()) {
      return error(csv, cw + ".value_column",
                   "missing; name the header of the value column or give its 0-based index");
    }
    if (csv["type"]) {
      if (!(st = readChoice(csv, cw, "type",
                            {"ipv4", "ipv6", "cidr", "domain", "url", "md5", "sha1", "sha256",
                             "email", "filename", "regex"},
                            o.type))
               .ok()) {
        return st;
      }
    }
    std::string delimiter = ",";
    if (!(st = readString(csv, cw, "delimiter", delimiter)).ok()) return st;
    if (delimiter == "\\t") delimiter = "\t";
    if (delimiter.size() != 1 || delimiter == "\"" || delimiter == "\n") {
      return error(csv["delimiter"], cw + ".delimiter",
                   absl::StrCat("'", delimiter, "' is not one character other than a quote or "
                                "a line break; for tabs write \"\\t\""));
    }
    o.delimiter = delimiter[0];
    if (!(st = readBool(csv, cw, "header", o.header)).ok()) return st;
    return absl::OkStatus();
  }

  absl::Status readBool(const YAML::Node& map, const std::string& where, const char* key,
                        bool& out) const {
    YAML::Node n = map[key];
    if (!n) return absl::OkStatus();
    bool ok = n.IsScalar();
    if (ok) {
      try {
        out = n.as<bool>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    if (!ok) {
      return error(lineNode(map, key, n), keyPath(where, key),
                   absl::StrCat(describe(n), " is not true or false"));
    }
    return absl::OkStatus();
  }

  // Reads a list of integers in [min, max], such as CPU numbers.
  absl::Status readUint16List(const YAML::Node& map, const std::string& where, const char* key,
                              int min, int max, std::vector<uint16_t>& out) const {
    YAML::Node n = map[key];
    if (!n) return absl::OkStatus();
    if (!n.IsSequence()) {
      return error(n, where + "." + key, absl::StrCat("must be a list of numbers in [", min, ", ",
                                                      max, "], e.g. [2, 3]"));
    }
    out.clear();
    for (const auto& item : n) {
      int value = -1;
      bool ok = item.IsScalar();
      if (ok) {
        try {
          value = item.as<int>();
        } catch (const YAML::Exception&) {
          ok = false;
        }
      }
      if (!ok || value < min || value > max) {
        return error(item, where + "." + key,
                     absl::StrCat("'", item.IsScalar() ? item.Scalar() : "?",
                                  "' is not a number in [", min, ", ", max, "]"));
      }
      out.push_back(static_cast<uint16_t>(value));
    }
    return absl::OkStatus();
  }

  // Reads the keys only a dpdk source has. DpdkSource::validateOptions() checks the
  // relations between them (the mbuf count against the queues) when sources are created.
  absl::Status readDpdk(const YAML::Node& n, const std::string& where, SourceConfig& s) const {
    absl::Status st;
    if (!(st = readString(n, where, "port", s.port)).ok()) return st;

    if (!(st = readNumber<uint16_t>(n, where, "rx_queues", 1, 64, s.rx_queues)).ok()) return st;
    if (!(st = readUint16List(n, where, "lcores", 0, 1023, s.lcores)).ok()) return st;
    if (!s.lcores.empty() && s.lcores.size() != s.rx_queues) {
      return error(n["lcores"], where + ".lcores",
                   absl::StrCat("lists ", s.lcores.size(), " CPUs but rx_queues is ",
                                s.rx_queues, "; give one CPU per RX queue, or leave lcores out"));
    }
    if (!(st = readNumber<uint16_t>(n, where, "rx_descriptors", 32, 16384, s.rx_descriptors)).ok()) {
      return st;
    }
    if (!(st = readNumber<uint32_t>(n, where, "idle_sleep_us", 0, 100000, s.idle_sleep_us)).ok()) {
      return st;
    }

    if (!(st = readBool(n, where, "reassemble_fragments", s.reassemble_fragments)).ok()) return st;
    if (!(st = readNumber<uint32_t>(n, where, "fragment_max_flows", 1, 65536,
                                    s.fragment_max_flows)).ok()) {
      return st;
    }
    if (!(st = readNumber<uint32_t>(n, where, "fragment_timeout_ms", 1, 60000,
                                    s.fragment_timeout_ms)).ok()) {
      return st;
    }

    if (!(st = readChoice(n, where, "exception", {"drop", "kernel"}, s.exception)).ok()) return st;
    if (!(st = readString(n, where, "exception_port", s.exception_port)).ok()) return st;
    if (s.type == "dpdk" && s.exception == "kernel" && s.exception_port.empty()) {
      return error(n["exception"], where + ".exception_port",
                   "missing; exception: kernel needs the net_tap device to send frames to, "
                   "e.g. exception_port: net_tap0 with --vdev=net_tap0,iface=vigil0 in eal_args");
    }
    return absl::OkStatus();
  }

  absl::Status readListen(const YAML::Node& map, const std::string& where, const char* key,
                          std::string& out) const {
    if (auto st = readString(map, where, key, out); !st.ok()) return st;
    std::string host;
    uint16_t port;
    if (!out.empty() && !splitHostPort(out, host, port)) {
      return error(map[key], where + "." + key,
                   absl::StrCat("'", out, "' is not host:port (e.g. 127.0.0.1:5514, [::1]:5514)"));
    }
    if (!out.empty() && !parseIp(host)) {
      return error(map[key], where + "." + key,
                   absl::StrCat("'", host, "' is not a numeric IP address (e.g. 127.0.0.1, ::1)"));
    }
    return absl::OkStatus();
  }

  // Reads a PEM file path, resolves it and checks that the daemon can read the file.
  absl::Status readReadableFile(const YAML::Node& map, const std::string& where, const char* key,
                                std::string& out) const {
    if (auto st = readString(map, where, key, out); !st.ok()) return st;
    if (out.empty()) return absl::OkStatus();
    out = resolve(out);
    if (::access(out.c_str(), R_OK) != 0) {
      return error(map[key], where + "." + key,
                   absl::StrCat("'", out, "' is not a readable file; check the path and its "
                                "permissions"));
    }
    return absl::OkStatus();
  }

  // Reads api.tls: certificate and private_key together, client_ca_file optional.
  absl::Status readApiTls(const YAML::Node& api, DaemonConfig& c) const {
    YAML::Node tls = api["tls"];
    if (!tls) return absl::OkStatus();
    absl::Status st;
    if (!tls.IsMap()) {
      return error(tls, "api.tls", "must be a map with certificate, private_key, client_ca_file");
    }
    if (!(st = checkKeys(tls, "api.tls", {"certificate", "private_key", "client_ca_file"})).ok()) {
      return st;
    }
    if (!(st = readReadableFile(tls, "api.tls", "certificate", c.api_tls_certificate)).ok()) {
      return st;
    }
    if (!(st = readReadableFile(tls, "api.tls", "private_key", c.api_tls_private_key)).ok()) {
      return st;
    }
    if (!(st = readReadableFile(tls, "api.tls", "client_ca_file", c.api_tls_client_ca_file)).ok()) {
      return st;
    }
    if (c.api_tls_certificate.empty() || c.api_tls_private_key.empty()) {
      return error(tls, "api.tls",
                   "needs both certificate and private_key (PEM files) to serve HTTPS");
    }
    // Load the files as the API server will, so an encrypted key or one that does not match
    // its certificate fails the check rather than the start, after sources have opened.
    dataplane::TlsSourceOptions files;
    files.name.clear();
    files.certificate_file = c.api_tls_certificate;
    files.private_key_file = c.api_tls_private_key;
    files.ca_file = c.api_tls_client_ca_file;
    if (std::string problem = dataplane::checkTlsFiles(files); !problem.empty()) {
      return error(tls["private_key"], "api.tls", problem);
    }
    return absl::OkStatus();
  }

  // Reads the TLS keys of a source. For type tls, certificate and private_key are required,
  // and verify_client other than none needs ca_file.
  absl::Status readTls(const YAML::Node& n, const std::string& where, SourceConfig& s) const {
    absl::Status st;
    if (!(st = readReadableFile(n, where, "certificate", s.certificate)).ok()) return st;
    if (!(st = readReadableFile(n, where, "private_key", s.private_key)).ok()) return st;
    if (!(st = readReadableFile(n, where, "ca_file", s.ca_file)).ok()) return st;
    if (!(st = readChoice(n, where, "verify_client", {"none", "optional", "required"},
                          s.verify_client)).ok()) {
      return st;
    }
    if (s.type != "tls") return absl::OkStatus();
    if (s.certificate.empty()) {
      return error(n, where + ".certificate",
                   "missing; a tls source needs the PEM file of its certificate chain");
    }
    if (s.private_key.empty()) {
      return error(n, where + ".private_key",
                   "missing; a tls source needs the PEM file of its private key");
    }
    if (s.verify_client != "none" && s.ca_file.empty()) {
      return error(n, where + ".ca_file",
                   absl::StrCat("missing; verify_client: ", s.verify_client,
                                " needs the PEM file of the CAs that sign client certificates"));
    }
    // Load the files as the source will, so a bad PEM file or a key that does not match
    // its certificate is reported with this file and line rather than at start.
    dataplane::TlsSourceOptions tls;
    tls.name.clear();
    tls.certificate_file = s.certificate;
    tls.private_key_file = s.private_key;
    tls.ca_file = s.ca_file;
    if (std::string problem = dataplane::checkTlsFiles(tls); !problem.empty()) {
      return error(n["certificate"], where, problem);
    }
    return absl::OkStatus();
  }

  // Rejects keys that belong to another source type, such as `framing` on a udp source,
  // which would otherwise be accepted and silently do nothing.
  absl::Status checkTypeKeys(const YAML::Node& n, const std::string& where,
                             const std::string& type) const {
    static const std::map<std::string, std::set<std::string>> kTypeKeys = {
        {"file", {"paths", "path", "pace", "speed", "max_pace_wait_s"}},
        {"udp", {"listen", "receive_buffer_bytes"}},
        {"tcp", {"listen", "receive_buffer_bytes", "framing", "max_connections", "idle_timeout_s"}},
        {"tls", {"listen", "receive_buffer_bytes", "framing", "max_connections", "idle_timeout_s",
                 "certificate", "private_key", "ca_file", "verify_client"}},
        {"dpdk", {"eal_args", "port", "udp_ports", "burst_size", "mbuf_count", "rx_queues",
                  "lcores", "rx_descriptors", "idle_sleep_us", "reassemble_fragments",
                  "fragment_max_flows", "fragment_timeout_ms", "exception", "exception_port"}},
    };
    static const std::set<std::string> kCommon = {"name", "type", "tenant", "format",
                                                  "max_message_bytes", "ring_capacity"};
    auto allowed = kTypeKeys.find(type);
    if (allowed == kTypeKeys.end()) return absl::OkStatus();  // readChoice reports the type
    for (const auto& kv : n) {
      std::string key = kv.first.as<std::string>();
      if (kCommon.count(key) || allowed->second.count(key)) continue;
      return error(kv.first, where + "." + key,
                   absl::StrCat("does not apply to a ", type, " source; keys for ", type,
                                " sources: ", absl::StrJoin(allowed->second, ", ")));
    }
    return absl::OkStatus();
  }

  absl::Status readSource(const YAML::Node& n, const std::string& where, SourceConfig& s) const {
    static const std::set<std::string> kKeys = {
        "name", "type", "tenant", "format", "max_message_bytes", "ring_capacity", "paths",
        "path", "pace", "speed", "max_pace_wait_s", "listen", "receive_buffer_bytes", "framing",
        "max_connections", "idle_timeout_s", "eal_args", "udp_ports", "burst_size",
        "mbuf_count", "certificate", "private_key", "ca_file", "verify_client", "port",
        "rx_queues", "lcores", "rx_descriptors", "idle_sleep_us", "reassemble_fragments",
        "fragment_max_flows", "fragment_timeout_ms", "exception", "exception_port"};
    if (auto st = checkKeys(n, where, kKeys); !st.ok()) return st;
    absl::Status st;
    if (!(st = readString(n, where, "name", s.name)).ok()) return st;
    if (YAML::Node type = n["type"]; type && type.IsScalar()) {
      if (auto st2 = checkTypeKeys(n, where, type.Scalar()); !st2.ok()) return st2;
    }
    if (s.name.empty()) return error(n, where + ".name", "missing; every source needs a name");
    if (!(st = readChoice(n, where, "type", {"file", "udp", "tcp", "tls", "dpdk"}, s.type)).ok()) return st;
    if (!(st = readString(n, where, "tenant", s.tenant)).ok()) return st;
    if (n["tenant"] && s.tenant.empty()) {
      return error(n["tenant"], where + ".tenant",
                   "is empty; name a tenant, or leave the key out for the default tenant");
    }
    if (n["tenant"]) {
      if (absl::Status valid = validateTenantName(s.tenant); !valid.ok()) {
        return error(n["tenant"], where + ".tenant", std::string(valid.message()));
      }
    }
    const std::set<std::string> formats(formatNames().begin(), formatNames().end());
    if (!(st = readChoice(n, where, "format", formats, s.format)).ok()) return st;
    if (!(st = readNumber<size_t>(n, where, "max_message_bytes", 64, 16 << 20, s.max_message_bytes)).ok()) return st;
    if (!(st = readNumber<size_t>(n, where, "ring_capacity", 16, 1 << 20, s.ring_capacity)).ok()) return st;
    if (!(st = readStringList(n, where, "paths", s.paths)).ok()) return st;
    if (n["path"]) {
      std::vector<std::string> one;
      if (!(st = readStringList(n, where, "path", one)).ok()) return st;
      s.paths.insert(s.paths.end(), one.begin(), one.end());
    }
    for (auto& p : s.paths) p = resolve(p);
    if (!(st = readChoice(n, where, "pace", {"fast", "event_time"}, s.pace)).ok()) return st;
    if (!(st = readNumber<double>(n, where, "speed", 0.001, 1e6, s.speed)).ok()) return st;
    if (!(st = readNumber<double>(n, where, "max_pace_wait_s", 0.001, 1e9, s.max_pace_wait_s)).ok()) return st;
    if (!(st = readListen(n, where, "listen", s.listen)).ok()) return st;
    if (!(st = readNumber<int>(n, where, "receive_buffer_bytes", 0, 1 << 30, s.receive_buffer_bytes)).ok()) return st;
    if (!(st = readChoice(n, where, "framing", {"auto", "lf", "octet_counting"}, s.framing)).ok()) return st;
    if (!(st = readNumber<size_t>(n, where, "max_connections", 1, 1 << 20, s.max_connections)).ok()) return st;
    if (!(st = readNumber<int>(n, where, "idle_timeout_s", 1, 86400 * 7, s.idle_timeout_s)).ok()) return st;
    if (!(st = readStringList(n, where, "eal_args", s.eal_args)).ok()) return st;
    if (YAML::Node ports = n["udp_ports"]) {
      if (!ports.IsSequence()) return error(ports, where + ".udp_ports", "must be a list of ports");
      s.udp_ports.clear();
      for (const auto& p : ports) {
        int v = -1;
        try {
          v = p.as<int>();
        } catch (const YAML::Exception&) {
        }
        if (v < 1 || v > 65535) {
          return error(p, where + ".udp_ports",
                       absl::StrCat("'", p.IsScalar() ? p.Scalar() : "?", "' is not a port in [1, 65535]"));
        }
        s.udp_ports.push_back(static_cast<uint16_t>(v));
      }
    }
    if (!(st = readNumber<uint16_t>(n, where, "burst_size", 1, 512, s.burst_size)).ok()) return st;
    if (!(st = readNumber<uint32_t>(n, where, "mbuf_count", 511, 1u << 22, s.mbuf_count)).ok()) return st;
    if (!(st = readDpdk(n, where, s)).ok()) return st;
    if (!(st = readTls(n, where, s)).ok()) return st;

    if (s.type == "file" && s.paths.empty()) {
      return error(n, where + ".paths", "missing; a file source needs at least one path");
    }
    if ((s.type == "udp" || s.type == "tcp") && s.listen.empty()) s.listen = "127.0.0.1:514";
    std::string host;
    uint16_t port = 0;
    if (!s.listen.empty() && splitHostPort(s.listen, host, port) && port == 0) {
      return error(n["listen"], where + ".listen",
                   absl::StrCat("'", s.listen, "' has port 0, which binds a random port that "
                                "no sender knows; give a port in [1, 65535]"));
    }
    // 6514 is the port IANA assigned to syslog over TLS (RFC 5425).
    if (s.type == "tls" && s.listen.empty()) s.listen = "127.0.0.1:6514";
    // A DPDK slot fits one datagram's payload at most. The source rejects more at start,
    // so the parser reports it here, where the line is known.
    if (s.type == "dpdk" && s.max_message_bytes > 65536) {
      return error(n["max_message_bytes"], where + ".max_message_bytes",
                   absl::StrCat(s.max_message_bytes,
                                " is more than a dpdk source takes; give 64 to 65536 (the "
                                "largest UDP payload)"));
    }
    if (s.type == "dpdk" && s.eal_args.empty()) {
      return error(n, where + ".eal_args", "missing; a dpdk source needs EAL arguments (see docs/dpdk.md)");
    }
    return absl::OkStatus();
  }

  absl::Status readTenantRule(const YAML::Node& n, const std::string& where,
                              TenantRuleConfig& rule) const {
    if (auto st = checkKeys(n, where, {"tenant", "cidr", "field", "equals", "suffix", "vlan"});
        !st.ok()) {
      return st;
    }
    absl::Status st;
    if (!(st = readString(n, where, "tenant", rule.tenant)).ok()) return st;
    if (rule.tenant.empty()) {
      return error(n, where + ".tenant", "missing; every rule needs a tenant");
    }
    // Names such as "*" (the every-tenant content scope) or "_other" (the metrics overflow
    // label) would make the tenant's series ambiguous and no token could be scoped to it.
    if (absl::Status valid = validateTenantName(rule.tenant); !valid.ok()) {
      return error(n["tenant"], where + ".tenant", std::string(valid.message()));
    }
    const int kinds = (n["cidr"] ? 1 : 0) + (n["field"] ? 1 : 0) + (n["vlan"] ? 1 : 0);
    if (kinds != 1) {
      return error(n, where, "needs exactly one of cidr, field or vlan");
    }
    if (n["cidr"]) {
      if (!(st = readString(n, where, "cidr", rule.cidr)).ok()) return st;
      if (!parsePrefix(rule.cidr)) {
        return error(n["cidr"], where + ".cidr",
                     absl::StrCat("'", rule.cidr,
                                  "' is not an address prefix (e.g. 192.0.2.0/24, 2001:db8::/32)"));
      }
    }
    if (n["field"]) {
      if (!(st = readString(n, where, "field", rule.field)).ok()) return st;
      if (rule.field.empty()) {
        return error(n["field"], where + ".field", "must name an event field");
      }
      if ((n["equals"] ? 1 : 0) + (n["suffix"] ? 1 : 0) != 1) {
        return error(n, where, "a field rule needs exactly one of equals or suffix");
      }
      if (!(st = readString(n, where, "equals", rule.equals)).ok()) return st;
      if (!(st = readString(n, where, "suffix", rule.suffix)).ok()) return st;
      if (n["equals"]) {
        if (absl::Status valid = checkEqualsValue(rule.field, rule.equals); !valid.ok()) {
          return error(n["equals"], where + ".equals", std::string(valid.message()));
        }
      }
      if (n["suffix"] && rule.suffix.empty()) {
        return error(n["suffix"], where + ".suffix",
                     "must not be empty, because an empty suffix matches every event");
      }
    } else if (n["equals"] || n["suffix"]) {
      return error(n, where, "equals and suffix apply only to a field rule");
    }
    if (n["vlan"]) {
      if (!(st = readNumber<int>(n, where, "vlan", 1, 4094, rule.vlan)).ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status readTenantQuota(const YAML::Node& n, const std::string& where,
                               TenantQuotaConfig& quota) const {
    if (auto st = checkKeys(n, where, {"tenant", "max_events_per_second", "burst"}); !st.ok()) {
      return st;
    }
    absl::Status st;
    if (!(st = readString(n, where, "tenant", quota.tenant)).ok()) return st;
    if (quota.tenant.empty()) {
      return error(n, where + ".tenant", "missing; every quota names the tenant it limits");
    }
    if (absl::Status valid = validateTenantName(quota.tenant); !valid.ok()) {
      return error(n["tenant"], where + ".tenant", std::string(valid.message()));
    }
    if (!n["max_events_per_second"]) {
      return error(n, where + ".max_events_per_second",
                   "missing; give the sustained rate in events per second, e.g. 5000");
    }
    if (!(st = readNumber<double>(n, where, "max_events_per_second", kMinQuotaRate, kMaxQuotaRate,
                                  quota.max_events_per_second)).ok()) {
      return st;
    }
    if (!(st = readNumber<double>(n, where, "burst", 1, kMaxQuotaRate, quota.burst)).ok()) {
      return st;
    }
    if (quota.burst == 0) quota.burst = std::max(1.0, quota.max_events_per_second);
    return absl::OkStatus();
  }

  // A socket that vigild binds: a udp, tcp or tls source, or the API.
  struct Listener {
    std::string key;       // the dotted key, e.g. sources[1].listen
    std::string owner;     // e.g. "tcp source 'syslog'" or "the API"
    std::string protocol;  // "UDP" or "TCP"; tcp and tls sources and the API use TCP
    std::string listen;    // host:port as written
    YAML::Node node;
  };

  // Fails when `listener` cannot bind beside one in `earlier`: the same protocol and port,
  // and the same address, or a wildcard address (0.0.0.0 or ::) of the same IP family,
  // which binds every address of that family. UDP and TCP never conflict. Appends
  // `listener` to `earlier` otherwise.
  absl::Status addListener(Listener listener, std::vector<Listener>& earlier) const {
    std::string host;
    uint16_t port = 0;
    std::optional<IpAddr> addr;
    if (splitHostPort(listener.listen, host, port)) addr = parseIp(host);
    if (!addr) {
      earlier.push_back(std::move(listener));  // readListen() reports the bad address
      return absl::OkStatus();
    }
    auto isWildcard = [](const IpAddr& ip) { return ip.isV4() ? ip.v4() == 0 : ip == IpAddr{}; };
    for (const Listener& other : earlier) {
      std::string other_host;
      uint16_t other_port = 0;
      if (other.protocol != listener.protocol ||
          !splitHostPort(other.listen, other_host, other_port) || other_port != port) {
        continue;
      }
      std::optional<IpAddr> other_addr = parseIp(other_host);
      if (!other_addr || other_addr->isV4() != addr->isV4()) continue;
      if (*other_addr == *addr) {
        return error(listener.node, listener.key,
                     absl::StrCat("'", listener.listen, "' is already used by the ", other.owner,
                                  " (", other.key, "); give each ", listener.protocol,
                                  " listener its own address or port"));
      }
      if (isWildcard(*addr) || isWildcard(*other_addr)) {
        const std::string& wildcard = isWildcard(*addr) ? host : other_host;
        return error(
            listener.node, listener.key,
            absl::StrCat("'", listener.listen, "' overlaps '", other.listen, "' of the ",
                         other.owner, " (", other.key, "), because ", wildcard, " binds every ",
                         addr->isV4() ? "IPv4" : "IPv6", " address; give each ", listener.protocol,
                         " listener its own port"));
      }
    }
    earlier.push_back(std::move(listener));
    return absl::OkStatus();
  }

  absl::Status readDaemon(const YAML::Node& root, DaemonConfig& c) const {
    static const std::set<std::string> kTop = {"daemon", "pipeline", "sources", "intel",
                                               "rules", "alerts", "api", "state_dir",
                                               "tenants", "tenant_quotas", "cases",
                                               "playbooks"};
    if (auto st = checkKeys(root, "", kTop); !st.ok()) return st;
    absl::Status st;
    std::vector<Listener> listeners;

    if (YAML::Node d = root["daemon"]) {
      if (!(st = checkKeys(d, "daemon", {"log_level", "state_dir", "drain_timeout_s"})).ok()) {
        return st;
      }
      if (!(st = readNumber<int>(d, "daemon", "drain_timeout_s", 0, 3600, c.drain_timeout_s))
               .ok()) {
        return st;
      }
      if (!(st = readChoice(d, "daemon", "log_level",
                            {"trace", "debug", "info", "warn", "error", "critical"}, c.log_level)).ok()) return st;
      if (!(st = readString(d, "daemon", "state_dir", c.state_dir)).ok()) return st;
    }
    if (root["state_dir"] && root["daemon"] && root["daemon"]["state_dir"]) {
      return error(root["state_dir"], "state_dir",
                   "also given as daemon.state_dir; keep one of the two, because vigild "
                   "would use only this one");
    }
    if (!(st = readString(root, "", "state_dir", c.state_dir)).ok()) return st;
    if (c.state_dir.empty()) {
      const YAML::Node empty_node = root["state_dir"] ? root["state_dir"] : root["daemon"]["state_dir"];
      return error(empty_node, root["state_dir"] ? "state_dir" : "daemon.state_dir",
                   "is empty; name the folder where vigild keeps its state");
    }
    c.state_dir = resolve(c.state_dir);
    if (root["state_dir"]) {
      c.state_dir_key.text =
          absl::StrCat(origin, ":", root["state_dir"].Mark().line + 1, ": state_dir");
    } else if (root["daemon"] && root["daemon"]["state_dir"]) {
      c.state_dir_key.text = absl::StrCat(origin, ":", root["daemon"]["state_dir"].Mark().line + 1,
                                          ": daemon.state_dir");
    }

    if (YAML::Node p = root["pipeline"]) {
      if (!(st = checkKeys(p, "pipeline", {"workers", "shards", "batch_size", "max_keys_per_rule",
                                           "default_utc_offset_s", "allowed_lateness_s",
                                           "max_keys_per_tenant", "checkpoint_interval_s"})).ok()) return st;
      if (!(st = readNumber<int>(p, "pipeline", "checkpoint_interval_s", 0, 86400, c.checkpoint_interval_s)).ok()) return st;
      if (!(st = readNumber<size_t>(p, "pipeline", "workers", 1, 256, c.workers)).ok()) return st;
      if (!(st = readNumber<size_t>(p, "pipeline", "shards", 1, 64, c.shards)).ok()) return st;
      if (!(st = readNumber<size_t>(p, "pipeline", "batch_size", 1, 4096, c.batch_size)).ok()) return st;
      if (!(st = readNumber<size_t>(p, "pipeline", "max_keys_per_rule", 1, 100000000, c.max_keys_per_rule)).ok()) return st;
      if (!(st = readNumber<int32_t>(p, "pipeline", "default_utc_offset_s", -14 * 3600, 14 * 3600, c.default_utc_offset_s)).ok()) return st;
      if (!(st = readNumber<int>(p, "pipeline", "allowed_lateness_s", 0, 86400, c.allowed_lateness_s)).ok()) return st;
      if (!(st = readNumber<size_t>(p, "pipeline", "max_keys_per_tenant", 0, 100000000, c.max_keys_per_tenant)).ok()) return st;
    }

    if (YAML::Node s = root["sources"]) {
      if (!s.IsSequence()) return error(s, "sources", "must be a list of sources");
      std::set<std::string> names;
      for (size_t i = 0; i < s.size(); ++i) {
        SourceConfig src;
        std::string where = absl::StrCat("sources[", i, "]");
        if (!(st = readSource(s[i], where, src)).ok()) return st;
        src.where.text = absl::StrCat(origin, ":", s[i].Mark().line + 1, ": ", where);
        if (!names.insert(src.name).second) {
          return error(s[i], where + ".name", absl::StrCat("'", src.name, "' is used by two sources"));
        }
        if (!src.listen.empty()) {
          Listener listener{where + ".listen", absl::StrCat(src.type, " source '", src.name, "'"),
                            src.type == "udp" ? "UDP" : "TCP", src.listen,
                            s[i]["listen"] ? s[i]["listen"] : s[i]};
          if (!(st = addListener(std::move(listener), listeners)).ok()) return st;
        }
        c.sources.push_back(std::move(src));
      }
    }

    if (YAML::Node t = root["tenants"]) {
      if (!t.IsSequence()) {
        return error(t, "tenants", "must be a list of {cidr|field|vlan, tenant} rules");
      }
      for (size_t i = 0; i < t.size(); ++i) {
        TenantRuleConfig rule;
        if (!(st = readTenantRule(t[i], absl::StrCat("tenants[", i, "]"), rule)).ok()) return st;
        c.tenant_rules.push_back(std::move(rule));
      }
    }

    if (YAML::Node q = root["tenant_quotas"]) {
      if (!q.IsSequence()) {
        return error(q, "tenant_quotas",
                     "must be a list of {tenant, max_events_per_second, burst} entries");
      }
      std::set<std::string> tenants;
      for (size_t i = 0; i < q.size(); ++i) {
        TenantQuotaConfig quota;
        std::string where = absl::StrCat("tenant_quotas[", i, "]");
        if (!(st = readTenantQuota(q[i], where, quota)).ok()) return st;
        if (!tenants.insert(quota.tenant).second) {
          return error(q[i], where + ".tenant",
                       absl::StrCat("'", quota.tenant, "' already has a quota; keep one entry"));
        }
        c.tenant_quotas.push_back(std::move(quota));
      }
    }

    if (YAML::Node in = root["intel"]) {
      if (!(st = readIntel(in, c)).ok()) return st;
    }

    if (YAML::Node r = root["rules"]) {
      if (!(st = checkKeys(r, "rules", {"paths", "field_mapping", "logsources"})).ok()) return st;
      if (!(st = readStringList(r, "rules", "paths", c.rule_paths)).ok()) return st;
      for (auto& p : c.rule_paths) p = resolve(p);
      if (YAML::Node paths = r["paths"]) {
        c.rule_paths_key.text = absl::StrCat(origin, ":", paths.Mark().line + 1, ": rules.paths");
      }
      if (YAML::Node fm = r["field_mapping"]) {
        if (!fm.IsMap()) return error(fm, "rules.field_mapping", "must map Sigma field names to event fields");
        for (const auto& kv : fm) {
          if (!kv.second.IsScalar()) {
            return error(kv.second, "rules.field_mapping." + kv.first.as<std::string>(), "must be a field name");
          }
          c.field_mapping[kv.first.as<std::string>()] = kv.second.as<std::string>();
        }
      }
      if (YAML::Node ls = r["logsources"]) {
        if (!(st = readLogSources(ls, c.logsources)).ok()) return st;
      }
    }

    if (YAML::Node a = root["alerts"]) {
      if (!(st = checkKeys(a, "alerts", {"output"})).ok()) return st;
      if (!(st = readString(a, "alerts", "output", c.alerts_output)).ok()) return st;
      if (c.alerts_output != "stdout") c.alerts_output = resolve(c.alerts_output);
      if (a["output"]) {
        c.alerts_output_key.text =
            absl::StrCat(origin, ":", a["output"].Mark().line + 1, ": alerts.output");
      }
    }

    if (YAML::Node api = root["api"]) {
      if (!(st = checkKeys(api, "api",
                           {"enabled", "listen", "case_db", "tls", "metrics_public_on_loopback"}))
               .ok()) {
        return st;
      }
      if (YAML::Node e = api["enabled"]) {
        try {
          c.api_enabled = e.as<bool>();
        } catch (const YAML::Exception&) {
          return error(e, "api.enabled", absl::StrCat("'", e.Scalar(), "' is not true or false"));
        }
      }
      if (!(st = readListen(api, "api", "listen", c.api_listen)).ok()) return st;
      if (!(st = readString(api, "api", "case_db", c.case_db)).ok()) return st;
      if (api["case_db"]) {
        c.case_db_key.text =
            absl::StrCat(origin, ":", api["case_db"].Mark().line + 1, ": api.case_db");
      }
      if (!(st = readApiTls(api, c)).ok()) return st;
      if (YAML::Node m = api["metrics_public_on_loopback"]) {
        try {
          c.api_metrics_public_on_loopback = m.as<bool>();
        } catch (const YAML::Exception&) {
          return error(m, "api.metrics_public_on_loopback",
                       absl::StrCat("'", m.Scalar(), "' is not true or false"));
        }
      }
    }
    if (c.api_enabled && c.api_tls_certificate.empty()) {
      std::string host;
      uint16_t port = 0;
      splitHostPort(c.api_listen, host, port);
      if (!internal::isLoopbackAddress(host)) {
        YAML::Node where = root["api"] && root["api"]["listen"] ? root["api"]["listen"] : root;
        return error(where, "api.listen",
                     absl::StrCat("'", c.api_listen,
                                  "' is not a loopback address, and plain HTTP would send API "
                                  "tokens in clear text; set api.tls.certificate and "
                                  "api.tls.private_key, or listen on 127.0.0.1 or [::1]"));
      }
    }
    if (c.api_enabled) {
      YAML::Node node = root["api"] && root["api"]["listen"] ? root["api"]["listen"] : root;
      if (!(st = addListener({"api.listen", "the API", "TCP", c.api_listen, node}, listeners))
               .ok()) {
        return st;
      }
    }
    c.case_db = c.case_db.empty() ? (std::filesystem::path(c.state_dir) / "cases.db").string()
                                  : resolve(c.case_db);
    if (!(st = readCases(root, c)).ok()) return st;
    if (YAML::Node pb = root["playbooks"]) {
      if (!(st = parsePlaybookConfig(pb, origin, base_dir, c.state_dir, c.playbooks)).ok()) {
        return st;
      }
    }
    // The default-case playbook runs without a `playbooks:` section too.
    if (c.playbooks.db.empty()) {
      c.playbooks.db = (std::filesystem::path(c.state_dir) / "runs.db").string();
    }
    return absl::OkStatus();
  }

  // A duration such as "15m", "4h" or "1h30m" (absl::ParseDuration), positive.
  absl::Status readDuration(const YAML::Node& map, const std::string& where, const char* key,
                            int64_t& out_ns) const {
    YAML::Node n = map[key];
    if (!n) return absl::OkStatus();
    absl::Duration d;
    if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) || d <= absl::ZeroDuration()) {
      return error(
          lineNode(map, key, n), keyPath(where, key),
          absl::StrCat(describe(n), " is not a positive duration; use e.g. 15m, 4h or 1h30m"));
    }
    out_ns = absl::ToInt64Nanoseconds(d);
    return absl::OkStatus();
  }

  // cases: {evidence_dir, evidence_max_bytes, sla: {<severity>: {acknowledge, resolve}}}
  absl::Status readCases(const YAML::Node& root, DaemonConfig& c) const {
    absl::Status st;
    if (YAML::Node cases = root["cases"]) {
      if (!(st = checkKeys(cases, "cases", {"evidence_dir", "evidence_max_bytes", "sla"})).ok()) {
        return st;
      }
      if (!(st = readString(cases, "cases", "evidence_dir", c.evidence_dir)).ok()) return st;
      if (cases["evidence_dir"]) {
        c.evidence_dir_key.text = absl::StrCat(origin, ":", cases["evidence_dir"].Mark().line + 1,
                                               ": cases.evidence_dir");
      }
      if (!(st = readNumber<int64_t>(cases, "cases", "evidence_max_bytes", 1, int64_t{1} << 30,
                                     c.evidence_max_bytes))
               .ok()) {
        return st;
      }
      if (YAML::Node sla = cases["sla"]) {
        if (!(st = checkKeys(sla, "cases.sla",
                             {"informational", "low", "medium", "high", "critical"}))
                 .ok()) {
          return st;
        }
        for (const auto& kv : sla) {
          const std::string severity = kv.first.as<std::string>();
          const std::string where = "cases.sla." + severity;
          if (!(st = checkKeys(kv.second, where, {"acknowledge", "resolve"})).ok()) return st;
          SlaTarget& target = c.sla[static_cast<size_t>(parseSeverity(severity).value())];
          if (!(st = readDuration(kv.second, where, "acknowledge", target.acknowledge_ns)).ok()) {
            return st;
          }
          if (!(st = readDuration(kv.second, where, "resolve", target.resolve_ns)).ok()) return st;
        }
      }
    }
    c.evidence_dir = c.evidence_dir.empty()
                         ? (std::filesystem::path(c.state_dir) / "evidence").string()
                         : resolve(c.evidence_dir);
    return absl::OkStatus();
  }
};

// Returns a hint for a YAML error at the 0-based line `error_line` when that line or the
// one before it is indented with a tab, which YAML does not allow, otherwise "".
std::string tabHint(const std::string& text, int error_line) {
  std::istringstream lines(text);
  std::string line;
  for (int i = 0; std::getline(lines, line) && i <= error_line; ++i) {
    if (i < error_line - 1) continue;
    const size_t indent_end = line.find_first_not_of(" \t");
    if (line.substr(0, indent_end).find('\t') != std::string::npos) {
      return absl::StrCat("; line ", i + 1,
                          " is indented with a tab, and YAML allows only spaces for indentation");
    }
  }
  return "";
}

}  // namespace

bool splitHostPort(const std::string& text, std::string& host, uint16_t& port) {
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = text.substr(0, colon);
    if (host.find(':') != std::string::npos) return false;  // IPv6 needs brackets
  }
  std::string digits = text.substr(colon + 1);
  if (digits.empty() || digits.size() > 5) return false;
  unsigned value = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + static_cast<unsigned>(ch - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

const std::vector<std::string>& formatNames() {
  static const std::vector<std::string> kNames = {"auto", "rfc3164", "rfc5424",
                                                  "json", "cef",     "leef"};
  return kNames;
}

std::optional<dataplane::Format> formatFromName(std::string_view name) {
  if (name == "auto") return dataplane::Format::kAuto;
  if (name == "rfc3164") return dataplane::Format::kRfc3164;
  if (name == "rfc5424") return dataplane::Format::kRfc5424;
  if (name == "json") return dataplane::Format::kJson;
  if (name == "cef") return dataplane::Format::kCef;
  if (name == "leef") return dataplane::Format::kLeef;
  return std::nullopt;
}

absl::StatusOr<DaemonConfig> parseConfig(const std::string& yaml_text, const std::string& origin,
                                         const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1,
                                                   ": invalid YAML: ", yamlErrorText(e),
                                                   tabHint(yaml_text, e.mark.line)));
  }
  DaemonConfig config;
  config.config_path = origin;
  if (!root || root.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin,
                     ": empty configuration; give at least the sources to read, e.g. "
                     "sources: [{name: syslog, type: udp, listen: '127.0.0.1:5514'}], and "
                     "rules.paths; configs/demo/vigil.yaml is a complete example"));
  }
  Reader reader;
  reader.origin = origin;
  reader.base_dir = base_dir;
  try {
    if (auto st = reader.readDaemon(root, config); !st.ok()) return st;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
  return config;
}

absl::StatusOr<DaemonConfig> loadConfig(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config path ", path, " is a directory; give the YAML file, e.g. ", path, "/vigil.yaml"));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path,
                                            ": check the path given to --config"));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string base = std::filesystem::absolute(path).parent_path().string();
  return parseConfig(text.str(), path, base);
}

}  // namespace vigil::mgmt
