// StatementCache: a statement is compiled once per name and rewound after every use, so a
// query stopped after its first row leaves no read transaction open.
#include <sqlite3.h>

#include <string>

#include "gtest/gtest.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt::internal {
namespace {

class StatementCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db_, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  void TearDown() override { sqlite3_close_v2(db_); }

  // True while some statement of the connection is between its first step and a reset.
  bool anyStatementBusy() const {
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s != nullptr;
         s = sqlite3_next_stmt(db_, s)) {
      if (sqlite3_stmt_busy(s) != 0) return true;
    }
    return false;
  }

  int statementCount() const {
    int n = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s != nullptr;
         s = sqlite3_next_stmt(db_, s)) {
      ++n;
    }
    return n;
  }

  sqlite3* db_ = nullptr;
};

TEST_F(StatementCacheTest, CompilesEachNameOnce) {
  StatementCache cache(db_);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<StatementUse> s = cache.get("count", "SELECT COUNT(*) FROM t WHERE v > ?1");
    ASSERT_TRUE(s.ok()) << s.status();
    (*s)->bindInt(1, i);
    absl::StatusOr<bool> row = (*s)->step();
    ASSERT_TRUE(row.ok()) << row.status();
    ASSERT_TRUE(*row);
    EXPECT_EQ((*s)->columnInt(0), 3 - i);
  }
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(statementCount(), 1);
  cache.clear();
  EXPECT_EQ(statementCount(), 0);
}

TEST_F(StatementCacheTest, RewindsAndClearsBindingsAfterUse) {
  StatementCache cache(db_);
  {
    absl::StatusOr<StatementUse> s = cache.get("values", "SELECT v FROM t WHERE v >= ?1");
    ASSERT_TRUE(s.ok()) << s.status();
    (*s)->bindInt(1, 2);
    absl::StatusOr<bool> row = (*s)->step();
    ASSERT_TRUE(row.ok()) << row.status();
    ASSERT_TRUE(*row);
    EXPECT_EQ((*s)->columnInt(0), 2);
    EXPECT_TRUE(anyStatementBusy());  // stopped after its first row
  }
  EXPECT_FALSE(anyStatementBusy());

  // The next use starts from the first row, with the old binding gone (NULL matches none).
  absl::StatusOr<StatementUse> s = cache.get("values", "SELECT v FROM t WHERE v >= ?1");
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<bool> row = (*s)->step();
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(*row);
}

TEST_F(StatementCacheTest, FailedCompileIsReportedAndNotKept) {
  StatementCache cache(db_);
  absl::StatusOr<StatementUse> s = cache.get("broken", "SELECT FROM nowhere");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("broken"), std::string::npos)
      << s.status();
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace vigil::mgmt::internal
