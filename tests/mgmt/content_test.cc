// Content store, content service and its routes: versions, activation and rollback,
// diffs, dry runs and the permission checks, with principals set by hand.
#include <atomic>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "mgmt/content_activators.h"
#include "mgmt/content_service.h"
#include "mgmt/content_store.h"
#include "mgmt/internal/router.h"
#include "mgmt/mgmt_test_util.h"
#include "mgmt/rule_reloader.h"

namespace vigil::mgmt {
namespace {

using testing::TempDir;

// --- store -----------------------------------------------------------------------------

TEST(ContentStoreTest, VersionsNumberedPerTenant) {
  TempDir dir;
  auto store = ContentStore::open(dir.file("content.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  auto a1 = (*store)->add(ContentKind::kPlaybooks, "acme", "alice", {{"a.yml", "x"}}, 10);
  auto a2 = (*store)->add(ContentKind::kPlaybooks, "acme", "alice", {{"a.yml", "y"}}, 20);
  auto b1 = (*store)->add(ContentKind::kPlaybooks, "beta", "bob", {{"a.yml", "x"}}, 30);
  ASSERT_TRUE(a1.ok());
  ASSERT_TRUE(a2.ok());
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(a1->version, 1);
  EXPECT_EQ(a2->version, 2);
  EXPECT_EQ(b1->version, 1);
  EXPECT_EQ(a1->sha256, b1->sha256);
  EXPECT_NE(a1->sha256, a2->sha256);
  EXPECT_EQ(a1->sha256.size(), 64u);

  auto list = (*store)->list(ContentKind::kPlaybooks, "acme");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, 2);
  EXPECT_EQ((*list)[0].author, "alice");
  EXPECT_FALSE((*list)[0].active);
}

TEST(ContentStoreTest, OneActiveVersion) {
  TempDir dir;
  auto store = ContentStore::open(dir.file("content.db"));
  ASSERT_TRUE(store.ok());
  for (const char* text : {"one", "two", "three"}) {
    ASSERT_TRUE((*store)->add(ContentKind::kRules, "*", "admin", {{"r.yml", text}}, 1).ok());
  }
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 3, "alice", 100).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "alice", 200).ok());
  auto active = (*store)->active(ContentKind::kRules, "*");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value());
  EXPECT_EQ((*active)->version, 1);
  EXPECT_EQ((*active)->files.at("r.yml"), "one");
  EXPECT_EQ((*active)->activated_ns, 200);
  absl::StatusOr<std::vector<ContentVersion>> versions = (*store)->list(ContentKind::kRules, "*");
  ASSERT_TRUE(versions.ok());
  int active_count = 0;
  for (const ContentVersion& v : *versions) active_count += v.active;
  EXPECT_EQ(active_count, 1);
}

// Each activation records who made it: the pusher for a push, the caller for a rollback.
TEST(ContentStoreTest, ActivationRecordsPrincipal) {
  TempDir dir;
  auto store = ContentStore::open(dir.file("content.db"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->add(ContentKind::kRules, "*", "alice", {{"r.yml", "one"}}, 1).ok());
  ASSERT_TRUE((*store)->add(ContentKind::kRules, "*", "alice", {{"r.yml", "two"}}, 2).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 2, "alice", 10).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "bob", 20).ok());
  auto one = (*store)->get(ContentKind::kRules, "*", 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->author, "alice");
  EXPECT_EQ(one->activated_by, "bob");
  EXPECT_EQ(one->activated_ns, 20);
  auto versions = (*store)->list(ContentKind::kRules, "*");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].activated_by, "alice");
  EXPECT_EQ((*versions)[1].activated_by, "bob");
}

// A store written before activations recorded their principal gains the column on open.
TEST(ContentStoreTest, OpensStoreWithoutActivatedBy) {
  TempDir dir;
  const std::string path = dir.file("content.db");
  {
    testing::RawDb raw(path);
    ASSERT_EQ(raw.exec("CREATE TABLE content_versions (kind TEXT NOT NULL, tenant TEXT NOT "
                       "NULL, version INTEGER NOT NULL, author TEXT NOT NULL, created_ns "
                       "INTEGER NOT NULL, activated_ns INTEGER NOT NULL DEFAULT 0, sha256 TEXT "
                       "NOT NULL, files TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0, "
                       "PRIMARY KEY (kind, tenant, version))"),
              "");
    ASSERT_EQ(raw.exec("INSERT INTO content_versions VALUES ('rules', '*', 1, 'alice', 1, 5, "
                       "'00', '{\"r.yml\": \"x\"}', 1)"),
              "");
  }
  auto store = ContentStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto old = (*store)->get(ContentKind::kRules, "*", 1);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->activated_ns, 5);
  EXPECT_EQ(old->activated_by, "");
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "carol", 9).ok());
  EXPECT_EQ((*store)->get(ContentKind::kRules, "*", 1)->activated_by, "carol");
}

