// Runs the built vigild on file sources that cannot be replayed in full and checks its
// exit status, messages and run summary.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vigil::mgmt {
namespace {

constexpr const char* kVigild = VIGIL_BINARY_DIR "/mgmt/vigild";

struct DaemonRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

class VigildReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kVigild))
        << kVigild << " is missing; build the vigild target before these tests";
    dir_ = std::filesystem::temp_directory_path() /
           ("vigild-replay-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a configuration with one file source replaying `paths` (a YAML flow list) and
  // the API turned off. Returns its path.
  std::string writeConfig(const std::string& paths) {
    const std::string config = path("vigil.yaml");
    std::ofstream(config) << "state_dir: " << path("state") << "\n"
                          << "sources:\n  - {name: replay, type: file, paths: " << paths << "}\n"
                          << "alerts: {output: " << path("alerts.jsonl") << "}\n"
                          << "api: {enabled: false}\n";
    return config;
  }

  // Runs "vigild ARGS" under a 60 s timeout, so a vigild that blocks fails the test (exit
  // code 137) instead of hanging it.
  DaemonRun run(const std::string& args) {
    const std::string command = "timeout -s KILL 60 " + std::string(kVigild) + " " + args + " 2>&1";
    DaemonRun result;
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr) << command;
    if (pipe == nullptr) return result;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
  }

  std::filesystem::path dir_;
};

// An unknown argument is named with the help pointer and exits with the usage status 2,
// instead of CLI11's "--config is required" (status 106).
TEST_F(VigildReplayTest, UnknownArgumentIsNamed) {
  DaemonRun bogus = run("--bogus");
  EXPECT_EQ(bogus.exit_code, 2) << bogus.output;
  EXPECT_NE(bogus.output.find("unknown argument '--bogus'; see vigild --help"), std::string::npos)
      << bogus.output;

  DaemonRun missing = run("--log-level info");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("--config is required"), std::string::npos) << missing.output;
}

// A FIFO in a file source's paths is a configuration error that names the path, both in
// --check-config and at start, instead of a vigild blocked in open().
TEST_F(VigildReplayTest, FifoIsConfigurationError) {
  const std::string fifo = path("events.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::string config = writeConfig("[" + fifo + "]");

  DaemonRun check = run("--config " + config + " --check-config");
  EXPECT_EQ(check.exit_code, 2) << check.output;
  EXPECT_NE(check.output.find(fifo + " is not a regular file (a FIFO)"), std::string::npos)
      << check.output;

  DaemonRun start = run("--config " + config + " --exit-when-done");
  EXPECT_EQ(start.exit_code, 2) << start.output;
  EXPECT_NE(start.output.find(fifo + " is not a regular file (a FIFO)"), std::string::npos)
      << start.output;
}

// A read error is counted and shown in the summary, the replay goes on with the next
// file, and --exit-when-done exits 1. Reading /proc/self/mem at offset 0 fails with EIO.
TEST_F(VigildReplayTest, ReadErrorExitsNonZero) {
  const std::string log = path("after.log");
  std::ofstream(log) << "<13>Oct 11 22:14:15 host app: hello\n";
  const std::string config = writeConfig("[/proc/self/mem, " + log + "]");
  const std::string summary_path = path("summary.txt");

  DaemonRun r = run("--config " + config + " --exit-when-done --summary-file " + summary_path);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("path=/proc/self/mem"), std::string::npos) << r.output;
  std::ifstream in(summary_path);
  std::stringstream summary;
  summary << in.rdbuf();
  std::string events_line;
  std::string errors_line;
  for (std::string line; std::getline(summary, line);) {
    if (line.rfind("  events read", 0) == 0) events_line = line;
    if (line.rfind("  read errors", 0) == 0) errors_line = line;
  }
  EXPECT_TRUE(events_line.ends_with(" 1")) << summary.str();
  EXPECT_TRUE(errors_line.ends_with(" 1")) << summary.str();
  EXPECT_NE(r.output.find("1 read error"), std::string::npos) << r.output;
}

// Runs "vigild --check-config --config CONFIG" and returns the peak resident memory of
// that process in KiB (getrusage's ru_maxrss), or -1 when it did not exit with status 0.
long checkConfigPeakKib(const std::string& config) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (std::freopen("/dev/null", "w", stdout) == nullptr) ::_exit(126);
    if (std::freopen("/dev/null", "w", stderr) == nullptr) ::_exit(126);
    ::execl(kVigild, kVigild, "--check-config", "--config", config.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid < 0) return -1;
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) != pid) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return usage.ru_maxrss;
}

// --check-config compiles the rules without window tables of the configured size: its peak
// memory with 10^7 keys per rule stays that of 1,000 keys. Full-size tables would add the
// key index alone, about 57 MB per correlation rule at 10^7 keys.
TEST_F(VigildReplayTest, CheckConfigMemoryIgnoresKeyLimit) {
  std::ofstream(path("rules.yml")) << R"(title: SSH password failure
name: ssh_failed
id: 11111111-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
  condition: selection
---
title: SSH brute force
id: 11111111-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3}
)";
  std::ofstream(path("events.log")) << "<13>Oct 11 22:14:15 host app: hello\n";
  auto writeKeysConfig = [&](long keys) {
    const std::string config = path("keys-" + std::to_string(keys) + ".yaml");
    std::ofstream(config) << "state_dir: " << path("state") << "\n"
                          << "sources:\n  - {name: replay, type: file, paths: ["
                          << path("events.log") << "]}\n"
                          << "rules: {paths: [" << path("rules.yml") << "]}\n"
                          << "pipeline: {max_keys_per_rule: " << keys << "}\n"
                          << "api: {enabled: false}\n";
    return config;
  };
  const long small_kib = checkConfigPeakKib(writeKeysConfig(1000));
  const long large_kib = checkConfigPeakKib(writeKeysConfig(10000000));
  ASSERT_GT(small_kib, 0);
  ASSERT_GT(large_kib, 0);
  EXPECT_LT(large_kib, small_kib + 16 * 1024)
      << "peak KiB with 1,000 keys: " << small_kib << ", with 10^7 keys: " << large_kib;
}

}  // namespace
}  // namespace vigil::mgmt
