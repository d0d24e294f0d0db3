// The analyst side of CaseStore: cases opened by hand, updates and their timeline, tasks,
// notes, evidence files, merges, list filters and the migration from schema version 1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/case_schema.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;

const Actor kAlice{"alice", true};

class CaseWorkTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = openStore(); }

  std::unique_ptr<CaseStore> openStore(int64_t max_evidence_bytes = 1024) {
    CaseStoreOptions options;
    options.clock = &clock_;
    options.max_evidence_bytes = max_evidence_bytes;
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  Case create(const std::string& title, const std::string& tenant = "acme",
              std::vector<std::string> tags = {}) {
    NewCase fields;
    fields.title = title;
    fields.tenant = tenant;
    fields.tags = std::move(tags);
    absl::StatusOr<Case> c = store_->createCase(fields, kAlice);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.value_or(Case{});
  }

  Case update(int64_t id, const CaseUpdate& u) {
    absl::StatusOr<Case> c = store_->updateCase(id, u, kAlice);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.value_or(Case{});
  }

  std::vector<TimelineEntry> timeline(int64_t id) {
    absl::StatusOr<std::vector<TimelineEntry>> t = store_->timeline(id);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.value_or(std::vector<TimelineEntry>{});
  }

  testing::TempDir dir_;
  std::string path_ = dir_.file("cases.db");
  SimulatedClock clock_{kT0 + 1000 * kSecond};
  std::unique_ptr<CaseStore> store_;
};

// A case opened by hand is new, has no rule, sorted unique tags and a "created" entry.
TEST_F(CaseWorkTest, CreateStoresFieldsAndTimeline) {
  Case c = create("Phishing report", "acme", {"phish", "email", "phish"});
  EXPECT_EQ(c.status, CaseStatus::kNew);
  EXPECT_EQ(c.rule_id, "");
  EXPECT_EQ(c.created_by, "alice");
  EXPECT_EQ(c.tags, (std::vector<std::string>{"email", "phish"}));
  EXPECT_EQ(c.detect_ns, clock_.nowNs());
  EXPECT_EQ(c.ack_ns, 0);
  std::vector<TimelineEntry> t = timeline(c.id);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].action, "created");
  EXPECT_EQ(t[0].actor, "alice");
  EXPECT_TRUE(t[0].human);

  // Two hand-made cases of one tenant may be open at once.
  EXPECT_NE(create("Second report").id, c.id);
}

// Empty titles, missing tenants and oversize tags are rejected with the field named.
TEST_F(CaseWorkTest, CreateRejectsBadFields) {
  NewCase fields;
  fields.tenant = "acme";
  absl::Status s = store_->createCase(fields, kAlice).status();
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("title"), absl::string_view::npos);
  fields.title = "t";
  fields.tenant = "";
  EXPECT_NE(store_->createCase(fields, kAlice).status().message().find("tenant"),
            absl::string_view::npos);
  fields.tenant = "acme";
  fields.tags = {std::string(65, 'x')};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->createCase(fields, kAlice).status()));
}

// Each changed field gets its own timeline entry with old and new values; the first one
// sets the acknowledgment time.
TEST_F(CaseWorkTest, UpdateRecordsEachChange) {
  Case c = create("Suspicious login");
  clock_.advanceNs(60 * kSecond);
  CaseUpdate u;
  u.assignee = "bob";
  u.severity = Severity::kHigh;
  u.tags = std::vector<std::string>{"vip"};
  Case after = update(c.id, u);
  EXPECT_EQ(after.assignee, "bob");
  EXPECT_EQ(after.severity, Severity::kHigh);
  EXPECT_EQ(after.tags, std::vector<std::string>{"vip"});
  EXPECT_EQ(after.ack_ns, c.detect_ns + 60 * kSecond);

  std::vector<TimelineEntry> t = timeline(c.id);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[1].field, "severity");
  EXPECT_EQ(t[1].old_value, "medium");
  EXPECT_EQ(t[1].new_value, "high");
  EXPECT_EQ(t[2].field, "assignee");
  EXPECT_EQ(t[2].new_value, "bob");
  EXPECT_EQ(t[3].field, "tags");

  // The same values again change nothing and add no entry.
  clock_.advanceNs(kSecond);
  Case same = update(c.id, u);
  EXPECT_EQ(same.updated_ns, after.updated_ns);
  EXPECT_EQ(timeline(c.id).size(), 4u);
  EXPECT_EQ(same.ack_ns, after.ack_ns);
}