// Every activation is a history row, including repeats that ContentVersion overwrites,
// with the action, the principal, the content hash and the version it replaced.
TEST(ContentStoreTest, ActivationHistoryKeepsEveryActivation) {
  TempDir dir;
  auto store = ContentStore::open(dir.file("content.db"));
  ASSERT_TRUE(store.ok());
  auto one = (*store)->add(ContentKind::kRules, "*", "alice", {{"r.yml", "one"}}, 1);
  auto two = (*store)->add(ContentKind::kRules, "*", "alice", {{"r.yml", "two"}}, 2);
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(two.ok());
  ASSERT_TRUE((*store)->add(ContentKind::kRules, "acme", "alice", {{"r.yml", "x"}}, 3).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "alice", 10).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 2, "alice", 20).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "bob", 30).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "carol", 40).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "acme", 1, "dave", 50).ok());
  EXPECT_FALSE((*store)->activate(ContentKind::kRules, "*", 9, "erin", 60).ok());

  auto history = (*store)->listActivations(ContentKind::kRules, "*");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 4u);
  const std::vector<std::string> actions = {"reactivate", "rollback", "activate", "activate"};
  const std::vector<std::string> subjects = {"carol", "bob", "alice", "alice"};
  const std::vector<int64_t> versions = {1, 1, 2, 1};
  const std::vector<int64_t> previous = {1, 2, 1, 0};
  const std::vector<int64_t> times = {40, 30, 20, 10};
  for (size_t i = 0; i < history->size(); ++i) {
    const ContentActivation& a = (*history)[i];
    EXPECT_EQ(a.action, actions[i]) << i;
    EXPECT_EQ(a.activated_by, subjects[i]) << i;
    EXPECT_EQ(a.version, versions[i]) << i;
    EXPECT_EQ(a.previous_version, previous[i]) << i;
    EXPECT_EQ(a.activated_ns, times[i]) << i;
    EXPECT_EQ(a.sha256, versions[i] == 1 ? one->sha256 : two->sha256) << i;
    EXPECT_EQ(a.tenant, "*") << i;
  }
  EXPECT_GT((*history)[0].seq, (*history)[1].seq);

  auto acme = (*store)->listActivations(ContentKind::kRules, "acme");
  ASSERT_TRUE(acme.ok());
  ASSERT_EQ(acme->size(), 1u);
  EXPECT_EQ((*acme)[0].activated_by, "dave");
  auto playbooks = (*store)->listActivations(ContentKind::kPlaybooks, "*");
  ASSERT_TRUE(playbooks.ok());
  EXPECT_TRUE(playbooks->empty());
}

// A store written before the activation history existed gains the table on open, with one
// "imported" row per version that was ever active, and records later activations.
TEST(ContentStoreTest, OpensStoreWithoutActivationHistory) {
  TempDir dir;
  const std::string path = dir.file("content.db");
  {
    testing::RawDb raw(path);
    ASSERT_EQ(raw.exec("CREATE TABLE content_versions (kind TEXT NOT NULL, tenant TEXT NOT "
                       "NULL, version INTEGER NOT NULL, author TEXT NOT NULL, created_ns "
                       "INTEGER NOT NULL, activated_ns INTEGER NOT NULL DEFAULT 0, "
                       "activated_by TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL, files "
                       "TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, "
                       "tenant, version))"),
              "");
    ASSERT_EQ(raw.exec("INSERT INTO content_versions VALUES "
                       "('rules', '*', 1, 'alice', 1, 7, 'bob', 'aa', '{\"r.yml\": \"x\"}', 1), "
                       "('rules', '*', 2, 'alice', 2, 5, 'alice', 'bb', '{\"r.yml\": \"y\"}', 0), "
                       "('rules', '*', 3, 'alice', 3, 0, '', 'cc', '{\"r.yml\": \"z\"}', 0)"),
              "");
  }
  auto store = ContentStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto imported = (*store)->listActivations(ContentKind::kRules, "*");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->size(), 2u);
  EXPECT_EQ((*imported)[0].version, 1);
  EXPECT_EQ((*imported)[0].action, "imported");
  EXPECT_EQ((*imported)[0].activated_by, "bob");
  EXPECT_EQ((*imported)[0].sha256, "aa");
  EXPECT_EQ((*imported)[1].version, 2);
  EXPECT_EQ((*imported)[1].activated_ns, 5);

  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 3, "carol", 9).ok());
  store->reset();
  auto reopened = ContentStore::open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto history = (*reopened)->listActivations(ContentKind::kRules, "*");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].version, 3);
  EXPECT_EQ((*history)[0].action, "activate");
  EXPECT_EQ((*history)[0].previous_version, 1);
}

