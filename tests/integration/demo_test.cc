// Runs the shipped demo configuration (configs/demo/vigil.yaml) to completion and checks
// that the appliance finds the activity the demo rules were written for.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

// Returns the number printed after `label` in the summary, or -1.
long summaryValue(const std::string& summary, const std::string& label) {
  std::smatch m;
  std::regex re("  " + label + " +([0-9,]+)");
  if (!std::regex_search(summary, m, re)) return -1;
  std::string digits = m[1];
  digits.erase(std::remove(digits.begin(), digits.end(), ','), digits.end());
  return std::stol(digits);
}

// The demo replay reads every bundled line, parses them all, and opens the expected cases:
// failed Windows logons, Guest logons, the RDP sweep, SSH failures and watchlist hits.
TEST(DemoTest, ReplayFindsRealActivity) {
  std::string dir = makeTempDir("vigil-demo");
  std::string src = VIGIL_SOURCE_DIR "/configs/demo";
  // Same config with the state, alerts and API moved into a temporary folder and port, and
  // without the live listeners, so the test runs beside a running demo.
  std::string config = readFile(src + "/vigil.yaml");
  config = std::regex_replace(config, std::regex("\\.\\./\\.\\./build/demo-state"), dir);
  config = std::regex_replace(config, std::regex("(data|intel|rules)/"), src + "/$1/");
  config = std::regex_replace(config, std::regex("paths: \\[rules\\]"), "paths: [" + src + "/rules]");
  config = std::regex_replace(config, std::regex("  - name: syslog-udp[\\s\\S]*?(?=\nintel:)"), "");
  config = std::regex_replace(config, std::regex("127\\.0\\.0\\.1:8080"),
                              "127.0.0.1:" + std::to_string(freePort(SOCK_STREAM)));
  writeFile(dir + "/vigil.yaml", config);

  DaemonProcess d({"--config", dir + "/vigil.yaml", "--exit-when-done", "--summary-file",
                   dir + "/summary.txt"},
                  dir + "/vigild.log");
  ASSERT_EQ(d.waitExit(std::chrono::seconds(120)), 0) << d.log() << "\nconfig:\n" << config;
  std::string summary = readFile(dir + "/summary.txt");
  EXPECT_EQ(summaryValue(summary, "events read"), 2422) << summary;
  EXPECT_EQ(summaryValue(summary, "parsed"), 2422) << summary;
  EXPECT_EQ(summaryValue(summary, "parse errors \\(kept\\)"), 0) << summary;
  EXPECT_GT(summaryValue(summary, "indicator hits"), 600) << summary;
  EXPECT_EQ(summaryValue(summary, "cases in store"), 6) << summary;
  // Written at the stop, the summary does not claim that the API is still up.
  EXPECT_NE(summary.find("vigild has stopped: the files are ready now"), std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("the API answers while vigild runs"), std::string::npos) << summary;
  std::string alerts = readFile(dir + "/alerts.jsonl");
  for (const char* title : {"Repeated failed Windows logons from one source",
                            "Guest account used for a network logon", "RDP sweep from one source",
                            "Repeated SSH authentication failures from one source",
                            "Watchlisted address active"}) {
    EXPECT_NE(alerts.find(title), std::string::npos) << title;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil::testing
