// The playbooks shipped in configs/playbooks compile, verify and run against their
// example alerts with recording connectors.
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/compiler/dry_run.h"
#include "playbook_vm/disassembler.h"

namespace vigil::playbook_vm::compiler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SamplePlaybooksTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(registerAlertHost(host_).ok()); }

  std::unique_ptr<Program> load(const std::string& name) {
    std::string path = std::string(VIGIL_SOURCE_DIR "/configs/playbooks/") + name;
    auto program = compileAndLoad(readFile(path), name, host_);
    EXPECT_TRUE(program.ok()) << program.status();
    return program.ok() ? std::move(*program) : nullptr;
  }

  nlohmann::json alert(const std::string& name) {
    return nlohmann::json::parse(readFile(VIGIL_SOURCE_DIR "/configs/playbooks/alerts/" + name));
  }

  HostRegistry host_;
};

// Known-bad URL: intel query, isolation after approval, ticket, notification, in order.
TEST_F(SamplePlaybooksTest, PhishingIsolatesKnownBadHost) {
  auto program = load("phishing.yml");
  ASSERT_NE(program, nullptr);
  DryRunOptions options;
  options.indicators = {"http://invoice-portal.example/login"};
  options.results["intel.query"] = {"malicious", "unknown"};
  options.results["ticket.create"] = "INC-1001";
  DryRunReport report = dryRun(*program, host_, alert("phishing.json"), options, nullptr);
  ASSERT_EQ(report.status, RunStatus::kReturned) << report.message;
  EXPECT_TRUE(report.trigger_matched);
  EXPECT_THAT(
      report.actions,
      ElementsAre(
          "intel.query(indicators=[\"invoice-portal.example\", "
          "\"http://invoice-portal.example/login\"])",
          "edr.isolate_host(host=\"ws-0142\", reason=\"phishing URL clicked by j.doe\")",
          "ticket.create(title=\"Phishing: j.doe on ws-0142\", severity=\"high\", "
          "known_bad=true, rule=\"phishing-url-clicked\")",
          "chat.notify(channel=\"#soc\", text=\"Phishing alert phishing-url-clicked for j.doe "
          "on ws-0142; ticket INC-1001; known bad: true\")"));
}

// An unknown URL is not isolated; a failing intel query goes to on_error and the run
// goes on; a rejected or timed-out approval follows its branch.
TEST_F(SamplePlaybooksTest, PhishingBranches) {
  auto program = load("phishing.yml");
  ASSERT_NE(program, nullptr);
  DryRunOptions options;
  options.results["intel.query"] = {{"error", "intel service unavailable"}};
  DryRunReport report = dryRun(*program, host_, alert("phishing.json"), options, nullptr);
  ASSERT_EQ(report.status, RunStatus::kReturned) << report.message;
  ASSERT_EQ(report.actions.size(), 5u);  // three intel attempts, ticket, chat
  EXPECT_THAT(report.actions[3], HasSubstr("ticket.create("));
  EXPECT_THAT(report.transcript, ::testing::Contains(HasSubstr("delay 10s (retry intel.query)")));
  EXPECT_THAT(report.transcript, ::testing::Contains(HasSubstr("delay 20s (retry intel.query)")));
  EXPECT_THAT(report.transcript,
              ::testing::Contains(HasSubstr("log intel query failed (intel service unavailable)")));

  options.indicators = {"invoice-portal.example"};
  options.approval = "rejected";
  report = dryRun(*program, host_, alert("phishing.json"), options, nullptr);
  ASSERT_EQ(report.status, RunStatus::kReturned) << report.message;
  EXPECT_THAT(report.transcript,
              ::testing::Contains(HasSubstr("log isolation of ws-0142 was rejected")));

  options.approval = "timeout";  // default: approve
  report = dryRun(*program, host_, alert("phishing.json"), options, nullptr);
  ASSERT_EQ(report.status, RunStatus::kReturned) << report.message;
  EXPECT_THAT(report.actions, ::testing::Contains(HasSubstr("edr.isolate_host(")));
}

// Successful logins from the address escalate with the accounts they opened.
TEST_F(SamplePlaybooksTest, BruteForceEscalatesSuccessfulLogins) {
  auto program = load("brute_force.yml");
  ASSERT_NE(program, nullptr);
  DryRunOptions options;
  options.results["siem.search_logins"] = {"admin", "backup"};
  DryRunReport report = dryRun(*program, host_, alert("brute_force.json"), options, nullptr);
  ASSERT_EQ(report.status, RunStatus::kReturned) << report.message;
  EXPECT_TRUE(report.trigger_matched);
  EXPECT_THAT(
      report.actions,
      ElementsAre("firewall.block_ip(ip=\"203.0.113.77\", duration_s=86400, comment=\"brute "
                  "force against admin (ssh-brute-force)\")",
                  "identity.reset_password(user=\"admin\", notify_user=true)",
                  "siem.search_logins(src_ip=\"203.0.113.77\", outcome=\"success\", "
                  "since_s=86400)",
                  "case.escalate(tier=2, summary=\"2 successful logins from 203.0.113.77 after "
                  "brute force: admin backup\", src_ip=\"203.0.113.77\")"));
}

// No successful logins: no escalation, and the run logs why.
TEST_F(SamplePlaybooksTest, BruteForceWithoutSuccessDoesNotEscalate) {
  auto program = load("brute_force.yml");
  ASSERT_NE(program, nullptr);
  DryRunReport report =
      dryRun(*program, host_, alert("brute_force.json"), DryRunOptions(), nullptr);
  ASSERT_EQ(report.status, RunStatus::kReturned) << report.message;
  ASSERT_EQ(report.actions.size(), 3u);
  EXPECT_THAT(report.transcript,
              ::testing::Contains(HasSubstr("log no successful logins from 203.0.113.77")));
}

// Every sample disassembles with source positions.
TEST_F(SamplePlaybooksTest, SamplesDisassemble) {
  for (const char* name : {"phishing.yml", "brute_force.yml"}) {
    auto program = load(name);
    ASSERT_NE(program, nullptr);
    std::string text = disassemble(*program);
    EXPECT_THAT(text, HasSubstr("TRYCALL")) << name;
    EXPECT_THAT(text, HasSubstr("; line ")) << name;
  }
}

}  // namespace
}  // namespace vigil::playbook_vm::compiler
