// Durability of the management plane: vigild is killed with SIGKILL at random moments
// while clients create cases and add notes. Every write the API acknowledged with a 2xx
// must be there after a restart, the case store must pass SQLite's integrity check, and
// the audit log's hash chain must verify.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"
#include "mgmt/audit_log.h"
#include "mgmt/auth_store.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kRounds = 6;
constexpr int kWriters = 3;

class KillDuringWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-kill");
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n"
              "sources:\n"
              "  - {name: udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(freePort(SOCK_DGRAM)) + "'}\n"
              "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n");
    std::filesystem::create_directories(dir_ + "/state");
    auto auth = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(dir_ + "/state"));
    ASSERT_TRUE(auth.ok()) << auth.status();
    mgmt::TokenRequest admin;
    admin.name = "kill-test";
    admin.role = mgmt::Role::kAdmin;
    auto issued = (*auth)->createToken(admin);
    ASSERT_TRUE(issued.ok()) << issued.status();
    token_ = issued->token;
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", api_port_);
    c->set_bearer_token_auth(token_);
    c->set_connection_timeout(2);
    c->set_read_timeout(5);
    return c;
  }

  std::unique_ptr<DaemonProcess> start() {
    auto daemon = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    auto c = client();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto res = c->Get("/healthz");
      if (res && res->status == 200) return daemon;
      std::this_thread::sleep_for(milliseconds(20));
    }
    ADD_FAILURE() << "vigild did not come up:\n" << daemon->log();
    return daemon;
  }

  std::string dir_;
  std::string token_;
  int api_port_ = 0;
};

TEST_F(KillDuringWriteTest, AcknowledgedWritesSurvive) {
  std::mutex mu;
  std::map<int64_t, std::string> cases;             // acknowledged case id -> title
  std::multimap<int64_t, std::string> notes;        // acknowledged case id -> note body
  std::mt19937 random(20261205);
  int64_t sequence = 0;

  for (int round = 0; round < kRounds; ++round) {
    std::unique_ptr<DaemonProcess> daemon = start();
    ASSERT_TRUE(daemon->running());
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        auto c = client();
        int64_t last_case = 0;
        while (!stop.load()) {
          std::string title;
          {
            std::lock_guard lock(mu);
            title = "case " + std::to_string(++sequence) + " writer " + std::to_string(w);
          }
          nlohmann::json body = {{"title", title}, {"tenant", "acme"}, {"severity", "high"}};
          auto res = c->Post("/api/v1/cases", body.dump(), "application/json");
          if (!res) continue;  // the daemon died mid-request: nothing was acknowledged
          if (res->status == 201) {
            last_case = nlohmann::json::parse(res->body).value("id", int64_t{0});
            std::lock_guard lock(mu);
            cases[last_case] = title;
          }
          if (last_case == 0) continue;
          const std::string note = "note on " + title;
          auto added = c->Post("/api/v1/cases/" + std::to_string(last_case) + "/notes",
                               nlohmann::json{{"body", note}}.dump(), "application/json");
          if (added && added->status == 201) {
            std::lock_guard lock(mu);
            notes.emplace(last_case, note);
          }
        }
      });
    }
    std::uniform_int_distribution<int> delay(30, 400);
    std::this_thread::sleep_for(milliseconds(delay(random)));
    daemon->signal(SIGKILL);
    EXPECT_NE(daemon->waitExit(milliseconds(10000)), 0);
    stop.store(true);
    for (auto& t : writers) t.join();
  }
  ASSERT_GT(cases.size(), 0u) << "no write was acknowledged; the test proved nothing";

  // Restart once more and read everything back through the API.
  std::unique_ptr<DaemonProcess> daemon = start();
  auto c = client();
  for (const auto& [id, title] : cases) {
    auto res = c->Get("/api/v1/cases/" + std::to_string(id));
    ASSERT_TRUE(res) << "case " << id;
    ASSERT_EQ(res->status, 200) << "acknowledged case " << id << " is gone: " << res->body;
    const nlohmann::json detail = nlohmann::json::parse(res->body);
    EXPECT_EQ(detail.value("title", ""), title);
    size_t found = 0;
    auto [begin, end] = notes.equal_range(id);
    for (auto it = begin; it != end; ++it) {
      for (const auto& note : detail["notes"]) {
        if (note.value("body", "") == it->second) {
          ++found;
          break;
        }
      }
    }
    EXPECT_EQ(found, static_cast<size_t>(std::distance(begin, end)))
        << "acknowledged notes of case " << id << " are missing";
  }
  EXPECT_EQ(daemon->stop(), 0) << daemon->log();

  // The store opens cleanly: SQLite's own integrity check passes.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ + "/state/cases.db").c_str(), &db, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
  sqlite3_finalize(check);
  sqlite3_close(db);

  // Every mutating call was recorded before its response, and the chain is intact.
  auto report = mgmt::AuditLog::verify(mgmt::AuditLog::defaultPath(dir_ + "/state"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->problem << " at seq " << report->first_bad_seq;
  EXPECT_GE(report->records, static_cast<int64_t>(cases.size() + notes.size()));
}

}  // namespace
}  // namespace vigil::testing
