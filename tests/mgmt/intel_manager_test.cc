// IntelManager: every corpus feed loads through the daemon's loader, URL feeds come from a
// local HTTP server started by the test, failures keep the last good data, and rebuilds,
// scheduled refreshes and analyst deltas publish new snapshots.
#include "mgmt/intel_manager.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/metrics.h"

namespace vigil::mgmt {
namespace {

const std::string kCorpus = std::string(VIGIL_SHARED_DIR) + "/corpus/intel/";

// The texts of every indicator in the store's current snapshot.
std::set<std::string> indicatorTexts(IntelManager& manager) {
  std::set<std::string> out;
  std::shared_ptr<const intel::Snapshot> snapshot = manager.store().current();
  if (snapshot == nullptr) return out;
  for (uint32_t id = 0; id < snapshot->size(); ++id) out.insert(snapshot->indicator(id).text);
  return out;
}

uint64_t generation(IntelManager& manager) {
  std::shared_ptr<const intel::Snapshot> snapshot = manager.store().current();
  return snapshot == nullptr ? 0 : snapshot->generation();
}

// Polls `done` every 10 ms for up to 10 s (the bound for threaded cases).
template <typename Predicate>
bool waitFor(Predicate done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// An HTTP server on 127.0.0.1 that serves one feed body with a settable status.
class FeedServer {
 public:
  FeedServer() {
    server_.Get("/feed.txt", [this](const httplib::Request&, httplib::Response& response) {
      std::lock_guard lock(mutex_);
      ++requests_;
      response.status = status_;
      response.set_content(body_, "text/plain");
    });
    // One line sent a byte every 100 ms, until the server stops.
    server_.Get("/slow.txt", [this](const httplib::Request&, httplib::Response& response) {
      response.set_chunked_content_provider("text/plain", [this](size_t, httplib::DataSink& sink) {
        if (stopping_) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return sink.write("a", 1);
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FeedServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  void serve(int status, std::string body) {
    std::lock_guard lock(mutex_);
    status_ = status;
    body_ = std::move(body);
  }
  int requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/feed.txt"); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  int status_ = 200;
  std::string body_;
  int requests_ = 0;
  std::atomic<bool> stopping_{false};
};

IntelListConfig urlList(const std::string& name, const std::string& url) {
  IntelListConfig list;
  list.name = name;
  list.url = url;
  return list;
}

IntelListConfig fileList(const std::string& name, const std::string& path,
                         const std::string& format = "list") {
  IntelListConfig list;
  list.name = name;
  list.path = path;
  list.format = format;
  return list;
}

class IntelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("intel-manager-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    config_.intel_fetch_timeout_s = 2;
    // No state folder unless a test sets one, so that no test reads or writes the saved
    // analyst lists or the cache under the default /var/lib/vigil.
    config_.state_dir.clear();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
  DaemonConfig config_;
  MetricsRegistry metrics_;
};

// Every feed of the shared corpus loads in its format; rejected records are reported
// with a location and a reason, and the snapshot contains indicators from each kind of feed.
TEST_F(IntelManagerTest, LoadsEveryCorpusFeed) {
  config_.intel_warninglists = {kCorpus + "misp-warninglists"};
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus + "lists")) {
    const std::string name = entry.path().filename().string();
    if (name == "signature-base-filename-iocs.txt") {
      config_.intel_lists.push_back(fileList(name, entry.path().string(), "regex"));
    } else if (entry.path().extension() == ".csv") {
      IntelListConfig list = fileList(name, entry.path().string(), "csv");
      list.csv.value_column = "host";
      list.csv.url_path_column = "path";
      list.csv.first_seen_column = "updated";
      config_.intel_lists.push_back(list);
    } else {
      config_.intel_lists.push_back(fileList(name, entry.path().string()));
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus + "misp")) {
    const std::string name = entry.path().filename().string();
    config_.intel_lists.push_back(
        fileList(name, entry.path().string(), entry.is_directory() ? "misp_feed" : "misp"));
  }
  // The MISP-to-STIX mapping file is a table of examples keyed by MISP type, not a feed
  // (the intel tests load its examples one by one); as a feed it fails with the reason.
  const std::string mapping = "misp-attributes-to-stix21-mapping.json";
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus + "stix")) {
    if (entry.path().filename() == mapping) continue;
    config_.intel_lists.push_back(
        fileList(entry.path().filename().string(), entry.path().string(), "stix"));
  }
  ASSERT_GE(config_.intel_lists.size(), 30u);

  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());
  std::vector<FeedStatus> statuses = manager.feedStatus();
  ASSERT_EQ(statuses.size(), config_.intel_lists.size());
  size_t with_rejections = 0;
  for (const FeedStatus& status : statuses) {
    EXPECT_TRUE(status.loaded) << status.name;
    EXPECT_LE(status.rejections.size(), status.rejected) << status.name;
    for (const intel::Rejection& r : status.rejections) {
      EXPECT_FALSE(r.reason.empty()) << status.name << " " << r.location;
      EXPECT_NE(r.location.find(':'), std::string::npos) << status.name << " " << r.location;
    }
    if (status.rejected > 0) ++with_rejections;
    if (status.name.starts_with("ipsum") || status.name == "threatfox-ips.txt" ||
        status.name == "urlhaus-domains-online.txt" || status.name == "feed") {
      // The smaller IPsum levels repeat ipsum.txt, so their values may all be duplicates.
      EXPECT_GT(status.indicators + status.duplicates, 0u) << status.name;
    }
  }
  EXPECT_GT(with_rejections, 0u);
  std::shared_ptr<const intel::Snapshot> snapshot = manager.store().current();
  ASSERT_NE(snapshot, nullptr);
  const intel::IndicatorSetStats& stats = snapshot->base().stats();
  EXPECT_GT(stats.count(IndicatorType::kIpv4), 1000u);
  EXPECT_GT(stats.count(IndicatorType::kDomain), 100u);
  EXPECT_GT(stats.count(IndicatorType::kUrl), 100u);
  EXPECT_GT(stats.count(IndicatorType::kSha256), 10u);
  EXPECT_GT(stats.count(IndicatorType::kRegex), 10u);
  EXPECT_FALSE(stats.suppressed_by_warninglist.empty());
  EXPECT_GT(metrics_.sum("vigil_intel_lines_rejected_total"), 0u);
  EXPECT_EQ(metrics_.sum("vigil_intel_reloads_total", {{"result", "ok"}}), 1u);
  const std::string exported = metrics_.renderPrometheus();
  EXPECT_NE(exported.find("vigil_intel_scan_errors 0\n"), std::string::npos) << exported;
  EXPECT_NE(exported.find(absl::StrCat("vigil_intel_indicators ", snapshot->size(), "\n")),
            std::string::npos)
      << exported;

  DaemonConfig mapping_config;
  mapping_config.intel_lists = {fileList("mapping", kCorpus + "stix/" + mapping, "stix")};
  IntelManager mapping_manager(mapping_config, metrics_, 2);
  absl::Status st = mapping_manager.loadInitial();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(mapping), std::string::npos) << st;
  EXPECT_NE(st.message().find("bundle"), std::string::npos) << st;
}

// A URL feed is fetched; a failed fetch keeps its last good body and is counted; the next
// good fetch replaces it.
TEST_F(IntelManagerTest, UrlFeedKeepsLastGoodBody) {
  FeedServer server;
  server.serve(200, "first.example\n");
  config_.intel_lists = {urlList("remote", server.url())};
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"first.example"}));

  server.serve(503, "");
  absl::StatusOr<uint64_t> second = manager.rebuild("test");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"first.example"}));
  EXPECT_EQ(metrics_.sum("vigil_intel_fetches_total", {{"result", "failed"}}), 1u);
  std::vector<FeedStatus> statuses = manager.feedStatus();
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_NE(statuses[0].fetch_error.find("503"), std::string::npos) << statuses[0].fetch_error;

  server.serve(200, "second.example\n");
  ASSERT_TRUE(manager.rebuild("test").ok());
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"second.example"}));
  EXPECT_EQ(metrics_.sum("vigil_intel_fetches_total", {{"result", "ok"}}), 2u);
  EXPECT_TRUE(manager.feedStatus()[0].fetch_error.empty());
  EXPECT_EQ(server.requests(), 3);
}

