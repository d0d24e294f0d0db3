#include "intel/builder.h"

#include <hs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "intel/internal/list_syntax.h"
#include "intel/internal/text.h"

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

void appendListName(std::string& lists, std::string_view name) {
  size_t start = 0;
  while (start <= lists.size()) {
    size_t end = std::min(lists.find(',', start), lists.size());
    if (std::string_view(lists).substr(start, end - start) == name) return;
    start = end + 1;
  }
  absl::StrAppend(&lists, lists.empty() ? "" : ",", av(name));
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

IndicatorSetBuilder::IndicatorSetBuilder(BuilderOptions options) : options_(options) {}

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
  return addListText(name, text.str(), path);
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
    Entry entry{Indicator{std::move(parsed->text), parsed->type, {}, location}, parsed->prefix};
    addIndicator(list, std::move(entry), report);
  }
}

void IndicatorSetBuilder::addIndicator(std::string_view list, Entry entry, LoadReport& report) {
  std::string key =
      absl::StrCat(std::string(1, static_cast<char>(entry.indicator.type)), entry.indicator.text);
  auto [it, inserted] = index_.try_emplace(std::move(key), static_cast<uint32_t>(entries_.size()));
  if (!inserted) {
    appendListName(entries_[it->second].indicator.lists, list);
    ++report.duplicates;
    ++duplicate_lines_;
    return;
  }
  entry.indicator.lists = std::string(list);
  entries_.push_back(std::move(entry));
  ++report.loaded;
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

  std::vector<const char*> patterns;
  std::vector<unsigned> ids;
  set->indicators_.reserve(entries_.size());
  for (Entry& entry : entries_) {
    auto id = static_cast<uint32_t>(set->indicators_.size());
    IndicatorType type = entry.indicator.type;
    ++stats.count_by_type[static_cast<size_t>(type)];
    set->indicators_.push_back(std::move(entry.indicator));
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
    } else {
      ids.push_back(id);
    }
  }
  entries_.clear();
  index_.clear();
  std::sort(set->prefixes_.begin(), set->prefixes_.end(),
            [](const auto& a, const auto& b) { return a.len > b.len; });
  stats.prefix_lengths = set->prefixes_.size();

  std::vector<std::string> expressions;
  expressions.reserve(ids.size());
  for (unsigned id : ids) {
    expressions.push_back(literalExpression(set->indicators_[id].text));
    patterns.push_back(expressions.back().c_str());
  }
  stats.pattern_count = ids.size();
  if (ids.empty()) return set;

  // Every pattern is caseless: domains and hashes are case-insensitive, and URLs are
  // matched without case so that "HTTP://Bad.Example/x" in a log still hits.
  std::vector<unsigned> flags(ids.size(), HS_FLAG_CASELESS);
  absl::Time start = absl::Now();
  hs_database_t* db = nullptr;
  hs_compile_error_t* error = nullptr;
  hs_error_t rc =
      hs_compile_multi(patterns.data(), flags.data(), ids.data(), static_cast<unsigned>(ids.size()),
                       HS_MODE_BLOCK, nullptr, &db, &error);
  stats.hs_compile_time = absl::Now() - start;
  if (rc != HS_SUCCESS) {
    std::string message = absl::StrCat("Hyperscan rejected the indicator patterns: ",
                                       error != nullptr ? error->message : "unknown error");
    if (error != nullptr && error->expression >= 0) {
      const Indicator& bad = set->indicators_[ids[static_cast<size_t>(error->expression)]];
      absl::StrAppend(&message, " (indicator '", bad.text, "' from ", bad.origin, ")");
    }
    hs_free_compile_error(error);
    return absl::InternalError(message);
  }
  set->database_.reset(db);
  if (hs_database_size(db, &stats.hs_database_bytes) != HS_SUCCESS) stats.hs_database_bytes = 0;
  return set;
}

}  // namespace vigil::intel
