#include "mgmt/case_sink.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kT0;
using testing::makeAlert;
using testing::waitFor;

class CaseSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaseStoreOptions options;
    options.busy_timeout_ms = 20000;  // longer than any lock a test holds on purpose
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(path_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  int64_t totalCases() {
    absl::StatusOr<CasePage> page = store_->listCases({});
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->total : -1;
  }

  int64_t totalAlerts() {
    testing::RawDb raw(path_);
    return std::stoll(raw.queryText("SELECT COUNT(*) FROM alerts"));
  }

  uint64_t metric(const std::string& name, const Labels& labels = {}) {
    return metrics_.sum(name, labels);
  }

  testing::TempDir dir_;
  std::string path_ = dir_.file("cases.db");
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
};

// flush() returns only after every queued alert is on disk, across many small batches.
TEST_F(CaseSinkTest, FlushStoresEverything) {
  CaseSinkOptions options;
  options.queue_capacity = 16;
  options.max_batch = 8;
  CaseSink sink(*store_, metrics_, options);
  for (int i = 0; i < 1000; ++i) {
    sink.onAlert(makeAlert("r", "medium", "t", {{"host.name", std::to_string(i % 50)}}, kT0 + i));
  }
  sink.flush();

  EXPECT_EQ(metric("vigil_alerts_stored_total"), 1000u);
  EXPECT_EQ(metric("vigil_cases_opened_total"), 50u);
  EXPECT_EQ(metric("vigil_case_store_errors_total"), 0u);
  EXPECT_EQ(metric("vigil_case_sink_dropped_total"), 0u);
  EXPECT_EQ(totalCases(), 50);
  EXPECT_EQ(totalAlerts(), 1000);
  EXPECT_EQ(sink.queueDepth(), 0u);
}

// Stored alerts and the cases they open count under their tenant when it is configured
// and under "_other" otherwise. Configured tenants are exported at zero before their first
// alert. The filer path counts stored alerts the same way.
TEST_F(CaseSinkTest, StoredAlertsCountByTenant) {
  struct NullFiler : StoredAlertSink {
    void onStoredAlert(const correlate::Alert&, int64_t) override {}
  };
  for (bool with_filer : {false, true}) {
    MetricsRegistry metrics;
    NullFiler filer;
    CaseSinkOptions options;
    options.tenants = {"acme", "globex", "lab"};
    if (with_filer) options.filer = &filer;
    CaseSink sink(*store_, metrics, options);
    for (int i = 0; i < 3; ++i) sink.onAlert(makeAlert("r", "low", "acme", {}, kT0 + i));
    sink.onAlert(makeAlert("r", "low", "globex", {}, kT0));
    sink.onAlert(makeAlert("r", "low", "unlisted", {}, kT0));
    sink.onAlert(makeAlert("r", "low", "another", {}, kT0));
    sink.flush();

    EXPECT_EQ(metrics.sum("vigil_alerts_stored_total", {{"tenant", "acme"}}), 3u) << with_filer;
    EXPECT_EQ(metrics.sum("vigil_alerts_stored_total", {{"tenant", "globex"}}), 1u) << with_filer;
    EXPECT_EQ(metrics.sum("vigil_alerts_stored_total", {{"tenant", "_other"}}), 2u) << with_filer;
    EXPECT_EQ(metrics.sum("vigil_alerts_stored_total"), 6u) << with_filer;
    // Without a filer each tenant's alerts open one case; with one, the filer opens them.
    const uint64_t opened = with_filer ? 0 : 1;
    EXPECT_EQ(metrics.sum("vigil_cases_opened_total", {{"tenant", "acme"}}), opened) << with_filer;
    EXPECT_EQ(metrics.sum("vigil_cases_opened_total", {{"tenant", "globex"}}), opened)
        << with_filer;
    EXPECT_EQ(metrics.sum("vigil_cases_opened_total", {{"tenant", "_other"}}), 2 * opened)
        << with_filer;
    const std::string text = metrics.renderPrometheus();
    EXPECT_NE(text.find("vigil_alerts_stored_total{tenant=\"lab\"} 0"), std::string::npos)
        << text;
    EXPECT_NE(text.find("vigil_cases_opened_total{tenant=\"lab\"} 0"), std::string::npos)
        << text;
    EXPECT_EQ(text.find("tenant=\"unlisted\""), std::string::npos) << text;
  }
}

// The destructor drains the queue, so alerts queued without flush() are not lost.
TEST_F(CaseSinkTest, DestructorDrainsQueue) {
  {
    CaseSink sink(*store_, metrics_);
    for (int i = 0; i < 100; ++i) sink.onAlert(makeAlert("r", "low", "t", {}, kT0 + i));
  }
  EXPECT_EQ(totalAlerts(), 100);
  EXPECT_EQ(metric("vigil_alerts_stored_total"), 100u);
}

