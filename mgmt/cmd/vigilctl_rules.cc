// "vigilctl rules test": loads Sigma rules and runs them offline over a file of events,
// printing every match and every correlation alert as one JSON line, so a rule can be
// checked against recorded events without starting vigild.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/event.h"
#include "common/ip.h"
#include "common/json_depth.h"
#include "common/metrics.h"
#include "common/regular_file.h"
#include "common/time.h"
#include "correlate/engine.h"
#include "correlate/rules.h"
#include "dataplane/parser.h"
#include "mgmt/cmd/vigilctl_client.h"
#include "mgmt/config.h"
#include "mgmt/rule_reloader.h"

namespace vigil::ctl {
namespace {

struct RulesTestOptions {
  std::vector<std::string> paths;  // rule files or folders, then the events file last
  std::string format;              // empty: the events are JSON lines
  std::string tenant = "default";
  int allowed_lateness_s = 0;  // as pipeline.allowed_lateness_s in vigild's configuration
};

// Exit status when rules or events had errors (the rest still ran).
constexpr int kInputErrors = 1;
// Bytes of arena per event: a JSON line is copied once and its decoded values again.
constexpr size_t kArenaPerLineFactor = 3;

// ---------------------------------------------------------------------------------------
// Events from the JSON lines that "vigilctl parse" prints

template <typename T>
std::optional<T> readNumber(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Sets the canonical member `name` from its text. Returns false for a value the member
// cannot hold, such as an invalid address.
bool setCanonical(Event& event, std::string_view name, std::string_view value) {
  Arena& arena = event.arena;
  if (name == "@timestamp") {
    std::optional<int64_t> ns = parseRfc3339(value);
    if (ns) event.timestamp_ns = *ns;
    return ns.has_value();
  }
  if (name == "event.created") {
    std::optional<int64_t> ns = parseRfc3339(value);
    if (ns) event.receive_ns = *ns;
    return ns.has_value();
  }
  if (name == "source.ip" || name == "destination.ip") {
    std::optional<IpAddr> addr = parseIp(value);
    (name == "source.ip" ? event.src_ip : event.dst_ip) = addr;
    return addr.has_value();
  }
  if (name == "source.port" || name == "destination.port") {
    std::optional<uint16_t> port = readNumber<uint16_t>(value);
    (name == "source.port" ? event.src_port : event.dst_port) = port.value_or(0);
    return port.has_value();
  }
  if (name == "log.syslog.facility.code" || name == "log.syslog.severity.code") {
    std::optional<int16_t> code = readNumber<int16_t>(value);
    (name == "log.syslog.facility.code" ? event.facility : event.severity) = code.value_or(-1);
    return code.has_value();
  }
  const std::pair<std::string_view, std::string_view*> kText[] = {
      {"host.name", &event.host},      {"process.name", &event.app},
      {"process.pid", &event.procid},  {"log.syslog.msgid", &event.msgid},
      {"message", &event.message},     {"user.name", &event.user},
      {"event.action", &event.action}, {"event.outcome", &event.outcome},
  };
  for (const auto& [text_name, member] : kText) {
    if (name == text_name) *member = arena.copy(value);
  }
  return true;
}

// Adds the scalar leaves of a JSON document that is not parse output, named by their
// own key ("Event.EventData.Image" becomes "Image"), as Sigma rules name them.
void addLeaves(Event& event, const nlohmann::json& node, const std::string& name) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) addLeaves(event, value, key);
    return;
  }
  if (node.is_null() || node.is_array()) return;
  std::string text = node.is_string() ? node.get<std::string>() : node.dump();
  event.addField(event.arena.copy(name), event.arena.copy(text));
}

