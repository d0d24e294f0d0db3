#include "intel/builder.h"

#include <hs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <tuple>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/regular_file.h"
#include "intel/internal/flat_table.h"
#include "intel/internal/hs_cache.h"
#include "intel/internal/list_syntax.h"
#include "intel/internal/text.h"
#include "intel/internal/url_email_marker.h"
#include "intel/internal/warninglist.h"

namespace vigil::intel {
namespace {

using internal::av;

constexpr size_t kMaxListNameLength = 64;
constexpr size_t kMaxRejectedTextBytes = 256;
constexpr size_t kMaxIndicatorBytes = UINT16_MAX;

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

// True when the comma-separated `lists` contains `name`.
bool hasListName(std::string_view lists, std::string_view name) {
  size_t start = 0;
  while (start <= lists.size()) {
    size_t end = std::min(lists.find(',', start), lists.size());
    if (lists.substr(start, end - start) == name) return true;
    start = end + 1;
  }
  return false;
}

// Splits an origin ("file:123", "file.json:response[2].Attribute[5]") around its last
// run of decimal digits, so that the indicators of one file share the parts around the
// number. Origins without such a number, or with one that would not print back the same
// (a leading zero, more than 9 digits), keep the whole text as the prefix.
struct OriginParts {
  std::string_view prefix;
  uint32_t number;
  std::string_view suffix;
};
OriginParts splitOrigin(std::string_view origin, uint32_t no_number) {
  size_t end = origin.size();
  while (end > 0 && !absl::ascii_isdigit(origin[end - 1])) --end;
  size_t start = end;
  while (start > 0 && absl::ascii_isdigit(origin[start - 1])) --start;
  const size_t digits = end - start;
  if (digits == 0 || digits > 9 || (digits > 1 && origin[start] == '0')) {
    return {origin, no_number, {}};
  }
  uint32_t number = 0;
  for (size_t i = start; i < end; ++i) number = number * 10 + static_cast<uint32_t>(origin[i] - '0');
  return {origin.substr(0, start), number, origin.substr(end)};
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
  OpenedFile file = openRegularFile(path);
  if (file.error != 0) {
    std::string message = absl::StrCat("cannot open intel list '", av(name), "' at ", path, ": ",
                                       std::strerror(file.error));
    if (file.error == EACCES) return absl::PermissionDeniedError(message);
    return absl::NotFoundError(message);
  }
  if (S_ISDIR(file.mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("intel list '", av(name), "' at ", path,
                     " is a folder; give the path of a feed file (only MISP feeds are folders)"));
  }
  if (!file.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("intel list '", av(name), "' at ", path, " is not a regular file (",
                     fileTypeName(file.mode), "); give the path of a feed file"));
  }
  std::string text;
  int err = readToEnd(file.fd, text);
  ::close(file.fd);
  if (err != 0) {
    return absl::DataLossError(absl::StrCat("failed to read intel list '", av(name), "' at ", path,
                                            ": ", std::strerror(err)));
  }
  return text;
}

absl::StatusOr<LoadReport> IndicatorSetBuilder::addListText(std::string_view name,
                                                            std::string_view text,
                                                            std::string_view origin) {
  if (absl::Status s = checkReady(name); !s.ok()) return s;
  LoadReport report;
  report.list = std::string(name);
  text = internal::stripUtf8Bom(text);
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
    entry.prefix = parsed->prefix;
    addEntry(list, std::move(entry), IndicatorMeta{}, location, report);
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
  entry.prefix = parsed->prefix;
  addEntry(name, std::move(entry), meta, location, report);
}

size_t IndicatorSetBuilder::EntryHash::operator()(uint32_t id) const {
  const Pending& p = (*entries)[id].indicator;
  return (*this)(EntryKey{p.type, p.text, p.tenant});
}

size_t IndicatorSetBuilder::EntryHash::operator()(const EntryKey& key) const {
  return absl::HashOf(static_cast<uint8_t>(key.type), av(key.text), key.tenant);
}

IndicatorSetBuilder::EntryKey IndicatorSetBuilder::EntryEq::key(uint32_t id) const {
  const Pending& p = (*entries)[id].indicator;
  return EntryKey{p.type, p.text, p.tenant};
}

absl::Status IndicatorSetBuilder::setTenant(std::string_view tenant) {
  if (built_) {
    return absl::FailedPreconditionError(
        "IndicatorSetBuilder::build() already ran; create a new builder for the next snapshot");
  }
  if (!tenant.empty()) {
    if (absl::Status s = checkListName(tenant); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid tenant '", av(tenant), "'; use 1 to ", kMaxListNameLength,
          " characters from [A-Za-z0-9._-], or an empty name for every tenant"));
    }
    tenant_scoped_ = true;
  }
  tenant_ = intern(tenant);
  return absl::OkStatus();
}

