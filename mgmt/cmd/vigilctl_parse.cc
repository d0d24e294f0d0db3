// "vigilctl parse": runs the pipeline's parser over a file offline and prints each event
// as one JSON line, so a new log format can be checked without starting vigild.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/event.h"
#include "common/metrics.h"
#include "common/regular_file.h"
#include "common/time.h"
#include "dataplane/framing.h"
#include "dataplane/parser.h"
#include "mgmt/cmd/vigilctl_client.h"
#include "mgmt/config.h"

namespace vigil::ctl {
namespace {

struct ParseCommandOptions {
  std::string format = "auto";
  std::string framing = "lf";
  std::string tenant = "default";
  size_t max_message_bytes = dataplane::kDefaultMaxMessageBytes;
  std::string receive_time;  // RFC 3339; empty: the current time for each event
  std::string path;
};

struct FlagName {
  EventFlag flag;
  const char* name;
};

constexpr FlagName kFlagNames[] = {
    {kFlagParseError, "parse_error"},         {kFlagTruncated, "truncated"},
    {kFlagInvalidUtf8, "invalid_utf8"},       {kFlagTimestampInvalid, "timestamp_invalid"},
    {kFlagMsgUtf8Bom, "msg_utf8_bom"},        {kFlagNoHostname, "no_hostname"},
    {kFlagFieldsOverflow, "fields_overflow"}, {kFlagArenaFull, "arena_full"},
    {kFlagYearInferred, "year_inferred"},     {kFlagHitsOverflow, "hits_overflow"},
    {kFlagJsonPayload, "json_payload"},       {kFlagPriMissing, "pri_missing"},
    {kFlagZoneAssumed, "zone_assumed"},
};

dataplane::FramingMode framingFromName(const std::string& name) {
  if (name == "octet_counting") return dataplane::FramingMode::kOctetCounting;
  if (name == "auto") return dataplane::FramingMode::kAuto;
  return dataplane::FramingMode::kLf;
}

nlohmann::json eventToJson(const Event& event) {
  nlohmann::json out = nlohmann::json::object();
  std::array<char, 64> scratch;
  for (std::string_view name : Event::canonicalNames()) {
    std::optional<std::string_view> value = event.get(name, scratch);
    if (value) out[std::string(name)] = std::string(*value);
  }
  nlohmann::json fields = nlohmann::json::array();
  event.visitFields([&](const Field& field) {
    fields.push_back({{"name", std::string(field.name)}, {"value", std::string(field.value)}});
    return true;
  });
  out["fields"] = std::move(fields);
  nlohmann::json flags = nlohmann::json::array();
  for (const FlagName& f : kFlagNames) {
    if (event.has(f.flag)) flags.push_back(f.name);
  }
  out["flags"] = std::move(flags);
  out["format"] = std::string(formatName(event.format));
  if (!event.structured_data.empty()) out["structured_data"] = std::string(event.structured_data);
  out["raw"] = std::string(event.raw);
  // JSON text cannot carry invalid UTF-8, so `raw` shows such bytes as U+FFFD and
  // `raw_base64` holds the exact bytes.
  if (event.has(kFlagInvalidUtf8)) out["raw_base64"] = absl::Base64Escape(absl::string_view(event.raw.data(), event.raw.size()));
  return out;
}

// Parses one framed message the way the pipeline's analyze stage does and prints it.
class EventPrinter {
 public:
  EventPrinter(const ParseCommandOptions& options, MetricsRegistry& metrics)
      : event_(options.max_message_bytes * 2 + 4096),
        tenant_(options.tenant),
        // runParse() rejected a --receive-time that does not parse; empty gives nullopt.
        receive_ns_(parseRfc3339(options.receive_time)) {
    // runParse() rejected names that formatFromName() does not know.
    parse_options_.format =
        mgmt::formatFromName(options.format).value_or(dataplane::Format::kAuto);
    counters_.parsed = &metrics.counter("vigil_events_parsed_total", "");
    counters_.parse_errors = &metrics.counter("vigil_parse_errors_total", "");
    counters_.truncated = &metrics.counter("vigil_events_truncated_total", "");
    counters_.invalid_utf8 = &metrics.counter("vigil_events_invalid_utf8_total", "");
    counters_.missing_pri = &metrics.counter("vigil_events_missing_pri_total", "");
    counters_.zone_assumed = &metrics.counter("vigil_events_zone_assumed_total", "");
    counters_.fields_overflow = &metrics.counter("vigil_events_fields_overflow_total", "");
    counters_.arena_full = &metrics.counter("vigil_events_arena_full_total", "");
  }