// Fills `event` from one JSON line. Returns an error text, or an empty string.
std::string fillFromJson(Event& event, std::string_view line, std::string_view tenant) {
  // addLeaves() recurses once per level.
  if (jsonNestsDeeper(line)) {
    return absl::StrCat("nests arrays and objects deeper than ", kMaxJsonDepth, " levels");
  }
  nlohmann::json document = nlohmann::json::parse(line, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    return "is not a JSON object; give JSON lines as vigilctl parse prints them, or raw log "
           "lines with --format";
  }
  event.tenant = tenant;
  const bool parse_output = document.contains("raw") && document.contains("fields");
  event.raw = event.arena.copy(parse_output && document["raw"].is_string()
                                   ? document["raw"].get<std::string>()
                                   : std::string(line));
  if (!parse_output) {
    addLeaves(event, document, "");
    // The event time from @timestamp, timestamp or ts, the members vigild's JSON parser reads.
    for (const char* key : {"@timestamp", "timestamp", "ts"}) {
      auto it = document.find(key);
      if (it == document.end() || !it->is_string()) continue;
      if (std::optional<int64_t> ns = parseRfc3339(it->get<std::string>())) {
        event.timestamp_ns = *ns;
        break;
      }
    }
    return "";
  }
  for (std::string_view name : Event::canonicalNames()) {
    auto it = document.find(std::string(name));
    if (it == document.end() || !it->is_string()) continue;
    std::string value = it->get<std::string>();
    if (name == "tenant") {
      event.tenant = event.arena.copy(value);
    } else if (!setCanonical(event, name, value)) {
      return absl::StrCat("member '", std::string(name), "' has the invalid value '", value, "'");
    }
  }
  for (const nlohmann::json& field : document["fields"]) {
    if (!field.is_object() || !field.contains("name") || !field.contains("value") ||
        !field["name"].is_string() || !field["value"].is_string()) {
      return "'fields' entries must be {\"name\": ..., \"value\": ...} strings";
    }
    event.addField(event.arena.copy(field["name"].get<std::string>()),
                   event.arena.copy(field["value"].get<std::string>()));
  }
  if (auto sd = document.find("structured_data"); sd != document.end() && sd->is_string()) {
    event.structured_data = event.arena.copy(sd->get<std::string>());
  }
  return "";
}

// ---------------------------------------------------------------------------------------
// The run

correlate::EngineOptions engineOptions(const RulesTestOptions& options) {
  correlate::EngineOptions engine;
  engine.allowed_lateness_ns = int64_t{options.allowed_lateness_s} * 1'000'000'000;
  return engine;
}

class RuleTester {
 public:
  RuleTester(std::shared_ptr<const correlate::RuleSet> rules, const RulesTestOptions& options)
      : rules_(rules),
        engine_(rules, engineOptions(options), &metrics_),
        scratch_(*rules),
        tenant_(options.tenant) {
    if (!options.format.empty()) {
      parse_options_.format =
          mgmt::formatFromName(options.format).value_or(dataplane::Format::kAuto);
      raw_ = true;
    }
  }

  // Runs one line; returns an error text for a line that is not a valid event.
  std::string runLine(std::string_view line, size_t number) {
    Event& event = eventFor(line.size());
    event.reset();
    event.arena.reset();
    if (raw_) {
      event.raw = event.arena.copy(line);
      event.tenant = tenant_;
      dataplane::parseEvent(event, parse_options_);
    } else {
      std::string error = fillFromJson(event, line, tenant_);
      if (!error.empty()) return error;
    }
    ++events_;
    if (event.timestamp_ns == 0 && event.receive_ns == 0) ++untimed_;
    // Windows that close on the watermark (absence, upper bounds) are decided as the event
    // times advance, before the event's own updates, as in the pipeline.
    std::vector<correlate::Alert> closed;
    engine_.advanceTime(0, event, closed);
    for (const correlate::Alert& alert : closed) printAlert(alert, number);
    std::array<uint32_t, 256> found;
    size_t count = engine_.detect(event, scratch_, found);
    for (size_t i = 0; i < count; ++i) report(found[i], event, number);
    return "";
  }

