#include "mgmt/alert_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace vigil::mgmt {

namespace {

constexpr auto kWaitLimit = std::chrono::seconds(2);

}  // namespace

// Shared by the writer object and its thread, so a thread left blocked in write(2) at
// shutdown never touches freed memory.
struct JsonLinesAlertWriter::State {
  State(int fd_in, bool owned_in, std::string target_in, MetricsRegistry& metrics,
        size_t max_queued_in)
      : fd(fd_in),
        owned(owned_in),
        target(std::move(target_in)),
        max_queued(max_queued_in),
        written(metrics.counter("vigil_alerts_written_total", "Alerts written as JSON lines")),
        errors(metrics.counter("vigil_alert_write_errors_total",
                               "Alerts that could not be written as JSON lines")),
        dropped(metrics.counter("vigil_alerts_output_dropped_total",
                                "Alerts left out of the JSON lines output because its queue "
                                "was full or shutdown could not wait for it")) {}

  // Writes queued lines until stop is set and the queue is empty.
  void run() {
    std::unique_lock lock(mutex);
    while (true) {
      ready.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty()) break;  // stop was requested and nothing is left
      std::string line = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      writeLine(line);
      lock.lock();
      busy = false;
      if (queue.empty()) idle.notify_all();
    }
    finished = true;
    idle.notify_all();
  }

  // Writes one line with write(2), looping over partial writes. The output is not a
  // stdio stream on purpose: exit() flushes every open FILE under its lock, so a FILE held
  // by a thread blocked in fwrite would hang the process at exit.
  void writeLine(const std::string& line) {
    size_t done = 0;
    while (done < line.size()) {
      ssize_t n = ::write(fd, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        errors.add();
        VIGIL_LOG_WARN_POW2("alert write failed target={} error=\"{}\"", target,
                            logText(std::strerror(errno)));
        return;
      }
      done += static_cast<size_t>(n);
    }
    written.add();
  }

  int fd;
  bool owned;
  std::string target;
  size_t max_queued;
  Counter& written;
  Counter& errors;
  Counter& dropped;

  std::mutex mutex;
  std::condition_variable ready;  // a line was queued, or stop was set
  std::condition_variable idle;   // the queue emptied, or the thread finished
  std::deque<std::string> queue;
  bool busy = false;      // the thread is inside writeLine()
  bool stop = false;
  bool finished = false;  // run() returned
  std::thread thread;
};

absl::StatusOr<std::unique_ptr<JsonLinesAlertWriter>> JsonLinesAlertWriter::open(
    const std::string& target, MetricsRegistry& metrics, size_t max_queued) {
  int fd = STDOUT_FILENO;
  const bool owned = target != "stdout";
  if (owned) {
    fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open alerts.output ", target, ": ", std::strerror(errno),
                       "; check that the folder exists and is writable"));
    }
  }
  auto state = std::make_shared<State>(fd, owned, target, metrics, std::max<size_t>(1, max_queued));
  state->thread = std::thread([state] {
    nameThisThread("vigil-alert-out");
    state->run();
  });
  return std::unique_ptr<JsonLinesAlertWriter>(new JsonLinesAlertWriter(std::move(state)));
}

JsonLinesAlertWriter::JsonLinesAlertWriter(std::shared_ptr<State> state)
    : state_(std::move(state)) {}

JsonLinesAlertWriter::~JsonLinesAlertWriter() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  s.stop = true;
  s.ready.notify_all();
  const bool done = s.idle.wait_for(lock, kWaitLimit, [&] { return s.finished; });
  if (done) {
    lock.unlock();
    s.thread.join();
    if (s.owned) ::close(s.fd);
    return;
  }
  // The output is blocked inside write(2). Count what will never be written and leave
  // the thread (and an owned descriptor) to the process exit.
  const size_t left = s.queue.size();
  s.dropped.add(left);
  s.queue.clear();
  lock.unlock();
  VIGIL_LOG_ERROR("alert output blocked at shutdown target={} alerts_not_written={}", s.target,
                  left);
  s.thread.detach();
}

void JsonLinesAlertWriter::onAlert(const correlate::Alert& alert) {
  std::string line = correlate::alertToJson(alert);
  line.push_back('\n');
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.queue.size() < s.max_queued) {
      s.queue.push_back(std::move(line));
      s.ready.notify_one();
      return;
    }
  }
  s.dropped.add();
  VIGIL_LOG_WARN_POW2("alert output queue full target={} alert={} queued={}", s.target, alert.id,
                      s.max_queued);
}

void JsonLinesAlertWriter::flush() {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  const bool drained =
      s.idle.wait_for(lock, kWaitLimit, [&] { return s.finished || (s.queue.empty() && !s.busy); });
  if (!drained) {
    VIGIL_LOG_WARN("alert output not drained target={} queued={}", s.target, s.queue.size());
  }
}

}  // namespace vigil::mgmt
