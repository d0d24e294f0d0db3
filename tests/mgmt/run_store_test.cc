// The run store's writes of a run that ends in its first segment: one row in its final
// state with its steps, read back like a run that was created and then finished.
#include "mgmt/run_store.h"

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::TempDir;

NewRun newRun(int64_t id, int64_t inbox_id) {
  NewRun run;
  run.id = id;
  run.created_ns = 1'000 + id;
  run.playbook = "default-case";
  run.playbook_hash = "ab12";
  run.tenant = "acme";
  run.alert_id = "r1-" + std::to_string(id);
  run.rule_id = "r1";
  run.alert_json = R"({"id": "r1"})";
  run.inbox_id = inbox_id;
  return run;
}

std::vector<RunStep> twoSteps() {
  std::vector<RunStep> steps(2);
  steps[0].kind = "action";
  steps[0].name = "case.attach_alert";
  steps[0].outcome = "ok";
  steps[0].started_ns = 5;
  steps[0].idempotency_key = "vigil-k1";
  steps[1].kind = "end";
  steps[1].name = "succeeded";
  steps[1].outcome = "ok";
  steps[1].started_ns = 6;
  return steps;
}

// A run finished with its row to insert reads back as one created, then finished: final
// state, result, steps in order and a step count that later steps continue from.
TEST(RunStoreTest, FinishWithInsertWritesFinalRow) {
  TempDir dir;
  auto store = RunStore::open(dir.file("runs.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  const NewRun inserted = newRun(41, 7);
  ASSERT_TRUE((*store)->finish(41, RunState::kSucceeded, "12", "", 9, twoSteps(), &inserted).ok());

  ASSERT_TRUE((*store)->createRun(newRun(42, 8)).ok());
  ASSERT_TRUE((*store)->finish(42, RunState::kSucceeded, "12", "", 9, twoSteps()).ok());

  for (const int64_t id : {41, 42}) {
    SCOPED_TRACE(id);
    absl::StatusOr<RunRecord> run = (*store)->get(id);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->state, RunState::kSucceeded);
    EXPECT_EQ(run->result, "12");
    EXPECT_EQ(run->error, "");
    EXPECT_EQ(run->vm_steps, 9u);
    EXPECT_EQ(run->created_ns, 1'000 + id);
    EXPECT_GT(run->finished_ns, 0);
    EXPECT_EQ(run->updated_ns, run->finished_ns);
    EXPECT_EQ(run->step_count, 2);
    EXPECT_FALSE(run->pending_resume.has_value());
    ASSERT_EQ(run->steps.size(), 2u);
    EXPECT_EQ(run->steps[0].name, "case.attach_alert");
    EXPECT_EQ(run->steps[0].idempotency_key, "vigil-k1");
    EXPECT_EQ(run->steps[1].name, "succeeded");
  }
  EXPECT_EQ(*(*store)->playbooksOfInboxAlert(7), std::set<std::string>{"default-case"});

  // A second finish of the inserted run appends after its two steps.
  ASSERT_TRUE((*store)->finish(41, RunState::kFailed, "", "again", 10, twoSteps()).ok());
  absl::StatusOr<RunRecord> again = (*store)->get(41);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state, RunState::kFailed);
  EXPECT_EQ(again->step_count, 4);
  EXPECT_EQ(again->steps.size(), 4u);
}

TEST(RunStoreTest, FinishWithInsertOfUsedIdFails) {
  TempDir dir;
  auto store = RunStore::open(dir.file("runs.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->createRun(newRun(5, 0)).ok());
  const NewRun again = newRun(5, 0);
  absl::Status used = (*store)->finish(5, RunState::kSucceeded, "", "", 1, twoSteps(), &again);
  EXPECT_TRUE(absl::IsAlreadyExists(used)) << used;
  // The transaction rolled back: the first row is untouched.
  absl::StatusOr<RunRecord> run = (*store)->get(5);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, RunState::kRunning);
  EXPECT_EQ(run->step_count, 0);
}

}  // namespace
}  // namespace vigil::mgmt