  void printSummary(std::ostream& out, size_t rule_errors, size_t event_errors) const {
    out << "vigilctl: " << rules_->detections.size() << " detection rules, "
        << rules_->correlations.size() << " correlation rules, " << rule_errors << " rule errors; "
        << events_ << " events, " << event_errors << " invalid lines, " << matches_ << " matches, "
        << alerts_ << " correlation alerts\n";
    for (const auto& [rule, count] : per_rule_) {
      out << "vigilctl:   " << count << "  " << rule << "\n";
    }
    if (untimed_ > 0 && !rules_->correlations.empty()) {
      out << "vigilctl: " << untimed_ << " of " << events_
          << " events have no time (@timestamp, timestamp or ts in RFC 3339, or --format for "
             "raw lines), so they all count at 1970-01-01T00:00:00Z and correlation windows "
             "do not separate them\n";
    }
  }

 private:
  Event& eventFor(size_t line_bytes) {
    size_t arena_bytes = std::max<size_t>(line_bytes * kArenaPerLineFactor + 4096, 1 << 16);
    if (!event_ || event_capacity_ < arena_bytes) {
      event_ = std::make_unique<Event>(arena_bytes);
      event_capacity_ = arena_bytes;
    }
    return *event_;
  }

  void report(uint32_t detection, const Event& event, size_t number) {
    const correlate::DetectionRule& rule = rules_->detections[detection];
    ++matches_;
    ++per_rule_[absl::StrCat(rule.id.empty() ? rule.title : rule.id, " (", rule.origin, ")")];
    // rule_id is the rule's label (id, else title), as in correlation alerts.
    nlohmann::json match = {{"type", "match"},
                            {"line", number},
                            {"rule_id", correlate::ruleLabel(rule.id, rule.title)},
                            {"title", rule.title},
                            {"level", rule.level},
                            {"origin", rule.origin}};
    std::cout << match.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    std::vector<correlate::Alert> alerts;
    for (uint32_t correlation : engine_.correlationsFor(detection)) {
      engine_.correlate(engine_.shardOf(correlation, detection, event), correlation, detection,
                        event, alerts);
    }
    for (const correlate::Alert& alert : alerts) printAlert(alert, number);
  }

  void printAlert(const correlate::Alert& alert, size_t number) {
    ++alerts_;
    nlohmann::json printed = nlohmann::json::parse(correlate::alertToJson(alert));
    printed["type"] = "correlation_alert";
    printed["line"] = number;
    std::cout << printed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }

  std::shared_ptr<const correlate::RuleSet> rules_;
  MetricsRegistry metrics_;
  correlate::Engine engine_;
  correlate::DetectScratch scratch_;
  std::string tenant_;
  bool raw_ = false;
  dataplane::ParseOptions parse_options_;
  std::unique_ptr<Event> event_;
  size_t event_capacity_ = 0;
  size_t events_ = 0;
  size_t untimed_ = 0;  // events with neither an event time nor a receive time
  size_t matches_ = 0;
  size_t alerts_ = 0;
  std::map<std::string, size_t> per_rule_;
};