// A URL feed that was never fetched is left out at start; the appliance still starts.
TEST_F(IntelManagerTest, UnreachableFeedIsLeftOut) {
  std::string url;
  {
    FeedServer server;  // take a free port, then close it
    url = server.url();
  }
  config_.intel_lists = {urlList("remote", url),
                         fileList("local", write("local.txt", "local.example\n"))};
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"local.example"}));
  std::vector<FeedStatus> statuses = manager.feedStatus();
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_FALSE(statuses[0].loaded);
  EXPECT_FALSE(statuses[0].fetch_error.empty());
  EXPECT_EQ(metrics_.sum("vigil_intel_fetches_total", {{"list", "remote"}, {"result", "failed"}}),
            1u);
}

// A rebuild that fails (a feed file disappeared) keeps the snapshot and counts the failure.
TEST_F(IntelManagerTest, FailedRebuildKeepsSnapshot) {
  const std::string path = write("feed.txt", "kept.example\n");
  config_.intel_lists = {fileList("feed", path)};
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());
  std::filesystem::remove(path);

  absl::StatusOr<uint64_t> result = manager.rebuild("test");
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("feed.txt"), std::string::npos) << result.status();
  EXPECT_EQ(generation(manager), 1u);
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"kept.example"}));
  EXPECT_EQ(metrics_.sum("vigil_intel_reloads_total", {{"result", "failed"}}), 1u);
}

