#include "dataplane/file_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/log.h"
#include "common/regular_file.h"
#include "common/thread_name.h"
#include "common/time.h"
#include "dataplane/internal/socket_util.h"

namespace vigil::dataplane {
namespace {

constexpr size_t kMinReadBuffer = 4096;
// Sleeps are cut into slices this long so stop() is honoured promptly.
constexpr int64_t kSleepSliceNs = 20'000'000;
constexpr int64_t kRingFullWaitNs = 200'000;
// RFC 3164 stamps have no year; 2000 is a leap year, so "Feb 29" stays valid.
constexpr int64_t kNominalYear = 2000;
constexpr int64_t kNanosPerDay = 86400 * kNanosPerSecond;
// Epoch seconds beyond this (year 2262) overflow int64 nanoseconds.
constexpr uint64_t kMaxEpochSeconds = 9'223'372'035;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view skipPri(std::string_view s) {
  if (s.empty() || s[0] != '<') return s;
  size_t close = s.find('>');
  if (close == std::string_view::npos || close < 2 || close > 4) return s;
  for (size_t i = 1; i < close; ++i) {
    if (!isDigit(s[i])) return s;
  }
  return s.substr(close + 1);
}

// Parses RFC 3339, also accepting a "+hhmm" offset without the colon (Suricata writes it).
std::optional<int64_t> parseTimestamp(std::string_view text) {
  constexpr size_t kMaxStamp = 64;
  size_t n = text.size();
  if (n >= 5 && n < kMaxStamp && (text[n - 5] == '+' || text[n - 5] == '-') &&
      isDigit(text[n - 4]) && isDigit(text[n - 1]) && text.find('T') != std::string_view::npos) {
    char buf[kMaxStamp + 1];
    std::memcpy(buf, text.data(), n - 2);
    buf[n - 2] = ':';
    std::memcpy(buf + n - 1, text.data() + n - 2, 2);
    return parseRfc3339(std::string_view(buf, n + 1));
  }
  return parseRfc3339(text);
}

std::optional<int64_t> sniffRfc3164(std::string_view s) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // "Mmm dd hh:mm:ss" or "Mmm  d hh:mm:ss": 15 characters.
  if (s.size() < 15 || s[3] != ' ' || s[9] != ':' || s[12] != ':') return std::nullopt;
  unsigned month = 0;
  for (unsigned i = 0; i < 12; ++i) {
    if (s.substr(0, 3) == kMonths[i]) month = i + 1;
  }
  if (month == 0 || !isDigit(s[5]) || !(isDigit(s[4]) || s[4] == ' ')) return std::nullopt;
  for (size_t i : {7u, 8u, 10u, 11u, 13u, 14u}) {
    if (!isDigit(s[i])) return std::nullopt;
  }
  auto two = [&](size_t i) { return (s[i] == ' ' ? 0 : s[i] - '0') * 10 + (s[i + 1] - '0'); };
  int day = two(4);
  int hour = two(7);
  int minute = two(10);
  int second = two(13);
  if (day < 1 || day > static_cast<int>(daysInMonth(kNominalYear, month)) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  int64_t days = daysFromCivil(kNominalYear, month, static_cast<unsigned>(day));
  return days * kNanosPerDay + (hour * 3600 + minute * 60 + second) * kNanosPerSecond;
}

std::optional<int64_t> sniffJsonMember(std::string_view line, std::string_view key) {
  size_t at = line.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(at + key.size());
  size_t pos = rest.find_first_not_of(" \t");
  if (pos == std::string_view::npos || rest[pos] != ':') return std::nullopt;
  pos = rest.find_first_not_of(" \t", pos + 1);
  if (pos == std::string_view::npos) return std::nullopt;
  if (rest[pos] == '"') {
    size_t close = rest.find('"', pos + 1);
    if (close == std::string_view::npos) return std::nullopt;
    return parseTimestamp(rest.substr(pos + 1, close - pos - 1));
  }
  // Epoch seconds with an optional fraction, as Zeek writes "ts". Parsed as integers so
  // the nanoseconds are exact.
  std::string_view number = rest.substr(pos);
  uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), seconds);
  if (ec != std::errc() || seconds > kMaxEpochSeconds) return std::nullopt;
  int64_t ns = static_cast<int64_t>(seconds) * kNanosPerSecond;
  if (end < number.data() + number.size() && *end == '.') {
    int64_t scale = kNanosPerSecond / 10;
    for (++end; end < number.data() + number.size() && isDigit(*end); ++end) {
      ns += (*end - '0') * scale;
      scale /= 10;
    }
  }
  return ns;
}

}  // namespace