TEST(ContentStoreTest, UnknownVersionNotFound) {
  TempDir dir;
  auto store = ContentStore::open(dir.file("content.db"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->add(ContentKind::kRules, "*", "admin", {{"r.yml", "x"}}, 1).ok());
  ASSERT_TRUE((*store)->activate(ContentKind::kRules, "*", 1, "alice", 1).ok());
  EXPECT_EQ((*store)->activate(ContentKind::kRules, "*", 7, "alice", 2).code(),
            absl::StatusCode::kNotFound);
  // The failed activation rolled back: version 1 is still the active one.
  auto active = (*store)->active(ContentKind::kRules, "*");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value());
  EXPECT_EQ((*active)->version, 1);
  EXPECT_EQ((*store)->get(ContentKind::kRules, "*", 9).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ContentStoreTest, SurvivesReopen) {
  TempDir dir;
  {
    auto store = ContentStore::open(dir.file("content.db"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->add(ContentKind::kIntel, "*", "admin", {{"list.txt", "192.0.2.1\n"}}, 1).ok());
    ASSERT_TRUE((*store)->activate(ContentKind::kIntel, "*", 1, "alice", 1).ok());
  }
  auto store = ContentStore::open(dir.file("content.db"));
  ASSERT_TRUE(store.ok());
  auto active = (*store)->active(ContentKind::kIntel, "*");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value());
  EXPECT_EQ((*active)->files.at("list.txt"), "192.0.2.1\n");
}

TEST(ContentHashTest, FileBoundariesCount) {
  EXPECT_NE(contentHash({{"a", "bc"}}), contentHash({{"ab", "c"}}));
  EXPECT_NE(contentHash({{"a", "x"}, {"b", ""}}), contentHash({{"a", "x"}}));
  EXPECT_EQ(contentHash({{"a", "x"}}), contentHash({{"a", "x"}}));
}

// --- diff and problem parsing -----------------------------------------------------------

TEST(UnifiedDiffTest, OneChangedLine) {
  std::string before = "a\nb\nc\nd\ne\nf\ng\nh\n";
  std::string after = "a\nb\nc\nd\nE\nf\ng\nh\n";
  EXPECT_EQ(unifiedDiff(before, after, "a/r.yml", "b/r.yml"),
            "--- a/r.yml\n+++ b/r.yml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n");
}

TEST(UnifiedDiffTest, AddedFileAndEqualText) {
  EXPECT_EQ(unifiedDiff("", "x\ny\n", "/dev/null", "b/new.yml"),
            "--- /dev/null\n+++ b/new.yml\n@@ -0,0 +1,2 @@\n+x\n+y\n");
  EXPECT_EQ(unifiedDiff("same\n", "same\n", "a", "b"), "");
}

TEST(UnifiedDiffTest, DistantChangesGetTwoHunks) {
  std::string before;
  for (int i = 0; i < 20; ++i) before += std::to_string(i) + "\n";
  std::string after = before;
  after.replace(after.find("2\n"), 2, "two\n");
  after.replace(after.find("17\n"), 3, "seventeen\n");
  std::string patch = unifiedDiff(before, after, "a", "b");
  EXPECT_NE(patch.find("@@ -1,6 +1,6 @@"), std::string::npos) << patch;
  EXPECT_NE(patch.find("@@ -15,6 +15,6 @@"), std::string::npos) << patch;
}

TEST(ProblemFromMessageTest, LineAndColumn) {
  ContentProblem p = problemFromMessage("r/a.yml", "r/a.yml:12:3: invalid YAML: bad");
  EXPECT_EQ(p.file, "r/a.yml");
  EXPECT_EQ(p.line, 12);
  EXPECT_EQ(p.column, 3);
  EXPECT_EQ(p.message, "invalid YAML: bad");
  p = problemFromMessage("r/a.yml", "r/a.yml:7: document 1 rule 'x': no condition");
  EXPECT_EQ(p.line, 7);
  EXPECT_EQ(p.column, 0);
  EXPECT_EQ(p.message, "document 1 rule 'x': no condition");
  p = problemFromMessage("r/a.yml", "something else");
  EXPECT_EQ(p.line, 0);
  EXPECT_EQ(p.message, "something else");
}

// --- service with a fake activator ------------------------------------------------------

// Accepts files whose text does not contain "bad"; each bad file is a problem on the
// line of the word. Commits record the version that went live.
struct FakeContent {
  std::vector<int64_t> live;  // versions committed, in order
  bool fail_commit = false;

  ContentActivator activator(bool tenant_scoped) {
    ContentActivator a;
    a.tenant_scoped = tenant_scoped;
    a.prepare = [this](const ContentRequest& request,
                       std::vector<ContentProblem>& problems) -> ContentCommit {
      for (const auto& [path, text] : *request.files) {
        size_t at = text.find("bad");
        if (at == std::string::npos) continue;
        int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
        problems.push_back({path, line, 0, "contains bad"});
      }
      if (!problems.empty()) return {};
      return [this, version = request.version]() -> absl::Status {
        if (fail_commit) return absl::InternalError("swap failed");
        live.push_back(version);
        return absl::OkStatus();
      };
    };
    a.dry_run = [](const ContentRequest& request, const nlohmann::json& sample,
                   std::vector<ContentProblem>&) -> absl::StatusOr<nlohmann::json> {
      return nlohmann::json{{"files", request.files->size()}, {"events", sample.size()}};
    };
    return a;
  }
};

class ContentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ContentStore::open(dir_.file("content.db"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    service_ = std::make_unique<ContentService>(*store_, metrics_);
    service_->setActivator(ContentKind::kRules, global_.activator(false));
    service_->setActivator(ContentKind::kPlaybooks, tenant_.activator(true));
    service_->addRoutes([this](const char* method, const char* pattern, ApiHandler handler) {
      router_.add(method, pattern, std::move(handler));
    });
  }

  ApiResponse call(const std::string& method, const std::string& path, const Principal& who,
                   const std::string& body = "",
                   std::multimap<std::string, std::string> query = {}) {
    ApiRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.query = std::move(query);
    request.principal = who;
    return router_.dispatch(request);
  }

  static Principal principal(Role role, std::vector<std::string> tenants = {}) {
    Principal p;
    p.subject = std::string(roleName(role)) + "-token";
    p.token_id = "tok-" + std::string(roleName(role));
    p.role = role;
    p.tenants = std::move(tenants);
    return p;
  }

  TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<ContentStore> store_;
  std::unique_ptr<ContentService> service_;
  FakeContent global_;
  FakeContent tenant_;
  internal::Router router_;
};

TEST_F(ContentServiceTest, PushActivatesNewVersion) {
  auto result = service_->push(ContentKind::kRules, "*", "alice", {{"a.yml", "good"}});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->problems.empty());
  ASSERT_TRUE(result->version.has_value());
  EXPECT_EQ(result->version->version, 1);
  EXPECT_TRUE(result->version->active);
  EXPECT_EQ(global_.live, std::vector<int64_t>{1});
}