// A cache file of another format version is rejected, counted and replaced on the next
// rebuild, which then compiles the patterns again.
TEST_F(IntelManagerTest, OldCacheFileIsCounted) {
  const std::string path = write("feed.txt", "http://bad.example/x\nkept.example\n");
  config_.intel_lists = {fileList("feed", path)};
  config_.state_dir = (dir_ / "state").string();
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());
  EXPECT_EQ(metrics_.sum("vigil_intel_hs_cache_total", {{"outcome", "miss"}}), 1u);

  const std::filesystem::path cache = dir_ / "state" / "hs-cache";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(cache)) {
    files.push_back(entry.path());
  }
  ASSERT_EQ(files.size(), 1u);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(7);  // the format version digit after the 7-byte magic
    f.put('1');
  }
  ASSERT_TRUE(manager.rebuild("test").ok());
  EXPECT_EQ(metrics_.sum("vigil_intel_hs_cache_rejected_total"), 1u);
  EXPECT_EQ(metrics_.sum("vigil_intel_hs_cache_total", {{"outcome", "miss"}}), 2u);
  ASSERT_TRUE(manager.rebuild("test").ok());
  EXPECT_EQ(metrics_.sum("vigil_intel_hs_cache_total", {{"outcome", "hit"}}), 1u);
  EXPECT_EQ(metrics_.sum("vigil_intel_hs_cache_rejected_total"), 1u);
}

// requestReload() and the refresh schedule both rebuild on the manager's thread.
TEST_F(IntelManagerTest, ReloadRequestAndSchedule) {
  FeedServer server;
  server.serve(200, "one.example\n");
  config_.intel_lists = {urlList("remote", server.url())};
  config_.intel_refresh_s = 1;
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());
  manager.start();

  server.serve(200, "two.example\n");
  manager.requestReload("test");
  EXPECT_TRUE(waitFor([&] { return indicatorTexts(manager).count("two.example") == 1; }));

  // No request now: the one-second schedule picks up the next body.
  server.serve(200, "three.example\n");
  EXPECT_TRUE(waitFor([&] { return indicatorTexts(manager).count("three.example") == 1; }));
  manager.stop();
  EXPECT_GE(metrics_.sum("vigil_intel_reloads_total", {{"result", "ok"}}), 3u);
  // The manager's thread freed what it replaced.
  EXPECT_EQ(manager.store().stats().pending, 0u);
}

// Analyst indicators go live as a delta at once and join the next full build.
TEST_F(IntelManagerTest, AnalystIndicatorsAsDelta) {
  config_.intel_lists = {fileList("feed", write("feed.txt", "feed.example\n"))};
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());

  absl::StatusOr<intel::LoadReport> report = manager.addIndicators("", "analyst.example\nnot valid\n");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 1u);
  EXPECT_EQ(report->rejected, 1u);
  std::shared_ptr<const intel::Snapshot> snapshot = manager.store().current();
  ASSERT_NE(snapshot->delta(), nullptr);
  EXPECT_EQ(snapshot->delta()->size(), 1u);
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"feed.example", "analyst.example"}));

  ASSERT_TRUE(manager.rebuild("test").ok());
  snapshot = manager.store().current();
  EXPECT_EQ(snapshot->delta(), nullptr);
  EXPECT_EQ(snapshot->base().size(), 2u);
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"feed.example", "analyst.example"}));
}

// "text@tenant" of every indicator in the current snapshot, base and delta.
std::set<std::string> ownedTexts(IntelManager& manager) {
  std::set<std::string> out;
  std::shared_ptr<const intel::Snapshot> snapshot = manager.store().current();
  for (uint32_t id = 0; id < snapshot->size(); ++id) {
    const intel::Indicator indicator = snapshot->indicator(id);
    out.insert(indicator.text + "@" + indicator.tenant);
  }
  return out;
}