std::optional<int64_t> sniffEventTime(std::string_view line) {
  if (!line.empty() && line[0] == '{') {
    for (std::string_view key : {"\"@timestamp\"", "\"timestamp\"", "\"ts\""}) {
      if (auto t = sniffJsonMember(line, key)) return t;
    }
    return std::nullopt;
  }
  std::string_view s = skipPri(line);
  if (s.size() >= 2 && s[0] == '1' && s[1] == ' ') {
    // RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME ..."
    std::string_view stamp = s.substr(2, s.find(' ', 2) - 2);
    return parseTimestamp(stamp);
  }
  while (!s.empty() && s[0] == ' ') s.remove_prefix(1);
  if (auto t = sniffRfc3164(s)) return t;
  if (s.size() >= 19 && isDigit(s[0]) && s[4] == '-') {
    // "2024-05-01T10:00:00Z ..." or "2024-05-01 10:00:00 ..."
    size_t end = s.find(' ', 11);
    return parseTimestamp(s.substr(0, end));
  }
  return std::nullopt;
}

std::unique_ptr<FileSource> FileSource::create(FileSourceOptions options, MetricsRegistry& metrics,
                                               std::string& error, Clock& clock) {
  if (!validateSourceLimits(options.name, options.max_message_bytes, options.ring_capacity,
                            error)) {
    return nullptr;
  }
  const std::string prefix = "source " + options.name + ": ";
  if (options.paths.empty()) {
    error = prefix + "no files to replay; set at least one path";
    return nullptr;
  }
  if (!(options.max_pace_wait_s > 0) || !std::isfinite(options.max_pace_wait_s)) {
    error = prefix + "max_pace_wait_s=" + std::to_string(options.max_pace_wait_s) +
            " is invalid; use a finite number of seconds > 0";
    return nullptr;
  }
  if (!(options.speed > 0) || !std::isfinite(options.speed)) {
    error = prefix + "speed=" + std::to_string(options.speed) +
            " is invalid; use a finite factor > 0 (1.0 replays in real time)";
    return nullptr;
  }
  if (options.read_buffer_bytes < kMinReadBuffer) {
    error = prefix + "read_buffer_bytes=" + std::to_string(options.read_buffer_bytes) +
            " is below " + std::to_string(kMinReadBuffer);
    return nullptr;
  }
  // Checked here as well as in start(), so that a wrong path is a configuration error that
  // --check-config reports. start() still catches a file removed in between.
  for (const std::string& path : options.paths) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0 || ::access(path.c_str(), R_OK) != 0) {
      error = prefix + "cannot read " + path + ": " + internal::errnoText(errno) +
              "; fix the path or remove it from paths";
      return nullptr;
    }
    if (S_ISDIR(info.st_mode)) {
      error = prefix + path + " is a folder; list the files to replay in paths";
      return nullptr;
    }
    // open() on a FIFO blocks until a writer appears, and a device may never end.
    if (!S_ISREG(info.st_mode)) {
      error = prefix + path + " is not a regular file (" + fileTypeName(info.st_mode) +
              "); list regular files to replay in paths";
      return nullptr;
    }
  }
  return std::unique_ptr<FileSource>(new FileSource(std::move(options), metrics, clock));
}

