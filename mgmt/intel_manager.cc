#include "mgmt/intel_manager.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/log.h"
#include "correlate/checkpoint.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "mgmt/auth_store.h"

namespace vigil::mgmt {
namespace {

// Reads a CSV column given as a header name or, when all digits, a 0-based index.
intel::CsvColumn csvColumn(const std::string& text) {
  intel::CsvColumn column;
  if (text.empty()) return column;
  if (std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
      text.size() <= 6) {
    column.index = std::stoi(text);
  } else {
    column.name = text;
  }
  return column;
}

intel::CsvOptions csvOptions(const IntelCsvConfig& config) {
  intel::CsvOptions options;
  options.delimiter = config.delimiter;
  options.header = config.header;
  options.value = csvColumn(config.value_column);
  options.type = csvColumn(config.type_column);
  options.confidence = csvColumn(config.confidence_column);
  options.first_seen = csvColumn(config.first_seen_column);
  options.last_seen = csvColumn(config.last_seen_column);
  options.tags = csvColumn(config.tags_column);
  options.url_path = csvColumn(config.url_path_column);
  for (size_t t = 0; t < intel::kIndicatorTypeCount; ++t) {
    const auto type = static_cast<IndicatorType>(t);
    if (!config.type.empty() && indicatorTypeName(type) == config.type) options.fixed_type = type;
  }
  return options;
}

// Returns how errors name `list`: its file, line and key when it came from a file.
std::string listKey(const IntelListConfig& list) {
  return list.where.text.empty() ? absl::StrCat("intel.lists ", list.name) : list.where.text;
}

// Loads one configured feed in its format.
absl::StatusOr<intel::LoadReport> loadFeed(intel::IndicatorSetBuilder& builder,
                                           const IntelListConfig& list) {
  std::error_code ec;
  const bool folder = list.format == "misp_feed";
  const bool readable = folder ? std::filesystem::is_directory(list.path, ec)
                               : std::filesystem::is_regular_file(list.path, ec);
  if (!readable) {
    return absl::NotFoundError(absl::StrCat(
        list.path, folder ? " is not a folder; give the MISP feed folder that holds manifest.json"
                          : " is not a readable file; give the path of the feed file"));
  }
  if (list.format == "regex") return builder.addRegexListFile(list.name, list.path);
  if (list.format == "csv") return builder.addCsvFile(list.name, list.path, csvOptions(list.csv));
  if (list.format == "misp") return builder.addMispFile(list.name, list.path);
  if (folder) return builder.addMispFeedFolder(list.name, list.path);
  if (list.format == "stix") return builder.addStixFile(list.name, list.path);
  return builder.addListFile(list.name, list.path);
}

// The warninglist files named in config: files as given, folders as their *.json files.
std::vector<std::string> warninglistFiles(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) {
      files.push_back(path);
      continue;
    }
    std::vector<std::string> in_folder;
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") {
        in_folder.push_back(entry.path().string());
      }
    }
    std::sort(in_folder.begin(), in_folder.end());
    files.insert(files.end(), in_folder.begin(), in_folder.end());
  }
  return files;
}

// Rejected indicator lines logged per list; the rest are counted only.
constexpr size_t kLoggedRejectionsPerList = 20;
// Rejections kept per list in FeedStatus.
constexpr size_t kKeptRejections = 100;
// Largest feed body fetched over HTTP.
constexpr size_t kMaxFeedBytes = size_t{512} << 20;
// How often the manager's thread frees retired snapshots while some are pending.
constexpr auto kReclaimPoll = std::chrono::milliseconds(20);

