// A test fixture that runs one subcommand of the built vigilctl over files the test
// writes into a folder of its own, and captures the exit status, output lines and errors.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace vigil::mgmt::testing {

inline constexpr const char* kVigilctlBinary = VIGIL_BINARY_DIR "/mgmt/vigilctl";

// The result of one vigilctl run.
struct CommandRun {
  int exit_code = -1;
  std::vector<std::string> lines;  // standard output, split at newlines
  std::string err;                 // standard error
};

class VigilctlCommandTest : public ::testing::Test {
 protected:
  // `command` is the subcommand with its words, such as "intel load".
  explicit VigilctlCommandTest(std::string command) : command_(std::move(command)) {}

  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kVigilctlBinary))
        << kVigilctlBinary << " is missing; build the vigilctl target before these tests";
    std::string folder = "vigilctl-" + command_ + "-";
    for (char& c : folder) c = c == ' ' ? '-' : c;
    dir_ = std::filesystem::temp_directory_path() /
           (folder + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Runs "vigilctl COMMAND ARGS" under a 20 s timeout, so a command that blocks fails the
  // test (exit code 124) instead of hanging it.
  CommandRun run(const std::string& args) {
    const std::string err_path = (dir_ / "stderr.txt").string();
    const std::string command = "timeout 20 " + std::string(kVigilctlBinary) + " " + command_ +
                                " " + args + " 2>" + err_path;
    CommandRun result;
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr) << command;
    if (pipe == nullptr) return result;
    std::string out;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) result.lines.push_back(line);
    std::ifstream err(err_path);
    std::stringstream text;
    text << err.rdbuf();
    result.err = text.str();
    return result;
  }

  std::filesystem::path dir_;

 private:
  std::string command_;
};

}  // namespace vigil::mgmt::testing
