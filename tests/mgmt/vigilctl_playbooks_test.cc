// Runs the built "vigilctl playbooks compile|disasm|run" on the sample playbooks and on
// broken input, and checks output, files and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kVigilctl = VIGIL_BINARY_DIR "/mgmt/vigilctl";
const std::string kSamples = VIGIL_SOURCE_DIR "/configs/playbooks/";

struct CommandRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class VigilctlPlaybooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kVigilctl))
        << kVigilctl << " is missing; build the vigilctl target before these tests";
    dir_ = std::filesystem::temp_directory_path() /
           ("vigilctl-playbooks-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs "vigilctl playbooks ARGS" and captures both streams.
  CommandRun run(const std::string& args) {
    const std::string err_path = (dir_ / "stderr.txt").string();
    const std::string command = std::string(kVigilctl) + " playbooks " + args + " 2>" + err_path;
    CommandRun result;
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr) << command;
    if (pipe == nullptr) return result;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_path);
    std::stringstream text;
    text << err.rdbuf();
    result.err = text.str();
    return result;
  }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

// compile writes a module that disasm reads; disasm of the source prints the same code.
TEST_F(VigilctlPlaybooksTest, CompileThenDisassemble) {
  std::string module = (dir_ / "phishing.vgpb").string();
  CommandRun compiled = run("compile " + kSamples + "phishing.yml -o " + module);
  ASSERT_EQ(compiled.exit_code, 0) << compiled.err;
  EXPECT_THAT(compiled.out, HasSubstr("compiled phishing-response: "));
  EXPECT_THAT(compiled.out, HasSubstr("-> " + module));
  ASSERT_TRUE(std::filesystem::exists(module));

  CommandRun from_module = run("disasm " + module);
  ASSERT_EQ(from_module.exit_code, 0) << from_module.err;
  EXPECT_THAT(from_module.out, HasSubstr("; playbook 'phishing-response'"));
  EXPECT_THAT(from_module.out, HasSubstr("TRYCALL"));
  EXPECT_THAT(from_module.out, HasSubstr("action/2"));
  CommandRun from_source = run("disasm " + kSamples + "phishing.yml");
  ASSERT_EQ(from_source.exit_code, 0) << from_source.err;
  EXPECT_EQ(from_source.out, from_module.out);
}

// Without -o the module goes beside the playbook with the .vgpb extension.
TEST_F(VigilctlPlaybooksTest, CompileDefaultOutput) {
  std::string source = dir_ / "copy.yml";
  std::filesystem::copy_file(kSamples + "brute_force.yml", source);
  CommandRun compiled = run("compile " + source);
  ASSERT_EQ(compiled.exit_code, 0) << compiled.err;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "copy.vgpb"));
}

