// A Source that replays files. Each file is read in order and split into LF-framed lines
// (a trailing CR is stripped). Lines are published to the ring as fast as the consumer
// takes them, or paced by the event times in the lines. The source is finite, so
// finished() turns true after the last line of the last file is published.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/framing.h"
#include "dataplane/source.h"

namespace vigil::dataplane {

enum class Pace : uint8_t {
  kFast,       // publish as soon as the ring has room
  kEventTime,  // keep the gaps between event times, divided by `speed`
};

struct FileSourceOptions {
  std::string name = "file0";  // `source` label of every metric, and the name in logs
  uint16_t id = 0;             // RawMessage::source_id
  std::string tenant;
  Format format = Format::kAuto;
  std::vector<std::string> paths;  // replayed in this order
  Pace pace = Pace::kFast;
  // Event-time pacing only: 2.0 replays twice as fast as the events happened. Must be > 0.
  double speed = 1.0;
  // Event-time pacing only, in seconds of wall time. A jump in event time from the previous
  // timed line, forwards or backwards, whose wait (after `speed`) would exceed this
  // re-anchors the replay on the new line, which is published at once. Must be > 0.
  double max_pace_wait_s = 60.0;
  // Longer lines are cut to this size and flagged truncated.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  size_t ring_capacity = 1024;  // RawMessage slots, rounded up to a power of two
  // read() size. The source reads into kFileReadBlocks blocks of this size in turn and
  // publishes each line that lies inside one read as a view of its block, so a line is
  // copied once (into the event) and at most kFileReadBlocks * read_buffer_bytes of lines
  // wait ahead of the pipeline, recent enough to still be in the CPU cache.
  size_t read_buffer_bytes = 64 * 1024;
};

// Read blocks of a FileSource (see FileSourceOptions::read_buffer_bytes).
inline constexpr size_t kFileReadBlocks = 4;

// Finds the event time of one line without a full parse, for event-time pacing. It
// recognises the RFC 5424 TIMESTAMP and the RFC 3164 "Mmm dd hh:mm:ss" stamp, each after
// an optional PRI. In JSON lines it reads "@timestamp" or "timestamp" (RFC 3339 strings,
// "+hhmm" offsets accepted) and "ts" (epoch seconds or RFC 3339). A line may also start
// with an RFC 3339 time. RFC 3164 stamps carry no year and are placed in a fixed leap
// year, so pacing across a year boundary sees time going backwards and does not wait.
// Returns UTC nanoseconds, or nullopt when no time was found. Never allocates.
std::optional<int64_t> sniffEventTime(std::string_view line);

// Counters: the shared SourceCounters; empty lines are counted as dropped{reason=empty}.
// A read() that fails (other than EINTR) is logged and counted in
// vigil_source_read_errors_total{source}, and the replay skips the rest of that file and
// goes on with the next one. The lines read before the error are published, and so is
// the part of a line that was read when the error came.
// The source never drops for a full ring: it waits for the consumer. It also waits before
// it reads into a block that messages in the ring still refer to.
//
// Memory: a line that lies inside one read() is published as a view of the read block
// (RawMessage::external). A line that spans two reads, and the last line of a file
// without LF, are assembled by the framer and copied into the slot's own buffer. Every
// message of one read carries the same receive stamp, taken after the read (with
// event-time pacing, the time the line was published).
//
// Pacing: the first line with an event time anchors the replay. A later line with event
// time T is published no earlier than anchor_wall + (T - anchor_event) / speed. Lines
// without an event time, and lines whose time lies in the past, are published at once.
// A jump from the previous timed line larger than max_pace_wait_s (after speed), such as a
// line stamped years ahead, re-anchors the replay on that line. Each re-anchor is logged
// and counted in vigil_source_pace_jumps_total.
//
// Threads: start() and stop() from one control thread; the replay thread is the ring's
// only producer.
class FileSource final : public Source {
 public:
  // Validates `options` and allocates the ring. Every path must be a readable regular
  // file. Returns nullptr with `error` naming the bad value. `metrics` and `clock` must
  // outlive the source.
  static std::unique_ptr<FileSource> create(FileSourceOptions options, MetricsRegistry& metrics,
                                            std::string& error,
                                            Clock& clock = RealClock::instance());
  ~FileSource() override;

  // Opens every file, then starts the replay thread. Fails with the path and the errno
  // text when a file cannot be opened, with the path and its type when it is no longer a
  // regular file, or when the source already ran. A FIFO fails at once instead of making
  // open() wait for a writer.
  bool start(std::string& error) override;
  // Stops the replay early if it is still running and closes the files.
  void stop() override;
  bool finished() const override { return finished_.load(std::memory_order_acquire); }

  const std::string& name() const override { return options_.name; }
  uint16_t id() const override { return options_.id; }
  Format format() const override { return options_.format; }
  const std::string& tenant() const override { return options_.tenant; }
  RawRing& ring() override { return *ring_; }

  const SourceCounters& counters() const { return counters_; }

 private:
  FileSource(FileSourceOptions options, MetricsRegistry& metrics, Clock& clock);

  void run();
  bool replayFile(size_t index);
  bool handle(FrameStatus status, const Frame& frame);
  bool publishLine(const Frame& frame);
  char* nextBlock();
  void flushCounters();
  bool waitForEventTime(std::string_view line);
  bool sleepUntil(int64_t deadline_ns);
  void closeFiles();

  FileSourceOptions options_;
  Clock& clock_;
  SourceCounters counters_;
  std::unique_ptr<RawRing> ring_;
  Framer framer_;
  std::array<std::unique_ptr<char[]>, kFileReadBlocks> blocks_;
  // Per block: the ring's push count after the last message that refers to the block.
  // The block may be read into again once the consumer has popped that many.
  std::array<size_t, kFileReadBlocks> block_release_{};
  size_t block_ = kFileReadBlocks - 1;  // the block of the last read
  std::string_view block_data_;         // the bytes of the last read
  size_t pushed_ = 0;                   // messages published to the ring
  int64_t read_ns_ = 0;                 // receive stamp of the last read
  // Published but not yet added to counters_ (see flushCounters()).
  struct Pending {
    uint64_t received = 0;
    uint64_t bytes = 0;
    uint64_t truncated = 0;
  } pending_;

  std::vector<int> fds_;
  std::optional<int64_t> anchor_event_ns_;  // event time of the line pacing is anchored on
  int64_t anchor_monotonic_ns_ = 0;
  int64_t previous_event_ns_ = 0;  // event time of the last timed line
  Counter* pace_jumps_ = nullptr;   // vigil_source_pace_jumps_total
  Counter* read_errors_ = nullptr;  // vigil_source_read_errors_total
  bool started_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace vigil::dataplane