void runRulesTest(const RulesTestOptions& options) {
  if (!options.format.empty() && !mgmt::formatFromName(options.format)) {
    fail(absl::StrCat("--format '", options.format, "' is invalid; use one of ",
                      absl::StrJoin(mgmt::formatNames(), ", ")),
         2);
  }
  if (options.tenant.empty()) fail("--tenant must not be empty", 2);
  if (options.paths.size() < 2) {
    fail(
        "give at least one rule file and the events file: vigilctl rules test RULE.yml... "
        "EVENTS",
        2);
  }
  const std::string& events_path = options.paths.back();
  std::vector<std::string> rule_paths(options.paths.begin(), options.paths.end() - 1);

  // Folders expand as vigild expands rules.paths, so a folder without rule files fails
  // here as it fails the daemon's start, instead of testing zero rules.
  absl::StatusOr<std::vector<std::string>> files = mgmt::expandRulePaths(rule_paths);
  if (!files.ok()) {
    std::string message(files.status().message());
    constexpr std::string_view kPrefix = "rules.paths: ";
    if (message.starts_with(kPrefix)) message.erase(0, kPrefix.size());
    fail(message, 2);
  }

  correlate::RuleLoader loader;
  size_t rule_errors = 0;
  for (const std::string& file : *files) {
    absl::Status status = loader.addFile(file);
    if (status.ok()) continue;
    ++rule_errors;
    std::cerr << "vigilctl: rule error: " << status.message() << "\n";
  }
  for (const std::string& warning : loader.warnings()) {
    std::cerr << "vigilctl: rule warning: " << warning << "\n";
  }
  absl::StatusOr<correlate::RuleSet> loaded = loader.finish();
  if (!loaded.ok()) fail(absl::StrCat("rule error: ", loaded.status().message()));
  auto rules = std::make_shared<const correlate::RuleSet>(std::move(*loaded));

  // An ifstream opens a folder and then reads nothing, and waits in open() for the writer
  // of a FIFO. So the events file must be a regular file.
  OpenedFile checked = openRegularFile(events_path);
  if (checked.ok()) ::close(checked.fd);
  if (checked.error == 0 && S_ISDIR(checked.mode)) {
    fail(absl::StrCat("cannot read ", events_path, ": it is a folder; give one events file"), 2);
  }
  if (checked.error == 0 && !checked.ok()) {
    fail(absl::StrCat("cannot read ", events_path, ": it is not a regular file (",
                      fileTypeName(checked.mode), "); give one events file"),
         2);
  }
  std::ifstream in(events_path, std::ios::binary);
  if (!in) {
    fail(absl::StrCat("cannot read ", events_path, ": ", std::strerror(errno),
                      "; check the file name"),
         2);
  }
  // Without this, a read error (EIO from /proc/self/mem, say) ends getline() like the end
  // of the file and the command exits 0.
  in.exceptions(std::ios::badbit);
  RuleTester tester(rules, options);
  size_t event_errors = 0;
  std::string line;
  size_t number = 0;
  try {
    while (std::getline(in, line)) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::string error = tester.runLine(line, number);
      if (error.empty()) continue;
      ++event_errors;
      std::cerr << "vigilctl: " << events_path << ":" << number << ": " << error << "\n";
    }
  } catch (const std::ios_base::failure& e) {
    std::cout.flush();
    fail(absl::StrCat("failed to read ", events_path, " after line ", number, ": ",
                      e.code().message()),
         2);
  }
  tester.printSummary(std::cerr, rule_errors, event_errors);
  std::cout.flush();
  if (rule_errors > 0 || event_errors > 0) std::exit(kInputErrors);
}

}  // namespace

void registerRulesCommands(CLI::App& app) {
  auto options = std::make_shared<RulesTestOptions>();
  CLI::App* rules = app.add_subcommand("rules", "work with Sigma rules offline");
  rules->require_subcommand(1);
  CLI::App* test = rules->add_subcommand(
      "test",
      "run Sigma rules over a file of events; print each match and correlation alert as a "
      "JSON line and a summary on stderr; exit 1 when a rule or event line is invalid");
  test->add_option("--format", options->format,
                   "read the events as raw log lines in this format (auto, rfc3164, rfc5424, "
                   "json, cef or leef) instead of JSON lines as vigilctl parse prints them");
  test->add_option("--tenant", options->tenant,
                   "tenant of events that carry none (default: default)");
  test->add_option("--allowed-lateness-s", options->allowed_lateness_s,
                   "seconds that events may arrive out of order, as pipeline.allowed_lateness_s "
                   "in vigild's configuration (0 to 86400, default 0); give the same value to "
                   "get the alerts vigild raises")
      ->check(CLI::Range(0, 86400));
  test->add_option("files", options->paths,
                   "rule files or folders of *.yml, then the events file last")
      ->required();
  test->callback([options] { runRulesTest(*options); });
}

}  // namespace vigil::ctl