// Loads one feed body that was fetched from a URL, in the list's format.
absl::StatusOr<intel::LoadReport> loadFeedText(intel::IndicatorSetBuilder& builder,
                                               const IntelListConfig& list,
                                               const std::string& body) {
  if (list.format == "regex") return builder.addRegexListText(list.name, body, list.url);
  if (list.format == "csv") {
    return builder.addCsvText(list.name, body, list.url, csvOptions(list.csv));
  }
  if (list.format == "misp") return builder.addMispText(list.name, body, list.url);
  if (list.format == "stix") return builder.addStixText(list.name, body, list.url);
  return builder.addListText(list.name, body, list.url);
}

size_t indicatorCount(const intel::Snapshot& snapshot) { return snapshot.size(); }

// List name of every analyst indicator, whatever its tenant.
constexpr char kAnalystList[] = "analyst";

// The analyst lists in the state folder: {"version": 1, "tenants": {TENANT: [VALUE, ...]}},
// with "" as the tenant of the list of every tenant.
constexpr char kAnalystFile[] = "intel-analyst.json";
constexpr int kAnalystFileVersion = 1;

// The tenant as logs show it: "*" for every tenant.
std::string_view tenantLabel(const std::string& tenant) {
  return tenant.empty() ? std::string_view("*") : std::string_view(tenant);
}

absl::Status checkAnalystTenant(const std::string& tenant) {
  if (tenant.empty()) return absl::OkStatus();
  return validateTenantName(tenant);
}

// A plain list as the builder reads it: the report, and the normalized values in load
// order without duplicates.
struct NormalizedList {
  intel::LoadReport report;
  std::vector<std::string> values;
};

absl::StatusOr<NormalizedList> normalizeList(const std::string& text) {
  intel::IndicatorSetBuilder builder;
  absl::StatusOr<intel::LoadReport> report =
      builder.addListText(kAnalystList, text, kAnalystList);
  if (!report.ok()) return report.status();
  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set = builder.build();
  if (!set.ok()) return set.status();
  NormalizedList out{std::move(*report), {}};
  out.values.reserve((*set)->size());
  for (uint32_t id = 0; id < (*set)->size(); ++id) out.values.emplace_back((*set)->text(id));
  return out;
}

}  // namespace

namespace {

// Returns the cause of a failed download in the words an operator searches for.
std::string fetchErrorText(httplib::Error error, int timeout_s) {
  switch (error) {
    case httplib::Error::Connection:
      return "cannot connect (refused or unreachable); check the URL's host and port";
    case httplib::Error::Read:
      return absl::StrCat(
          "reading the response failed: the connection closed early, or no "
          "data arrived for ",
          timeout_s, " s (intel.fetch_timeout_s)");
    case httplib::Error::ConnectionTimeout:
      return absl::StrCat("no connection within ", timeout_s, " s (intel.fetch_timeout_s)");
    case httplib::Error::ExceedRedirectCount:
      return "too many redirects; use the final URL";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate did not verify";
    default:
      return httplib::to_string(error);
  }
}

}  // namespace

absl::StatusOr<std::string> fetchUrl(const std::string& url, int timeout_s, size_t max_bytes) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos ||
      (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://"))) {
    return absl::InvalidArgumentError(
        absl::StrCat("feed URL ", url, " is not http:// or https://"));
  }
  const size_t path_start = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);

  httplib::Client client(origin);
  client.set_connection_timeout(timeout_s, 0);
  client.set_read_timeout(timeout_s, 0);
  client.set_follow_location(true);
  // The read timeout applies to each read, so a server that sends a byte now and then
  // would hold a reload forever. The whole body must arrive within timeout_s as well.
  // NOTE: headers sent as slowly are bounded only by the read timeout of each read.
  const int64_t deadline_ns = monotonicNs() + int64_t{timeout_s} * 1'000'000'000;
  std::string body;
  bool too_large = false;
  bool too_slow = false;
  httplib::Result result = client.Get(path, [&](const char* data, size_t len) {
    if (body.size() + len > max_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, len);
    if (monotonicNs() > deadline_ns) {
      too_slow = true;
      return false;
    }
    return true;
  });
  if (too_large) {
    return absl::ResourceExhaustedError(
        absl::StrCat("feed URL ", url, " returned more than ", max_bytes, " bytes"));
  }
  if (too_slow) {
    return absl::DeadlineExceededError(
        absl::StrCat("fetching ", url, " timed out: ", body.size(), " bytes arrived in ", timeout_s,
                     " s; raise intel.fetch_timeout_s or check the server"));
  }
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("fetching ", url, " failed: ", fetchErrorText(result.error(), timeout_s)));
  }
  if (result->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("fetching ", url, " returned HTTP status ", result->status));
  }
  if (body.empty()) {
    // More often a broken server than a list emptied on purpose, so the last good copy
    // stays in use.
    return absl::UnavailableError(
        absl::StrCat("fetching ", url,
                     " returned an empty body; serve at least a comment line such as "
                     "'# no indicators' to empty the list on purpose"));
  }
  return body;
}