FileSource::FileSource(FileSourceOptions options, MetricsRegistry& metrics, Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      counters_(registerSourceCounters(metrics, options_.name)),
      ring_(makeRawRing(options_.ring_capacity, options_.max_message_bytes)),
      framer_(FramingOptions{FramingMode::kLf, options_.max_message_bytes,
                             std::max(options_.max_message_bytes, kDefaultMaxOctetCount), false,
                             true}),
      pace_jumps_(&metrics.counter("vigil_source_pace_jumps_total",
                                   "Event-time replay re-anchors after a jump in event time",
                                   {{"source", options_.name}})),
      read_errors_(&metrics.counter("vigil_source_read_errors_total",
                                    "File reads that failed; the rest of that file is skipped",
                                    {{"source", options_.name}})) {
  // Uninitialized, like the ring's buffers: only the blocks a replay reads into become
  // resident.
  for (auto& block : blocks_) block.reset(new char[options_.read_buffer_bytes]);
}

FileSource::~FileSource() { stop(); }

bool FileSource::start(std::string& error) {
  if (started_) {
    error = "source " + options_.name + " was already started; create a new source instead";
    return false;
  }
  for (const std::string& path : options_.paths) {
    // create() checked the paths, but one may have been replaced by a FIFO since, and a
    // plain open() would wait for its writer.
    OpenedFile file = openRegularFile(path);
    if (!file.ok()) {
      error = "source " + options_.name + ": ";
      if (file.error != 0) {
        error += "cannot open " + path + ": " + internal::errnoText(file.error);
      } else {
        error += path + " is not a regular file (" + fileTypeName(file.mode) +
                 "); list regular files to replay in paths";
      }
      closeFiles();
      return false;
    }
    fds_.push_back(file.fd);
  }
  started_ = true;
  stop_.store(false);
  // Log before the thread starts. The first log call sets up spdlog's registry, and doing
  // that on one thread keeps ThreadSanitizer runs free of reports from inside spdlog.
  VIGIL_LOG_INFO("source started source={} kind=file files={} pace={} speed={}", options_.name,
                 options_.paths.size(), options_.pace == Pace::kFast ? "fast" : "event_time",
                 options_.speed);
  thread_ = std::thread([this] {
    nameThisThread("vigil-src-file");
    run();
  });
  return true;
}

void FileSource::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  thread_.join();
  closeFiles();
  VIGIL_LOG_INFO(
      "source stopped source={} received={} empty_lines={} truncated={} read_errors={} "
      "finished={}",
      options_.name, counters_.received->value(), counters_.dropped_empty->value(),
      counters_.truncated->value(), read_errors_->value(), finished());
}

void FileSource::closeFiles() {
  for (int fd : fds_) ::close(fd);
  fds_.clear();
}

void FileSource::run() {
  for (size_t i = 0; i < fds_.size(); ++i) {
    if (!replayFile(i)) {
      flushCounters();
      return;
    }
  }
  flushCounters();
  finished_.store(true, std::memory_order_release);
  VIGIL_LOG_INFO("source finished replay source={} received={}", options_.name,
                 counters_.received->value());
}

// Returns false when stop() interrupted the replay.
bool FileSource::replayFile(size_t index) {
  framer_.reset();
  while (!stop_.load(std::memory_order_relaxed)) {
    char* block = nextBlock();
    if (block == nullptr) return false;
    ssize_t n = ::read(fds_[index], block, options_.read_buffer_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read_errors_->add();
      VIGIL_LOG_ERROR("read failed, skipping rest of file source={} path={} error=\"{}\"",
                      options_.name, options_.paths[index], logText(internal::errnoText(errno)));
      break;
    }
    if (n == 0) break;
    // One stamp per read: the lines of a read arrived together, and a clock reading per
    // line cost more than the rest of the publishing.
    read_ns_ = clock_.nowNs();
    block_data_ = std::string_view(block, static_cast<size_t>(n));
    std::string_view chunk = block_data_;
    while (!chunk.empty()) {
      Frame frame;
      FeedResult r = framer_.feed(chunk, frame);
      chunk.remove_prefix(r.consumed);
      if (!handle(r.status, frame)) return false;
    }
  }
  // A last line without LF still counts as a line. The framer keeps it in its own buffer.
  block_data_ = {};
  Frame frame;
  FrameStatus status = framer_.finish(frame);
  return handle(status, frame) && !stop_.load(std::memory_order_relaxed);
}

bool FileSource::handle(FrameStatus status, const Frame& frame) {
  if (status == FrameStatus::kEmpty) counters_.dropped_empty->add();
  if (status != FrameStatus::kFrame) return true;
  return publishLine(frame);
}

