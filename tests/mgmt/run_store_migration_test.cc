// Run store schema migration: a new file, and files left at versions 1 to 3, all end at
// version 4 with the idempotency key column (version 2), the run_meta table (version 3)
// and the inbox id column (version 4).
#include <memory>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "mgmt/run_store.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::RawDb;
using testing::TempDir;

NewRun sampleRun() {
  NewRun run;
  run.playbook = "isolate";
  run.playbook_hash = "ab12";
  run.tenant = "acme";
  run.alert_id = "r1-1";
  run.rule_id = "r1";
  run.alert_json = "{}";
  return run;
}

RunStep keyedStep(const std::string& key) {
  RunStep step;
  step.kind = "action";
  step.name = "edr.isolate_host";
  step.outcome = "ok";
  step.started_ns = 1;
  step.idempotency_key = key;
  return step;
}

// Opens the store at `path` and checks that the later versions' features work: a step
// keeps its idempotency key, the run id ceiling is stored, and runs are found by inbox id.
void expectCurrentSchema(const std::string& path) {
  auto store = RunStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  {
    RawDb raw(path);
    EXPECT_EQ(raw.queryText("PRAGMA user_version"), "4");
  }
  absl::StatusOr<int64_t> id = (*store)->createRun(sampleRun());
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE((*store)->finish(*id, RunState::kSucceeded, "", "", 0, {keyedStep("k-1")}).ok());
  absl::StatusOr<RunRecord> run = (*store)->get(*id);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->steps.size(), 1u);
  EXPECT_EQ(run->steps[0].idempotency_key, "k-1");

  ASSERT_TRUE((*store)->raiseRunIdCeiling(*id + 500).ok());
  absl::StatusOr<int64_t> ceiling = (*store)->runIdCeiling();
  ASSERT_TRUE(ceiling.ok()) << ceiling.status();
  EXPECT_EQ(*ceiling, *id + 500);

  NewRun from_inbox = sampleRun();
  from_inbox.inbox_id = 31;
  ASSERT_TRUE((*store)->createRun(from_inbox).ok());
  absl::StatusOr<std::set<std::string>> playbooks = (*store)->playbooksOfInboxAlert(31);
  ASSERT_TRUE(playbooks.ok()) << playbooks.status();
  EXPECT_EQ(*playbooks, std::set<std::string>{"isolate"});
  EXPECT_TRUE((*store)->playbooksOfInboxAlert(32)->empty());
}

// Drops what versions 3 and 4 added, so the file is at version 2.
constexpr const char* kBackToVersion2 =
    "DROP INDEX runs_by_inbox_id; ALTER TABLE runs DROP COLUMN inbox_id; DROP TABLE run_meta; "
    "PRAGMA user_version = 2;";

TEST(RunStoreMigrationTest, NewFileGetsVersion4) {
  TempDir dir;
  expectCurrentSchema(dir.file("runs.db"));
}

TEST(RunStoreMigrationTest, Version2GainsRunMeta) {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  int64_t old_id = 0;
  {
    auto store = RunStore::open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<int64_t> id = (*store)->createRun(sampleRun());
    ASSERT_TRUE(id.ok()) << id.status();
    old_id = *id;
  }
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec(kBackToVersion2), "");
  }
  expectCurrentSchema(path);
  auto store = RunStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<bool> old_run_exists = (*store)->exists(old_id);
  ASSERT_TRUE(old_run_exists.ok()) << old_run_exists.status();
  EXPECT_TRUE(*old_run_exists);
}

TEST(RunStoreMigrationTest, Version1GainsKeyColumnAndRunMeta) {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    auto store = RunStore::open(path);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec(kBackToVersion2), "");
    ASSERT_EQ(raw.exec("ALTER TABLE run_steps DROP COLUMN idempotency_key; "
                       "PRAGMA user_version = 1;"),
              "");
  }
  expectCurrentSchema(path);
}

// Version 4 takes the inbox id of runs stored before it from their alert JSON.
TEST(RunStoreMigrationTest, Version3TakesInboxIdFromAlertJson) {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    auto store = RunStore::open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    NewRun filed = sampleRun();
    filed.alert_json = R"({"id": "r1-1", "inbox_id": 7})";
    ASSERT_TRUE((*store)->createRun(filed).ok());
    NewRun other = sampleRun();
    other.playbook = "notify";
    other.alert_json = R"({"id": "r1-2", "inbox_id": "not a number"})";
    ASSERT_TRUE((*store)->createRun(other).ok());
  }
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec("DROP INDEX runs_by_inbox_id; ALTER TABLE runs DROP COLUMN inbox_id; "
                       "PRAGMA user_version = 3;"),
              "");
  }
  expectCurrentSchema(path);
  auto store = RunStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->playbooksOfInboxAlert(7), std::set<std::string>{"isolate"});
  EXPECT_TRUE((*store)->playbooksOfInboxAlert(0)->empty());
}

TEST(RunStoreMigrationTest, NewerVersionIsRejected) {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    auto store = RunStore::open(path);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec("PRAGMA user_version = 5;"), "");
  }
  auto store = RunStore::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 5"), std::string::npos)
      << store.status();
}

}  // namespace
}  // namespace vigil::mgmt
