// vigild: the Vigil appliance daemon. Reads a YAML config, validates all of it, then runs
// the sources, the pipeline, the case store and the REST API until SIGINT or SIGTERM.
// Exit status: 0 after a clean stop, 2 for a bad command line or configuration or a
// state_dir that another vigild holds, 1 when a component fails to start.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "common/log.h"
#include "mgmt/config.h"
#include "mgmt/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"vigild: the Vigil alert-correlation appliance"};
  std::string config_path;
  std::string log_level;
  vigil::mgmt::DaemonOptions options;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML configuration file")->required();
  app.add_option("--log-level", log_level,
                 "Override daemon.log_level: trace, debug, info, warn, error, critical")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}));
  app.add_flag("--exit-when-done", options.exit_when_done,
               "Exit once every file source is replayed and its alerts are stored; the exit "
               "status is 1 when a file read failed and the rest of that file was skipped");
  app.add_option("--summary-file", options.summary_file,
                 "Write the run summary to this file when the replay is done and at exit");
  app.add_flag("--check-config", check_only, "Validate the configuration and exit");
  app.set_version_flag("--version", std::string("vigild ") + VIGIL_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // CLI11 checks --config before it reports unknown words, so "vigild --bogus" would
    // only report that --config is required. Name the word instead.
    const std::vector<std::string> unknown = app.remaining();
    if (!unknown.empty()) {
      std::fprintf(stderr, "vigild: unknown argument '%s'; see vigild --help for the options\n",
                   unknown.front().c_str());
    } else {
      app.exit(e);  // prints the error and "Run with --help for more information."
    }
    return 2;  // the usage error status, as for an invalid configuration
  }

  auto config = vigil::mgmt::loadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "vigild: invalid configuration: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  if (!log_level.empty()) config->log_level = log_level;
  vigil::initLogging(config->log_level);
  if (check_only) {
    // Loads the indicator lists and rules and builds every source, so a config that
    // passes here also gets past start-up validation. check_only keeps the correlation
    // tables small, so the check needs no memory for pipeline.max_keys_per_rule.
    size_t sources = config->sources.size();
    size_t lists = config->intel_lists.size();
    size_t rule_paths = config->rule_paths.size();
    options.check_only = true;
    vigil::mgmt::Daemon checker(std::move(*config), options);
    if (auto st = checker.validate(); !st.ok()) {
      std::fprintf(stderr, "vigild: invalid configuration: %s\n", std::string(st.message()).c_str());
      return 2;
    }
    std::printf("%s: configuration is valid (%zu sources, %zu indicator lists, %zu rule paths)\n",
                config_path.c_str(), sources, lists, rule_paths);
    return 0;
  }

  // Block the stop and reload signals in every thread; Daemon::run() takes them with
  // sigtimedwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // With the alerts on stdout, the summary goes to stderr, so stdout stays JSON lines.
  const bool alerts_on_stdout = config->alerts_output == "stdout";
  vigil::mgmt::Daemon daemon(std::move(*config), options);
  if (auto st = daemon.start(); !st.ok()) {
    VIGIL_LOG_ERROR("vigild failed to start: {}", std::string(st.message()));
    std::fprintf(stderr, "vigild: %s\n", std::string(st.message()).c_str());
    return st.code() == absl::StatusCode::kInvalidArgument ||
                   st.code() == absl::StatusCode::kNotFound ||
                   st.code() == absl::StatusCode::kAlreadyExists
               ? 2
               : 1;
  }
  daemon.run();
  (alerts_on_stdout ? std::cerr : std::cout) << daemon.summary();
  // A read error skipped the rest of a file, so the replay is incomplete.
  const uint64_t read_errors = daemon.metrics().sum("vigil_source_read_errors_total");
  if (options.exit_when_done && read_errors > 0) {
    std::fprintf(stderr,
                 "vigild: replay incomplete: %llu read error(s) skipped the rest of a file; "
                 "the log names each file and error (\"read failed\")\n",
                 static_cast<unsigned long long>(read_errors));
    return 1;
  }
  return 0;
}