// Status moves forward only, resolving needs a resolution, and reopening clears it.
TEST_F(CaseWorkTest, StatusTransitions) {
  Case c = create("Malware");
  CaseUpdate resolve;
  resolve.status = CaseStatus::kResolved;
  absl::Status s = store_->updateCase(c.id, resolve, kAlice).status();
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("needs a resolution"), absl::string_view::npos);

  CaseUpdate resolution_only;
  resolution_only.resolution = Resolution::kBenign;
  EXPECT_TRUE(absl::IsInvalidArgument(store_->updateCase(c.id, resolution_only, kAlice).status()));

  CaseUpdate start;
  start.status = CaseStatus::kInProgress;
  EXPECT_EQ(update(c.id, start).status, CaseStatus::kInProgress);
  CaseUpdate back;
  back.status = CaseStatus::kNew;
  s = store_->updateCase(c.id, back, kAlice).status();
  ASSERT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("in_progress to new"), absl::string_view::npos);

  clock_.advanceNs(300 * kSecond);
  resolve.resolution = Resolution::kTruePositive;
  resolve.resolution_note = "contained";
  Case resolved = update(c.id, resolve);
  EXPECT_EQ(resolved.resolution, "true_positive");
  EXPECT_EQ(resolved.resolution_note, "contained");
  EXPECT_EQ(resolved.resolved_ns, clock_.nowNs());

  // Closing keeps the resolution and the resolution time.
  clock_.advanceNs(kSecond);
  CaseUpdate close;
  close.status = CaseStatus::kClosed;
  Case closed = update(c.id, close);
  EXPECT_EQ(closed.resolution, "true_positive");
  EXPECT_EQ(closed.resolved_ns, resolved.resolved_ns);

  // Reopen.
  Case reopened = update(c.id, start);
  EXPECT_EQ(reopened.status, CaseStatus::kInProgress);
  EXPECT_EQ(reopened.resolution, "");
  EXPECT_EQ(reopened.resolved_ns, 0);
}

// An alert case cannot reopen while another case holds its (tenant, rule, group) key.
TEST_F(CaseWorkTest, ReopenConflictsWithNewerAlertCase) {
  auto first = store_->ingestAlert(makeAlert("ssh", "high", "acme", {{"ip", "1"}}, kT0));
  ASSERT_TRUE(first.ok());
  CaseUpdate resolve;
  resolve.status = CaseStatus::kResolved;
  resolve.resolution = Resolution::kFalsePositive;
  update(first->case_id, resolve);
  auto second = store_->ingestAlert(makeAlert("ssh", "high", "acme", {{"ip", "1"}}, kT0 + 1));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->opened_case);
  CaseUpdate reopen;
  reopen.status = CaseStatus::kInProgress;
  absl::Status s = store_->updateCase(first->case_id, reopen, kAlice).status();
  ASSERT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find(std::to_string(second->case_id)), absl::string_view::npos);
}

// Alerts add system entries, which do not count as acknowledgment.
TEST_F(CaseWorkTest, AlertsAreRecordedButDoNotAcknowledge) {
  auto r = store_->ingestAlert(makeAlert("ssh", "high", "acme", {}, kT0));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(store_->ingestAlert(makeAlert("ssh", "high", "acme", {}, kT0 + kSecond)).ok());
  std::vector<TimelineEntry> t = timeline(r->case_id);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].action, "created");
  EXPECT_EQ(t[1].action, "alert_added");
  EXPECT_FALSE(t[2].human);
  EXPECT_EQ(store_->getCase(r->case_id)->info.ack_ns, 0);
}