// Orders the kept entries so that the copies of one type and text are adjacent: each
// group sits where its first entry was, the copy of every tenant first. Without
// tenant-owned entries every group has one member and the order does not change.
std::vector<uint32_t> IndicatorSetBuilder::groupCopies(std::vector<uint32_t> kept) const {
  if (!tenant_scoped_) return kept;
  absl::flat_hash_map<std::pair<uint8_t, std::string_view>, uint32_t> first;
  std::vector<std::pair<uint32_t, uint32_t>> keyed;  // (group position, entry)
  keyed.reserve(kept.size());
  for (uint32_t index : kept) {
    const Pending& p = entries_[index].indicator;
    auto [it, inserted] = first.try_emplace(
        std::make_pair(static_cast<uint8_t>(p.type), std::string_view(p.text)),
        static_cast<uint32_t>(keyed.size()));
    keyed.emplace_back(it->second, index);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [this](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    // Within a group: the copy of every tenant (tenant id 0) before tenant copies.
    return (entries_[a.second].indicator.tenant != 0) < (entries_[b.second].indicator.tenant != 0);
  });
  for (size_t i = 0; i < keyed.size(); ++i) kept[i] = keyed[i].second;
  return kept;
}

uint32_t IndicatorSetBuilder::intern(std::string_view text) {
  auto it = string_ids_.find(av(text));
  if (it != string_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(text);
  string_ids_.emplace(strings_.back(), id);
  return id;
}

uint32_t IndicatorSetBuilder::internTags(std::vector<uint32_t> tags) {
  auto it = tag_list_ids_.find(tags);
  if (it != tag_list_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(tag_lists_.size());
  tag_list_ids_.emplace(tags, id);
  tag_lists_.push_back(std::move(tags));
  return id;
}

void IndicatorSetBuilder::addEntry(std::string_view list, Entry entry, const IndicatorMeta& meta,
                                   const std::string& location, LoadReport& report) {
  if (meta.valid_until < now_) {
    ++report.expired;
    return;
  }
  // A snapshot record keeps the text length in 16 bits. Only an email's local part has
  // no shorter limit of its own.
  if (entry.indicator.text.size() > kMaxIndicatorBytes) {
    reject(location,
           absl::StrCat("indicator of ", entry.indicator.text.size(), " bytes; the maximum is ",
                        kMaxIndicatorBytes),
           entry.indicator.text, report);
    return;
  }
  entry.indicator.tenant = tenant_;
  auto it = index_.find(EntryKey{entry.indicator.type, entry.indicator.text, tenant_});
  uint8_t confidence = std::min<uint8_t>(meta.confidence.value_or(options_.default_confidence), 100);
  if (it != index_.end()) {
    Pending& known = entries_[*it].indicator;
    if (!hasListName(strings_[known.lists], list)) {
      known.lists = intern(absl::StrCat(strings_[known.lists], ",", av(list)));
      ++known.feed_count;
    }
    known.confidence = std::max(known.confidence, confidence);
    if (!meta.tags.empty()) {
      std::vector<uint32_t> tags = tag_lists_[known.tags];
      for (const std::string& tag : meta.tags) {
        const uint32_t tag_id = intern(tag);
        if (std::find(tags.begin(), tags.end(), tag_id) == tags.end()) tags.push_back(tag_id);
      }
      known.tags = internTags(std::move(tags));
    }
    known.first_seen = earliestKnown(known.first_seen, meta.first_seen);
    known.last_seen = std::max(known.last_seen, meta.last_seen);
    known.valid_from = earliestKnown(known.valid_from, meta.valid_from);
    known.valid_until = std::max(known.valid_until, meta.valid_until);
    ++report.duplicates;
    ++duplicate_lines_;
    return;
  }
  Pending& fresh = entry.indicator;
  fresh.lists = intern(list);
  fresh.confidence = confidence;
  if (!meta.tags.empty()) {
    std::vector<uint32_t> tags;
    for (const std::string& tag : meta.tags) tags.push_back(intern(tag));
    fresh.tags = internTags(std::move(tags));
  }
  const OriginParts origin = splitOrigin(location, IndicatorSet::kNoOriginNumber);
  fresh.origin_prefix = intern(origin.prefix);
  fresh.origin_number = origin.number;
  fresh.origin_suffix = intern(origin.suffix);
  fresh.first_seen = meta.first_seen;
  fresh.last_seen = meta.last_seen;
  fresh.valid_from = meta.valid_from;
  fresh.valid_until = meta.valid_until;
  fresh.feed_count = 1;
  ++report.loaded_by_type[static_cast<size_t>(fresh.type)];
  entries_.push_back(std::move(entry));
  index_.insert(static_cast<uint32_t>(entries_.size() - 1));
  ++report.loaded;
}

std::string IndicatorSetBuilder::originOf(const Pending& indicator) const {
  std::string out = strings_[indicator.origin_prefix];
  if (indicator.origin_number != IndicatorSet::kNoOriginNumber) {
    absl::StrAppend(&out, indicator.origin_number);
  }
  return out + strings_[indicator.origin_suffix];
}

uint8_t IndicatorSetBuilder::scoreOf(const Pending& indicator) const {
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
  set->seed_ = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();

  // Which entries go in: those on no warninglist. Sizes everything exactly, so that no
  // vector of the snapshot keeps spare capacity.
  std::vector<uint32_t> kept;
  kept.reserve(entries_.size());
  size_t text_bytes = 0;
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    if (suppressed(entries_[i], stats)) continue;
    kept.push_back(i);
    text_bytes += entries_[i].indicator.text.size();
  }
  if (text_bytes > UINT32_MAX) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the indicators' texts take ", text_bytes, " bytes; a snapshot holds at most ", UINT32_MAX,
        "; load fewer or shorter indicators"));
  }
  kept = groupCopies(std::move(kept));
  set->tenant_scoped_ = tenant_scoped_;
  set->records_.reserve(kept.size());
  set->text_.reserve(text_bytes);

  // Metadata rows: indicators with equal metadata share one, and its score.
  using RowKey = std::tuple<uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint8_t,
                            absl::Time, absl::Time, absl::Time, absl::Time>;
  absl::flat_hash_map<RowKey, uint32_t> row_ids;
  std::vector<std::pair<IpAddr, uint32_t>> addresses;
  std::map<uint8_t, std::vector<std::pair<IpAddr, uint32_t>>> networks;
  std::vector<uint32_t> filenames;
  std::vector<uint32_t> domains;
  std::vector<uint32_t> hashes;
  std::vector<unsigned> ids;
  for (uint32_t index : kept) {
    Entry& entry = entries_[index];
    const Pending& p = entry.indicator;
    const auto id = static_cast<uint32_t>(set->records_.size());
    RowKey key{p.lists,      p.tags,       p.origin_prefix, p.origin_suffix, p.tenant, p.feed_count,
               p.confidence, p.first_seen, p.last_seen,     p.valid_from,    p.valid_until};
    auto [row, inserted] = row_ids.try_emplace(key, static_cast<uint32_t>(set->rows_.size()));
    if (inserted) {
      set->rows_.push_back({p.first_seen, p.last_seen, p.valid_from, p.valid_until, p.lists, p.tags,
                            p.origin_prefix, p.origin_suffix, p.tenant, p.feed_count,
                            p.confidence, scoreOf(p)});
    }
    ++stats.count_by_type[static_cast<size_t>(p.type)];
    // A later copy of the previous indicator shares its text and stays out of the lookup
    // tables: lookups find the group head and the matcher walks the copies.
    if (id > 0 && set->type(id - 1) == p.type && set->text(id - 1) == p.text) {
      set->records_[id - 1].next_copy = true;
      const IndicatorSet::Record& head = set->records_[id - 1];
      set->records_.push_back(
          {head.text_offset, head.text_len, p.type, false, row->second, p.origin_number});
      continue;
    }
    set->records_.push_back({static_cast<uint32_t>(set->text_.size()),
                             static_cast<uint16_t>(p.text.size()), p.type, false, row->second,
                             p.origin_number});
    set->text_ += p.text;
    switch (p.type) {
      case IndicatorType::kCidr:
        networks[entry.prefix.len].emplace_back(entry.prefix.addr, id);
        break;
      case IndicatorType::kIpv4:
      case IndicatorType::kIpv6:
        addresses.emplace_back(entry.prefix.addr, id);
        break;
      case IndicatorType::kFilename:
        filenames.push_back(id);
        break;
      case IndicatorType::kDomain:
        // Domains are looked up in a hash table: Hyperscan literal scans slow down by two
        // orders of magnitude when many indicators share a suffix that traffic also uses.
        domains.push_back(id);
        break;
      case IndicatorType::kMd5:
      case IndicatorType::kSha1:
      case IndicatorType::kSha256:
        // Hashes are exact tokens (a run of 32, 40 or 64 hex digits), found by the
        // matcher's token walk; as Hyperscan literals they made up half the compile time.
        hashes.push_back(id);
        break;
      default:
        ids.push_back(id);
        break;
    }
  }
  // Tenant copies share their text, so the reserved size was too large.
  if (tenant_scoped_) set->text_.shrink_to_fit();
  std::vector<Entry>().swap(entries_);
  index_.clear();
  string_ids_.clear();
  tag_list_ids_.clear();
  set->rows_.shrink_to_fit();
  set->strings_ = std::move(strings_);
  set->tag_lists_ = std::move(tag_lists_);
  stats.metadata_rows = set->rows_.size();

  set->addresses_->build(addresses);
  for (const auto& [len, entries] : networks) {
    set->prefixes_.push_back({len, std::make_unique<internal::AddressTable>()});
    set->prefixes_.back().networks->build(entries);
  }
  std::sort(set->prefixes_.begin(), set->prefixes_.end(),
            [](const auto& a, const auto& b) { return a.len > b.len; });
  stats.prefix_lengths = set->prefixes_.size();
  auto fill = [&set](internal::TextTable& table, const std::vector<uint32_t>& members) {
    table.reserve(members.size());
    for (uint32_t id : members) {
      const std::string_view text = set->text(id);
      table.insert(internal::hashText(text, set->seed_), id,
                   [&](uint32_t other) { return set->text(other) == text; });
    }
  };
  fill(*set->filenames_, filenames);
  fill(*set->domains_, domains);
  fill(*set->hashes_, hashes);
  stats.table_bytes = tableBytes(*set);

  if (ids.empty()) return set;
  if (absl::Status s = compileDatabases(*set, ids); !s.ok()) return s;
  return set;
}