// Moves on to the next read block, after waiting until the consumer has popped every
// message that refers to it. Returns nullptr when stop() interrupted the wait.
char* FileSource::nextBlock() {
  flushCounters();
  block_ = (block_ + 1) % kFileReadBlocks;
  block_data_ = {};
  while (ring_->popped() < block_release_[block_]) {
    if (stop_.load(std::memory_order_relaxed)) return nullptr;
    std::this_thread::sleep_for(std::chrono::nanoseconds(kRingFullWaitNs));
  }
  return blocks_[block_].get();
}

// Waits for the event time (paced mode) and for a free slot, then publishes. Returns false
// when stop() interrupted the wait.
bool FileSource::publishLine(const Frame& frame) {
  if (options_.pace == Pace::kEventTime && !waitForEventTime(frame.data)) return false;
  RawMessage* slot = ring_->tryClaim();
  if (slot == nullptr) flushCounters();
  while (slot == nullptr) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    std::this_thread::sleep_for(std::chrono::nanoseconds(kRingFullWaitNs));
    slot = ring_->tryClaim();
  }
  // The framer returns a line that lies inside one read as a view of it; a line that
  // spans two reads comes from the framer's buffer, which the next feed() reuses.
  const bool in_block = !block_data_.empty() && frame.data.data() >= block_data_.data() &&
                        frame.data.data() + frame.data.size() <=
                            block_data_.data() + block_data_.size();
  if (in_block) {
    slot->external = frame.data.data();
  } else {
    slot->external = nullptr;
    std::memcpy(slot->data.get(), frame.data.data(), frame.data.size());
  }
  slot->len = frame.data.size();
  slot->truncated = frame.truncated;
  slot->receive_ns = options_.pace == Pace::kFast ? read_ns_ : clock_.nowNs();
  slot->peer.reset();
  slot->source_id = options_.id;
  ring_->publish();
  ++pushed_;
  if (in_block) block_release_[block_] = pushed_;
  ++pending_.received;
  pending_.bytes += frame.data.size();
  if (frame.truncated) ++pending_.truncated;
  return true;
}

// Adds the published messages to the shared counters. Called once per read block and
// before every wait, so the counters lag the ring only while the source is busy.
void FileSource::flushCounters() {
  if (pending_.received == 0) return;
  counters_.received->add(pending_.received);
  counters_.bytes->add(pending_.bytes);
  if (pending_.truncated != 0) counters_.truncated->add(pending_.truncated);
  pending_ = {};
}

bool FileSource::waitForEventTime(std::string_view line) {
  std::optional<int64_t> event_ns = sniffEventTime(line);
  if (!event_ns) return true;
  const int64_t previous_ns = previous_event_ns_;
  previous_event_ns_ = *event_ns;
  if (!anchor_event_ns_) {
    anchor_event_ns_ = event_ns;
    anchor_monotonic_ns_ = monotonicNs();
    return true;
  }
  // The difference is taken in double, so times at opposite ends of int64 cannot overflow.
  const double jump_s = std::abs(static_cast<double>(*event_ns) - static_cast<double>(previous_ns)) /
                        1e9 / options_.speed;
  if (jump_s > options_.max_pace_wait_s) {
    pace_jumps_->add();
    VIGIL_LOG_WARN_POW2(
        "event time jumped, replay re-anchored source={} jump_s={:.0f} max_pace_wait_s={}",
        options_.name, jump_s, options_.max_pace_wait_s);
    anchor_event_ns_ = event_ns;
    anchor_monotonic_ns_ = monotonicNs();
    return true;
  }
  double gap_ns = static_cast<double>(*event_ns - *anchor_event_ns_) / options_.speed;
  if (gap_ns <= 0) return true;
  return sleepUntil(anchor_monotonic_ns_ + static_cast<int64_t>(gap_ns));
}

bool FileSource::sleepUntil(int64_t deadline_ns) {
  flushCounters();
  for (int64_t now = monotonicNs(); now < deadline_ns; now = monotonicNs()) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min(deadline_ns - now, kSleepSliceNs)));
  }
  return true;
}

}  // namespace vigil::dataplane