IntelManager::IntelManager(const DaemonConfig& config, MetricsRegistry& metrics, size_t readers)
    : config_(config), metrics_(metrics), store_(readers) {
  reloads_ok_ = &metrics_.counter("vigil_intel_reloads_total",
                                  "Indicator snapshot rebuilds, by result", {{"result", "ok"}});
  reloads_failed_ = &metrics_.counter("vigil_intel_reloads_total",
                                      "Indicator snapshot rebuilds, by result",
                                      {{"result", "failed"}});
  indicators_ = &metrics_.gauge("vigil_intel_indicators", "Indicators in the active snapshot");
  generation_ =
      &metrics_.gauge("vigil_intel_snapshot_generation", "Publishes of the active snapshot");
  pending_ = &metrics_.gauge("vigil_intel_snapshots_pending",
                             "Replaced snapshots that a worker may still be using");
  metrics_.gaugeFunction("vigil_intel_scan_errors",
                         "Failed Hyperscan scans in the active snapshot; their later hits "
                         "were lost",
                         {}, [this] {
                           std::shared_ptr<const intel::Snapshot> snapshot = store_.current();
                           return snapshot == nullptr
                                      ? int64_t{0}
                                      : static_cast<int64_t>(snapshot->scanErrors());
                         });
  metrics_.gaugeFunction("vigil_intel_sightings", "Indicator hits recorded in the active snapshot",
                         {}, [this] {
                           std::shared_ptr<const intel::Snapshot> snapshot = store_.current();
                           if (snapshot == nullptr) return int64_t{0};
                           uint64_t total = 0;
                           for (uint32_t id = 0; id < snapshot->size(); ++id) {
                             total += snapshot->hitCount(id);
                           }
                           return static_cast<int64_t>(total);
                         });
}

IntelManager::~IntelManager() { stop(); }

absl::Status IntelManager::addWarninglists(intel::IndicatorSetBuilder& builder) {
  for (const std::string& file : warninglistFiles(config_.intel_warninglists)) {
    auto report = builder.addWarninglistFile(file);
    if (!report.ok()) {
      return absl::Status(report.status().code(),
                          absl::StrCat("intel.warninglists ", file, ": ", report.status().message()));
    }
    VIGIL_LOG_INFO("warninglist loaded list=\"{}\" type={} path={} entries={} rejected={}",
                   report->list, report->type, file, report->entries, report->rejected);
  }
  return absl::OkStatus();
}

