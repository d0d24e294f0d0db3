// Runs the built vigilctl's tokens, tenants and audit commands: offline against a state
// folder, and online against a real ApiServer on loopback.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "auth_test_util.h"
#include "mgmt/api_server.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

constexpr const char* kVigilctl = VIGIL_BINARY_DIR "/mgmt/vigilctl";

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class VigilctlTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kVigilctl)) << kVigilctl << " is missing";
    state_ = dir_.file("state");
  }

  void startServer() {
    std::filesystem::create_directories(state_);
    auto store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auth_ = std::make_unique<testing::TestAuth>(state_, std::vector<std::string>{"acme"});
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    ASSERT_TRUE(server_->start().ok());
    api_ = "http://" + server_->address();
  }

  // Runs vigilctl with `args` and the given VIGIL_TOKEN (none when empty).
  RunResult run(const std::string& args, const std::string& token = "") {
    const std::string err_path = dir_.file("stderr.txt");
    std::string command = "env -u VIGIL_API -u VIGIL_TOKEN ";
    if (!token.empty()) command += "VIGIL_TOKEN=" + token + " ";
    command += std::string(kVigilctl) + " " + args + " 2>" + err_path;
    RunResult result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return result;
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_path);
    std::stringstream text;
    text << err.rdbuf();
    result.err = text.str();
    return result;
  }

  testing::TempDir dir_;
  std::string state_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<testing::TestAuth> auth_;
  std::unique_ptr<ApiServer> server_;
  std::string api_;
};

// bootstrap prints only the token on stdout, refuses a second admin without --force, and
// the token it prints authenticates against the store.
TEST_F(VigilctlTokensTest, BootstrapMintsAdmin) {
  RunResult first = run("tokens bootstrap --state-dir " + state_);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::string token = first.out.substr(0, first.out.find('\n'));
  EXPECT_EQ(token.size(), 85u) << first.out;
  EXPECT_NE(first.err.find("shown only this once"), std::string::npos) << first.err;

  RunResult again = run("tokens bootstrap --state-dir " + state_);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  EXPECT_EQ(run("tokens bootstrap --force --state-dir " + state_).exit_code, 0);

  auto store = AuthStore::open(AuthStore::defaultPath(state_));
  ASSERT_TRUE(store.ok());
  AuthResult result = (*store)->authenticate("Bearer " + token);
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(result.principal.role, Role::kAdmin);
}

// bootstrap creates a missing state folder, but not its missing parents: a mistyped path
// would otherwise hold a token that vigild never reads.
TEST_F(VigilctlTokensTest, BootstrapNeedsExistingParent) {
  const std::string typo = dir_.file("no-such-parent/state");
  RunResult missing = run("tokens bootstrap --state-dir " + typo);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("folder " + dir_.file("no-such-parent") + " does not exist"),
            std::string::npos)
      << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("no-such-parent")));

  RunResult created = run("tokens bootstrap --state-dir " + state_);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(created.err.find("created the state folder " + state_), std::string::npos)
      << created.err;
  EXPECT_TRUE(std::filesystem::exists(AuthStore::defaultPath(state_)));

  std::ofstream(dir_.file("plain-file")) << "x";
  RunResult file = run("tokens bootstrap --state-dir " + dir_.file("plain-file"));
  EXPECT_EQ(file.exit_code, 1);
  EXPECT_NE(file.err.find("is not a folder"), std::string::npos) << file.err;
}

// audit verify passes on an intact log and names the first broken record after tampering.
TEST_F(VigilctlTokensTest, AuditVerifyFindsTampering) {
  ASSERT_EQ(run("tokens bootstrap --state-dir " + state_).exit_code, 0);
  ASSERT_EQ(run("tokens bootstrap --force --state-dir " + state_).exit_code, 0);
  RunResult intact = run("audit verify --state-dir " + state_);
  EXPECT_EQ(intact.exit_code, 0) << intact.err;
  EXPECT_NE(intact.out.find("2 records, chain intact"), std::string::npos) << intact.out;

  {
    testing::RawDb raw(AuditLog::defaultPath(state_));
    ASSERT_EQ(raw.exec("DROP TRIGGER audit_no_update; UPDATE audit SET status = 500 WHERE seq = 1"),
              "");
  }
  RunResult broken = run("audit verify --state-dir " + state_);
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.err.find("chain broken at record 1"), std::string::npos) << broken.err;

  RunResult missing = run("audit verify --state-dir " + dir_.file("nowhere"));
  EXPECT_EQ(missing.exit_code, 2);
}

// tenants and tokens commands drive the API with the token from VIGIL_TOKEN.
TEST_F(VigilctlTokensTest, ManageThroughApi) {
  startServer();
  const std::string admin = auth_->adminToken();
  RunResult created = run("--api " + api_ + " tenants create globex", admin);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  RunResult tenants = run("--api " + api_ + " tenants list", admin);
  EXPECT_NE(tenants.out.find("globex"), std::string::npos) << tenants.out;

  RunResult token = run("--api " + api_ +
                            " tokens create --name ana --role analyst --tenant acme --expires-in 2h",
                        admin);
  ASSERT_EQ(token.exit_code, 0) << token.err;
  const std::string ana = token.out.substr(0, token.out.find('\n'));
  RunResult who = run("--api " + api_ + " whoami", ana);
  EXPECT_EQ(who.exit_code, 0) << who.err;
  EXPECT_NE(who.out.find("role analyst, tenants acme"), std::string::npos) << who.out;

  RunResult list = run("--api " + api_ + " tokens list --json", admin);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  nlohmann::json body = nlohmann::json::parse(list.out);
  std::string ana_id;
  for (const auto& item : body["items"]) {
    if (item["name"] == "ana") ana_id = item["id"];
  }
  ASSERT_FALSE(ana_id.empty()) << list.out;
  EXPECT_EQ(list.out.find(ana.substr(21)), std::string::npos);

  EXPECT_EQ(run("--api " + api_ + " tokens revoke " + ana_id, admin).exit_code, 0);
  RunResult revoked = run("--api " + api_ + " whoami", ana);
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_NE(revoked.err.find("HTTP 401"), std::string::npos) << revoked.err;

  RunResult anonymous = run("--api " + api_ + " cases list");
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_NE(anonymous.err.find("VIGIL_TOKEN"), std::string::npos) << anonymous.err;

  RunResult bad_duration = run("--api " + api_ + " tokens create --name x --role analyst "
                               "--tenant acme --expires-in soon",
                               admin);
  EXPECT_EQ(bad_duration.exit_code, 1);
  EXPECT_NE(bad_duration.err.find("--expires-in soon"), std::string::npos) << bad_duration.err;
}

}  // namespace
}  // namespace vigil::mgmt
