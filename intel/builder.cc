#include "intel/builder.h"

#include <hs.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "intel/internal/hs_cache.h"
#include "intel/internal/list_syntax.h"
#include "intel/internal/text.h"
#include "intel/internal/warninglist.h"

namespace vigil::intel {
namespace {

using internal::av;

constexpr size_t kMaxListNameLength = 64;
constexpr size_t kMaxRejectedTextBytes = 256;

bool isIpType(IndicatorType type) {
  return type == IndicatorType::kIpv4 || type == IndicatorType::kIpv6 ||
         type == IndicatorType::kCidr;
}

absl::Status checkListName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxListNameLength &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
            });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid list name '", av(name), "'; use 1 to ",
                                                 kMaxListNameLength,
                                                 " characters from [A-Za-z0-9._-]"));
}

absl::Status checkOptions(const BuilderOptions& options) {
  if (options.min_ipv4_prefix_len < 1 || options.min_ipv4_prefix_len > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("BuilderOptions::min_ipv4_prefix_len=", options.min_ipv4_prefix_len,
                     " is outside [1, 32]"));
  }
  if (options.min_ipv6_prefix_len < 1 || options.min_ipv6_prefix_len > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("BuilderOptions::min_ipv6_prefix_len=", options.min_ipv6_prefix_len,
                     " is outside [1, 128]"));
  }
  return absl::OkStatus();
}

// Appends `name` to the comma-separated `lists` unless it is there; returns true when
// it was added.
bool appendListName(std::string& lists, std::string_view name) {
  size_t start = 0;
  while (start <= lists.size()) {
    size_t end = std::min(lists.find(',', start), lists.size());
    if (std::string_view(lists).substr(start, end - start) == name) return false;
    start = end + 1;
  }
  absl::StrAppend(&lists, lists.empty() ? "" : ",", av(name));
  return true;
}

absl::Time earliestKnown(absl::Time a, absl::Time b) {
  if (a == absl::InfinitePast()) return b;
  if (b == absl::InfinitePast()) return a;
  return std::min(a, b);
}

