// Starts the built vigild as a child process for integration tests, with its stderr in a
// file, and stops it with SIGTERM (or SIGKILL when it does not stop in time).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace vigil::testing {

// Returns a TCP or UDP port on 127.0.0.1 that was free a moment ago, chosen below the
// kernel's ephemeral range so that no outgoing connection takes it before vigild binds it.
int freePort(int type);

// Writes `text` to a new file in a fresh temporary folder and returns the folder.
std::string makeTempDir(const std::string& prefix);
void writeFile(const std::string& path, const std::string& text);
std::string readFile(const std::string& path);

// Sends `message` as one UDP datagram to 127.0.0.1:`port`.
void sendUdp(int port, const std::string& message);

// Sums one counter over its label sets in Prometheus text (0 when it is absent).
double metricSum(const std::string& text, const std::string& name);

// Polls `fn` every 50 ms until it returns true or `timeout` passes. Returns its last result.
template <typename Fn>
bool eventually(Fn fn, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return fn();
}

// Polls GET /healthz on 127.0.0.1:`port` until vigild returns 200 or `timeout` passes.
bool waitHealthy(int port, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Creates an admin token named `name` in <state_dir>/auth.db, the store vigild opens, as
// 'vigilctl tokens bootstrap' does, and returns it. Throws when the store cannot be opened.
std::string mintAdminToken(const std::string& state_dir, const std::string& name);

class DaemonProcess {
 public:
  // Runs VIGIL_BINARY_DIR/mgmt/vigild with `args`; stderr goes to `log_path`.
  // Standard output goes to `stdout_path`, or to /dev/null when it is empty.
  DaemonProcess(std::vector<std::string> args, std::string log_path,
                std::string stdout_path = "");
  ~DaemonProcess();

  // Waits for the process to exit within `timeout`; returns its exit status, or -1 on
  // timeout (the process is left running).
  int waitExit(std::chrono::milliseconds timeout);
  // Sends SIGTERM and waits; returns the exit status (SIGKILL after 10 s gives -1).
  int stop();
  bool running();
  // Sends `signal` (SIGHUP, for instance) to the running process.
  void signal(int signal);
  std::string log() const { return readFile(log_path_); }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

}  // namespace vigil::testing
