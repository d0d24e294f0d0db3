// The run journals on their own, and the runner killed with SIGKILL while an action of a
// run is in flight. The next start must run the segment again. It must not call the
// actions whose outcome was recorded, and it calls the one in flight again with its key.
#include "mgmt/run_journal.h"

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

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
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      keys_.push_back(req.get_header_value("Idempotency-Key"));
      cv_.notify_all();
      if (keys_.size() == 1) {
        cv_.wait_for(lock, std::chrono::seconds(20), [this] { return released_; });
      }
      res.set_content(R"({"result": "ok"})", "application/json");
    });
    server_.set_keep_alive_max_count(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
  }
  ~BlockingHook() {
    release();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  // Releases the held first request and lets every later one through.
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  std::vector<std::string> keys() {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_;
  }
  // Starts serving; call after fork() so the child has no server thread.
  void listen() { thread_ = std::thread([this] { server_.listen_after_bind(); }); }
  bool waitForRequest() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [this] { return !keys_.empty(); });
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> keys_;
  bool released_ = false;
};

// Waits until the child runner calls `hook`, kills the child with SIGKILL and releases the
// held request, so a restarted runner finds the run interrupted mid-call.
void killDuringCall(BlockingHook& hook, pid_t child) {
  const bool called = hook.waitForRequest();
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(called) << "the child runner never called the webhook";
  ASSERT_TRUE(WIFSIGNALED(status));
  hook.release();
}

constexpr const char* kIsolate = R"(name: isolate
trigger: {rule_ids: [r1]}
steps:
  - action: edr.isolate_host
    with: {host: alert.host}
)";