TEST_F(ContentServiceTest, FailedPushChangesNothing) {
  ASSERT_TRUE(service_->push(ContentKind::kRules, "*", "alice", {{"a.yml", "good"}}).ok());
  auto result = service_->push(ContentKind::kRules, "*", "alice",
                               {{"a.yml", "ok\nbad"}, {"b.yml", "bad"}, {"c.yml", "fine"}});
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->problems.size(), 2u);
  EXPECT_EQ(result->problems[0].file, "a.yml");
  EXPECT_EQ(result->problems[0].line, 2);
  EXPECT_EQ(result->problems[1].file, "b.yml");
  EXPECT_EQ(global_.live, std::vector<int64_t>{1});
  auto versions = store_->list(ContentKind::kRules, "*");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(metrics_.sum("vigil_content_operations_total", {{"outcome", "rejected"}}), 1u);
  EXPECT_EQ(metrics_.sum("vigil_content_operations_total",
                         {{"tenant", "*"}, {"outcome", "rejected"}}),
            1u);
}

TEST_F(ContentServiceTest, FailedCommitKeepsActiveVersion) {
  ASSERT_TRUE(service_->push(ContentKind::kRules, "*", "alice", {{"a.yml", "one"}}).ok());
  global_.fail_commit = true;
  auto result = service_->push(ContentKind::kRules, "*", "alice", {{"a.yml", "two"}});
  EXPECT_FALSE(result.ok());
  auto active = store_->active(ContentKind::kRules, "*");
  ASSERT_TRUE(active.ok());
  ASSERT_TRUE(active->has_value());
  EXPECT_EQ((*active)->version, 1);
}