// With a state folder, the analyst lists are saved at each change and read back by the
// next manager. A change that cannot be saved is rejected and leaves the lists and the
// snapshot as they were, and a damaged file stops the start with its path.
TEST_F(IntelManagerTest, AnalystListsSaved) {
  config_.state_dir = (dir_ / "state").string();
  {
    IntelManager manager(config_, metrics_, 2);
    ASSERT_TRUE(manager.loadInitial().ok());
    EXPECT_FALSE(manager.analystListsRestored());
    ASSERT_TRUE(manager.addIndicators("acme", "acme.example\n").ok());
    ASSERT_TRUE(manager.addIndicators("", "every.example\n").ok());
    ASSERT_TRUE(manager.addIndicators("globex", "globex.example\n").ok());
    auto removed = manager.removeIndicators("globex", "globex.example\n");
    ASSERT_TRUE(removed.ok()) << removed.status();
  }
  {
    MetricsRegistry metrics;
    IntelManager manager(config_, metrics, 2);
    absl::Status loaded = manager.loadInitial();
    ASSERT_TRUE(loaded.ok()) << loaded;
    EXPECT_TRUE(manager.analystListsRestored());
    EXPECT_EQ(manager.analystIndicators("acme"), std::vector<std::string>{"acme.example"});
    EXPECT_EQ(manager.analystIndicators(""), std::vector<std::string>{"every.example"});
    EXPECT_TRUE(manager.analystIndicators("globex").empty());
    EXPECT_EQ(ownedTexts(manager), (std::set<std::string>{"acme.example@acme", "every.example@"}));

    // The temporary file of the atomic replace cannot be created over a folder.
    const std::string path = manager.analystListPath();
    std::filesystem::create_directories(path + ".tmp");
    const uint64_t before = generation(manager);
    absl::StatusOr<intel::LoadReport> refused = manager.addIndicators("acme", "new.example\n");
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("could not be saved"), std::string::npos)
        << refused.status();
    EXPECT_EQ(manager.analystIndicators("acme"), std::vector<std::string>{"acme.example"});
    EXPECT_EQ(generation(manager), before);
    std::filesystem::remove(path + ".tmp");

    std::ofstream(path) << "{\"version\": 1, \"tenants\": {\"a/b\": []}}";
  }
  MetricsRegistry metrics;
  IntelManager damaged(config_, metrics, 2);
  absl::Status start = damaged.loadInitial();
  EXPECT_FALSE(start.ok());
  EXPECT_NE(start.message().find(damaged.analystListPath()), std::string::npos) << start;
}

// A feed with a tenant gives that tenant's indicators; the same value in a feed of every
// tenant stays a separate copy.
TEST_F(IntelManagerTest, TenantFeedOwnsIndicators) {
  IntelListConfig acme = fileList("acme-feed", write("acme.txt", "evil.example\nacme.example\n"));
  acme.tenant = "acme";
  config_.intel_lists = {acme, fileList("feed", write("feed.txt", "evil.example\n"))};
  IntelManager manager(config_, metrics_, 1);
  ASSERT_TRUE(manager.loadInitial().ok());
  EXPECT_EQ(ownedTexts(manager),
            (std::set<std::string>{"evil.example@", "evil.example@acme", "acme.example@acme"}));
  std::vector<FeedStatus> status = manager.feedStatus();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].tenant, "acme");
  EXPECT_EQ(status[1].tenant, "");
}