// With the database locked, a full queue makes onAlert wait (counted) instead of
// dropping; once the lock is released every alert is stored.
TEST_F(CaseSinkTest, FullQueueBlocksProducer) {
  testing::RawDb locker(path_);
  ASSERT_EQ(locker.exec("BEGIN IMMEDIATE"), "");

  CaseSinkOptions options;
  options.queue_capacity = 2;
  options.max_batch = 1;
  CaseSink sink(*store_, metrics_, options);
  std::atomic<int> sent{0};
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      sink.onAlert(makeAlert("r", "low", "t", {}, kT0 + i));
      sent.fetch_add(1);
    }
  });

  // The writer holds one alert while it waits for the lock, two more fill the queue.
  ASSERT_TRUE(waitFor([&] { return metric("vigil_case_sink_waits_total") >= 1; }));
  EXPECT_LE(sent.load(), 3);
  EXPECT_EQ(metric("vigil_alerts_stored_total"), 0u);

  ASSERT_EQ(locker.exec("COMMIT"), "");
  producer.join();
  sink.flush();
  EXPECT_EQ(sent.load(), 10);
  EXPECT_EQ(metric("vigil_alerts_stored_total"), 10u);
  EXPECT_EQ(metric("vigil_case_sink_dropped_total"), 0u);
  EXPECT_EQ(totalAlerts(), 10);
}

// A bad alert is dropped and counted; the good alerts of its batch are still stored.
TEST_F(CaseSinkTest, InvalidAlertIsCountedAndSkipped) {
  CaseSink sink(*store_, metrics_);
  correlate::Alert bad = makeAlert("r", "urgent", "t", {}, kT0);
  sink.onAlert(makeAlert("r", "low", "t", {}, kT0));
  sink.onAlert(bad);
  sink.onAlert(makeAlert("r", "low", "t", {}, kT0));
  sink.flush();

  EXPECT_EQ(metric("vigil_alerts_stored_total"), 2u);
  EXPECT_EQ(metric("vigil_case_sink_dropped_total", {{"reason", "invalid_alert"}}), 1u);
  EXPECT_GE(metric("vigil_case_store_errors_total"), 1u);
  EXPECT_EQ(totalAlerts(), 2);
}

// A write error that clears up is retried until the alert is stored.
TEST_F(CaseSinkTest, TransientWriteErrorIsRetried) {
  testing::RawDb raw(path_);
  ASSERT_EQ(raw.exec("CREATE TABLE fail_switch (on_off INTEGER);"
                     "INSERT INTO fail_switch VALUES (1);"
                     "CREATE TRIGGER flaky BEFORE INSERT ON alerts"
                     " WHEN EXISTS (SELECT 1 FROM fail_switch)"
                     " BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;"),
            "");
  CaseSinkOptions options;
  options.max_attempts = 1000;
  options.retry_backoff = std::chrono::milliseconds(5);
  options.max_backoff = std::chrono::milliseconds(5);
  CaseSink sink(*store_, metrics_, options);
  sink.onAlert(makeAlert("flaky", "high", "t", {}, kT0));

  ASSERT_TRUE(waitFor([&] { return metric("vigil_case_store_errors_total") >= 3; }));
  EXPECT_EQ(metric("vigil_alerts_stored_total"), 0u);
  ASSERT_EQ(raw.exec("DELETE FROM fail_switch"), "");
  sink.flush();

  EXPECT_EQ(metric("vigil_alerts_stored_total"), 1u);
  EXPECT_EQ(metric("vigil_case_sink_dropped_total"), 0u);
  EXPECT_EQ(totalAlerts(), 1);
}

// A write error that never clears is given up after max_attempts and counted as a drop.
TEST_F(CaseSinkTest, PersistentWriteErrorIsCountedAsDrop) {
  testing::RawDb raw(path_);
  ASSERT_EQ(raw.exec("CREATE TRIGGER poison BEFORE INSERT ON alerts WHEN NEW.rule_id = 'poison'"
                     " BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;"),
            "");
  CaseSinkOptions options;
  options.max_attempts = 3;
  options.retry_backoff = std::chrono::milliseconds(1);
  CaseSink sink(*store_, metrics_, options);
  sink.onAlert(makeAlert("ok", "low", "t", {}, kT0));
  sink.onAlert(makeAlert("poison", "low", "t", {}, kT0));
  sink.flush();

  EXPECT_EQ(metric("vigil_case_sink_dropped_total", {{"reason", "write_failed"}}), 1u);
  EXPECT_EQ(metric("vigil_alerts_stored_total"), 1u);
  EXPECT_EQ(totalAlerts(), 1);
  // One failed batch, then three failed attempts for the poisoned alert.
  EXPECT_EQ(metric("vigil_case_store_errors_total"), 4u);
}

}  // namespace
}  // namespace vigil::mgmt