TEST_F(ContentServiceTest, RollbackActivatesOldVersion) {
  ASSERT_TRUE(service_->push(ContentKind::kRules, "*", "alice", {{"a.yml", "one"}}).ok());
  ASSERT_TRUE(service_->push(ContentKind::kRules, "*", "alice", {{"a.yml", "two"}}).ok());
  auto v = service_->activate(ContentKind::kRules, "*", 1, "bob");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(global_.live, (std::vector<int64_t>{1, 2, 1}));
  auto active = store_->active(ContentKind::kRules, "*");
  EXPECT_EQ((*active)->version, 1);
  EXPECT_EQ(service_->activate(ContentKind::kRules, "*", 5, "bob").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ContentServiceTest, RouteProblemsAre422WithPositions) {
  nlohmann::json body = {{"files", {{"x.yml", "line\nbad"}, {"y.yml", "bad"}}}};
  ApiResponse response =
      call("POST", "/api/v1/content/rules", principal(Role::kAdmin), body.dump());
  EXPECT_EQ(response.status, 422);
  nlohmann::json j = nlohmann::json::parse(response.body);
  EXPECT_EQ(j["error"]["code"], "invalid_content");
  ASSERT_EQ(j["problems"].size(), 2u);
  EXPECT_EQ(j["problems"][0]["file"], "x.yml");
  EXPECT_EQ(j["problems"][0]["line"], 2);
}

TEST_F(ContentServiceTest, RoutePushListShowDiff) {
  const Principal admin = principal(Role::kAdmin);
  nlohmann::json one = {{"files", {{"r.yml", "a\nb\n"}}}};
  nlohmann::json two = {{"files", {{"r.yml", "a\nc\n"}, {"s.yml", "new\n"}}}};
  EXPECT_EQ(call("POST", "/api/v1/content/rules", admin, one.dump()).status, 201);
  ApiResponse pushed = call("POST", "/api/v1/content/rules", admin, two.dump());
  ASSERT_EQ(pushed.status, 201) << pushed.body;
  nlohmann::json v2 = nlohmann::json::parse(pushed.body);
  EXPECT_EQ(v2["version"], 2);
  EXPECT_EQ(v2["author"], "admin-token");
  EXPECT_EQ(v2["active"], true);

  nlohmann::json list =
      nlohmann::json::parse(call("GET", "/api/v1/content/rules/versions", admin).body);
  ASSERT_EQ(list["versions"].size(), 2u);
  EXPECT_EQ(list["versions"][1]["active"], false);

  nlohmann::json shown =
      nlohmann::json::parse(call("GET", "/api/v1/content/rules/versions/1", admin).body);
  EXPECT_EQ(shown["files"]["r.yml"], "a\nb\n");

  ApiResponse diff = call("GET", "/api/v1/content/rules/versions/2/diff", admin, "",
                          {{"against", "1"}});
  ASSERT_EQ(diff.status, 200) << diff.body;
  nlohmann::json d = nlohmann::json::parse(diff.body);
  ASSERT_EQ(d["files"].size(), 2u);
  EXPECT_EQ(d["files"][0]["path"], "r.yml");
  EXPECT_EQ(d["files"][0]["diff"], "--- a/r.yml\n+++ b/r.yml\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
  EXPECT_EQ(d["files"][1]["status"], "added");

  ApiResponse rollback = call("POST", "/api/v1/content/rules/versions/1/activate", admin);
  EXPECT_EQ(rollback.status, 200) << rollback.body;
  EXPECT_EQ(global_.live.back(), 1);
}

// The version list pages and sorts like the case list, and shows who activated each
// version: the pusher, and after a rollback the principal that rolled back.
TEST_F(ContentServiceTest, RouteVersionsPageSortAndActivator) {
  const Principal admin = principal(Role::kAdmin);
  Principal operator_admin = principal(Role::kAdmin);
  operator_admin.subject = "oncall";
  for (const char* text : {"one", "two", "three"}) {
    nlohmann::json body = {{"files", {{"r.yml", text}}}};
    ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, body.dump()).status, 201);
  }
  ApiResponse rollback =
      call("POST", "/api/v1/content/rules/versions/1/activate", operator_admin);
  ASSERT_EQ(rollback.status, 200) << rollback.body;
  nlohmann::json rolled = nlohmann::json::parse(rollback.body);
  EXPECT_EQ(rolled["author"], "admin-token");
  EXPECT_EQ(rolled["activated_by"], "oncall");
  EXPECT_TRUE(rolled.contains("activated"));

  ApiResponse page = call("GET", "/api/v1/content/rules/versions", admin, "",
                          {{"limit", "2"}, {"offset", "1"}});
  ASSERT_EQ(page.status, 200) << page.body;
  nlohmann::json j = nlohmann::json::parse(page.body);
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["limit"], 2);
  EXPECT_EQ(j["offset"], 1);
  ASSERT_EQ(j["versions"].size(), 2u);
  EXPECT_EQ(j["versions"][0]["version"], 2);
  EXPECT_EQ(j["versions"][0]["activated_by"], "admin-token");
  EXPECT_EQ(j["versions"][1]["version"], 1);
  EXPECT_EQ(j["versions"][1]["activated_by"], "oncall");

  ApiResponse oldest = call("GET", "/api/v1/content/rules/versions", admin, "",
                            {{"sort", "version"}, {"limit", "1"}});
  ASSERT_EQ(oldest.status, 200) << oldest.body;
  EXPECT_EQ(nlohmann::json::parse(oldest.body)["versions"][0]["version"], 1);

  ApiResponse shown = call("GET", "/api/v1/content/rules/versions/1", admin);
  EXPECT_EQ(nlohmann::json::parse(shown.body)["activated_by"], "oncall");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"limit", "0"}, {"limit", "501"}, {"limit", "ten"}, {"offset", "-1"}, {"sort", "created"}};
  for (const auto& [name, value] : bad) {
    ApiResponse r = call("GET", "/api/v1/content/rules/versions", admin, "", {{name, value}});
    EXPECT_EQ(r.status, 400) << name << "=" << value;
    EXPECT_NE(r.body.find(name + "=" + value), std::string::npos) << r.body;
  }
}