// Tasks are added open, change status, and both steps land in the timeline.
TEST_F(CaseWorkTest, TasksAddAndUpdate) {
  Case c = create("Ransomware");
  absl::StatusOr<CaseTask> task = store_->addTask(c.id, "Isolate host", "bob", kAlice);
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->status, TaskStatus::kOpen);
  TaskUpdate done;
  done.status = TaskStatus::kDone;
  absl::StatusOr<CaseTask> updated = store_->updateTask(c.id, task->id, done, kAlice);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->status, TaskStatus::kDone);
  EXPECT_TRUE(absl::IsNotFound(store_->updateTask(c.id, task->id + 7, done, kAlice).status()));
  Case other = create("Other");
  EXPECT_TRUE(absl::IsNotFound(store_->updateTask(other.id, task->id, done, kAlice).status()));

  CaseDetail detail = *store_->getCase(c.id);
  ASSERT_EQ(detail.tasks.size(), 1u);
  EXPECT_EQ(detail.tasks[0].status, TaskStatus::kDone);
  std::vector<TimelineEntry> t = timeline(c.id);
  EXPECT_EQ(t.back().action, "task_updated");
  EXPECT_EQ(t.back().field, "task " + std::to_string(task->id) + " status");
  EXPECT_EQ(t.back().new_value, "done");
}

// Notes keep their author and list each @mention once.
TEST_F(CaseWorkTest, NotesParseMentions) {
  Case c = create("Beaconing");
  absl::StatusOr<CaseNote> note =
      store_->addNote(c.id, "@bob please check; cc @carol.d and @bob. mail x@example.com", kAlice);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(note->author, "alice");
  EXPECT_EQ(note->mentions, (std::vector<std::string>{"bob", "carol.d"}));
  CaseDetail detail = *store_->getCase(c.id);
  ASSERT_EQ(detail.notes.size(), 1u);
  EXPECT_EQ(detail.notes[0].mentions, note->mentions);
  EXPECT_TRUE(absl::IsInvalidArgument(store_->addNote(c.id, "", kAlice).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->addNote(c.id + 100, "x", kAlice).status()));
}

TEST(ParseMentionsTest, Boundaries) {
  EXPECT_EQ(parseMentions("@a-b_c @"), std::vector<std::string>{"a-b_c"});
  EXPECT_TRUE(parseMentions("user@host @. @@").empty());
  EXPECT_EQ(parseMentions("(@x)"), std::vector<std::string>{"x"});
}

// Files are stored once by SHA-256, deduplicated per case, and read back verified.
TEST_F(CaseWorkTest, EvidenceFilesAreContentAddressed) {
  Case a = create("A");
  Case b = create("B");
  const std::string bytes("binary\0data", 11);
  bool added = false;
  absl::StatusOr<EvidenceFile> f =
      store_->addEvidenceFile(a.id, "dump.bin", "", bytes, kAlice, &added);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(added);
  EXPECT_EQ(f->size_bytes, 11);
  EXPECT_EQ(f->content_type, "application/octet-stream");
  const std::string blob = store_->evidenceDir() + "/" + f->sha256.substr(0, 2) + "/" + f->sha256;
  EXPECT_TRUE(std::filesystem::exists(blob));

  // The same bytes again: no new row, same hash; another case shares the blob.
  ASSERT_TRUE(store_->addEvidenceFile(a.id, "again.bin", "", bytes, kAlice, &added).ok());
  EXPECT_FALSE(added);
  ASSERT_TRUE(store_->addEvidenceFile(b.id, "copy.bin", "", bytes, kAlice, &added).ok());
  EXPECT_TRUE(added);
  EXPECT_EQ(store_->getCase(a.id)->files.size(), 1u);

  EvidenceFile meta;
  absl::StatusOr<std::string> read = store_->readEvidenceFile(a.id, f->sha256, &meta);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);
  EXPECT_EQ(meta.name, "dump.bin");
  EXPECT_TRUE(
      absl::IsNotFound(store_->readEvidenceFile(a.id, std::string(64, 'a'), nullptr).status()));

  // A blob changed on disk is reported, not served.
  std::ofstream(blob, std::ios::trunc) << "tampered";
  EXPECT_TRUE(absl::IsDataLoss(store_->readEvidenceFile(a.id, f->sha256, nullptr).status()));
}

