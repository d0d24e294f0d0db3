// The run start journal on its own, and the runner killed with SIGKILL while the first
// action of a run is in flight: the next start must store that run as interrupted.
#include "mgmt/run_journal.h"

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/playbook_runner.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// Records in two slots read back; a slot overwritten keeps only its newest record.
TEST(RunStartJournalTest, SlotsHoldTheLatestRecord) {
  TempDir dir;
  auto journal = RunStartJournal::open(dir.file("runs.db.starts"), /*sync=*/false);
  ASSERT_TRUE(journal.ok()) << journal.status();
  ASSERT_TRUE((*journal)->record(0, 7, 100, "isolate", "ab12", "acme", "r1-1", "r1").ok());
  ASSERT_TRUE((*journal)->record(1, 8, 200, "page", "cd34", "globex", "r2-1", "r2").ok());
  ASSERT_TRUE((*journal)->record(0, 9, 300, "isolate", "ab12", "acme", "r1-2", "r1").ok());
  auto starts = (*journal)->readAll();
  ASSERT_TRUE(starts.ok()) << starts.status();
  ASSERT_EQ(starts->size(), 2u);
  EXPECT_EQ((*starts)[0].id, 9);
  EXPECT_EQ((*starts)[0].created_ns, 300);
  EXPECT_EQ((*starts)[0].alert_id, "r1-2");
  EXPECT_EQ((*starts)[1].id, 8);
  EXPECT_EQ((*starts)[1].playbook, "page");
  EXPECT_EQ((*starts)[1].tenant, "globex");
  EXPECT_EQ((*starts)[1].rule_id, "r2");
  ASSERT_TRUE((*journal)->clear().ok());
  EXPECT_TRUE((*journal)->readAll()->empty());
}

// A record cut short, as a crash in the middle of the write leaves it, reads as no
// record; long fields are cut to kMaxFieldBytes.
TEST(RunStartJournalTest, TornRecordIsIgnored) {
  TempDir dir;
  const std::string path = dir.file("runs.db.starts");
  {
    auto journal = RunStartJournal::open(path, /*sync=*/true);
    ASSERT_TRUE(journal.ok());
    std::string long_alert(1000, 'a');
    ASSERT_TRUE((*journal)->record(0, 5, 1, "p", "h", "t", long_alert, "r").ok());
    ASSERT_TRUE((*journal)->record(1, 6, 1, "p", "h", "t", "a", "r").ok());
    auto starts = (*journal)->readAll();
    ASSERT_EQ(starts->size(), 2u);
    EXPECT_EQ((*starts)[0].alert_id.size(), RunStartJournal::kMaxFieldBytes);
  }
  // Cut slot 1 in the middle of its payload.
  std::filesystem::resize_file(path, RunStartJournal::kSlotBytes + 30);
  auto journal = RunStartJournal::open(path, false);
  auto starts = (*journal)->readAll();
  ASSERT_TRUE(starts.ok());
  ASSERT_EQ(starts->size(), 1u);
  EXPECT_EQ((*starts)[0].id, 5);
}

// A webhook server whose handler blocks until released, so a test can kill the runner
// while the action is in flight.
class BlockingHook {
 public:
  BlockingHook() {
    server_.Post("/hook", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      ++requests_;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(20), [this] { return released_; });
      res.set_content(R"({"result": "ok"})", "application/json");
    });
    server_.set_keep_alive_max_count(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
  }
  ~BlockingHook() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  // Starts serving; call after fork() so the child has no server thread.
  void listen() { thread_ = std::thread([this] { server_.listen_after_bind(); }); }
  bool waitForRequest() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [this] { return requests_ > 0; });
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int requests_ = 0;
  bool released_ = false;
};

PlaybookRunnerConfig killConfig(const TempDir& dir, const std::string& url,
                                const std::string& durability) {
  std::filesystem::create_directories(dir.file("playbooks"));
  std::ofstream(dir.file("playbooks/isolate.yml")) << R"(name: isolate
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
)";
  PlaybookRunnerConfig config;
  config.enabled = true;
  config.db = dir.file("runs.db");
  config.paths = {dir.file("playbooks")};
  config.durability = durability;
  ConnectorConfig hook;
  hook.name = "edr";
  hook.type = "webhook";
  hook.url = url;
  hook.timeout_ms = 30000;
  config.connectors.push_back(hook);
  config.actions.push_back({"*", "edr"});
  return config;
}

// SIGKILL while the first action of a run waits for the webhook: the run had no row yet,
// and the next start stores it as failed (interrupted) from the journal, once, and does
// not call the webhook again. Checked with both durability settings.
TEST(RunStartJournalTest, KilledFirstSegmentIsStoredAsInterrupted) {
  for (const std::string durability : {"process", "full"}) {
    SCOPED_TRACE(durability);
    TempDir dir;
    BlockingHook hook;
    PlaybookRunnerConfig config = killConfig(dir, hook.url(), durability);

    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      MetricsRegistry metrics;
      auto runner = PlaybookRunner::create(config, metrics);
      if (!runner.ok() || !(*runner)->start(nullptr, nullptr).ok()) _exit(3);
      (*runner)->onAlert(testing::makeAlert("r1", "high", "acme", {{"host", "ws-7"}},
                                            testing::kT0));
      pause();  // killed by the parent
      _exit(4);
    }
    hook.listen();
    const bool called = hook.waitForRequest();
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(called) << "the child runner never called the webhook";
    ASSERT_TRUE(WIFSIGNALED(status));

    MetricsRegistry metrics;
    auto runner = PlaybookRunner::create(config, metrics);
    ASSERT_TRUE(runner.ok()) << runner.status();
    ASSERT_TRUE((*runner)->start(nullptr, nullptr).ok());
    auto page = (*runner)->store()->list(RunFilter{});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->items.size(), 1u);
    auto run = (*runner)->store()->get(page->items[0].id);
    ASSERT_TRUE(run.ok());
    EXPECT_EQ(run->state, RunState::kFailed);
    EXPECT_THAT(run->error, HasSubstr("interrupted"));
    EXPECT_EQ(run->playbook, "isolate");
    EXPECT_EQ(run->tenant, "acme");
    EXPECT_EQ(run->rule_id, "r1");
    EXPECT_EQ(metrics.sum("vigil_playbook_runs_finished_total", {{"state", "failed"}}), 1u);
    (*runner)->stop();

    // A second start finds nothing more to recover.
    MetricsRegistry again_metrics;
    auto again = PlaybookRunner::create(config, again_metrics);
    ASSERT_TRUE(again.ok());
    ASSERT_TRUE((*again)->start(nullptr, nullptr).ok());
    EXPECT_EQ((*again)->store()->list(RunFilter{})->total, 1);
    EXPECT_EQ(again_metrics.sum("vigil_playbook_runs_finished_total"), 0u);
    (*again)->stop();
  }
}

}  // namespace
}  // namespace vigil::mgmt