// The activation history route pages, sorts and filters, and lists one tenant's rows
// only to principals of that tenant.
TEST_F(ContentServiceTest, RouteActivationHistory) {
  const Principal admin = principal(Role::kAdmin);
  Principal oncall = principal(Role::kAdmin);
  oncall.subject = "oncall";
  for (const char* text : {"one", "two"}) {
    nlohmann::json body = {{"files", {{"r.yml", text}}}};
    ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, body.dump()).status, 201);
  }
  ASSERT_EQ(call("POST", "/api/v1/content/rules/versions/1/activate", oncall).status, 200);
  ASSERT_EQ(call("POST", "/api/v1/content/rules/versions/1/activate", oncall).status, 200);

  ApiResponse all = call("GET", "/api/v1/content/rules/activations", admin);
  ASSERT_EQ(all.status, 200) << all.body;
  nlohmann::json j = nlohmann::json::parse(all.body);
  EXPECT_EQ(j["kind"], "rules");
  EXPECT_EQ(j["tenant"], "*");
  EXPECT_EQ(j["total"], 4);
  ASSERT_EQ(j["activations"].size(), 4u);
  EXPECT_EQ(j["activations"][0]["action"], "reactivate");
  EXPECT_EQ(j["activations"][1]["action"], "rollback");
  EXPECT_EQ(j["activations"][1]["previous_version"], 2);
  EXPECT_EQ(j["activations"][1]["activated_by"], "oncall");
  EXPECT_EQ(j["activations"][2]["version"], 2);
  EXPECT_EQ(j["activations"][2]["activated_by"], "admin-token");
  EXPECT_TRUE(j["activations"][3]["previous_version"].is_null());
  EXPECT_EQ(j["activations"][3]["sha256"].get<std::string>().size(), 64u);

  ApiResponse oldest = call("GET", "/api/v1/content/rules/activations", admin, "",
                            {{"sort", "seq"}, {"limit", "1"}, {"offset", "1"}});
  ASSERT_EQ(oldest.status, 200) << oldest.body;
  nlohmann::json page = nlohmann::json::parse(oldest.body);
  EXPECT_EQ(page["total"], 4);
  ASSERT_EQ(page["activations"].size(), 1u);
  EXPECT_EQ(page["activations"][0]["version"], 2);

  ApiResponse filtered = call("GET", "/api/v1/content/rules/activations", admin, "",
                              {{"version", "1"}, {"activated_by", "oncall"}});
  ASSERT_EQ(filtered.status, 200) << filtered.body;
  EXPECT_EQ(nlohmann::json::parse(filtered.body)["total"], 2);
  ApiResponse rollbacks = call("GET", "/api/v1/content/rules/activations", admin, "",
                               {{"action", "rollback"}});
  EXPECT_EQ(nlohmann::json::parse(rollbacks.body)["total"], 1);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"limit", "0"}, {"sort", "version"}, {"version", "0"}, {"action", "undo"}, {"tenants", "x"}};
  for (const auto& [name, value] : bad) {
    ApiResponse r = call("GET", "/api/v1/content/rules/activations", admin, "", {{name, value}});
    EXPECT_EQ(r.status, 400) << name << "=" << value << ": " << r.body;
  }

  const std::string body = R"({"files": {"p.yml": "fine"}})";
  ASSERT_EQ(call("POST", "/api/v1/content/playbooks", admin, body, {{"tenant", "acme"}}).status,
            201);
  EXPECT_EQ(call("GET", "/api/v1/content/playbooks/activations",
                 principal(Role::kReadOnly, {"beta"}), "", {{"tenant", "acme"}})
                .status,
            403);
  ApiResponse own = call("GET", "/api/v1/content/playbooks/activations",
                         principal(Role::kReadOnly, {"acme"}), "", {{"tenant", "acme"}});
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(nlohmann::json::parse(own.body)["activations"][0]["tenant"], "acme");
  EXPECT_EQ(call("GET", "/api/v1/content/playbooks/activations", admin).status, 400);
  EXPECT_EQ(metrics_.sum("vigil_content_operations_total",
                         {{"kind", "playbooks"}, {"tenant", "acme"}, {"outcome", "activated"}}),
            1u);
}

TEST_F(ContentServiceTest, RouteRejectsBadInput) {
  const Principal admin = principal(Role::kAdmin);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", admin, "{not json").status, 400);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", admin, R"({"files": {}})").status, 400);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", admin, R"({"files": {"a": 1}})").status, 400);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", admin, R"({"files": {"../x": "y"}})").status,
            400);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", admin, R"({"files": {"a": "y"}, "evnts": []})")
                .status,
            400);
  EXPECT_EQ(call("POST", "/api/v1/content/sigma", admin, R"({"files": {"a": "y"}})").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions/zero", admin).status, 400);
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions/3", admin).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/content/intel/versions", admin).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions", admin, "", {{"limt", "1"}}).status,
            400);
  EXPECT_TRUE(global_.live.empty());
}