PlaybookRunnerConfig killConfig(const TempDir& dir, const std::string& url,
                                const std::string& durability,
                                const std::string& playbook = kIsolate) {
  std::filesystem::create_directories(dir.file("playbooks"));
  std::ofstream(dir.file("playbooks/isolate.yml")) << playbook;
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

// Waits up to 20 s for run `id` to reach a final state and returns it.
RunRecord waitForEnd(PlaybookRunner& runner, int64_t id) {
  RunRecord run;
  for (int i = 0; i < 400; ++i) {
    auto got = runner.store()->get(id);
    if (got.ok()) {
      run = *got;
      if (runStateFinal(run.state)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return run;
}

std::vector<std::string> stepKinds(const RunRecord& run) {
  std::vector<std::string> kinds;
  for (const RunStep& step : run.steps) kinds.push_back(step.kind);
  return kinds;
}

// SIGKILL while the first action of a run waits for the webhook: the run had no row yet.
// The next start runs it again from the journaled alert, the webhook gets a second
// request with the first one's idempotency key, and the run succeeds. A second start
// finds nothing more to recover. Checked with both durability settings.
TEST(RunJournalTest, KilledFirstSegmentRunsAgain) {
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
    ASSERT_NO_FATAL_FAILURE(killDuringCall(hook, child));

    MetricsRegistry metrics;
    auto runner = PlaybookRunner::create(config, metrics);
    ASSERT_TRUE(runner.ok()) << runner.status();
    ASSERT_TRUE((*runner)->start(nullptr, nullptr).ok());
    (*runner)->flush();
    auto page = (*runner)->store()->list(RunFilter{});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->items.size(), 1u);
    RunRecord run = waitForEnd(**runner, page->items[0].id);
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    EXPECT_EQ(run.playbook, "isolate");
    EXPECT_EQ(run.tenant, "acme");
    EXPECT_EQ(run.rule_id, "r1");
    EXPECT_NE(run.alert_json.find("ws-7"), std::string::npos) << run.alert_json;
    EXPECT_EQ(stepKinds(run), (std::vector<std::string>{"recovery", "action", "end"}));
    const std::vector<std::string> keys = hook.keys();
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_FALSE(keys[0].empty());
    EXPECT_EQ(keys[1], keys[0]);
    ASSERT_EQ(run.steps.size(), 3u);
    EXPECT_EQ(run.steps[1].idempotency_key, keys[0]);
    EXPECT_EQ(metrics.sum("vigil_playbook_runs_finished_total", {{"state", "succeeded"}}), 1u);
    EXPECT_EQ(metrics.sum("vigil_playbook_actions_replayed_total"), 0u);
    (*runner)->stop();

    MetricsRegistry again_metrics;
    auto again = PlaybookRunner::create(config, again_metrics);
    ASSERT_TRUE(again.ok());
    ASSERT_TRUE((*again)->start(nullptr, nullptr).ok());
    (*again)->flush();
    EXPECT_EQ((*again)->store()->list(RunFilter{})->total, 1);
    EXPECT_EQ(again_metrics.sum("vigil_playbook_runs_finished_total"), 0u);
    EXPECT_EQ(hook.keys().size(), 2u);
    (*again)->stop();
  }
}

// SIGKILL during the second action of the segment that an approval resumed: the next
// start resumes the run again from its saved state with "approved". The first action,
// whose outcome the journal recorded, is not called again; the second is called again
// with its key.
TEST(RunJournalTest, KilledResumedSegmentRunsAgainFromSavedState) {
  TempDir dir;
  BlockingHook hook;
  // The first action goes to a server that responds at once, the second to the held one.
  httplib::Server quick;
  std::mutex quick_mu;
  std::vector<std::string> quick_keys;
  quick.Post("/quick", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(quick_mu);
    quick_keys.push_back(req.get_header_value("Idempotency-Key"));
    res.set_content(R"({"result": "noted"})", "application/json");
  });
  const int quick_port = quick.bind_to_any_port("127.0.0.1");
  PlaybookRunnerConfig config = killConfig(dir, hook.url(), "full", R"(name: isolate
trigger: {rule_ids: [r1]}
steps:
  - wait_for_approval: "isolate ${alert.host}?"
    timeout: 1h
    default: reject
    on_approve:
      - action: ticket.note
        with: {host: alert.host}
      - action: edr.isolate_host
        with: {host: alert.host}
)");
  ConnectorConfig ticket;
  ticket.name = "ticket";
  ticket.type = "webhook";
  ticket.url = "http://127.0.0.1:" + std::to_string(quick_port) + "/quick";
  config.connectors.push_back(ticket);
  config.actions.insert(config.actions.begin(), ActionRoute{"ticket.*", "ticket"});

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    MetricsRegistry metrics;
    auto runner = PlaybookRunner::create(config, metrics);
    if (!runner.ok() || !(*runner)->start(nullptr, nullptr).ok()) _exit(3);
    (*runner)->onAlert(
        testing::makeAlert("r1", "high", "acme", {{"host", "ws-7"}}, testing::kT0));
    (*runner)->flush();
    auto waiting = (*runner)->store()->list(RunFilter{});
    if (!waiting.ok() || waiting->items.empty()) _exit(5);
    Principal admin{"root", "tok", Role::kAdmin, {}, ""};
    if (!(*runner)->decide(waiting->items[0].id, true, admin, "").ok()) _exit(6);
    pause();  // killed by the parent
    _exit(4);
  }
  std::thread quick_thread([&] { quick.listen_after_bind(); });
  hook.listen();
  ASSERT_NO_FATAL_FAILURE(killDuringCall(hook, child));

  MetricsRegistry metrics;
  auto runner = PlaybookRunner::create(config, metrics);
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE((*runner)->start(nullptr, nullptr).ok());
  auto page = (*runner)->store()->list(RunFilter{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  RunRecord run = waitForEnd(**runner, page->items[0].id);
  (*runner)->stop();
  quick.stop();
  quick_thread.join();

  EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
  EXPECT_EQ(run.decision, "approved");
  EXPECT_EQ(stepKinds(run), (std::vector<std::string>{"approval", "decision", "recovery",
                                                      "action", "action", "end"}));
  EXPECT_EQ(quick_keys.size(), 1u);
  const std::vector<std::string> keys = hook.keys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1], keys[0]);
  EXPECT_EQ(metrics.sum("vigil_playbook_actions_replayed_total"), 1u);
  ASSERT_EQ(run.steps.size(), 6u);
  EXPECT_NE(run.steps[3].message.find("not called again"), std::string::npos)
      << run.steps[3].message;
}