  void print(const dataplane::Frame& frame) {
    event_.reset();
    event_.arena.reset();
    event_.raw = event_.arena.copy(frame.data);
    event_.receive_ns = receive_ns_.value_or(RealClock::instance().nowNs());
    event_.tenant = tenant_;
    if (frame.truncated) event_.flags |= kFlagTruncated;
    dataplane::parseEvent(event_, parse_options_);
    dataplane::countParseResult(event_, counters_);
    std::cout << eventToJson(event_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    ++events_;
  }

  size_t events() const { return events_; }

 private:
  Event event_;
  std::string tenant_;
  std::optional<int64_t> receive_ns_;
  dataplane::ParseOptions parse_options_;
  dataplane::ParseCounters counters_;
  size_t events_ = 0;
};

void checkChoice(const char* option, const std::string& value,
                 std::initializer_list<const char*> choices) {
  for (const char* choice : choices) {
    if (value == choice) return;
  }
  fail(absl::StrCat(option, " '", value, "' is invalid; use one of ", absl::StrJoin(choices, ", ")),
       2);
}

// Reads the whole log file at `path`. Exits 1 with the path and the reason when it cannot
// be opened, is not a regular file (a FIFO would block open()) or a read fails.
std::string readLogFile(const std::string& path) {
  OpenedFile file = openRegularFile(path);
  if (file.error != 0) {
    fail(absl::StrCat("cannot read ", path, ": ", std::strerror(file.error),
                      "; check the file name"));
  }
  if (S_ISDIR(file.mode)) {
    fail(absl::StrCat("cannot read ", path, ": it is a folder; give one log file"));
  }
  if (!file.ok()) {
    fail(absl::StrCat("cannot read ", path, ": it is not a regular file (", fileTypeName(file.mode),
                      "); give one log file"));
  }
  std::string data;
  int err = readToEnd(file.fd, data);
  ::close(file.fd);
  if (err != 0) {
    fail(absl::StrCat("failed to read ", path, ": ", std::strerror(err),
                      "; no events were printed"));
  }
  return data;
}

void runParse(const ParseCommandOptions& options) {
  if (!mgmt::formatFromName(options.format)) {
    fail(absl::StrCat("--format '", options.format, "' is invalid; use one of ",
                      absl::StrJoin(mgmt::formatNames(), ", ")),
         2);
  }
  checkChoice("--framing", options.framing, {"lf", "octet_counting", "auto"});
  if (options.tenant.empty()) fail("--tenant must not be empty", 2);
  if (!options.receive_time.empty() && !parseRfc3339(options.receive_time)) {
    fail(absl::StrCat("--receive-time '", options.receive_time,
                      "' is invalid; use an RFC 3339 time such as 2024-01-01T00:00:00Z"),
         2);
  }

  const std::string data = readLogFile(options.path);

  MetricsRegistry metrics;
  EventPrinter printer(options, metrics);
  dataplane::FramingOptions framing;
  framing.mode = framingFromName(options.framing);
  framing.max_message_bytes = options.max_message_bytes;
  dataplane::Framer framer(framing);

  auto framingError = [&](size_t offset) {
    fail(absl::StrCat(options.path, ": framing error near byte ", offset, ": ",
                      std::string(dataplane::framingErrorText(framer.error())), " (",
                      printer.events(), " events printed before it); check --framing"));
  };
  std::string_view rest = data;
  dataplane::Frame frame;
  while (!rest.empty()) {
    dataplane::FeedResult result = framer.feed(rest, frame);
    rest.remove_prefix(result.consumed);
    if (result.status == dataplane::FrameStatus::kFrame) {
      printer.print(frame);
    } else if (result.status == dataplane::FrameStatus::kError) {
      framingError(data.size() - rest.size());
    }
  }
  dataplane::FrameStatus last = framer.finish(frame);
  if (last == dataplane::FrameStatus::kFrame) printer.print(frame);
  if (last == dataplane::FrameStatus::kError) framingError(data.size());

  std::cerr << "vigilctl: " << printer.events() << " events, "
            << metrics.sum("vigil_events_parsed_total") << " parsed, "
            << metrics.sum("vigil_parse_errors_total") << " parse errors, "
            << metrics.sum("vigil_events_truncated_total") << " truncated, "
            << metrics.sum("vigil_events_invalid_utf8_total") << " with invalid UTF-8, "
            << metrics.sum("vigil_events_missing_pri_total") << " without PRI, "
            << metrics.sum("vigil_events_zone_assumed_total") << " with an assumed UTC zone, "
            << metrics.sum("vigil_events_fields_overflow_total") << " with overflow fields, "
            << metrics.sum("vigil_events_arena_full_total") << " with a full arena\n";
}

}  // namespace

void registerParseCommands(CLI::App& app) {
  auto options = std::make_shared<ParseCommandOptions>();
  CLI::App* parse = app.add_subcommand(
      "parse",
      "parse a log file offline with the pipeline's parser; print one JSON line per event");
  parse->add_option("--format", options->format,
                    "message format: auto (detected per message, the default), rfc3164, "
                    "rfc5424, json, cef or leef");
  parse->add_option("--framing", options->framing,
                    "how messages are split: lf (one per line, the default), octet_counting "
                    "(RFC 6587) or auto (picked by the first byte)");
  parse->add_option("--tenant", options->tenant,
                    "tenant written into every event (default: default)");
  parse
      ->add_option("--max-message-bytes", options->max_message_bytes,
                   "longer messages are cut and flagged truncated, in bytes (default: 65536)")
      ->check(CLI::Range(size_t{64}, size_t{16} << 20));
  parse->add_option("--receive-time", options->receive_time,
                    "receive time given to every event, as RFC 3339 (default: the current "
                    "time); RFC 3164 year inference and events without a time use it");
  parse->add_option("file", options->path, "the file to parse")->required();
  parse->callback([options] { runParse(*options); });
}

}  // namespace vigil::ctl