// A file over max_evidence_bytes is refused before anything is written.
TEST_F(CaseWorkTest, EvidenceSizeLimit) {
  Case c = create("Big");
  absl::Status s =
      store_->addEvidenceFile(c.id, "big", "", std::string(1025, 'x'), kAlice, nullptr).status();
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("1025"), absl::string_view::npos);
  EXPECT_TRUE(store_->getCase(c.id)->files.empty());
  EXPECT_TRUE(
      store_->addEvidenceFile(c.id, "ok", "", std::string(1024, 'x'), kAlice, nullptr).ok());
}

// Merge moves alerts, evidence, files, notes, tasks and tags and closes the source.
TEST_F(CaseWorkTest, MergeMovesEverything) {
  auto src = store_->ingestAlert(makeAlert("ssh", "critical", "acme", {{"ip", "1"}}, kT0));
  auto dst = store_->ingestAlert(makeAlert("ssh", "low", "acme", {{"ip", "2"}}, kT0 + kSecond));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE(dst.ok());
  ASSERT_TRUE(store_->addNote(src->case_id, "note on source", kAlice).ok());
  ASSERT_TRUE(store_->addTask(src->case_id, "task on source", "", kAlice).ok());
  ASSERT_TRUE(store_->addEvidenceFile(src->case_id, "f", "", "bytes", kAlice, nullptr).ok());
  ASSERT_TRUE(store_->addEvidenceFile(dst->case_id, "f", "", "bytes", kAlice, nullptr).ok());
  CaseUpdate tag;
  tag.tags = std::vector<std::string>{"apt"};
  update(src->case_id, tag);

  absl::StatusOr<Case> merged = store_->mergeCase(src->case_id, dst->case_id, kAlice);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->alert_count, 2);
  EXPECT_EQ(merged->severity, Severity::kCritical);
  EXPECT_EQ(merged->first_event_ns, kT0 - 10 * kSecond);
  EXPECT_EQ(merged->tags, std::vector<std::string>{"apt"});

  CaseDetail target = *store_->getCase(dst->case_id);
  EXPECT_EQ(target.alerts.size(), 2u);
  EXPECT_EQ(target.evidence.size(), 4u);
  EXPECT_EQ(target.notes.size(), 1u);
  EXPECT_EQ(target.tasks.size(), 1u);
  EXPECT_EQ(target.files.size(), 1u);

  CaseDetail source = *store_->getCase(src->case_id);
  EXPECT_EQ(source.info.status, CaseStatus::kClosed);
  EXPECT_EQ(source.info.resolution, "duplicate");
  EXPECT_EQ(source.info.merged_into, dst->case_id);
  EXPECT_TRUE(source.alerts.empty());
  EXPECT_TRUE(source.notes.empty());
  EXPECT_EQ(timeline(src->case_id).back().action, "updated");
  EXPECT_EQ(timeline(dst->case_id).back().action, "merged_from");

  // A merged source cannot be merged again, and the message points at its target rather
  // than at reopening, which is refused below.
  absl::Status again = store_->mergeCase(src->case_id, dst->case_id, kAlice).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  EXPECT_EQ(again.message(),
            absl::StrCat("case ", src->case_id, " was merged into case ", dst->case_id,
                         " already; merge case ", dst->case_id, " instead"));
  // Nor reopened, because its work now lives in the target.
  CaseUpdate reopen;
  reopen.status = CaseStatus::kInProgress;
  absl::Status s = store_->updateCase(src->case_id, reopen, kAlice).status();
  ASSERT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("merged into case"), absl::string_view::npos);
}