// A run journal file read back contains the latest segment with its call records; records
// of an older, longer segment past its end and a torn last record are not part of it.
TEST(RunJournalTest, ReadsTheLatestSegment) {
  TempDir dir;
  const std::string path = dir.file("runs.db.journal.0");
  auto journal = RunJournal::open(path, /*sync=*/false);
  ASSERT_TRUE(journal.ok()) << journal.status();
  JournalSegment first;
  first.run_id = 4;
  first.created_ns = 100;
  first.playbook = "isolate";
  first.alert_json = R"({"host": "ws-7"})";
  ASSERT_TRUE((*journal)->beginSegment(first).ok());
  for (const char* key : {"vigil-a", "vigil-b", "vigil-c"}) {
    ASSERT_TRUE((*journal)->recordStart(key, "edr.isolate_host").ok());
    RecordedAction done;
    done.key = key;
    done.ok = true;
    done.value_json = "\"ok\"";
    ASSERT_TRUE((*journal)->recordOutcome(done).ok());
  }

  JournalSegment second;
  second.run_id = 9;
  second.created_ns = 200;
  second.first = false;
  second.stored_steps = 3;
  second.resume_json = "\"approved\"";
  RecordedAction carried;
  carried.key = "vigil-x";
  carried.ok = false;
  carried.code = static_cast<int>(absl::StatusCode::kUnavailable);
  carried.error = "timed out";
  carried.case_id = 12;
  second.outcomes.push_back(carried);
  ASSERT_TRUE((*journal)->beginSegment(second).ok());
  ASSERT_TRUE((*journal)->recordStart("vigil-y", "edr.isolate_host").ok());

  auto read = RunJournal::read(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  const JournalSegment& segment = **read;
  EXPECT_EQ(segment.run_id, 9);
  EXPECT_FALSE(segment.first);
  EXPECT_EQ(segment.stored_steps, 3);
  EXPECT_EQ(segment.resume_json, "\"approved\"");
  ASSERT_EQ(segment.outcomes.size(), 1u);
  EXPECT_EQ(segment.outcomes[0].key, "vigil-x");
  EXPECT_FALSE(segment.outcomes[0].ok);
  EXPECT_EQ(segment.outcomes[0].code, static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_EQ(segment.outcomes[0].error, "timed out");
  EXPECT_EQ(segment.outcomes[0].case_id, 12);
  EXPECT_EQ(segment.started_keys, std::vector<std::string>{"vigil-y"});

  // In a fresh file, cut the last record short: the segment keeps what came before it.
  const std::string fresh = dir.file("runs.db.journal.2");
  auto other = RunJournal::open(fresh, /*sync=*/false);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->beginSegment(second).ok());
  const auto size = (*other)->size();
  RecordedAction late;
  late.key = "vigil-y";
  late.ok = true;
  late.value_json = "1";
  ASSERT_TRUE((*other)->recordOutcome(late).ok());
  EXPECT_EQ((**RunJournal::read(fresh)).outcomes.size(), 2u);
  std::filesystem::resize_file(fresh, size + 10);
  read = RunJournal::read(fresh);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((**read).outcomes.size(), 1u);
}

// Segments appended for a group commit are all read back, each with its own records. A
// later group that overwrites the file from the start with fewer segments hides the older
// group's segments past its end, because their generations are lower.
TEST(RunJournalTest, ReadsAppendedSegments) {
  TempDir dir;
  const std::string path = dir.file("runs.db.journal.0");
  auto journal = RunJournal::open(path, /*sync=*/false);
  ASSERT_TRUE(journal.ok()) << journal.status();
  auto segmentOf = [](int64_t run_id, int64_t inbox_id) {
    JournalSegment segment;
    segment.run_id = run_id;
    segment.created_ns = run_id * 10;
    segment.inbox_id = inbox_id;
    segment.playbook = "default-case";
    segment.alert_json = R"({"inbox_id": )" + std::to_string(inbox_id) + "}";
    return segment;
  };
  ASSERT_TRUE((*journal)->beginSegment(segmentOf(1, 101)).ok());
  ASSERT_TRUE((*journal)->recordStart("vigil-1", "case.attach_alert").ok());
  ASSERT_TRUE((*journal)->beginSegment(segmentOf(2, 102), /*append=*/true).ok());
  ASSERT_TRUE((*journal)->recordStart("vigil-2", "case.attach_alert").ok());
  RecordedAction done;
  done.key = "vigil-2";
  done.ok = true;
  done.value_json = "7";
  ASSERT_TRUE((*journal)->recordOutcome(done).ok());
  ASSERT_TRUE((*journal)->beginSegment(segmentOf(3, 103), /*append=*/true).ok());

  auto all = RunJournal::readAll(path);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].run_id, 1);
  EXPECT_EQ((*all)[0].inbox_id, 101);
  EXPECT_EQ((*all)[0].started_keys, std::vector<std::string>{"vigil-1"});
  EXPECT_TRUE((*all)[0].outcomes.empty());
  EXPECT_EQ((*all)[1].run_id, 2);
  EXPECT_EQ((*all)[1].started_keys, std::vector<std::string>{"vigil-2"});
  ASSERT_EQ((*all)[1].outcomes.size(), 1u);
  EXPECT_EQ((*all)[1].outcomes[0].value_json, "7");
  EXPECT_EQ((*all)[2].run_id, 3);
  EXPECT_TRUE((*all)[2].started_keys.empty());
  EXPECT_EQ((**RunJournal::read(path)).run_id, 1);  // read() returns the first

  // A new group with one segment of the same size as the first: the old second and third
  // segments are still in the file right after it, but are not read.
  ASSERT_TRUE((*journal)->beginSegment(segmentOf(4, 104)).ok());
  ASSERT_TRUE((*journal)->recordStart("vigil-4", "case.attach_alert").ok());
  all = RunJournal::readAll(path);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].run_id, 4);
  EXPECT_EQ((*all)[0].started_keys, std::vector<std::string>{"vigil-4"});

  auto missing = RunJournal::readAll(dir.file("absent"));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->empty());
}