// Each tenant has its own analyst list: replacing acme's leaves globex's and the list
// of every tenant alone, in the delta and after a full build.
TEST_F(IntelManagerTest, AnalystListsPerTenant) {
  config_.intel_lists = {fileList("feed", write("feed.txt", "feed.example\n"))};
  IntelManager manager(config_, metrics_, 1);
  ASSERT_TRUE(manager.loadInitial().ok());
  ASSERT_TRUE(manager.addIndicators("acme", "a.example\nshared.example\n").ok());
  ASSERT_TRUE(manager.addIndicators("globex", "g.example\nshared.example\n").ok());
  ASSERT_TRUE(manager.addIndicators("", "all.example\n").ok());
  const std::set<std::string> before = {"feed.example@",       "a.example@acme",
                                        "shared.example@acme", "g.example@globex",
                                        "shared.example@globex", "all.example@"};
  EXPECT_EQ(ownedTexts(manager), before);

  absl::StatusOr<intel::LoadReport> replaced = manager.replaceIndicators("acme", "new.example\n");
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(manager.analystIndicators("acme"), std::vector<std::string>{"new.example"});
  EXPECT_EQ(manager.analystIndicators("globex"),
            (std::vector<std::string>{"g.example", "shared.example"}));
  std::set<std::string> after = {"feed.example@", "new.example@acme", "g.example@globex",
                                 "shared.example@globex", "all.example@"};
  EXPECT_EQ(ownedTexts(manager), after);
  ASSERT_TRUE(manager.rebuild("test").ok());
  EXPECT_EQ(manager.store().current()->delta(), nullptr);
  EXPECT_EQ(ownedTexts(manager), after);

  EXPECT_EQ(manager.addIndicators("bad tenant", "x.example\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Removal compares normalized values and reports the ones the list did not hold.
TEST_F(IntelManagerTest, RemoveAnalystIndicators) {
  config_.intel_lists = {fileList("feed", write("feed.txt", "feed.example\n"))};
  IntelManager manager(config_, metrics_, 1);
  ASSERT_TRUE(manager.loadInitial().ok());
  ASSERT_TRUE(manager.addIndicators("acme", "a.example\nb.example\n").ok());
  ASSERT_TRUE(manager.addIndicators("globex", "a.example\n").ok());
  absl::StatusOr<IntelManager::RemoveReport> removed =
      manager.removeIndicators("acme", "A.Example.\nmissing.example\n");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->removed, std::vector<std::string>{"a.example"});
  EXPECT_EQ(removed->not_found, std::vector<std::string>{"missing.example"});
  EXPECT_EQ(manager.analystIndicators("acme"), std::vector<std::string>{"b.example"});
  EXPECT_EQ(manager.analystIndicators("globex"), std::vector<std::string>{"a.example"});
  EXPECT_EQ(ownedTexts(manager),
            (std::set<std::string>{"feed.example@", "b.example@acme", "a.example@globex"}));
}

// fetchUrl() rejects other schemes and oversized bodies with the URL in the message.
TEST_F(IntelManagerTest, FetchUrlErrors) {
  absl::StatusOr<std::string> ftp = fetchUrl("ftp://127.0.0.1/feed.txt", 1, 1024);
  EXPECT_EQ(ftp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ftp.status().message().find("ftp://"), std::string::npos);

  FeedServer server;
  server.serve(200, std::string(5000, 'a'));
  absl::StatusOr<std::string> big = fetchUrl(server.url(), 2, 1024);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find(server.url()), std::string::npos);

  // A body that keeps trickling in is cut off at the timeout, although each read is quick.
  const std::string slow_url = absl::StrReplaceAll(server.url(), {{"feed.txt", "slow.txt"}});
  absl::StatusOr<std::string> slow = fetchUrl(slow_url, 1, 1024);
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  EXPECT_NE(slow.status().message().find("intel.fetch_timeout_s"), std::string::npos)
      << slow.status();

  server.serve(200, "");
  absl::StatusOr<std::string> empty = fetchUrl(server.url(), 2, 1024);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(empty.status().message().find("empty body"), std::string::npos) << empty.status();
}

// An empty 200 response keeps the last good copy in use, as a failed download does.
TEST_F(IntelManagerTest, EmptyFeedBodyKeepsLastGoodCopy) {
  FeedServer server;
  server.serve(200, "kept.example\n");
  config_.intel_lists = {urlList("remote", server.url())};
  IntelManager manager(config_, metrics_, 2);
  ASSERT_TRUE(manager.loadInitial().ok());

  server.serve(200, "");
  ASSERT_TRUE(manager.rebuild("test").ok());
  EXPECT_EQ(indicatorTexts(manager), (std::set<std::string>{"kept.example"}));
  EXPECT_EQ(metrics_.sum("vigil_intel_fetches_total", {{"result", "failed"}}), 1u);
  EXPECT_NE(manager.feedStatus()[0].fetch_error.find("empty body"), std::string::npos);
}

// A refused connection is named as such, not by the HTTP library's error name.
TEST_F(IntelManagerTest, RefusedFetchIsNamed) {
  std::string url;
  {
    FeedServer server;  // take a free port, then close it
    url = server.url();
  }
  absl::StatusOr<std::string> refused = fetchUrl(url, 2, 1024);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("cannot connect"), std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace vigil::mgmt
