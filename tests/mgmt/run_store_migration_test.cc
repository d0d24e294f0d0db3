// Run store schema migration: a new file, and files left at versions 1 and 2, all end at
// version 3 with the idempotency key column (version 2) and the run_meta table (version 3).
#include <memory>
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

// Opens the store at `path` and checks that both later versions' features work: a step
// keeps its idempotency key, and the run id ceiling is stored.
void expectCurrentSchema(const std::string& path) {
  auto store = RunStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  {
    RawDb raw(path);
    EXPECT_EQ(raw.queryText("PRAGMA user_version"), "3");
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
}

TEST(RunStoreMigrationTest, NewFileGetsVersion3) {
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
    ASSERT_EQ(raw.exec("DROP TABLE run_meta; PRAGMA user_version = 2;"), "");
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
    ASSERT_EQ(raw.exec("DROP TABLE run_meta; "
                       "ALTER TABLE run_steps DROP COLUMN idempotency_key; "
                       "PRAGMA user_version = 1;"),
              "");
  }
  expectCurrentSchema(path);
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
    ASSERT_EQ(raw.exec("PRAGMA user_version = 4;"), "");
  }
  auto store = RunStore::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 4"), std::string::npos)
      << store.status();
}

}  // namespace
}  // namespace vigil::mgmt
