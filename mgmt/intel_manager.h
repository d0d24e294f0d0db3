// The daemon's threat-intel manager: loads every configured feed (files, and URLs fetched
// over HTTP or HTTPS), builds indicator snapshots on its own thread and publishes them in
// an intel::SnapshotStore that the pipeline's workers read without waiting.
//
// A full rebuild runs at start, on requestReload() (vigild calls it on SIGHUP) and every
// intel.refresh_s seconds. A failed rebuild keeps the current snapshot. A failed fetch
// keeps that feed's last good body, so one unreachable server does not drop its
// indicators; a feed that was never fetched is left out until a fetch succeeds.
// Analyst indicators added with addIndicators() are published at once as a small delta
// and are part of every later full build. With daemon.state_dir set, every change of the
// analyst lists is written to <state_dir>/intel-analyst.json before it is published, and
// loadInitial() reads the lists back, so they survive a restart.
//
// Tenants: a configured feed with a tenant (intel.lists[].tenant) and each tenant's
// analyst list give indicators that only that tenant's events match. Feeds without a
// tenant and the analyst list of every tenant (tenant "") match every event.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "intel/builder.h"
#include "intel/snapshot.h"
#include "mgmt/config.h"

namespace vigil::mgmt {

// Fetches the body of an http:// or https:// URL. Errors name the URL and the HTTP status
// or transport error. Bodies larger than `max_bytes` fail with ResourceExhausted.
// Blocks for at most about `timeout_s` per connect and per read.
absl::StatusOr<std::string> fetchUrl(const std::string& url, int timeout_s, size_t max_bytes);

// Outcome of the latest full build for one configured list.
struct FeedStatus {
  std::string name;
  std::string tenant;  // empty for a feed of every tenant
  std::string source;  // path or URL
  bool loaded = false;  // false when a URL feed has no good body yet
  size_t indicators = 0;
  size_t duplicates = 0;
  size_t rejected = 0;
  size_t expired = 0;
  std::vector<intel::Rejection> rejections;  // the first ones, with location and reason
  std::string fetch_error;  // the latest fetch error of a URL feed; empty after a success
};

class IntelManager {
 public:
  // `metrics` must outlive the manager; `config` is copied. `readers` is the number of reader
  // slots of the snapshot store (the pipeline's batch count).
  IntelManager(const DaemonConfig& config, MetricsRegistry& metrics, size_t readers);
  ~IntelManager();
  IntelManager(const IntelManager&) = delete;
  IntelManager& operator=(const IntelManager&) = delete;

  // Reads the saved analyst lists, then builds and publishes the first snapshot on the
  // calling thread. Errors: a saved list file that cannot be read or parsed, a feed file
  // that cannot be read, a warninglist that fails to load, a build failure. A URL feed
  // that cannot be fetched is logged and counted, not an error.
  absl::Status loadInitial();

  // True when loadInitial() read the analyst lists from the state folder. They then
  // already contain the active intel content version of each tenant, and every change
  // made after it.
  bool analystListsRestored() const { return analyst_restored_; }

  // "<state_dir>/intel-analyst.json", or "" without a state folder.
  std::string analystListPath() const;

  // Starts the thread that rebuilds on requestReload() and on the refresh schedule and
  // frees retired snapshots. Call after loadInitial().
  void start();
  // Stops and joins that thread. Safe to call more than once.
  void stop();

  // Asks for a full rebuild on the manager's thread. Never blocks. Thread-safe.
  void requestReload(std::string reason);

  // Adds analyst indicators (plain-list text, one per line) to the analyst list of
  // `tenant` ("" for the list of every tenant) under the list name "analyst", and
  // publishes every tenant's analyst list as a delta next to the current base. Blocks
  // while the small delta set compiles. Returns the load report of `text`; rejected lines
  // do not fail. Errors: InvalidArgument for a bad tenant name, FailedPrecondition before
  // the first snapshot. Thread-safe.
  absl::StatusOr<intel::LoadReport> addIndicators(const std::string& tenant,
                                                  const std::string& text);

