// The JSON lines alert output: every alert written once, and a reader that stops reading
// never blocks the caller or the writer's destruction.
#include "mgmt/alert_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

correlate::Alert makeAlert(int n) {
  correlate::Alert alert;
  alert.id = "rule-" + std::to_string(n);
  alert.rule_id = "rule";
  alert.rule_title = "Test rule";
  alert.level = "high";
  alert.evidence.push_back(std::string(400, 'x'));
  return alert;
}

// Alerts written to a file come out as one complete line each, in order.
TEST(AlertWriterTest, FileGetsEveryLine) {
  const std::string path = std::filesystem::temp_directory_path() /
                           ("vigil-alerts-" + std::to_string(getpid()) + ".jsonl");
  std::filesystem::remove(path);
  MetricsRegistry metrics;
  {
    auto writer = JsonLinesAlertWriter::open(path, metrics);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 0; i < 100; ++i) (*writer)->onAlert(makeAlert(i));
    (*writer)->flush();
    EXPECT_EQ(metrics.sum("vigil_alerts_written_total"), 100u);
  }
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    EXPECT_NE(line.find("\"rule-" + std::to_string(lines) + "\""), std::string::npos) << line;
    ++lines;
  }
  EXPECT_EQ(lines, 100);
  EXPECT_EQ(metrics.sum("vigil_alerts_output_dropped_total"), 0u);
  std::filesystem::remove(path);
}

// With a pipe that no process reads, onAlert() keeps returning, the overflow is counted as
// dropped, and destroying the writer returns instead of waiting on the pipe forever.
TEST(AlertWriterTest, BlockedReaderNeverBlocksCaller) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  MetricsRegistry metrics;
  constexpr int kAlerts = 2000;
  constexpr size_t kQueue = 8;
  {
    auto writer = JsonLinesAlertWriter::open("/proc/self/fd/" + std::to_string(fds[1]), metrics,
                                             kQueue);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 0; i < kAlerts; ++i) (*writer)->onAlert(makeAlert(i));
    (*writer)->flush();  // gives up after its wait limit
  }
  const uint64_t written = metrics.sum("vigil_alerts_written_total");
  const uint64_t dropped = metrics.sum("vigil_alerts_output_dropped_total");
  // A pipe buffer holds a few hundred of these lines; the rest were dropped, except at
  // most one line the blocked thread holds inside fwrite.
  EXPECT_LT(written, static_cast<uint64_t>(kAlerts) / 2);
  EXPECT_GE(written + dropped + 1, static_cast<uint64_t>(kAlerts));
  EXPECT_LE(written + dropped, static_cast<uint64_t>(kAlerts));
  // Both pipe ends stay open: closing the read end would raise SIGPIPE in the thread the
  // writer left blocked, and the process exit ends that thread anyway.
}

}  // namespace
}  // namespace vigil::mgmt
