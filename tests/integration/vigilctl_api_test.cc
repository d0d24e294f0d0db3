// vigilctl against the built vigild on loopback: status, the analyst indicator lists,
// sightings, intel reloads, one content version, the activating principal of a rollback,
// and the paged token and tenant lists.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

constexpr char kRule[] = R"(title: SSH password failure
id: ssh-failed
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
)";

class VigilctlApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-vigilctl-api");
    udp_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/feed.txt", "feed.example\n");
    writeFile(dir_ + "/rules.yml", kRule);
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" +
                  "sources:\n  - {name: acme-udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(udp_port_) + "'}\n" + "rules:\n  paths: [rules.yml]\n" +
                  "intel:\n  lists:\n    - {name: feed, path: feed.txt}\n" +
                  "api: {listen: '127.0.0.1:" + std::to_string(api_port_) + "'}\n");
    admin_ = mintAdminToken(dir_ + "/state", "admin-alice");
    oncall_ = mintAdminToken(dir_ + "/state", "oncall-bob");
    daemon_ = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    ASSERT_TRUE(waitHealthy(api_port_)) << daemon_->log();
  }

  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs vigilctl with `args` and `token`; returns its exit status and fills `out` with
  // stdout and stderr.
  int vigilctl(const std::string& args, std::string& out, const std::string& token = "") {
    const std::string command = std::string(VIGIL_BINARY_DIR) +
                                "/mgmt/vigilctl --api http://127.0.0.1:" +
                                std::to_string(api_port_) + " --token " +
                                (token.empty() ? admin_ : token) + " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    out.clear();
    if (pipe == nullptr) return -1;
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    const int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Runs vigilctl with --json and parses its output; null when it fails or is not JSON.
  nlohmann::json vigilctlJson(const std::string& args) {
    std::string out;
    if (vigilctl(args + " --json", out) != 0) {
      ADD_FAILURE() << "vigilctl " << args << " failed: " << out;
      return nullptr;
    }
    nlohmann::json body = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << out;
    return body;
  }

  std::string dir_;
  std::string admin_;
  std::string oncall_;
  int udp_port_ = 0;
  int api_port_ = 0;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(VigilctlApiTest, StatusShowsSources) {
  std::string out;
  ASSERT_EQ(vigilctl("status", out), 0) << out;
  EXPECT_NE(out.find("vigild "), std::string::npos) << out;
  EXPECT_NE(out.find("acme-udp"), std::string::npos) << out;
  nlohmann::json status = vigilctlJson("status");
  ASSERT_TRUE(status.is_object());
  ASSERT_EQ(status["sources"].size(), 1u);
  EXPECT_EQ(status["sources"][0]["tenant"], "acme");
}

// A daemon without file sources has nothing to replay, so its replay is done at once.
TEST_F(VigilctlApiTest, StatusReplayDoneWithoutFiles) {
  std::string out;
  ASSERT_EQ(vigilctl("status", out), 0) << out;
  EXPECT_NE(out.find("replay done"), std::string::npos) << out;
  EXPECT_EQ(out.find("replay running"), std::string::npos) << out;
  nlohmann::json status = vigilctlJson("status");
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["replay_done"], true) << status.dump();
}

// Indicators added through vigilctl match events at once; sightings show them, and a
// removal reports what was not in the list.
TEST_F(VigilctlApiTest, IndicatorsSightingsAndReload) {
  std::string out;
  ASSERT_EQ(vigilctl("intel indicators add evil.example bad.example 'not an indicator' "
                     "--tenant acme",
                     out),
            0)
      << out;
  EXPECT_NE(out.find("added 2 indicators to the analyst list of tenant acme"), std::string::npos)
      << out;
  EXPECT_NE(out.find("not an indicator"), std::string::npos) << out;

  nlohmann::json list = vigilctlJson("intel indicators list --tenant acme");
  ASSERT_TRUE(list.is_object());
  EXPECT_EQ(list["total"], 2);
  ASSERT_EQ(vigilctl("intel indicators list --tenant acme", out), 0) << out;
  EXPECT_NE(out.find("evil.example\n"), std::string::npos) << out;
  EXPECT_NE(out.find("2 analyst indicators of tenant acme"), std::string::npos) << out;

  writeFile(dir_ + "/remove.txt", "EVIL.example.\nother.example\n");
  ASSERT_EQ(vigilctl("intel indicators remove --tenant acme --file " + dir_ + "/remove.txt", out),
            0)
      << out;
  EXPECT_NE(out.find("removed 1 indicators"), std::string::npos) << out;
  EXPECT_NE(out.find("not found  other.example"), std::string::npos) << out;
  EXPECT_EQ(vigilctlJson("intel indicators list --tenant acme")["total"], 1);

  EXPECT_NE(vigilctl("intel indicators add --tenant acme", out), 0) << out;
  EXPECT_NE(out.find("give indicators as arguments or with --file FILE"), std::string::npos)
      << out;

  sendUdp(udp_port_, "<38>Oct 11 22:14:21 web1 app: lookup feed.example bad.example");
  nlohmann::json sightings;
  ASSERT_TRUE(eventually([&] {
    sightings = vigilctlJson("intel sightings");
    return sightings.is_object() && sightings["indicators"].size() == 2;
  })) << sightings.dump();
  ASSERT_EQ(vigilctl("intel sightings --tenant acme", out), 0) << out;
  EXPECT_NE(out.find("bad.example"), std::string::npos) << out;
  EXPECT_EQ(out.find("feed.example"), std::string::npos) << out;

  ASSERT_EQ(vigilctl("intel reload", out), 0) << out;
  EXPECT_NE(out.find("intel reload requested"), std::string::npos) << out;
  EXPECT_EQ(vigilctlJson("intel reload")["reload"], "requested");
}