// Writes `text` as a Hyperscan expression that matches exactly that text: letters and
// digits stay, every other byte becomes \xHH.
//
// The literal API (hs_compile_lit_multi) is not used because Hyperscan 5.4.0 loses
// matches in literal mode: a literal with a long run of one byte, compiled together with
// any other literal, is never reported, and hs_scan() fails. The regular-expression API
// finds the same literals. Upstream report: https://github.com/intel/hyperscan/issues/353
// (the differential test in tests/intel found the same fault with random hashes).
std::string literalExpression(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (absl::ascii_isalnum(c)) {
      out += c;
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

IndicatorSetBuilder::IndicatorSetBuilder(BuilderOptions options)
    : options_(options), now_(options.now == absl::InfinitePast() ? absl::Now() : options.now) {}

IndicatorSetBuilder::~IndicatorSetBuilder() = default;

absl::Status IndicatorSetBuilder::checkReady(std::string_view name) const {
  if (built_) {
    return absl::FailedPreconditionError(
        "IndicatorSetBuilder::build() already ran; create a new builder for the next snapshot");
  }
  if (absl::Status s = checkOptions(options_); !s.ok()) return s;
  return checkListName(name);
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addListFile(std::string_view name,
                                                            const std::string& path) {
  absl::StatusOr<std::string> text = readFile(name, path);
  if (!text.ok()) return text.status();
  return addListText(name, *text, path);
}

absl::StatusOr<std::string> IndicatorSetBuilder::readFile(std::string_view name,
                                                          const std::string& path) const {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string message =
        absl::StrCat("cannot open intel list '", av(name), "' at ", path, ": ", std::strerror(err));
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::NotFoundError(message);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("read error in intel list ", path));
  }
  return text.str();
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addListText(std::string_view name,
                                                            std::string_view text,
                                                            std::string_view origin) {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  LoadReport report;
  report.list = std::string(name);
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t newline = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(std::min(newline + 1, text.size()));
    addLine(name, line, absl::StrCat(av(origin), ":", line_number), report);
  }
  return report;
}

void IndicatorSetBuilder::addLine(std::string_view list, std::string_view line,
                                  const std::string& location, LoadReport& report) {
  absl::StatusOr<internal::ListLine> split = internal::splitListLine(line);
  if (!split.ok()) {
    reject(location, std::string(split.status().message()), line, report);
    return;
  }
  for (std::string_view token : split->indicators) {
    absl::StatusOr<internal::ParsedIndicator> parsed = internal::parseIndicator(token, options_);
    if (!parsed.ok()) {
      reject(location, std::string(parsed.status().message()), line, report);
      continue;
    }
    // Hosts-file blocklists map names and sometimes addresses to 0.0.0.0; a URL, CIDR
    // or hash in that place means the line is broken.
    bool host_type = parsed->type == IndicatorType::kDomain ||
                     parsed->type == IndicatorType::kIpv4 || parsed->type == IndicatorType::kIpv6;
    if (split->hosts_entry && !host_type) {
      reject(location,
             absl::StrCat("hosts-file entry '", av(token), "' is a ",
                          av(indicatorTypeName(parsed->type)),
                          "; a hosts line lists host names or addresses"),
             line, report);
      continue;
    }
    Entry entry;
    entry.indicator.text = std::move(parsed->text);
    entry.indicator.type = parsed->type;
    entry.indicator.origin = location;
    entry.prefix = parsed->prefix;
    addEntry(list, std::move(entry), IndicatorMeta{}, report);
  }
}

void IndicatorSetBuilder::addIndicator(std::string_view name, std::optional<IndicatorType> type,
                                       std::string_view value, const IndicatorMeta& meta,
                                       const std::string& location, LoadReport& report) {
  absl::StatusOr<internal::ParsedIndicator> parsed =
      type ? internal::parseTypedIndicator(*type, value, options_)
           : internal::parseIndicator(internal::sv(absl::StripAsciiWhitespace(av(value))),
                                      options_);
  if (!parsed.ok()) {
    reject(location, std::string(parsed.status().message()), value, report);
    return;
  }
  Entry entry;
  entry.indicator.text = std::move(parsed->text);
  entry.indicator.type = parsed->type;
  entry.indicator.origin = location;
  entry.prefix = parsed->prefix;
  addEntry(name, std::move(entry), meta, report);
}

void IndicatorSetBuilder::addEntry(std::string_view list, Entry entry, const IndicatorMeta& meta,
                                   LoadReport& report) {
  if (meta.valid_until < now_) {
    ++report.expired;
    return;
  }
  std::string key =
      absl::StrCat(std::string(1, static_cast<char>(entry.indicator.type)), entry.indicator.text);
  auto [it, inserted] = index_.try_emplace(std::move(key), static_cast<uint32_t>(entries_.size()));
  uint8_t confidence = std::min<uint8_t>(meta.confidence.value_or(options_.default_confidence), 100);
  if (!inserted) {
    Indicator& known = entries_[it->second].indicator;
    if (appendListName(known.lists, list)) ++known.feed_count;
    known.confidence = std::max(known.confidence, confidence);
    for (const std::string& tag : meta.tags) {
      if (std::find(known.tags.begin(), known.tags.end(), tag) == known.tags.end()) {
        known.tags.push_back(tag);
      }
    }
    known.first_seen = earliestKnown(known.first_seen, meta.first_seen);
    known.last_seen = std::max(known.last_seen, meta.last_seen);
    known.valid_from = earliestKnown(known.valid_from, meta.valid_from);
    known.valid_until = std::max(known.valid_until, meta.valid_until);
    ++report.duplicates;
    ++duplicate_lines_;
    return;
  }
  Indicator& fresh = entry.indicator;
  fresh.lists = std::string(list);
  fresh.confidence = confidence;
  fresh.tags = meta.tags;
  fresh.first_seen = meta.first_seen;
  fresh.last_seen = meta.last_seen;
  fresh.valid_from = meta.valid_from;
  fresh.valid_until = meta.valid_until;
  fresh.feed_count = 1;
  ++report.loaded_by_type[static_cast<size_t>(fresh.type)];
  entries_.push_back(std::move(entry));
  ++report.loaded;
}

uint8_t IndicatorSetBuilder::scoreOf(const Indicator& indicator) const {
  // Each feed counts as an independent report that is right with probability
  // confidence * decay. The score is the chance that at least one of them is right.
  double p = indicator.confidence / 100.0;
  absl::Time seen = indicator.last_seen;
  if (seen == absl::InfinitePast()) seen = indicator.first_seen;
  if (seen == absl::InfinitePast()) seen = indicator.valid_from;
  if (options_.score_half_life > absl::ZeroDuration() && seen != absl::InfinitePast() &&
      seen < now_) {
    double half_lives = absl::FDivDuration(now_ - seen, options_.score_half_life);
    p *= std::exp2(-half_lives);
  }
  double score = 100.0 * (1.0 - std::pow(1.0 - p, std::max<uint32_t>(indicator.feed_count, 1)));
  return static_cast<uint8_t>(std::clamp(std::lround(score), 1L, 100L));
}

void IndicatorSetBuilder::reject(const std::string& location, std::string reason,
                                 std::string_view line, LoadReport& report) const {
  ++report.rejected;
  if (report.rejections.size() >= options_.max_kept_rejections) return;
  line = internal::sv(absl::StripAsciiWhitespace(av(line)));
  std::string text(line.substr(0, kMaxRejectedTextBytes));
  if (line.size() > kMaxRejectedTextBytes) text += "...";
  report.rejections.push_back(Rejection{location, std::move(reason), std::move(text)});
}

absl::StatusOr<std::shared_ptr<const IndicatorSet>> IndicatorSetBuilder::build() {
  if (built_) {
    return absl::FailedPreconditionError(
        "IndicatorSetBuilder::build() already ran; create a new builder for the next snapshot");
  }
  built_ = true;
  std::shared_ptr<IndicatorSet> set(new IndicatorSet());
  IndicatorSetStats& stats = set->stats_;
  stats.duplicate_lines = duplicate_lines_;

  std::vector<unsigned> ids;
  set->indicators_.reserve(entries_.size());
  for (Entry& entry : entries_) {
    if (suppressed(entry, stats)) continue;
    auto id = static_cast<uint32_t>(set->indicators_.size());
    IndicatorType type = entry.indicator.type;
    entry.indicator.score = scoreOf(entry.indicator);
    ++stats.count_by_type[static_cast<size_t>(type)];
    if (type == IndicatorType::kCidr) {
      auto table = std::find_if(set->prefixes_.begin(), set->prefixes_.end(),
                                [&](const auto& t) { return t.len == entry.prefix.len; });
      if (table == set->prefixes_.end()) {
        set->prefixes_.push_back({entry.prefix.len, {}});
        table = set->prefixes_.end() - 1;
      }
      table->networks.emplace(entry.prefix.addr, id);
    } else if (isIpType(type)) {
      set->addresses_.emplace(entry.prefix.addr, id);
    } else if (type == IndicatorType::kFilename) {
      set->filenames_.emplace(entry.indicator.text, id);
    } else if (type == IndicatorType::kDomain) {
      // Domains are looked up in a hash set: Hyperscan literal scans slow down by two
      // orders of magnitude when many indicators share a suffix that traffic also uses.
      set->domains_.emplace(entry.indicator.text, id);
    } else {
      ids.push_back(id);
    }
    set->indicators_.push_back(std::move(entry.indicator));
  }
  entries_.clear();
  index_.clear();
  std::sort(set->prefixes_.begin(), set->prefixes_.end(),
            [](const auto& a, const auto& b) { return a.len > b.len; });
  stats.prefix_lengths = set->prefixes_.size();
  if (ids.empty()) return set;
  if (absl::Status s = compileDatabase(*set, ids); !s.ok()) return s;
  return set;
}

absl::Status IndicatorSetBuilder::compileDatabase(IndicatorSet& set,
                                                   std::vector<unsigned> ids) const {
  IndicatorSetStats& stats = set.stats_;
  absl::Time start = absl::Now();
  std::vector<std::string> expressions;
  std::vector<unsigned> flags;
  expressions.reserve(ids.size());
  flags.reserve(ids.size());
  for (unsigned id : ids) {
    const Indicator& indicator = set.indicators_[id];
    bool regex = indicator.type == IndicatorType::kRegex;
    expressions.push_back(regex ? indicator.text : literalExpression(indicator.text));
    // Domains, hashes and emails are case-insensitive, and URLs are matched without
    // case so that "HTTP://Bad.Example/x" in a log still hits.
    flags.push_back(regex ? internal::kRegexFlags : HS_FLAG_CASELESS);
  }
  auto dropRejected = [&]() {
    ++stats.rejected_regexes;
    --stats.count_by_type[static_cast<size_t>(IndicatorType::kRegex)];
  };
  auto adopt = [&](hs_database_t* db, size_t patterns) {
    stats.hs_compile_time = absl::Now() - start;
    stats.pattern_count = patterns;
    set.database_.reset(db);
    if (hs_database_size(db, &stats.hs_database_bytes) != HS_SUCCESS) {
      stats.hs_database_bytes = 0;
    }
  };

  std::string cache_key;
  if (!options_.hs_cache_dir.empty()) {
    cache_key = internal::hsCacheKey(expressions, flags, ids);
    internal::HsCacheEntry entry;
    if (internal::hsCacheLoad(options_.hs_cache_dir, cache_key, entry, stats.hs_cache_error)) {
      for (size_t i = 0; i < entry.rejected_ids.size(); ++i) dropRejected();
      stats.hs_cache = "hit";
      adopt(entry.database, ids.size() - entry.rejected_ids.size());
      return absl::OkStatus();
    }
  }

  // Each regex was checked alone when it was added, but a few expressions pass
  // hs_expression_info() and still fail to compile. Such an expression is dropped and
  // counted, and the rest compile again; any other failure is an error.
  std::vector<unsigned> rejected_ids;
  while (!ids.empty()) {
    std::vector<const char*> patterns;
    patterns.reserve(expressions.size());
    for (const std::string& e : expressions) patterns.push_back(e.c_str());
    hs_database_t* db = nullptr;
    hs_compile_error_t* error = nullptr;
    hs_error_t rc = hs_compile_multi(patterns.data(), flags.data(), ids.data(),
                                     static_cast<unsigned>(ids.size()), HS_MODE_BLOCK, nullptr,
                                     &db, &error);
    if (rc == HS_SUCCESS) {
      if (!cache_key.empty()) {
        std::string cache_error;
        if (internal::hsCacheStore(options_.hs_cache_dir, cache_key, db, rejected_ids,
                                   options_.hs_cache_keep, cache_error)) {
          stats.hs_cache = "miss";
        } else {
          stats.hs_cache = "error";
          stats.hs_cache_error = std::move(cache_error);
        }
      }
      adopt(db, ids.size());
      return absl::OkStatus();
    }
    std::string message = absl::StrCat("Hyperscan rejected the indicator patterns: ",
                                       error != nullptr ? error->message : "unknown error");
    int bad_index = error != nullptr ? error->expression : -1;
    hs_free_compile_error(error);
    if (bad_index < 0) return absl::InternalError(message);
    const Indicator& bad = set.indicators_[ids[static_cast<size_t>(bad_index)]];
    absl::StrAppend(&message, " (indicator '", bad.text, "' from ", bad.origin, ")");
    if (bad.type != IndicatorType::kRegex) return absl::InternalError(message);
    rejected_ids.push_back(ids[static_cast<size_t>(bad_index)]);
    dropRejected();
    ids.erase(ids.begin() + bad_index);
    expressions.erase(expressions.begin() + bad_index);
    flags.erase(flags.begin() + bad_index);
  }
  return absl::OkStatus();
}

}  // namespace vigil::intel