// A SIGKILL during a store into the mapping leaves a record whose tail is still the zeros
// (or older bytes) of the preallocated file: the segment ends before it.
TEST(RunJournalTest, PartlyWrittenRecordEndsTheSegment) {
  TempDir dir;
  const std::string path = dir.file("runs.db.journal.0");
  auto journal = RunJournal::open(path, /*sync=*/false);
  ASSERT_TRUE(journal.ok()) << journal.status();
  JournalSegment segment;
  segment.run_id = 3;
  segment.alert_json = R"({"host": "ws-7"})";
  ASSERT_TRUE((*journal)->beginSegment(segment).ok());
  ASSERT_TRUE((*journal)->recordStart("vigil-a", "edr.isolate_host").ok());
  const size_t before = (*journal)->size();
  RecordedAction done;
  done.key = "vigil-a";
  done.ok = true;
  done.value_json = std::string(200, 'x');
  ASSERT_TRUE((*journal)->recordOutcome(done).ok());
  const size_t after = (*journal)->size();
  EXPECT_EQ(std::filesystem::file_size(path), RunJournal::kInitialBytes);
  EXPECT_EQ((**RunJournal::read(path)).outcomes.size(), 1u);

  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(before + 40));
  const std::string zeros(after - before - 40, '\0');
  file.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  file.close();
  auto read = RunJournal::read(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((**read).run_id, 3);
  EXPECT_EQ((**read).started_keys, std::vector<std::string>{"vigil-a"});
  EXPECT_TRUE((**read).outcomes.empty());
}

