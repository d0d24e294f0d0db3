// "vigilctl intel load": loads threat-intel feeds offline with the builder that vigild
// uses and prints, as JSON lines, what each feed gave per type, every rejection with its
// position and reason, and the figures of the snapshot that would be built.
// "vigilctl intel check": loads feeds the same way, parses each line of an events file as
// the pipeline does and prints each event's indicator matches as a JSON line.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "common/regular_file.h"
#include "dataplane/parser.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
namespace {

using json = nlohmann::json;

struct IntelLoadOptions {
  std::string format = "list";
  std::string name;
  std::vector<std::string> warninglists;
  std::vector<std::string> feeds;
  std::string csv_value;
  std::string csv_type;
  std::string csv_fixed_type;
  std::string csv_confidence;
  std::string csv_first_seen;
  std::string csv_last_seen;
  std::string csv_tags;
  std::string csv_url_path;
  char csv_delimiter = ',';
  bool csv_no_header = false;
  int min_ipv4_prefix = 8;
  int min_ipv6_prefix = 32;
  std::string events;  // intel check: the events file (one JSON object or log line per line)
};

// Largest event line "intel check" reads, as the daemon's default max_message_bytes.
constexpr size_t kMaxEventBytes = 8192;

// Most digits of a column index, as in vigild's configuration. A longer run of digits is
// a header name.
constexpr size_t kMaxColumnDigits = 6;

bool allDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// A CSV column option is a 0-based column index written as in vigild's configuration
// (all digits, such as 0), "#N" for the same index, or else a header name.
intel::CsvColumn csvColumn(const std::string& text) {
  intel::CsvColumn column;
  if (allDigits(text) && text.size() <= kMaxColumnDigits) {
    column.index = std::stoi(text);
  } else if (text.size() > 1 && text[0] == '#') {
    if (!absl::SimpleAtoi(text.substr(1), &column.index) || column.index < 0) {
      fail(absl::StrCat("invalid CSV column '", text,
                        "'; use a header name, a 0-based index N or #N with N >= 0"),
           2);
    }
  } else {
    column.name = text;
  }
  return column;
}

// Reads a whole feed file. Errors name the path and the reason, and a FIFO or another
// file that is not a regular file is rejected before it is opened for reading.
absl::StatusOr<std::string> readFeedFile(const std::string& path) {
  OpenedFile file = openRegularFile(path);
  if (file.error != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open feed ", path, ": ", std::strerror(file.error)));
  }
  if (!file.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file (",
                                                   fileTypeName(file.mode),
                                                   "); give the path of a feed file"));
  }
  std::string text;
  int err = readToEnd(file.fd, text);
  ::close(file.fd);
  if (err != 0) {
    return absl::DataLossError(
        absl::StrCat("failed to read feed ", path, ": ", std::strerror(err)));
  }
  return text;
}

