#include "mgmt/audit_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "mgmt/internal/crypto_util.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;

// SQL that lifts the append-only triggers, as someone editing the file by hand would.
constexpr const char* kDropGuards =
    "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;";

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = AuditLog::open(path(), &clock_);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  std::string path() const { return dir_.file("audit.db"); }

  AuditRecord append(const std::string& subject, std::vector<std::string> tenants, int status) {
    AuditEntry entry;
    entry.subject = subject;
    entry.token_id = "00112233445566ff";
    entry.remote_addr = "127.0.0.1";
    entry.method = "POST";
    entry.path = "/api/v1/things";
    entry.target = "thing=1";
    entry.tenants = std::move(tenants);
    entry.status = status;
    entry.outcome = status < 400 ? "ok" : "error";
    clock_.advanceNs(kSecond);
    auto record = log_->append(entry);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? *record : AuditRecord{};
  }

  void appendFive() {
    for (int i = 0; i < 5; ++i) append("user" + std::to_string(i), {"acme"}, 200);
  }

  AuditVerifyReport verify() {
    auto report = AuditLog::verify(path());
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : AuditVerifyReport{};
  }

  testing::TempDir dir_;
  SimulatedClock clock_{kT0};
  std::unique_ptr<AuditLog> log_;
};

// Records chain: seq counts from 1, each prev_hash is the previous hash, the first links to
// 64 zeros, and the hash is SHA-256 over the canonical record.
TEST_F(AuditLogTest, RecordsAreChained) {
  AuditRecord first = append("alice", {"acme"}, 201);
  AuditRecord second = append("bob", {}, 401);
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(second.seq, 2);
  EXPECT_EQ(first.prev_hash, std::string(64, '0'));
  EXPECT_EQ(second.prev_hash, first.hash);
  EXPECT_EQ(first.time_ns, kT0 + kSecond);
  EXPECT_NE(first.hash, second.hash);
  EXPECT_EQ(first.hash.size(), 64u);
  AuditVerifyReport report = verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 2);
}

// The chain continues across reopening the file.
TEST_F(AuditLogTest, ChainSurvivesReopen) {
  AuditRecord first = append("alice", {"acme"}, 201);
  log_.reset();
  auto reopened = AuditLog::open(path(), &clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  log_ = *std::move(reopened);
  AuditRecord second = append("bob", {"acme"}, 200);
  EXPECT_EQ(second.seq, 2);
  EXPECT_EQ(second.prev_hash, first.hash);
  EXPECT_TRUE(verify().ok);
}

// SQLite itself rejects UPDATE and DELETE on the table.
TEST_F(AuditLogTest, TriggersRejectChanges) {
  appendFive();
  testing::RawDb raw(path());
  EXPECT_NE(raw.exec("UPDATE audit SET status = 200 WHERE seq = 2"), "");
  EXPECT_NE(raw.exec("DELETE FROM audit WHERE seq = 2"), "");
  EXPECT_TRUE(verify().ok);
}

// Editing one field of a record is found at that record.
TEST_F(AuditLogTest, EditedRowIsDetected) {
  appendFive();
  testing::RawDb raw(path());
  ASSERT_EQ(raw.exec(std::string(kDropGuards) + "UPDATE audit SET subject = 'mallory' WHERE seq = 3"),
            "");
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_EQ(report.records, 2);
  EXPECT_NE(report.problem.find("hash differs"), std::string::npos) << report.problem;
}

// Recomputing the edited record's hash moves the break to the next record.
TEST_F(AuditLogTest, RehashedRowBreaksNextLink) {
  appendFive();
  testing::RawDb raw(path());
  AuditRecord forged;
  forged.seq = 3;
  forged.time_ns = std::stoll(raw.queryText("SELECT time_ns FROM audit WHERE seq = 3"));
  forged.entry.subject = "mallory";
  forged.entry.token_id = "00112233445566ff";
  forged.entry.remote_addr = "127.0.0.1";
  forged.entry.method = "POST";
  forged.entry.path = "/api/v1/things";
  forged.entry.target = "thing=1";
  forged.entry.tenants = {"acme"};
  forged.entry.status = 200;
  forged.entry.outcome = "ok";
  forged.prev_hash = raw.queryText("SELECT prev_hash FROM audit WHERE seq = 3");
  // The canonical form is public, so a forger can rehash the record; the next record's
  // prev_hash still names the original.
  const std::string hash = internal::sha256Hex(AuditLog::canonicalRecord(forged));
  ASSERT_EQ(raw.exec(std::string(kDropGuards) + "UPDATE audit SET subject = 'mallory', hash = '" +
                     hash + "' WHERE seq = 3"),
            "");
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_NE(report.problem.find("prev_hash differs"), std::string::npos) << report.problem;
}

// Deleting a record in the middle is reported at the missing seq.
TEST_F(AuditLogTest, DeletedRowIsDetected) {
  appendFive();
  testing::RawDb raw(path());
  ASSERT_EQ(raw.exec(std::string(kDropGuards) + "DELETE FROM audit WHERE seq = 2"), "");
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_NE(report.problem.find("missing"), std::string::npos) << report.problem;
}

// Deleting the last records is caught through the AUTOINCREMENT counter.
TEST_F(AuditLogTest, TruncatedTailIsDetected) {
  appendFive();
  testing::RawDb raw(path());
  ASSERT_EQ(raw.exec(std::string(kDropGuards) + "DELETE FROM audit WHERE seq >= 4"), "");
  AuditVerifyReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_NE(report.problem.find("removed from the end"), std::string::npos) << report.problem;
}

// Pages follow seq with a next_after cursor, and a tenant filter keeps only its records.
TEST_F(AuditLogTest, ListPagesAndFilters) {
  append("a", {"acme"}, 200);
  append("b", {"globex"}, 200);
  append("c", {}, 401);
  append("d", {"acme", "globex"}, 200);

  AuditFilter filter;
  filter.limit = 3;
  auto first = log_->list(filter);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->items.size(), 3u);
  ASSERT_TRUE(first->next_after.has_value());
  EXPECT_EQ(*first->next_after, 3);
  filter.after_seq = *first->next_after;
  auto second = log_->list(filter);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->items.size(), 1u);
  EXPECT_EQ(second->items[0].entry.subject, "d");
  EXPECT_FALSE(second->next_after.has_value());

  AuditFilter acme;
  acme.tenants = std::vector<std::string>{"acme"};
  auto scoped = log_->list(acme);
  ASSERT_TRUE(scoped.ok());
  ASSERT_EQ(scoped->items.size(), 2u);
  EXPECT_EQ(scoped->items[0].entry.subject, "a");
  EXPECT_EQ(scoped->items[1].entry.subject, "d");

  AuditFilter bad;
  bad.limit = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(log_->list(bad).status()));
}