  // Replaces the analyst list of `tenant` with `text` and publishes the delta; the other
  // tenants' lists stay as they are. Rejected lines do not fail; they are in the report.
  // Thread-safe.
  absl::StatusOr<intel::LoadReport> replaceIndicators(const std::string& tenant,
                                                      const std::string& text);

  // What removeIndicators() did.
  struct RemoveReport {
    std::vector<std::string> removed;    // normalized values taken out of the list
    std::vector<std::string> not_found;  // normalized values the list did not contain
    intel::LoadReport parsed;            // the lines of the request, with rejections
  };
  // Removes the values of `text` (plain-list text) from the analyst list of `tenant` and
  // publishes the delta when one was removed. Values are compared after normalization,
  // so "EVIL.example." removes "evil.example". Thread-safe.
  absl::StatusOr<RemoveReport> removeIndicators(const std::string& tenant,
                                                const std::string& text);

  // The normalized values of the analyst list of `tenant`, in the order they were added.
  // Thread-safe.
  std::vector<std::string> analystIndicators(const std::string& tenant);

  // Takes the feed keys of `config` (intel.lists, warninglists, prefix limits,
  // confidence, score half-life, fetch timeout) for the next rebuild. intel.refresh_s
  // keeps its value from the start. Call requestReload() or rebuild() afterwards.
  // Thread-safe.
  void setFeedConfig(const DaemonConfig& config);

  // Runs one full rebuild now on the calling thread (what the manager's thread runs).
  // Returns the published generation, or the error that kept the current snapshot.
  absl::StatusOr<uint64_t> rebuild(const std::string& reason);

  intel::SnapshotStore& store() { return store_; }

  // Per-list results of the latest full build that got as far as loading (also a failed
  // one). Thread-safe.
  std::vector<FeedStatus> feedStatus() const;

 private:
  absl::Status addFeeds(intel::IndicatorSetBuilder& builder, bool initial);
  absl::Status addWarninglists(intel::IndicatorSetBuilder& builder);
  absl::Status addUrlFeed(const IntelListConfig& list);
  // Tenant -> normalized analyst values; "" is the list of every tenant.
  using AnalystLists = std::map<std::string, std::vector<std::string>>;
  absl::Status addAnalystLists(intel::IndicatorSetBuilder& builder,
                               const AnalystLists& lists) const;
  // Reads analystListPath() into analyst_; a missing file leaves the lists empty.
  absl::Status loadAnalystLists();
  // Replaces analystListPath() with `lists` (write, fsync, rename).
  absl::Status saveAnalystLists(const AnalystLists& lists) const;
  // Builds `next` into the delta, saves it, publishes it and makes it the analyst lists.
  // Nothing changes when the save fails. Call with build_mutex_ held.
  absl::Status publishAnalystLocked(AnalystLists next, const std::string& tenant,
                                    std::string_view action);
  void run();
  void updateGauges();

  DaemonConfig config_;  // the intel keys change with setFeedConfig(), under build_mutex_
  MetricsRegistry& metrics_;
  intel::SnapshotStore store_;

  std::mutex build_mutex_;  // one rebuild or delta at a time
  std::map<std::string, std::string> last_good_;  // URL feed name -> last fetched body
  AnalystLists analyst_;                          // every tenant's analyst values
  bool analyst_restored_ = false;                 // analyst_ was read from the state folder
  std::map<std::string, std::string> fetch_errors_;  // URL feed name -> latest fetch error
  // List name -> hashes of the rejections (place, reason, text) of its latest load that
  // have been logged, so that a reload logs the others and not those logged before.
  std::map<std::string, std::set<uint64_t>> rejections_logged_;
  mutable std::mutex status_mutex_;
  std::vector<FeedStatus> feed_status_;

  std::mutex mutex_;  // guards the reload request and stop flag
  std::condition_variable wake_;
  std::string reload_reason_;  // empty when no reload is requested
  bool stopping_ = false;
  std::thread thread_;

  Counter* reloads_ok_ = nullptr;
  Counter* reloads_failed_ = nullptr;
  Gauge* indicators_ = nullptr;
  Gauge* generation_ = nullptr;
  Gauge* pending_ = nullptr;
};

}  // namespace vigil::mgmt