// The feed name: --name, else the file or folder name with characters outside
// [A-Za-z0-9._-] replaced by '_', cut to 64 characters.
std::string feedName(const IntelLoadOptions& options, const std::string& path) {
  if (!options.name.empty()) return options.name;
  std::string name = std::filesystem::path(path).filename().string();
  if (name.empty()) name = std::filesystem::path(path).parent_path().filename().string();
  for (char& c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  if (name.empty()) name = "feed";
  return name.substr(0, 64);
}

json typeCounts(const std::array<size_t, intel::kIndicatorTypeCount>& counts) {
  json out = json::object();
  for (size_t t = 0; t < counts.size(); ++t) {
    if (counts[t] != 0) out[std::string(indicatorTypeName(static_cast<IndicatorType>(t)))] = counts[t];
  }
  return out;
}

void printRejections(const std::string& feed, const std::vector<intel::Rejection>& rejections) {
  for (const intel::Rejection& r : rejections) {
    std::cout << json{{"kind", "rejection"}, {"feed", feed}, {"location", r.location},
                      {"reason", r.reason}, {"text", r.text}}
                     .dump(-1, ' ', false, json::error_handler_t::replace)
              << "\n";
  }
}

absl::StatusOr<intel::LoadReport> loadFeed(intel::IndicatorSetBuilder& builder,
                                           const IntelLoadOptions& options,
                                           const std::string& name, const std::string& path) {
  if (options.format == "list") return builder.addListFile(name, path);
  if (options.format == "regex") return builder.addRegexListFile(name, path);
  if (options.format == "stix") return builder.addStixFile(name, path);
  if (options.format == "misp") {
    if (std::filesystem::is_directory(path)) return builder.addMispFeedFolder(name, path);
    return builder.addMispFile(name, path);
  }
  intel::CsvOptions csv;
  csv.delimiter = options.csv_delimiter;
  csv.header = !options.csv_no_header;
  csv.value = csvColumn(options.csv_value);
  if (!options.csv_type.empty()) csv.type = csvColumn(options.csv_type);
  if (!options.csv_confidence.empty()) csv.confidence = csvColumn(options.csv_confidence);
  if (!options.csv_first_seen.empty()) csv.first_seen = csvColumn(options.csv_first_seen);
  if (!options.csv_last_seen.empty()) csv.last_seen = csvColumn(options.csv_last_seen);
  if (!options.csv_tags.empty()) csv.tags = csvColumn(options.csv_tags);
  if (!options.csv_url_path.empty()) csv.url_path = csvColumn(options.csv_url_path);
  if (!options.csv_fixed_type.empty()) {
    for (size_t t = 0; t < intel::kIndicatorTypeCount; ++t) {
      if (indicatorTypeName(static_cast<IndicatorType>(t)) == options.csv_fixed_type) {
        csv.fixed_type = static_cast<IndicatorType>(t);
      }
    }
    if (!csv.fixed_type) {
      fail(absl::StrCat("invalid --csv-fixed-type '", options.csv_fixed_type,
                        "'; use ipv4, ipv6, cidr, domain, url, md5, sha1, sha256, email, "
                        "filename or regex"),
           2);
    }
  }
  absl::StatusOr<std::string> text = readFeedFile(path);
  if (!text.ok()) return text.status();
  // The file was read, so InvalidArgument comes from the options: a column name missing
  // from the header, a column index beyond the columns of the file, or an invalid --name.
  absl::StatusOr<intel::LoadReport> report = builder.addCsvText(name, *text, path, csv);
  if (report.status().code() == absl::StatusCode::kInvalidArgument) {
    fail(absl::StrCat(path, ": ", report.status().message()), 2);
  }
  return report;
}

// Loads the warninglists and feeds of `options`, prints their reports as "intel load"
// does (with `quiet`, only a count of rejections on stderr), and builds the snapshot. Exits 1 when the
// snapshot cannot be built. Sets `failed` when a feed or warninglist could not be read.
std::shared_ptr<const intel::IndicatorSet> loadFeeds(const IntelLoadOptions& options,
                                                     bool quiet, bool& failed) {
  if (options.format == "csv" && options.csv_value.empty()) {
    fail("--format csv needs --csv-value (a header name, or N or #N for the 0-based column N)", 2);
  }
  intel::BuilderOptions builder_options;
  builder_options.min_ipv4_prefix_len = static_cast<uint8_t>(options.min_ipv4_prefix);
  builder_options.min_ipv6_prefix_len = static_cast<uint8_t>(options.min_ipv6_prefix);
  intel::IndicatorSetBuilder builder(builder_options);

  for (const std::string& path : options.warninglists) {
    absl::StatusOr<intel::WarninglistReport> report = builder.addWarninglistFile(path);
    if (!report.ok()) {
      std::cerr << "vigilctl: " << report.status().message() << "\n";
      failed = true;
      continue;
    }
    if (quiet) continue;
    printRejections(report->list, report->rejections);
    std::cout << json{{"kind", "warninglist"}, {"list", report->list}, {"path", path},
                      {"type", report->type}, {"entries", report->entries},
                      {"rejected", report->rejected}}
                     .dump(-1, ' ', false, json::error_handler_t::replace)
              << "\n";
  }

  for (const std::string& path : options.feeds) {
    std::string name = feedName(options, path);
    absl::StatusOr<intel::LoadReport> report = loadFeed(builder, options, name, path);
    if (!report.ok()) {
      std::cerr << "vigilctl: " << report.status().message() << "\n";
      failed = true;
      continue;
    }
    if (quiet) {
      if (report->rejected > 0) {
        std::cerr << "vigilctl: " << name << ": " << report->rejected
                  << " records rejected; run vigilctl intel load for the reasons\n";
      }
      continue;
    }
    printRejections(name, report->rejections);
    json line = {{"kind", "feed"},
                 {"feed", name},
                 {"path", path},
                 {"format", options.format},
                 {"loaded", report->loaded},
                 {"loaded_by_type", typeCounts(report->loaded_by_type)},
                 {"duplicates", report->duplicates},
                 {"rejected", report->rejected},
                 {"expired", report->expired},
                 {"not_for_detection", report->not_for_detection},
                 {"unknown_types", report->unknown_types}};
    std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }

  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set = builder.build();
  if (!set.ok()) fail(absl::StrCat("building the snapshot failed: ", set.status().message()));
  return *set;
}

void runIntelLoad(const IntelLoadOptions& options) {
  bool failed = false;
  std::shared_ptr<const intel::IndicatorSet> set = loadFeeds(options, /*quiet=*/false, failed);
  const intel::IndicatorSetStats& stats = set->stats();
  std::cout << json{{"kind", "snapshot"},
                    {"indicators", set->size()},
                    {"by_type", typeCounts(stats.count_by_type)},
                    {"suppressed_by_warninglist", stats.suppressed_by_warninglist},
                    {"rejected_regexes", stats.rejected_regexes},
                    {"hyperscan_patterns", stats.pattern_count},
                    {"hyperscan_database_bytes", stats.hs_database_bytes}}
                   .dump(-1, ' ', false, json::error_handler_t::replace)
            << "\n";
  if (failed) fail("at least one feed or warninglist could not be read", 1);
}

json matchesToJson(const Event& event) {
  json matches = json::array();
  for (size_t i = 0; i < event.hit_count; ++i) {
    const IndicatorHit& hit = event.hits[i];
    matches.push_back({{"indicator", std::string(hit.indicator)},
                       {"type", std::string(indicatorTypeName(hit.type))},
                       {"lists", std::string(hit.list)},
                       {"field", std::string(hit.field)},
                       {"score", hit.score},
                       {"indicator_id", hit.indicator_id}});
  }
  return matches;
}

// Prints one line per event of `in`: {"line": N, "matches": [...]}, with
// "hits_overflow": true when the event had more hits than it can hold. `line_number` is
// the last line read, also when a read error ends the loop with an exception.
void checkEventLines(std::istream& in, const intel::IndicatorSet& set, size_t& line_number) {
  intel::Scratch scratch(set);
  Event event(kMaxEventBytes * 2 + 4096);
  dataplane::ParseOptions parse_options;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    json out = {{"line", line_number}};
    if (line.size() > kMaxEventBytes) {
      out["error"] = absl::StrCat("event longer than ", kMaxEventBytes, " bytes; not matched");
      std::cout << out.dump() << "\n";
      continue;
    }
    event.reset();
    event.arena.reset();
    event.raw = event.arena.copy(line);
    dataplane::parseEvent(event, parse_options);
    intel::matchEvent(set, scratch, event);
    out["matches"] = matchesToJson(event);
    if (event.has(kFlagHitsOverflow)) out["hits_overflow"] = true;
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
}

// Loads the feeds and prints the matches of each line of the events file.
void runIntelCheck(const IntelLoadOptions& options) {
  bool failed = false;
  std::shared_ptr<const intel::IndicatorSet> set = loadFeeds(options, /*quiet=*/true, failed);
  if (failed) fail("at least one feed or warninglist could not be read", 1);
  // An ifstream opens a folder and then reads nothing, as from an empty file, and waits
  // in open() for the writer of a FIFO. So the events file must be a regular file.
  OpenedFile checked = openRegularFile(options.events);
  if (checked.ok()) ::close(checked.fd);
  if (checked.error == 0 && S_ISDIR(checked.mode)) {
    fail(absl::StrCat("cannot read the events file ", options.events,
                      ": it is a folder; give one events file"),
         1);
  }
  if (checked.error == 0 && !checked.ok()) {
    fail(
        absl::StrCat("cannot read the events file ", options.events, ": it is not a regular file (",
                     fileTypeName(checked.mode), "); give one events file"),
        1);
  }
  std::ifstream in(options.events, std::ios::binary);
  if (!in) {
    fail(absl::StrCat("cannot read the events file ", options.events, ": ", std::strerror(errno)),
         1);
  }
  // Without this, a read error (EIO from /proc/self/mem, say) ends getline() like the end
  // of the file and the command exits 0.
  in.exceptions(std::ios::badbit);
  size_t line_number = 0;
  try {
    checkEventLines(in, *set, line_number);
  } catch (const std::ios_base::failure& e) {
    std::cout.flush();
    fail(absl::StrCat("failed to read the events file ", options.events, " after line ",
                      line_number, ": ", e.code().message()),
         1);
  }
}

// Adds the options "intel load" and "intel check" share: format, names, warninglists,
// CSV columns and prefix limits.
void addFeedOptions(CLI::App* command, IntelLoadOptions& options) {
  command->add_option("--format", options.format,
                      "feed format: list (plain indicator list, the default), regex (REGEX;SCORE "
                      "lines), csv, misp (event JSON or a feed folder) or stix (2.x bundle)")
      ->check(CLI::IsMember({"list", "regex", "csv", "misp", "stix"}));
  command->add_option("--name", options.name, "feed name for every FEED (default: the file name)");
  command->add_option("--warninglist", options.warninglists,
                      "MISP warninglist JSON file whose values are left out; may repeat")
      ->allow_extra_args(false);

  command->add_option("--csv-value", options.csv_value,
                      "CSV column of the indicator: a header name, or a 0-based index written "
                      "N or #N");
  command->add_option("--csv-type", options.csv_type,
                      "CSV column with the indicator type name (default: detected)");
  command->add_option("--csv-fixed-type", options.csv_fixed_type,
                      "indicator type of every CSV value, such as domain or sha256");
  command->add_option("--csv-confidence", options.csv_confidence,
                      "CSV column with a confidence 0 to 100");
  command->add_option("--csv-first-seen", options.csv_first_seen,
                      "CSV column with an RFC 3339 first-seen time");
  command->add_option("--csv-last-seen", options.csv_last_seen,
                      "CSV column with an RFC 3339 last-seen time");
  command->add_option("--csv-tags", options.csv_tags, "CSV column with tags separated by '|'");
  command->add_option("--csv-url-path", options.csv_url_path,
                      "CSV column with a URL path; a non-empty path makes the record the URL "
                      "http://VALUE+PATH");
  command->add_option("--csv-delimiter", options.csv_delimiter,
                      "CSV field delimiter (default ,)");
  command->add_flag("--csv-no-header", options.csv_no_header,
                    "the CSV has no header row; give columns by index");

  command->add_option("--min-ipv4-prefix", options.min_ipv4_prefix,
                      "shortest IPv4 CIDR accepted, in bits (default 8)")
      ->check(CLI::Range(1, 32));
  command->add_option("--min-ipv6-prefix", options.min_ipv6_prefix,
                      "shortest IPv6 CIDR accepted, in bits (default 32)")
      ->check(CLI::Range(1, 128));
}

}  // namespace

