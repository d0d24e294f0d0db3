// Runs the built vigild on file sources that cannot be replayed in full and checks its
// exit status, messages and run summary.
#include <gtest/gtest.h>
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

}  // namespace
}  // namespace vigil::mgmt