// verify() on a missing file is an error naming the path, not a crash.
// verify reads the records and the AUTOINCREMENT counter from one snapshot, so records
// appended while it runs (vigild writing during `vigilctl audit verify`) never look like
// records removed from the end.
// verify() reads the log while a writer appends. The writer stops after a fixed number of
// records, so the work does not depend on how fast verify() is: an unbounded writer made
// each pass longer than the last, and a slower build never finished the 300 passes.
TEST_F(AuditLogTest, VerifyDuringAppendsIsIntact) {
  appendFive();
  AuditEntry entry;
  entry.subject = "writer";
  entry.method = "POST";
  entry.path = "/api/v1/things";
  entry.status = 201;
  entry.outcome = "ok";
  constexpr int kAppends = 2000;
  std::atomic<int> appended{0};
  std::thread writer([&] {
    for (int i = 0; i < kAppends; ++i) {
      absl::StatusOr<AuditRecord> record = log_->append(entry);
      if (!record.ok()) {
        ADD_FAILURE() << record.status();
        break;
      }
      appended.store(i + 1);
    }
  });
  int passes = 0;
  int passes_while_writing = 0;
  int64_t last_records = 0;
  while (passes < 300) {
    const bool writing = appended.load() < kAppends;
    AuditVerifyReport report = verify();
    ++passes;
    EXPECT_TRUE(report.ok) << "pass " << passes << ": " << report.problem;
    if (!report.ok) break;
    // Each pass reads a whole prefix of the log, never fewer records than the pass before.
    EXPECT_GE(report.records, last_records);
    last_records = report.records;
    if (!writing) break;
    ++passes_while_writing;
  }
  writer.join();
  EXPECT_GT(passes_while_writing, 0);
  AuditVerifyReport final_report = verify();
  EXPECT_TRUE(final_report.ok) << final_report.problem;
  EXPECT_EQ(final_report.records, 5 + kAppends);
}

TEST_F(AuditLogTest, VerifyMissingFile) {
  auto report = AuditLog::verify(dir_.file("nope/audit.db"));
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("nope/audit.db"), absl::string_view::npos);
}

}  // namespace
}  // namespace vigil::mgmt
