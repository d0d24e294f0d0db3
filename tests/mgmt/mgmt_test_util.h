// Helpers shared by the mgmt tests: alerts with chosen fields, temporary database paths
// and direct SQLite access for checks the store API does not expose.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "correlate/alert.h"
#include "mgmt/principal.h"

namespace vigil::mgmt::testing {

inline constexpr int64_t kT0 = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z
inline constexpr int64_t kSecond = 1'000'000'000;

inline correlate::Alert makeAlert(std::string rule_id, std::string level, std::string tenant,
                                  std::vector<std::pair<std::string, std::string>> group,
                                  int64_t detect_ns) {
  static std::atomic<int> sequence{0};
  correlate::Alert alert;
  alert.id = rule_id + "-" + std::to_string(++sequence);
  alert.rule_id = std::move(rule_id);
  alert.rule_title = "Rule " + alert.rule_id;
  alert.level = std::move(level);
  alert.tenant = std::move(tenant);
  alert.group = std::move(group);
  alert.tags = {"attack.t1110"};
  alert.first_event_ns = detect_ns - 10 * kSecond;
  alert.last_event_ns = detect_ns - kSecond;
  alert.detect_ns = detect_ns;
  alert.event_count = 3;
  alert.evidence = {"line one of " + alert.id, "line two of " + alert.id};
  alert.indicator_hits = {"bad-ips:203.0.113.7@source.ip"};
  return alert;
}

// A principal for tests that run before token authentication fills one per request.
inline Principal makePrincipal(std::string subject, Role role, std::vector<std::string> tenants) {
  Principal p;
  p.subject = subject;
  p.token_id = "tok-" + subject;
  p.role = role;
  p.tenants = std::move(tenants);
  return p;
}

inline Principal adminPrincipal() { return makePrincipal("admin", Role::kAdmin, {}); }

// A fresh folder under the test temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string pattern = std::filesystem::temp_directory_path() / "vigil-mgmt-XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed for " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A second connection to a store's file, for setup and checks done behind its back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK) << path;
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close(db_); }

  // Runs `sql` and returns SQLite's error message, or "" on success.
  std::string exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    std::string message = rc == SQLITE_OK ? "" : (error != nullptr ? error : "error");
    sqlite3_free(error);
    return message;
  }

  // Returns the first column of the first row of `sql` as text ("" when no row).
  std::string queryText(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text != nullptr) out = reinterpret_cast<const char*>(text);
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Sends the lines of the default spdlog logger, from level info up, to a string until the
// object goes away, then restores the previous logger.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("capture", std::move(sink));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

// Polls `condition` every millisecond for up to 10 s; the timeout only bounds a broken
// case and is not a speed check.
inline bool waitFor(const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace vigil::mgmt::testing