// Records larger than the file grow it, and the segment reads back whole, in both
// durability modes.
TEST(RunJournalTest, LargeRecordsGrowTheFile) {
  for (bool sync : {false, true}) {
    SCOPED_TRACE(sync ? "sync" : "no sync");
    TempDir dir;
    const std::string path = dir.file("runs.db.journal.0");
    auto journal = RunJournal::open(path, sync);
    ASSERT_TRUE(journal.ok()) << journal.status();
    JournalSegment segment;
    segment.run_id = 5;
    segment.alert_json = std::string(3 * RunJournal::kInitialBytes, 'a');
    ASSERT_TRUE((*journal)->beginSegment(segment).ok());
    for (int i = 0; i < 3; ++i) {
      const std::string key = "vigil-" + std::to_string(i);
      ASSERT_TRUE((*journal)->recordStart(key, "edr.isolate_host").ok());
      RecordedAction done;
      done.key = key;
      done.ok = true;
      done.value_json = std::string(RunJournal::kInitialBytes, 'v');
      ASSERT_TRUE((*journal)->recordOutcome(done).ok());
    }
    EXPECT_GE(std::filesystem::file_size(path), (*journal)->size());
    auto read = RunJournal::read(path);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_TRUE(read->has_value());
    EXPECT_EQ((**read).alert_json, segment.alert_json);
    ASSERT_EQ((**read).outcomes.size(), 3u);
    EXPECT_EQ((**read).outcomes[2].key, "vigil-2");
    EXPECT_EQ((**read).outcomes[2].value_json.size(), RunJournal::kInitialBytes);

    // A shorter segment after it: the longer one's records past its end are not read.
    JournalSegment next;
    next.run_id = 6;
    next.alert_json = "{}";
    ASSERT_TRUE((*journal)->beginSegment(next).ok());
    read = RunJournal::read(path);
    ASSERT_TRUE(read.ok());
    EXPECT_EQ((**read).run_id, 6);
    EXPECT_TRUE((**read).outcomes.empty());
    EXPECT_TRUE((**read).started_keys.empty());
  }
}

// A start record torn by a crash leaves no segment, and a missing file is no segment.
TEST(RunJournalTest, TornStartIsNoSegment) {
  TempDir dir;
  const std::string path = dir.file("runs.db.journal.1");
  EXPECT_FALSE(RunJournal::read(path)->has_value());
  auto journal = RunJournal::open(path, /*sync=*/true);
  ASSERT_TRUE(journal.ok());
  JournalSegment segment;
  segment.run_id = 2;
  segment.alert_json = std::string(500, 'a');
  ASSERT_TRUE((*journal)->beginSegment(segment).ok());
  EXPECT_TRUE(RunJournal::read(path)->has_value());
  std::filesystem::resize_file(path, 100);
  EXPECT_FALSE(RunJournal::read(path)->has_value());
}

