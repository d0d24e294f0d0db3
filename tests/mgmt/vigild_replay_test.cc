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

}  // namespace
}  // namespace vigil::mgmt