TEST_F(ContentServiceTest, RolesAndTenants) {
  const std::string body = R"({"files": {"p.yml": "fine"}})";
  // Global content: only the admin role may change it.
  EXPECT_EQ(call("POST", "/api/v1/content/rules", principal(Role::kTenantAdmin, {"acme"}), body)
                .status,
            403);
  // Tenant content: the tenant's administrator may, an analyst may not, another tenant's
  // administrator may not.
  EXPECT_EQ(call("POST", "/api/v1/content/playbooks", principal(Role::kTenantAdmin, {"acme"}),
                 body, {{"tenant", "acme"}})
                .status,
            201);
  EXPECT_EQ(call("POST", "/api/v1/content/playbooks", principal(Role::kAnalyst, {"acme"}), body,
                 {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("POST", "/api/v1/content/playbooks", principal(Role::kTenantAdmin, {"beta"}),
                 body, {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("GET", "/api/v1/content/playbooks/versions", principal(Role::kReadOnly, {"beta"}),
                 "", {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("GET", "/api/v1/content/playbooks/versions", principal(Role::kReadOnly, {"acme"}),
                 "", {{"tenant", "acme"}})
                .status,
            200);
  // Every principal may read content that applies to every tenant.
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions", principal(Role::kReadOnly, {"beta"}))
                .status,
            200);
  // Tenant content needs the tenant; global content rejects one.
  EXPECT_EQ(call("POST", "/api/v1/content/playbooks", principal(Role::kAdmin), body).status, 400);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", principal(Role::kAdmin), body,
                 {{"tenant", "acme"}})
                .status,
            400);
  // No principal: 401 unless the service allows it.
  EXPECT_EQ(call("POST", "/api/v1/content/rules", Principal{}, body).status, 401);
  EXPECT_EQ(tenant_.live, std::vector<int64_t>{1});
  EXPECT_TRUE(global_.live.empty());
}

TEST_F(ContentServiceTest, DryRunActivatesNothing) {
  ApiResponse response = call("POST", "/api/v1/content/rules", principal(Role::kAdmin),
                              R"({"files": {"a": "ok"}, "events": ["x", "y"]})",
                              {{"dry_run", "true"}});
  ASSERT_EQ(response.status, 200) << response.body;
  nlohmann::json j = nlohmann::json::parse(response.body);
  EXPECT_EQ(j["result"]["events"], 2);
  EXPECT_TRUE(global_.live.empty());
  auto versions = store_->list(ContentKind::kRules, "*");
  ASSERT_TRUE(versions.ok());
  EXPECT_TRUE(versions->empty());
  EXPECT_EQ(call("POST", "/api/v1/content/rules", principal(Role::kAdmin), R"({"files": {"a": "ok"}})",
                 {{"dry_run", "true"}})
                .status,
            400);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", principal(Role::kAdmin), R"({"files": {"a": "ok"}})",
                 {{"dry_run", "maybe"}})
                .status,
            400);
}

// --- the rules activator with real rule compilation -------------------------------------

constexpr char kFailedRule[] = R"(title: SSH login failed
id: ssh-failed
name: ssh_failed
level: low
detection:
  sel:
    process.name: sshd
    message|contains: 'Failed password'
  condition: sel
)";

TEST(RulesActivatorTest, EveryFileErrorReported) {
  DaemonConfig config;
  config.shards = 1;
  MetricsRegistry metrics;
  RuleReloader rules(config, metrics);
  ContentActivator activator = rulesActivator(rules, [config] { return config; });
  ContentFiles files = {{"a.yml", "title: [unclosed\n"},
                        {"b.yml", kFailedRule},
                        {"c.yml", "title: no detection\nid: c\n"}};
  std::vector<ContentProblem> problems;
  ContentRequest request{ContentKind::kRules, "*", 1, &files};
  EXPECT_FALSE(activator.prepare(request, problems));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].file, "a.yml");
  EXPECT_GT(problems[0].line, 0);
  EXPECT_EQ(problems[1].file, "c.yml");
  EXPECT_GT(problems[1].line, 0);
  EXPECT_EQ(rules.slot(), nullptr) << "a failed prepare must not activate anything";
}

TEST(RulesActivatorTest, DryRunReturnsAlerts) {
  DaemonConfig config;
  config.shards = 1;
  MetricsRegistry metrics;
  RuleReloader rules(config, metrics);
  ContentActivator activator = rulesActivator(rules, [config] { return config; });
  ContentFiles files = {{"b.yml", kFailedRule}};
  std::vector<ContentProblem> problems;
  nlohmann::json sample = {
      "<38>1 2024-05-01T10:00:00Z host1 sshd 411 - - Failed password for root from "
      "192.0.2.9 port 22 ssh2",
      "<38>1 2024-05-01T10:00:01Z host1 sshd 411 - - Accepted password for root",
      {{"raw", "<38>1 2024-05-01T10:00:02Z host2 sshd 1 - - Failed password for bob"},
       {"tenant", "acme"}}};
  auto output = activator.dry_run({ContentKind::kRules, "*", 0, &files}, sample, problems);
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ((*output)["alerts"].size(), 2u) << output->dump();
  EXPECT_EQ((*output)["alerts"][0]["rule_id"], "ssh-failed");
  EXPECT_EQ((*output)["alerts"][0]["event"], 0);
  EXPECT_EQ((*output)["alerts"][1]["event"], 2);
  EXPECT_EQ((*output)["alerts"][1]["tenant"], "acme");
  EXPECT_EQ(rules.slot(), nullptr);
  EXPECT_FALSE(activator.dry_run({ContentKind::kRules, "*", 0, &files}, nlohmann::json{{"a", 1}},
                                 problems)
                   .ok());
}