void registerIntelCommands(CLI::App& app) {
  auto options = std::make_shared<IntelLoadOptions>();
  CLI::App* intel = app.add_subcommand(
      "intel", "check threat-intel feeds offline (load, check), or manage the indicators of a "
               "running vigild (indicators, sightings, reload)");
  intel->require_subcommand(1);
  CLI::App* load = intel->add_subcommand(
      "load",
      "load feeds as vigild would and print per-feed counts, rejections and snapshot figures "
      "as JSON lines; exit 1 when a feed cannot be read");
  addFeedOptions(load, *options);
  load->add_option("feed", options->feeds, "feed files (or MISP feed folders)")->required();
  load->callback([options] { runIntelLoad(*options); });

  auto check_options = std::make_shared<IntelLoadOptions>();
  CLI::App* check = intel->add_subcommand(
      "check",
      "load feeds as vigild would, parse each line of EVENTS as the pipeline does and print "
      "each event's indicator matches as a JSON line; exit 1 when a feed or EVENTS cannot "
      "be read");
  addFeedOptions(check, *check_options);
  check->add_option("--feed", check_options->feeds, "feed file (or MISP feed folder); may repeat")
      ->required()
      ->allow_extra_args(false);
  check->add_option("events", check_options->events,
                    "events file: one log line or JSON object per line")
      ->required();
  check->callback([check_options] { runIntelCheck(*check_options); });
}

}  // namespace vigil::ctl