// Fetches one URL feed into last_good_. A failed fetch is counted and logged and leaves
// the last good body (if any) in place.
absl::Status IntelManager::addUrlFeed(const IntelListConfig& list) {
  absl::StatusOr<std::string> body = fetchUrl(list.url, config_.intel_fetch_timeout_s,
                                              kMaxFeedBytes);
  if (body.ok()) {
    metrics_.counter("vigil_intel_fetches_total", "Feed downloads, by list and result",
                     {{"list", list.name}, {"result", "ok"}})
        .add();
    VIGIL_LOG_INFO("feed fetched list={} url={} bytes={}", list.name, list.url, body->size());
    last_good_[list.name] = std::move(*body);
    fetch_errors_.erase(list.name);
  } else {
    metrics_.counter("vigil_intel_fetches_total", "Feed downloads, by list and result",
                     {{"list", list.name}, {"result", "failed"}})
        .add();
    const bool kept = last_good_.count(list.name) != 0;
    fetch_errors_[list.name] = std::string(body.status().message());
    VIGIL_LOG_WARN("feed fetch failed list={} error=\"{}\" using=\"{}\"", list.name,
                   logText(std::string(body.status().message())),
                   kept ? "last good copy" : "nothing (left out)");
  }
  return absl::OkStatus();
}

absl::Status IntelManager::addFeeds(intel::IndicatorSetBuilder& builder, bool initial) {
  std::vector<FeedStatus> statuses;
  // The statuses are published however the loop ends.
  struct Publish {
    IntelManager& manager;
    std::vector<FeedStatus>& statuses;
    ~Publish() {
      std::lock_guard lock(manager.status_mutex_);
      manager.feed_status_ = std::move(statuses);
    }
  } publish{*this, statuses};

  for (const IntelListConfig& list : config_.intel_lists) {
    FeedStatus& status = statuses.emplace_back();
    status.name = list.name;
    status.tenant = list.tenant;
    if (absl::Status st = builder.setTenant(list.tenant); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(listKey(list), ": ", st.message()));
    }
    status.source = list.url.empty() ? list.path : list.url;
    absl::StatusOr<intel::LoadReport> report;
    if (!list.url.empty()) {
      if (auto st = addUrlFeed(list); !st.ok()) return st;
      if (auto error = fetch_errors_.find(list.name); error != fetch_errors_.end()) {
        status.fetch_error = error->second;
      }
      auto it = last_good_.find(list.name);
      if (it == last_good_.end()) continue;
      report = loadFeedText(builder, list, it->second);
    } else {
      report = loadFeed(builder, list);
    }
    if (!report.ok()) {
      return absl::Status(report.status().code(),
                          absl::StrCat(listKey(list), ": ", report.status().message()));
    }
    status.loaded = true;
    status.indicators = report->loaded;
    status.duplicates = report->duplicates;
    status.rejected = report->rejected;
    status.expired = report->expired;
    status.rejections.assign(
        report->rejections.begin(),
        report->rejections.begin() +
            static_cast<std::ptrdiff_t>(std::min(report->rejections.size(), kKeptRejections)));
    metrics_.counter("vigil_intel_indicators_loaded_total", "Indicators accepted from a list",
                     {{"list", list.name}})
        .add(report->loaded);
    metrics_.counter("vigil_intel_lines_rejected_total", "Indicator lines rejected",
                     {{"list", list.name}})
        .add(report->rejected);
    metrics_.counter("vigil_intel_indicators_expired_total",
                     "Indicators left out because their valid_until had passed",
                     {{"list", list.name}})
        .add(report->expired);
    VIGIL_LOG_INFO("indicator list loaded list={} tenant={} format={} source={} loaded={} "
                   "duplicates={} rejected={} expired={} not_for_detection={} unknown_types={}",
                   list.name, tenantLabel(list.tenant), list.format,
                   list.url.empty() ? list.path : list.url, report->loaded,
                   report->duplicates, report->rejected, report->expired,
                   report->not_for_detection, report->unknown_types.size());
    // Rejections are logged with their reasons at start and, on a reload, those not
    // logged before (a line added or changed since, or one past the limit last time), so
    // a feed reloaded unchanged does not repeat them. Past the limit they are counted
    // only. `logged` keeps the rejections of the latest load that have been logged.
    std::set<uint64_t>& logged = rejections_logged_[list.name];
    std::set<uint64_t> still_logged;
    size_t logged_now = 0;
    size_t repeated = 0;
    for (const intel::Rejection& r : report->rejections) {
      const uint64_t key = absl::HashOf(r.location, r.reason, r.text);
      if (!initial && logged.count(key) != 0) {
        ++repeated;
        still_logged.insert(key);
      } else if (logged_now < kLoggedRejectionsPerList) {
        ++logged_now;
        still_logged.insert(key);
        VIGIL_LOG_WARN("indicator rejected list={} at={} reason=\"{}\" text=\"{}\"",
                       list.name, r.location, logText(r.reason), logText(r.text));
      }
    }
    logged = std::move(still_logged);
    if (repeated > 0) {
      VIGIL_LOG_INFO("indicator rejections as in the previous load, not logged again list={} "
                     "count={}",
                     list.name, repeated);
    }
    if (report->rejected > logged_now + repeated) {
      VIGIL_LOG_WARN("indicator rejections not logged list={} count={}", list.name,
                     report->rejected - logged_now - repeated);
    }
  }
  return builder.setTenant("");
}