TEST(RulesActivatorTest, RejectedPushCountsFailedReload) {
  DaemonConfig config;
  MetricsRegistry metrics;
  RuleReloader rules(config, metrics);
  ContentActivator activator = rulesActivator(rules, [config] { return config; });
  ContentFiles files = {{"bad.yml",
                         "title: t\nname: c\ncorrelation:\n  type: temporall\n"
                         "  rules: [a]\n  timespan: 1m\n"}};
  std::vector<ContentProblem> problems;
  ContentCommit commit = activator.prepare({ContentKind::kRules, "*", 1, &files}, problems);
  EXPECT_FALSE(commit);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(metrics.sum("vigil_rules_reloads_total", {{"result", "failed"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_rules_reloads_total", {{"result", "ok"}}), 0u);
}

TEST(RulesActivatorTest, CommitTagsVersion) {
  DaemonConfig config;
  config.shards = 2;
  MetricsRegistry metrics;
  RuleReloader rules(config, metrics);
  std::vector<ContentProblem> first_problems;
  auto first = rules.stage(config, "*", {{"b.yml", kFailedRule}}, 1, first_problems);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(rules.activate(first, "test").ok());
  ContentActivator activator = rulesActivator(rules, [config] { return config; });
  ContentFiles files = {{"b.yml", kFailedRule}};
  std::vector<ContentProblem> problems;
  ContentCommit commit = activator.prepare({ContentKind::kRules, "*", 7, &files}, problems);
  ASSERT_TRUE(commit);
  EXPECT_EQ(rules.current()->options().rules_version, 1u);
  ASSERT_TRUE(commit().ok());
  EXPECT_EQ(rules.current()->options().rules_version, 7u);
  EXPECT_EQ(rules.slot()->generation(), 1u);
  EXPECT_EQ(metrics.sum("vigil_rules_reloads_total", {{"result", "ok"}}), 1u);
}

TEST(PlaybooksActivatorTest, CompileErrorsHaveLines) {
  std::vector<std::shared_ptr<const PlaybookBundle>> received;
  ContentActivator activator = playbooksActivator(
      [&received](std::shared_ptr<const PlaybookBundle> bundle) {
        received.push_back(bundle);
        return absl::OkStatus();
      },
      true);
  ContentFiles files = {{"p.yml", "name: broken\nsteps:\n  - nonsense: [\n"}};
  std::vector<ContentProblem> problems;
  EXPECT_FALSE(activator.prepare({ContentKind::kPlaybooks, "acme", 1, &files}, problems));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].file, "p.yml");
  EXPECT_TRUE(received.empty());
}

constexpr char kBlockPlaybook[] = R"(name: block-ssh-guessers
trigger:
  rule_ids: [ssh-brute]
steps:
  - action: firewall.block_ip
    with:
      ip: alert.src_ip
)";

TEST(PlaybooksActivatorTest, CommitHandsBundleOver) {
  std::vector<std::shared_ptr<const PlaybookBundle>> received;
  ContentActivator activator = playbooksActivator(
      [&received](std::shared_ptr<const PlaybookBundle> bundle) {
        received.push_back(bundle);
        return absl::OkStatus();
      },
      true);
  ContentFiles files = {{"block.yml", kBlockPlaybook}};
  std::vector<ContentProblem> problems;
  ContentCommit commit = activator.prepare({ContentKind::kPlaybooks, "acme", 4, &files}, problems);
  ASSERT_TRUE(commit) << (problems.empty() ? "" : problems[0].message);
  EXPECT_TRUE(received.empty());
  ASSERT_TRUE(commit().ok());
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0]->tenant, "acme");
  EXPECT_EQ(received[0]->version, 4);
  ASSERT_EQ(received[0]->playbooks.size(), 1u);
  EXPECT_EQ(received[0]->playbooks[0].path, "block.yml");
}

TEST(PlaybooksActivatorTest, DryRunRecordsActions) {
  ContentActivator activator = playbooksActivator(nullptr, true);
  ContentFiles files = {{"block.yml", kBlockPlaybook}};
  std::vector<ContentProblem> problems;
  nlohmann::json alerts = nlohmann::json::array(
      {{{"rule_id", "ssh-brute"}, {"src_ip", "192.0.2.9"}, {"level", "high"}},
       {{"rule_id", "other"}, {"level", "high"}}});
  auto output = activator.dry_run({ContentKind::kPlaybooks, "acme", 0, &files}, alerts, problems);
  ASSERT_TRUE(output.ok()) << output.status();
  ASSERT_EQ((*output)["runs"].size(), 2u) << output->dump();
  EXPECT_EQ((*output)["runs"][0]["trigger_matched"], true);
  EXPECT_EQ((*output)["runs"][1]["trigger_matched"], false);
  ASSERT_FALSE((*output)["runs"][0]["actions"].empty()) << output->dump();
  EXPECT_NE((*output)["runs"][0]["actions"][0].get<std::string>().find("firewall.block_ip"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil::mgmt