// Merges across tenants, into itself or into a resolved case are refused and change nothing.
TEST_F(CaseWorkTest, MergeRefusals) {
  Case a = create("A", "acme");
  Case b = create("B", "globex");
  absl::Status s = store_->mergeCase(a.id, b.id, kAlice).status();
  ASSERT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("globex"), absl::string_view::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(store_->mergeCase(a.id, a.id, kAlice).status()));
  Case c = create("C", "acme");
  CaseUpdate resolve;
  resolve.status = CaseStatus::kResolved;
  resolve.resolution = Resolution::kBenign;
  update(c.id, resolve);
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->mergeCase(a.id, c.id, kAlice).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->mergeCase(a.id, 999, kAlice).status()));
  EXPECT_EQ(store_->getCase(a.id)->info.status, CaseStatus::kNew);
}

// The new filters combine, and allowed_tenants limits every list.
TEST_F(CaseWorkTest, ListFiltersByWorkFields) {
  Case a = create("Phishing wave", "acme", {"email"});
  clock_.advanceNs(10 * kSecond);
  Case b = create("Brute force", "acme", {"auth"});
  clock_.advanceNs(10 * kSecond);
  Case c = create("PHISHING again", "globex", {"email"});
  CaseUpdate assign;
  assign.assignee = "bob";
  update(b.id, assign);

  auto ids = [&](const CaseFilter& f) {
    std::vector<int64_t> out;
    absl::StatusOr<CasePage> page = store_->listCases(f);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return out;
    for (const Case& x : page->items) out.push_back(x.id);
    return out;
  };
  CaseFilter f;
  f.sort = CaseSort::kIdAsc;
  f.tag = "email";
  EXPECT_EQ(ids(f), (std::vector<int64_t>{a.id, c.id}));
  f.tag.reset();
  f.text = "phishing";
  EXPECT_EQ(ids(f), (std::vector<int64_t>{a.id, c.id}));
  f.allowed_tenants = std::vector<std::string>{"acme"};
  EXPECT_EQ(ids(f), (std::vector<int64_t>{a.id}));
  f.text.reset();
  f.assignee = "bob";
  EXPECT_EQ(ids(f), (std::vector<int64_t>{b.id}));
  f.assignee = "";
  EXPECT_EQ(ids(f), (std::vector<int64_t>{a.id}));
  f.assignee.reset();
  f.allowed_tenants = std::vector<std::string>{};
  EXPECT_TRUE(ids(f).empty());
  EXPECT_EQ(store_->listCases(f)->total, 0);
  f.allowed_tenants.reset();
  f.detected_from_ns = b.detect_ns;
  f.detected_to_ns = c.detect_ns;
  EXPECT_EQ(ids(f), (std::vector<int64_t>{b.id}));
  f = CaseFilter{};
  f.sort = CaseSort::kIdAsc;
  f.updated_from_ns = clock_.nowNs();
  EXPECT_EQ(ids(f), (std::vector<int64_t>{b.id, c.id}));
}

// A version 1 database opens, migrates to the latest version and keeps its cases.
TEST_F(CaseWorkTest, MigratesVersionOneDatabase) {
  store_.reset();
  std::filesystem::remove(path_);
  {
    testing::RawDb raw(path_);
    ASSERT_EQ(raw.exec(internal::kMigrationV1), "");
    ASSERT_EQ(raw.exec("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                       "INSERT INTO schema_version VALUES (1);"
                       "INSERT INTO cases (title, severity, status, tenant, rule_id, group_key,"
                       " first_event_ns, detect_ns, updated_ns, alert_count) VALUES"
                       " ('old case', 3, 'resolved', 'acme', 'ssh', '{}', 1, 2, 3, 0)"),
              "");
  }
  store_ = openStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->schemaVersion(), CaseStore::latestSchemaVersion());
  absl::StatusOr<CaseDetail> old = store_->getCase(1);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->info.title, "old case");
  EXPECT_EQ(old->info.description, "");
  EXPECT_TRUE(old->info.tags.empty());
  EXPECT_EQ(create("new case").id, 2);
  testing::RawDb raw(path_);
  EXPECT_EQ(raw.queryText("SELECT version FROM schema_version"),
            std::to_string(CaseStore::latestSchemaVersion()));
}