absl::Status IntelManager::addAnalystLists(intel::IndicatorSetBuilder& builder,
                                           const AnalystLists& lists) const {
  for (const auto& [tenant, values] : lists) {
    if (values.empty()) continue;
    if (absl::Status st = builder.setTenant(tenant); !st.ok()) return st;
    absl::StatusOr<intel::LoadReport> report =
        builder.addListText(kAnalystList, absl::StrJoin(values, "\n"), kAnalystList);
    if (!report.ok()) return report.status();
  }
  return builder.setTenant("");
}

absl::Status IntelManager::publishAnalystLocked(AnalystLists next, const std::string& tenant,
                                                std::string_view action) {
  for (auto it = next.begin(); it != next.end();) {
    it = it->second.empty() ? next.erase(it) : std::next(it);
  }
  intel::IndicatorSetBuilder builder;
  if (absl::Status st = addAnalystLists(builder, next); !st.ok()) return st;
  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set = builder.build();
  if (!set.ok()) return set.status();
  if (store_.current() == nullptr) {
    return absl::FailedPreconditionError(
        "no indicator snapshot is published yet; change analyst indicators after start");
  }
  // Saved before it is published, so that a change the caller sees succeed is on disk.
  if (absl::Status st = saveAnalystLists(next); !st.ok()) {
    VIGIL_LOG_ERROR(
        "analyst indicators not saved, change rejected tenant={} action={} "
        "error=\"{}\"",
        tenantLabel(tenant), action, logText(std::string(st.message())));
    return absl::Status(st.code(), absl::StrCat("the analyst indicators could not be saved, so "
                                                "nothing changed: ",
                                                st.message()));
  }
  std::optional<uint64_t> generation = store_.publishDelta(*set);
  if (!generation.has_value()) {
    // NOTE: only reachable before the first snapshot, which the check above excludes. The
    // saved file would then contain a change that was not published.
    return absl::FailedPreconditionError(
        "no indicator snapshot is published yet; change analyst indicators after start");
  }
  auto own = next.find(tenant);
  const size_t tenant_count = own == next.end() ? 0 : own->second.size();
  analyst_ = std::move(next);
  VIGIL_LOG_INFO("analyst indicators {} tenant={} generation={} tenant_indicators={} "
                 "delta_indicators={}",
                 action, tenantLabel(tenant), *generation, tenant_count, (*set)->size());
  updateGauges();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> IntelManager::rebuild(const std::string& reason) {
  std::lock_guard lock(build_mutex_);
  const int64_t begin = monotonicNs();
  intel::BuilderOptions builder_options;
  builder_options.min_ipv4_prefix_len = static_cast<uint8_t>(config_.intel_min_ipv4_prefix_len);
  builder_options.min_ipv6_prefix_len = static_cast<uint8_t>(config_.intel_min_ipv6_prefix_len);
  builder_options.default_confidence = static_cast<uint8_t>(config_.intel_default_confidence);
  builder_options.score_half_life = absl::Hours(24) * config_.intel_score_half_life_days;
  if (!config_.state_dir.empty()) {
    builder_options.hs_cache_dir =
        (std::filesystem::path(config_.state_dir) / "hs-cache").string();
  }
  intel::IndicatorSetBuilder builder(builder_options);

  const bool initial = store_.current() == nullptr;
  absl::Status st = addWarninglists(builder);
  if (st.ok()) st = addFeeds(builder, initial);
  if (st.ok()) st = addAnalystLists(builder, analyst_);
  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set =
      st.ok() ? builder.build() : absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>>(st);
  if (!set.ok()) {
    reloads_failed_->add();
    // The first build's error fails the start, and the caller reports it.
    if (initial) return set.status();
    VIGIL_LOG_ERROR("indicator snapshot rebuild failed reason={} error=\"{}\" kept_generation={}",
                    reason, logText(std::string(set.status().message())), store_.stats().published);
    return set.status();
  }
  const intel::IndicatorSetStats& stats = (*set)->stats();
  metrics_
      .counter("vigil_intel_hs_cache_total",
               "Snapshot builds by what the compiled-database cache did: hit, miss (compiled "
               "and stored), error (compiled, cache not written) or off",
               {{"outcome", stats.hs_cache}})
      .add();
  if (stats.hs_cache_rejected) {
    metrics_
        .counter("vigil_intel_hs_cache_rejected_total",
                 "Compiled-database cache files rejected (damaged or of another format "
                 "version), removed and compiled again")
        .add();
  }
  if (!stats.hs_cache_error.empty()) {
    VIGIL_LOG_WARN("hyperscan cache problem reason={} error=\"{}\"", reason,
                   logText(stats.hs_cache_error));
  }
  const uint64_t generation = store_.publish(*set);
  reloads_ok_->add();
  std::shared_ptr<const intel::Snapshot> snapshot = store_.current();
  VIGIL_LOG_INFO("indicator snapshot published generation={} reason={} indicators={} "
                 "ipv4={} ipv6={} cidr={} domain={} url={} hashes={} regex={} "
                 "hyperscan_patterns={} hyperscan_bytes={} hyperscan_cache={} hyperscan_ms={} "
                 "suppressed_lists={} build_ms={}",
                 generation, reason, indicatorCount(*snapshot),
                 stats.count(IndicatorType::kIpv4), stats.count(IndicatorType::kIpv6),
                 stats.count(IndicatorType::kCidr), stats.count(IndicatorType::kDomain),
                 stats.count(IndicatorType::kUrl),
                 stats.count(IndicatorType::kMd5) + stats.count(IndicatorType::kSha1) +
                     stats.count(IndicatorType::kSha256),
                 stats.count(IndicatorType::kRegex), stats.pattern_count,
                 stats.hs_database_bytes, stats.hs_cache,
                 absl::ToInt64Milliseconds(stats.hs_compile_time),
                 stats.suppressed_by_warninglist.size(),
                 (monotonicNs() - begin) / 1'000'000);
  updateGauges();
  return generation;
}

absl::StatusOr<intel::LoadReport> IntelManager::addIndicators(const std::string& tenant,
                                                                const std::string& text) {
  if (absl::Status st = checkAnalystTenant(tenant); !st.ok()) return st;
  // Only the new lines are reported; the delta set contains every analyst value so far.
  absl::StatusOr<NormalizedList> added = normalizeList(text);
  if (!added.ok()) return added.status();
  std::lock_guard lock(build_mutex_);
  AnalystLists next = analyst_;
  std::vector<std::string>& values = next[tenant];
  absl::flat_hash_set<std::string> known(values.begin(), values.end());
  for (std::string& value : added->values) {
    if (known.insert(value).second) values.push_back(std::move(value));
  }
  if (absl::Status st = publishAnalystLocked(std::move(next), tenant, "added"); !st.ok()) return st;
  return std::move(added->report);
}

absl::StatusOr<intel::LoadReport> IntelManager::replaceIndicators(const std::string& tenant,
                                                                  const std::string& text) {
  if (absl::Status st = checkAnalystTenant(tenant); !st.ok()) return st;
  absl::StatusOr<NormalizedList> list = normalizeList(text);
  if (!list.ok()) return list.status();
  std::lock_guard lock(build_mutex_);
  AnalystLists next = analyst_;
  next[tenant] = std::move(list->values);
  if (absl::Status st = publishAnalystLocked(std::move(next), tenant, "replaced"); !st.ok()) {
    return st;
  }
  return std::move(list->report);
}

absl::StatusOr<IntelManager::RemoveReport> IntelManager::removeIndicators(
    const std::string& tenant, const std::string& text) {
  if (absl::Status st = checkAnalystTenant(tenant); !st.ok()) return st;
  absl::StatusOr<NormalizedList> list = normalizeList(text);
  if (!list.ok()) return list.status();
  RemoveReport out;
  out.parsed = std::move(list->report);
  std::lock_guard lock(build_mutex_);
  AnalystLists next = analyst_;
  std::vector<std::string>& values = next[tenant];
  for (std::string& value : list->values) {
    auto it = std::find(values.begin(), values.end(), value);
    if (it == values.end()) {
      out.not_found.push_back(std::move(value));
      continue;
    }
    values.erase(it);
    out.removed.push_back(std::move(value));
  }
  if (out.removed.empty()) return out;
  if (absl::Status st = publishAnalystLocked(std::move(next), tenant, "removed"); !st.ok()) {
    return st;
  }
  return out;
}

std::vector<std::string> IntelManager::analystIndicators(const std::string& tenant) {
  std::lock_guard lock(build_mutex_);
  auto it = analyst_.find(tenant);
  return it == analyst_.end() ? std::vector<std::string>() : it->second;
}

std::vector<FeedStatus> IntelManager::feedStatus() const {
  std::lock_guard lock(status_mutex_);
  return feed_status_;
}

std::string IntelManager::analystListPath() const {
  if (config_.state_dir.empty()) return "";
  return (std::filesystem::path(config_.state_dir) / kAnalystFile).string();
}

absl::Status IntelManager::saveAnalystLists(const AnalystLists& lists) const {
  const std::string path = analystListPath();
  if (path.empty()) return absl::OkStatus();
  nlohmann::json tenants = nlohmann::json::object();
  for (const auto& [tenant, values] : lists) {
    if (!values.empty()) tenants[tenant] = values;
  }
  const nlohmann::json file = {{"version", kAnalystFileVersion}, {"tenants", tenants}};
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  return correlate::writeFileAtomically(
      path, file.dump(1, ' ', false, nlohmann::json::error_handler_t::strict));
}

absl::Status IntelManager::loadAnalystLists() {
  const std::string path = analystListPath();
  if (path.empty()) return absl::OkStatus();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::OkStatus();

  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the saved analyst indicators ", path, "; check its permissions"));
  }

  auto invalid = [&path](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("the saved analyst indicators ", path, " are invalid: ", why,
                     "; restore the file from a backup, or move it away to start without them"));
  };
  const nlohmann::json file = nlohmann::json::parse(text.str(), nullptr, false);
  if (file.is_discarded() || !file.is_object()) return invalid("not a JSON object");
  auto version = file.find("version");
  if (version == file.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kAnalystFileVersion) {
    return invalid(absl::StrCat("\"version\" is not ", kAnalystFileVersion));
  }
  auto tenants = file.find("tenants");
  if (tenants == file.end() || !tenants->is_object()) return invalid("\"tenants\" is missing");

  AnalystLists lists;
  for (const auto& [tenant, values] : tenants->items()) {
    if (absl::Status st = checkAnalystTenant(tenant); !st.ok()) return invalid(st.message());
    if (!values.is_array()) return invalid(absl::StrCat("tenant ", tenant, " is not an array"));
    std::vector<std::string>& list = lists[tenant];
    for (const nlohmann::json& value : values) {
      if (!value.is_string()) {
        return invalid(absl::StrCat("tenant ", tenant, " contains a value that is not a string"));
      }
      list.push_back(value.get<std::string>());
    }
  }

  size_t count = 0;
  for (const auto& [tenant, values] : lists) count += values.size();
  VIGIL_LOG_INFO("analyst indicators loaded path={} tenants={} indicators={}", path, lists.size(),
                 count);
  std::lock_guard lock(build_mutex_);
  analyst_ = std::move(lists);
  analyst_restored_ = true;
  return absl::OkStatus();
}