// A journal written by a build before the word checksum ("VRJ2" records, FNV-1a taken
// byte by byte) still reads back after an upgrade. The bytes are built here by hand as
// that build wrote them: a start record, then a call record.
TEST(RunJournalTest, ReadsRecordsOfTheEarlierChecksum) {
  auto fnv1a = [](uint64_t generation, const std::string& payload) {
    uint64_t hash = 14695981039346656037ull;
    std::string bytes(reinterpret_cast<const char*>(&generation), sizeof(generation));
    bytes += payload;
    for (unsigned char c : bytes) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
    return hash;
  };
  auto raw = [](std::string& out, auto value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
  };
  auto text = [&raw](std::string& out, const std::string& value) {
    raw(out, static_cast<uint32_t>(value.size()));
    out += value;
  };
  const uint64_t generation = 7;
  auto record = [&](const std::string& payload) {
    std::string out;
    raw(out, uint32_t{0x324a5256});  // "VRJ2"
    raw(out, static_cast<uint32_t>(payload.size()));
    raw(out, generation);
    raw(out, fnv1a(generation, payload));
    return out + payload;
  };
  std::string start(1, '\x01');
  raw(start, int64_t{12});   // run id
  raw(start, int64_t{500});  // created_ns
  raw(start, int64_t{0});    // stored steps
  raw(start, uint8_t{1});    // first segment
  raw(start, int64_t{0});    // inbox id
  for (const char* field : {"isolate", "hash-1", "acme", "r1-1", "r1", R"({"host":"ws-7"})", ""}) {
    text(start, field);
  }
  std::string call(1, '\x02');
  text(call, "vigil-a");
  text(call, "edr.isolate_host");

  TempDir dir;
  const std::string path = dir.file("runs.db.journal.0");
  std::ofstream(path, std::ios::binary) << record(start) << record(call);
  auto read = RunJournal::read(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((**read).run_id, 12);
  EXPECT_EQ((**read).tenant, "acme");
  EXPECT_EQ((**read).alert_json, R"({"host":"ws-7"})");
  EXPECT_EQ((**read).started_keys, std::vector<std::string>{"vigil-a"});

  // One changed byte in the old record fails its checksum, as before.
  std::string torn = record(start);
  torn[torn.size() - 3] ^= 0x01;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << torn;
  EXPECT_FALSE(RunJournal::read(path)->has_value());
}

// Any one byte changed in a record written now fails its checksum.
TEST(RunJournalTest, EveryChangedByteFailsTheChecksum) {
  TempDir dir;
  const std::string path = dir.file("runs.db.journal.0");
  JournalSegment segment;
  segment.run_id = 5;
  segment.tenant = "acme";
  segment.alert_json = R"({"host":"ws-7","evidence":["a line of text of odd length."]})";
  {
    auto journal = RunJournal::open(path, /*sync=*/false);
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_TRUE((*journal)->beginSegment(segment).ok());
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_TRUE(RunJournal::read(path)->has_value());
  const size_t record_bytes =
      24 + 1 + 8 * 4 + 1 + 7 * 4 + segment.tenant.size() + segment.alert_json.size();
  for (size_t at = 0; at < record_bytes; ++at) {
    std::string changed = bytes;
    changed[at] ^= 0x20;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << changed;
    auto read = RunJournal::read(path);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_FALSE(read->has_value()) << "byte " << at;
  }
}

// A run start journal of an older build names a run without its alert: the next start
// stores it as failed (interrupted) and removes the file.
TEST(RunJournalTest, LegacyStartJournalRunIsStoredAsInterrupted) {
  TempDir dir;
  BlockingHook hook;
  PlaybookRunnerConfig config = killConfig(dir, hook.url(), "process");
  {
    auto legacy = RunStartJournal::open(config.db + ".starts", false);
    ASSERT_TRUE(legacy.ok());
    ASSERT_TRUE((*legacy)->record(0, 5, testing::kT0, "isolate", "ab12", "acme", "r1-1", "r1").ok());
  }
  MetricsRegistry metrics;
  auto runner = PlaybookRunner::create(config, metrics);
  ASSERT_TRUE(runner.ok());
  ASSERT_TRUE((*runner)->start(nullptr, nullptr).ok());
  auto run = (*runner)->store()->get(5);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, RunState::kFailed);
  EXPECT_THAT(run->error, HasSubstr("interrupted"));
  EXPECT_FALSE(std::filesystem::exists(config.db + ".starts"));
  (*runner)->stop();
}

}  // namespace
}  // namespace vigil::mgmt