// A version 4 database moves its evidence lines and action keys into the WITHOUT ROWID
// tables of version 5 and keeps every row, the evidence order and the one-row-per-key rule.
TEST_F(CaseWorkTest, MigratesVersionFourDatabase) {
  store_.reset();
  std::filesystem::remove(path_);
  {
    testing::RawDb raw(path_);
    for (const char* migration : {internal::kMigrationV1, internal::kMigrationV2,
                                  internal::kMigrationV3, internal::kMigrationV4}) {
      ASSERT_EQ(raw.exec(migration), "");
    }
    ASSERT_EQ(raw.exec("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                       "INSERT INTO schema_version VALUES (4);"
                       "INSERT INTO cases (title, severity, status, tenant, rule_id, group_key,"
                       " first_event_ns, detect_ns, updated_ns, alert_count) VALUES"
                       " ('old case', 3, 'new', 'acme', 'ssh', '{}', 1, 2, 3, 1);"
                       "INSERT INTO alerts (case_id, alert_id, rule_id, level, tenant, group_json,"
                       " first_event_ns, last_event_ns, detect_ns, event_count, json) VALUES"
                       " (1, 'a-1', 'ssh', 'high', 'acme', '{}', 1, 2, 2, 2, '{}');"
                       "INSERT INTO evidence (case_id, alert_id, position, raw) VALUES"
                       " (1, 1, 1, 'second line'), (1, 1, 0, 'first line');"
                       "INSERT INTO playbook_action_keys (key, tenant, action, case_id, result,"
                       " done_ns) VALUES ('vigil-k', 'acme', 'case.attach_alert', 1, '1', 5)"),
              "");
  }
  store_ = openStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->schemaVersion(), 5);
  absl::StatusOr<CaseDetail> old = store_->getCase(1);
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_EQ(old->evidence.size(), 2u);
  EXPECT_EQ(old->evidence[0].raw, "first line");
  EXPECT_EQ(old->evidence[1].raw, "second line");

  bool replayed = false;
  auto action = [] { return CaseStore::KeyedActionResult{99, "99"}; };
  auto recorded = store_->runKeyedAction("vigil-k", "acme", "case.attach_alert", action, &replayed);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_TRUE(replayed);
  EXPECT_EQ(recorded->case_id, 1);
  EXPECT_EQ(recorded->result_json, "1");

  testing::RawDb raw(path_);
  EXPECT_EQ(raw.queryText("SELECT COUNT(*) FROM sqlite_schema WHERE name IN"
                          " ('evidence', 'playbook_action_keys') AND sql LIKE '%WITHOUT ROWID'"),
            "2");
  EXPECT_EQ(raw.queryText("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE '%_v5'"), "0");
  EXPECT_EQ(raw.queryText("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'evidence_case'"),
            "1");
  EXPECT_THAT(raw.exec("INSERT INTO playbook_action_keys (key, tenant, action, case_id, result,"
                       " done_ns) VALUES ('vigil-k', 'acme', 'case.open', 2, '2', 6)"),
              ::testing::HasSubstr("UNIQUE"));
  EXPECT_THAT(raw.exec("INSERT INTO evidence (case_id, alert_id, position, raw) VALUES"
                       " (1, 1, 0, 'again')"),
              ::testing::HasSubstr("UNIQUE"));
}

// Every write is committed when the call returns: a second connection sees it.
TEST_F(CaseWorkTest, WritesAreVisibleToAnotherConnection) {
  Case c = create("Durable");
  ASSERT_TRUE(store_->addNote(c.id, "n", kAlice).ok());
  testing::RawDb raw(path_);
  EXPECT_EQ(raw.queryText("SELECT COUNT(*) FROM case_notes"), "1");
  EXPECT_EQ(
      raw.queryText("SELECT COUNT(*) FROM case_timeline WHERE case_id = " + std::to_string(c.id)),
      "2");
}

}  // namespace
}  // namespace vigil::mgmt