// A compile error exits 1 with file:line:column and writes nothing.
TEST_F(VigilctlPlaybooksTest, CompileErrorNamesPosition) {
  std::string bad = write("bad.yml", "name: x\ntrigger: {}\nsteps:\n  - stop: 1 + missing\n");
  CommandRun r = run("compile " + bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(bad + ":4:15: undefined variable 'missing'"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bad.vgpb"));
}

// A corrupt module is rejected by the loader's checks.
TEST_F(VigilctlPlaybooksTest, DisasmRejectsCorruptModule) {
  std::string module = (dir_ / "m.vgpb").string();
  ASSERT_EQ(run("compile " + kSamples + "phishing.yml -o " + module).exit_code, 0);
  std::string bytes;
  {
    std::ifstream in(module, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    bytes = text.str();
  }
  bytes.resize(bytes.size() / 2);
  std::ofstream(module, std::ios::binary | std::ios::trunc) << bytes;
  CommandRun r = run("disasm " + module);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FlatBuffers verification failed"));
}

// An empty, truncated or relabelled module is reported as "not a playbook module" with
// what is wrong, not parsed as YAML; a module given to compile is rejected.
TEST_F(VigilctlPlaybooksTest, DamagedModuleNotParsedAsYaml) {
  std::string module = (dir_ / "m.vgpb").string();
  ASSERT_EQ(run("compile " + kSamples + "phishing.yml -o " + module).exit_code, 0);
  std::string bytes;
  {
    std::ifstream in(module, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    bytes = text.str();
  }
  auto writeBytes = [&](const std::string& name, const std::string& content) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    return path;
  };
  std::string empty = writeBytes("empty.vgpb", "");
  CommandRun r = run("disasm " + empty);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(empty + ": not a playbook module: the file is empty"));

  std::string head = writeBytes("head.bin", bytes.substr(0, 3));
  r = run("run --dry-run " + head + " " + kSamples + "alerts/phishing.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(head + ": not a playbook module: truncated to 3 bytes"));

  std::string relabelled = bytes;
  relabelled.replace(4, 4, "ZZZZ");
  std::string magic = writeBytes("magic.bin", relabelled);
  r = run("disasm " + magic);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(magic + ": not a playbook module: wrong magic: bytes 4..7 are "
                                       "5a 5a 5a 5a (hex), expected \"VGPB\""));
  EXPECT_THAT(r.err, Not(HasSubstr("YAML")));

  r = run("compile " + module + " -o " + (dir_ / "again.vgpb").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(module + ": this is a compiled module (or a damaged one), not "
                                        "playbook source"));

  // Playbook source in UTF-16 has NUL bytes too and is still compiled.
  std::string source = "name: x\ntrigger: {}\nsteps: [{stop: 1}]\n";
  std::string utf16;
  for (char c : source) utf16 += std::string{c, '\0'};
  r = run("compile " + writeBytes("utf16.yml", utf16) + " -o " + (dir_ / "u.vgpb").string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The dry run prints every connector call with its parameters and result.
TEST_F(VigilctlPlaybooksTest, DryRunPrintsSteps) {
  CommandRun r = run("run --dry-run --result 'siem.search_logins=[\"admin\",\"svc\"]' " + kSamples +
                     "brute_force.yml " + kSamples + "alerts/brute_force.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("playbook brute-force-response: trigger matches the alert"));
  EXPECT_THAT(r.out, HasSubstr("  action firewall.block_ip(ip=\"203.0.113.77\", "));
  EXPECT_THAT(r.out, HasSubstr("-> [\"admin\", \"svc\"]"));
  EXPECT_THAT(r.out, HasSubstr("summary=\"2 successful logins from 203.0.113.77"));
  EXPECT_THAT(r.out, HasSubstr("  returned null after "));
}

// Failing results, rejected approvals and indicators steer the phishing playbook.
TEST_F(VigilctlPlaybooksTest, DryRunOptionsSteerBranches) {
  std::string results = write("results.json", R"({"intel.query": {"error": "timeout"}})");
  CommandRun r =
      run("run --dry-run --approval rejected --indicator invoice-portal.example "
          "--results " +
          results + " " + kSamples + "phishing.yml " + kSamples + "alerts/phishing.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("intel.query(indicators=[\"invoice-portal.example\", "));
  EXPECT_THAT(r.out, HasSubstr("-> error: timeout"));
  EXPECT_THAT(r.out, HasSubstr("delay 10s (retry intel.query) -> skipped"));
  EXPECT_THAT(r.out, HasSubstr("wait_for_approval \"Isolate ws-0142? j.doe clicked a known "
                               "phishing URL.\" timeout 900s -> rejected"));
  EXPECT_THAT(r.out, HasSubstr("log isolation of ws-0142 was rejected"));
  EXPECT_THAT(r.out, Not(HasSubstr("edr.isolate_host(")));
}

// An alert that does not match the trigger is still run, and the output reports the mismatch.
TEST_F(VigilctlPlaybooksTest, DryRunReportsTriggerMismatch) {
  std::string alert = write("other.json", R"({"rule_id": "other", "severity": "low"})");
  CommandRun r = run("run --dry-run " + kSamples + "brute_force.yml " + alert);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("trigger does not match the alert"));
}

// A run that fails exits 1 after printing where it failed.
TEST_F(VigilctlPlaybooksTest, DryRunFailureExitsNonZero) {
  std::string playbook = write("fail.yml", "name: f\ntrigger: {}\nsteps:\n  - action: a.b\n");
  std::string alert = write("a.json", "{}");
  CommandRun r = run("run --dry-run --result 'a.b={\"error\":\"down\"}' " + playbook + " " + alert);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("failed: playbook 'f' pc "));
  EXPECT_THAT(r.out, HasSubstr("action a.b failed after 1 attempt: down"));
}

// Bad usage exits 2 with a message naming the value and the fix.
TEST_F(VigilctlPlaybooksTest, UsageErrors) {
  std::string alert = kSamples + "alerts/brute_force.json";
  std::string playbook = kSamples + "brute_force.yml";
  CommandRun r = run("run " + playbook + " " + alert);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("only --dry-run is supported"));
  r = run("run --dry-run --approval maybe " + playbook + " " + alert);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid --approval 'maybe'; use approved, rejected or timeout"));
  r = run("run --dry-run --result nonsense " + playbook + " " + alert);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid --result 'nonsense'; use ACTION=JSON"));
  r = run("run --dry-run " + playbook + " " + write("bad.json", "{nope"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.json is not valid JSON"));
  r = run("compile " + (dir_ / "missing.yml").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot read "));
}

}  // namespace
}  // namespace vigil::mgmt