size_t IndicatorSetBuilder::tableBytes(const IndicatorSet& set) {
  size_t bytes = set.records_.capacity() * sizeof(IndicatorSet::Record) + set.text_.capacity() +
                 set.rows_.capacity() * sizeof(IndicatorSet::Row) + set.addresses_->bytes() +
                 set.filenames_->bytes() + set.domains_->bytes() + set.hashes_->bytes();
  for (const std::string& s : set.strings_) bytes += sizeof(s) + s.capacity();
  for (const auto& tags : set.tag_lists_) bytes += sizeof(tags) + tags.capacity() * 4;
  for (const auto& table : set.prefixes_) bytes += table.networks->bytes();
  return bytes;
}

absl::Status IndicatorSetBuilder::compileDatabases(IndicatorSet& set,
                                                    const std::vector<unsigned>& ids) const {
  IndicatorSetStats& stats = set.stats_;
  absl::Time start = absl::Now();
  // One pattern list per database; `all` keeps the id order of the cache key.
  struct Patterns {
    std::vector<std::string> expressions;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
  };
  std::array<Patterns, internal::kHsDatabaseCount> parts;
  Patterns all;
  for (unsigned id : ids) {
    const IndicatorType type = set.type(id);
    const bool regex = type == IndicatorType::kRegex;
    // The matcher skips the URL and email database on text where hasUrlOrEmailMarker()
    // fails, which is only sound while it holds for every URL and email indicator.
    // Normalization guarantees it; this check keeps a future parser from breaking it.
    if ((type == IndicatorType::kUrl || type == IndicatorType::kEmail) &&
        !internal::hasUrlOrEmailMarker(set.text(id))) {
      return absl::InternalError(absl::StrCat(
          "the ", av(indicatorTypeName(type)), " indicator '", av(set.text(id)),
          "' has neither '://' nor an '@' between a local part and a domain"));
    }
    std::string expression =
        regex ? std::string(set.text(id)) : literalExpression(set.text(id));
    // Emails are case-insensitive, and URLs are matched without case so that
    // "HTTP://Bad.Example/x" in a log still hits.
    const unsigned flags = regex ? internal::kRegexFlags : HS_FLAG_CASELESS;
    Patterns& part = parts[regex ? internal::kRegexDatabase : internal::kUrlEmailDatabase];
    part.expressions.push_back(expression);
    part.flags.push_back(flags);
    part.ids.push_back(id);
    all.expressions.push_back(std::move(expression));
    all.flags.push_back(flags);
    all.ids.push_back(id);
  }
  // A rejected pattern takes every tenant copy of its regex along.
  auto dropRejected = [&](unsigned id) {
    for (unsigned copy = id;; ++copy) {
      ++stats.rejected_regexes;
      --stats.count_by_type[static_cast<size_t>(IndicatorType::kRegex)];
      if (!set.hasNextCopy(copy)) break;
    }
  };
  auto adopt = [&](const std::array<hs_database_t*, internal::kHsDatabaseCount>& databases,
                   size_t patterns) {
    stats.hs_compile_time = absl::Now() - start;
    stats.pattern_count = patterns;
    set.url_email_database_.reset(databases[internal::kUrlEmailDatabase]);
    set.regex_database_.reset(databases[internal::kRegexDatabase]);
    stats.hs_database_bytes = 0;
    for (hs_database_t* db : databases) {
      size_t bytes = 0;
      if (db != nullptr && hs_database_size(db, &bytes) == HS_SUCCESS) {
        stats.hs_database_bytes += bytes;
      }
    }
  };

  std::string cache_key;
  if (!options_.hs_cache_dir.empty()) {
    cache_key = internal::hsCacheKey(all.expressions, all.flags, all.ids);
    internal::HsCacheEntry entry;
    if (internal::hsCacheLoad(options_.hs_cache_dir, cache_key, entry, stats.hs_cache_error)) {
      for (unsigned id : entry.rejected_ids) dropRejected(id);
      stats.hs_cache = "hit";
      adopt(entry.databases, ids.size() - entry.rejected_ids.size());
      return absl::OkStatus();
    }
    stats.hs_cache_rejected = !stats.hs_cache_error.empty();
  }

  std::array<hs_database_t*, internal::kHsDatabaseCount> databases{};
  auto freeDatabases = [&databases] {
    for (hs_database_t*& db : databases) {
      hs_free_database(db);
      db = nullptr;
    }
  };
  std::vector<unsigned> rejected_ids;
  for (size_t kind = 0; kind < internal::kHsDatabaseCount; ++kind) {
    Patterns& part = parts[kind];
    // Each regex was checked alone when it was added, but a few expressions pass
    // hs_expression_info() and still fail to compile. Such an expression is dropped and
    // counted, and the rest compile again; any other failure is an error.
    while (!part.ids.empty()) {
      std::vector<const char*> patterns;
      patterns.reserve(part.expressions.size());
      for (const std::string& e : part.expressions) patterns.push_back(e.c_str());
      hs_compile_error_t* error = nullptr;
      hs_error_t rc = hs_compile_multi(patterns.data(), part.flags.data(), part.ids.data(),
                                       static_cast<unsigned>(part.ids.size()), HS_MODE_BLOCK,
                                       nullptr, &databases[kind], &error);
      if (rc == HS_SUCCESS) break;
      databases[kind] = nullptr;
      std::string message = absl::StrCat("Hyperscan rejected the indicator patterns: ",
                                         error != nullptr ? error->message : "unknown error");
      int bad_index = error != nullptr ? error->expression : -1;
      hs_free_compile_error(error);
      if (bad_index < 0) {
        freeDatabases();
        return absl::InternalError(message);
      }
      const auto bad_position = static_cast<size_t>(bad_index);
      const Indicator bad = set.indicator(part.ids[bad_position]);
      absl::StrAppend(&message, " (indicator '", av(bad.text), "' from ", bad.origin, ")");
      if (bad.type != IndicatorType::kRegex) {
        freeDatabases();
        return absl::InternalError(message);
      }
      rejected_ids.push_back(part.ids[bad_position]);
      dropRejected(part.ids[bad_position]);
      part.ids.erase(part.ids.begin() + bad_index);
      part.expressions.erase(part.expressions.begin() + bad_index);
      part.flags.erase(part.flags.begin() + bad_index);
    }
  }
  if (!cache_key.empty()) {
    std::string cache_error;
    const std::array<const hs_database_t*, internal::kHsDatabaseCount> stored = {
        databases[internal::kUrlEmailDatabase], databases[internal::kRegexDatabase]};
    if (internal::hsCacheStore(options_.hs_cache_dir, cache_key, stored, rejected_ids,
                               options_.hs_cache_keep, cache_error)) {
      stats.hs_cache = "miss";
    } else {
      stats.hs_cache = "error";
      // A rejected file's reason, if any, stays in front of the write error.
      if (!stats.hs_cache_error.empty()) stats.hs_cache_error += "; ";
      stats.hs_cache_error += cache_error;
    }
  }
  adopt(databases, ids.size() - rejected_ids.size());
  return absl::OkStatus();
}

}  // namespace vigil::intel