absl::Status IntelManager::loadInitial() {
  if (absl::Status st = loadAnalystLists(); !st.ok()) return st;
  return rebuild("start").status();
}

void IntelManager::updateGauges() {
  std::shared_ptr<const intel::Snapshot> snapshot = store_.current();
  if (snapshot != nullptr) {
    indicators_->set(static_cast<int64_t>(snapshot->size()));
    generation_->set(static_cast<int64_t>(snapshot->generation()));
  }
  pending_->set(static_cast<int64_t>(store_.stats().pending));
}

void IntelManager::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
  VIGIL_LOG_INFO("intel manager started refresh_s={} url_feeds={}", config_.intel_refresh_s,
                 std::count_if(config_.intel_lists.begin(), config_.intel_lists.end(),
                               [](const IntelListConfig& l) { return !l.url.empty(); }));
}

void IntelManager::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    VIGIL_LOG_INFO("intel manager stopped generation={} reclaimed={}", store_.stats().published,
                   store_.stats().reclaimed);
  }
}

void IntelManager::requestReload(std::string reason) {
  {
    std::lock_guard lock(mutex_);
    reload_reason_ = std::move(reason);
  }
  wake_.notify_all();
}

void IntelManager::setFeedConfig(const DaemonConfig& config) {
  std::lock_guard lock(build_mutex_);
  config_.intel_lists = config.intel_lists;
  config_.intel_warninglists = config.intel_warninglists;
  config_.intel_min_ipv4_prefix_len = config.intel_min_ipv4_prefix_len;
  config_.intel_min_ipv6_prefix_len = config.intel_min_ipv6_prefix_len;
  config_.intel_default_confidence = config.intel_default_confidence;
  config_.intel_score_half_life_days = config.intel_score_half_life_days;
  config_.intel_fetch_timeout_s = config.intel_fetch_timeout_s;
}

void IntelManager::run() {
  using Clock = std::chrono::steady_clock;
  // Read once: setFeedConfig() does not change the refresh period.
  const int refresh_s = config_.intel_refresh_s;
  const auto refresh = std::chrono::seconds(refresh_s);
  Clock::time_point next_refresh = Clock::now() + refresh;
  while (true) {
    std::string reason;
    {
      std::unique_lock lock(mutex_);
      const bool pending = store_.stats().pending != 0;
      Clock::time_point until =
          pending ? Clock::now() + kReclaimPoll : Clock::now() + std::chrono::hours(1);
      if (refresh_s > 0) until = std::min(until, next_refresh);
      wake_.wait_until(lock, until, [this] { return stopping_ || !reload_reason_.empty(); });
      if (stopping_) break;
      reason = std::move(reload_reason_);
      reload_reason_.clear();
    }
    if (reason.empty() && refresh_s > 0 && Clock::now() >= next_refresh) {
      reason = "schedule";
    }
    if (!reason.empty()) {
      if (reason == "schedule") next_refresh = Clock::now() + refresh;
      (void)rebuild(reason);  // logged and counted inside
    }
    if (store_.reclaim() > 0) updateGauges();
  }
}

}  // namespace vigil::mgmt