// A rollback records who made it; "content show" prints one version and its files.
TEST_F(VigilctlApiTest, ContentShowAndActivator) {
  std::string out;
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/rules.yml", out), 0) << out;
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/rules.yml", out), 0) << out;
  ASSERT_EQ(vigilctl("content activate rules 1", out, oncall_), 0) << out;
  EXPECT_NE(out.find("activated by  oncall-bob"), std::string::npos) << out;

  nlohmann::json versions = vigilctlJson("content versions rules");
  ASSERT_TRUE(versions.is_object());
  ASSERT_EQ(versions["versions"].size(), 2u);
  EXPECT_EQ(versions["total"], 2);
  EXPECT_EQ(versions["versions"][0]["activated_by"], "admin-alice");
  EXPECT_EQ(versions["versions"][1]["author"], "admin-alice");
  EXPECT_EQ(versions["versions"][1]["activated_by"], "oncall-bob");

  ASSERT_EQ(vigilctl("content versions rules --sort version --limit 1", out), 0) << out;
  EXPECT_NE(out.find("oncall-bob"), std::string::npos) << out;
  EXPECT_NE(out.find("1 of 2 versions shown (offset 0)"), std::string::npos) << out;

  ASSERT_EQ(vigilctl("content show rules 1", out), 0) << out;
  EXPECT_NE(out.find("rules version 1 (active)"), std::string::npos) << out;
  EXPECT_NE(out.find("rules.yml"), std::string::npos) << out;
  ASSERT_EQ(vigilctl("content show rules 1 --file rules.yml", out), 0) << out;
  EXPECT_EQ(out, kRule);
  EXPECT_EQ(vigilctlJson("content show rules 2")["files"]["rules.yml"], kRule);
  EXPECT_EQ(vigilctl("content show rules 1 --file other.yml", out), 1) << out;
  EXPECT_EQ(vigilctl("content show rules 9", out), 1) << out;
}

// Every push, activation and rollback is a row of "content activations", including a
// second activation of the same version, which "content versions" shows only once.
TEST_F(VigilctlApiTest, ContentActivationHistory) {
  std::string out;
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/rules.yml", out), 0) << out;
  ASSERT_EQ(vigilctl("content push rules " + dir_ + "/rules.yml", out), 0) << out;
  ASSERT_EQ(vigilctl("content activate rules 1", out, oncall_), 0) << out;
  ASSERT_EQ(vigilctl("content activate rules 2", out), 0) << out;
  ASSERT_EQ(vigilctl("content activate rules 1", out, oncall_), 0) << out;

  nlohmann::json history = vigilctlJson("content activations rules");
  ASSERT_TRUE(history.is_object());
  EXPECT_EQ(history["total"], 5);
  ASSERT_EQ(history["activations"].size(), 5u);
  const nlohmann::json& latest = history["activations"][0];
  EXPECT_EQ(latest["version"], 1);
  EXPECT_EQ(latest["action"], "rollback");
  EXPECT_EQ(latest["activated_by"], "oncall-bob");
  EXPECT_EQ(latest["previous_version"], 2);
  const nlohmann::json& first = history["activations"][4];
  EXPECT_EQ(first["version"], 1);
  EXPECT_EQ(first["action"], "activate");
  EXPECT_EQ(first["activated_by"], "admin-alice");
  EXPECT_TRUE(first["previous_version"].is_null());
  EXPECT_EQ(first["sha256"], latest["sha256"]);

  nlohmann::json rollbacks = vigilctlJson("content activations rules --action rollback --by oncall-bob");
  ASSERT_TRUE(rollbacks.is_object());
  EXPECT_EQ(rollbacks["total"], 2);

  ASSERT_EQ(vigilctl("content activations rules --sort seq --limit 2", out), 0) << out;
  EXPECT_NE(out.find("ACTIVATED BY"), std::string::npos) << out;
  EXPECT_NE(out.find("admin-alice"), std::string::npos) << out;
  EXPECT_EQ(out.find("oncall-bob"), std::string::npos) << out;
  EXPECT_NE(out.find("2 of 5 activations shown (offset 0)"), std::string::npos) << out;
  EXPECT_NE(vigilctl("content activations rules --action undo", out), 0) << out;
}

TEST_F(VigilctlApiTest, TokenAndTenantListsPage) {
  std::string out;
  ASSERT_EQ(vigilctl("tokens list --sort name --limit 1", out), 0) << out;
  EXPECT_NE(out.find("admin-alice"), std::string::npos) << out;
  EXPECT_EQ(out.find("oncall-bob"), std::string::npos) << out;
  EXPECT_NE(out.find("1 of 2 tokens shown (offset 0)"), std::string::npos) << out;
  nlohmann::json tokens = vigilctlJson("tokens list --sort name --offset 1 --state active");
  ASSERT_TRUE(tokens.is_object());
  ASSERT_EQ(tokens["items"].size(), 1u);
  EXPECT_EQ(tokens["items"][0]["name"], "oncall-bob");

  ASSERT_EQ(vigilctl("tenants list --sort -name", out), 0) << out;
  EXPECT_NE(out.find("acme"), std::string::npos) << out;
  EXPECT_NE(out.find("tenants shown (offset 0)"), std::string::npos) << out;
  EXPECT_NE(vigilctl("tenants list --sort size", out), 0) << out;
}

}  // namespace
}  // namespace vigil::testing
