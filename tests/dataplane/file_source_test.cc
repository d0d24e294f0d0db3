#include "dataplane/file_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/time.h"

namespace vigil::dataplane {
namespace {

namespace fs = std::filesystem;

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vigil_file_source_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string writeFile(const std::string& name, const std::string& content) {
    fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  // Pops messages until the source is finished and the ring is empty, or 10 s pass.
  // `pause_every` > 0 sleeps 1 ms after every that many messages (a slow consumer).
  std::vector<std::string> drain(FileSource& source, size_t pause_every = 0) {
    std::vector<std::string> out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (RawMessage* m = source.ring().front()) {
        out.emplace_back(m->view());
        truncated_.push_back(m->truncated);
        source.ring().pop();
        if (pause_every > 0 && out.size() % pause_every == 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      } else if (source.finished()) {
        if (source.ring().front() == nullptr) break;
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
    return out;
  }

  fs::path dir_;
  MetricsRegistry metrics_;
  std::vector<bool> truncated_;
};

// Several files replay in order; CR is stripped, empty lines are counted, and the last
// line without LF is kept.
TEST_F(FileSourceTest, ReplaysFilesInOrder) {
  FileSourceOptions options;
  options.paths = {writeFile("a.log", "<1>a1\r\n\n<1>a2\n"), writeFile("b.log", "<1>b1\n<1>b2")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source);
  source->stop();

  EXPECT_EQ(got, (std::vector<std::string>{"<1>a1", "<1>a2", "<1>b1", "<1>b2"}));
  EXPECT_TRUE(source->finished());
  EXPECT_EQ(source->counters().received->value(), 4u);
  EXPECT_EQ(source->counters().dropped_empty->value(), 1u);
  EXPECT_EQ(source->counters().bytes->value(), 20u);
}

// A missing file is rejected when the source is created, with the path and errno text.
TEST_F(FileSourceTest, MissingFileRejectedAtCreate) {
  FileSourceOptions options;
  options.paths = {writeFile("ok.log", "<1>x\n"), (dir_ / "missing.log").string()};
  std::string error;
  EXPECT_EQ(FileSource::create(options, metrics_, error), nullptr);
  EXPECT_NE(error.find("missing.log"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

// A folder in paths is rejected with a hint to list files.
TEST_F(FileSourceTest, FolderRejectedAtCreate) {
  FileSourceOptions options;
  options.paths = {dir_.string()};
  std::string error;
  EXPECT_EQ(FileSource::create(options, metrics_, error), nullptr);
  EXPECT_NE(error.find("is a folder"), std::string::npos) << error;
}

// A FIFO in paths is rejected at create(), because open() on it would wait for a writer.
TEST_F(FileSourceTest, FifoRejectedAtCreate) {
  const std::string fifo = (dir_ / "events.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  FileSourceOptions options;
  options.paths = {fifo};
  std::string error;
  EXPECT_EQ(FileSource::create(options, metrics_, error), nullptr);
  EXPECT_NE(error.find(fifo + " is not a regular file (a FIFO)"), std::string::npos) << error;
  EXPECT_NE(error.find("list regular files to replay in paths"), std::string::npos) << error;
}

// A file replaced by a FIFO between create() and start() fails start() at once instead of
// blocking in open().
TEST_F(FileSourceTest, FifoBeforeStartFailsStart) {
  FileSourceOptions options;
  options.paths = {writeFile("swap.log", "<1>x\n")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  fs::remove(options.paths[0]);
  ASSERT_EQ(::mkfifo(options.paths[0].c_str(), 0600), 0) << std::strerror(errno);

  std::promise<bool> started;
  std::future<bool> result = started.get_future();
  std::thread starter([&] { started.set_value(source->start(error)); });
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    // A writer releases the open() that waits, so the test ends instead of hanging.
    int writer = ::open(options.paths[0].c_str(), O_WRONLY | O_NONBLOCK);
    starter.join();
    if (writer >= 0) ::close(writer);
    FAIL() << "start() blocked on a FIFO for 5 s";
  }
  starter.join();
  EXPECT_FALSE(result.get());
  EXPECT_NE(error.find("swap.log is not a regular file (a FIFO)"), std::string::npos) << error;
  EXPECT_FALSE(source->finished());
}

// A file removed between create() and start() fails start() with the path.
TEST_F(FileSourceTest, FileRemovedBeforeStartFailsStart) {
  FileSourceOptions options;
  options.paths = {writeFile("ok.log", "<1>x\n"), writeFile("gone.log", "<1>y\n")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  fs::remove(dir_ / "gone.log");
  EXPECT_FALSE(source->start(error));
  EXPECT_NE(error.find("gone.log"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  EXPECT_FALSE(source->finished());
}

// A read error skips the rest of that file, is counted in vigil_source_read_errors_total
// and the replay goes on with the next file. Reading /proc/self/mem at offset 0 fails with
// EIO, because that page is not mapped.
TEST_F(FileSourceTest, ReadErrorCounted) {
  FileSourceOptions options;
  options.name = "replay";
  options.paths = {"/proc/self/mem", writeFile("after.log", "<1>after\n")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source);
  source->stop();

  EXPECT_EQ(got, (std::vector<std::string>{"<1>after"}));
  EXPECT_TRUE(source->finished());
  EXPECT_EQ(metrics_.sum("vigil_source_read_errors_total", {{"source", "replay"}}), 1u);
  EXPECT_NE(metrics_.renderPrometheus().find("vigil_source_read_errors_total{source=\"replay\"} 1"),
            std::string::npos);
}

// Invalid options are rejected with the bad value named.
TEST_F(FileSourceTest, InvalidOptionsRejected) {
  std::string error;
  FileSourceOptions no_paths;
  EXPECT_EQ(FileSource::create(no_paths, metrics_, error), nullptr);
  EXPECT_NE(error.find("no files"), std::string::npos) << error;

  FileSourceOptions bad_speed;
  bad_speed.paths = {"x.log"};
  bad_speed.speed = 0;
  EXPECT_EQ(FileSource::create(bad_speed, metrics_, error), nullptr);
  EXPECT_NE(error.find("speed=0"), std::string::npos) << error;

  FileSourceOptions bad_ring;
  bad_ring.paths = {"x.log"};
  bad_ring.ring_capacity = 0;
  EXPECT_EQ(FileSource::create(bad_ring, metrics_, error), nullptr);
  EXPECT_NE(error.find("ring_capacity=0"), std::string::npos) << error;
}

// With a small ring and a slow consumer, the source waits and loses nothing.
TEST_F(FileSourceTest, FullRingWaitsNeverDrops) {
  std::string content;
  constexpr int kLines = 500;
  for (int i = 0; i < kLines; ++i) content += "<1>line " + std::to_string(i) + "\n";
  FileSourceOptions options;
  options.paths = {writeFile("many.log", content)};
  options.ring_capacity = 4;
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source, 50);
  source->stop();

  ASSERT_EQ(got.size(), static_cast<size_t>(kLines));
  for (int i = 0; i < kLines; ++i) EXPECT_EQ(got[i], "<1>line " + std::to_string(i));
  EXPECT_EQ(source->counters().dropped_queue_full->value(), 0u);
}

// Lines are views of the read blocks, and lines that span two reads are copied. With
// 4 KiB reads, many lines of varied length cross a block edge; every line must arrive
// intact and in order, through a small ring and a slow consumer.
TEST_F(FileSourceTest, LinesAcrossReadBlocksArriveIntact) {
  std::string content;
  std::vector<std::string> want;
  for (int i = 0; i < 3000; ++i) {
    std::string line = "<13>line " + std::to_string(i) + " " + std::string(i % 97, 'a' + i % 26);
    want.push_back(line);
    content += line + (i % 5 == 0 ? "\r\n" : "\n");
  }
  FileSourceOptions options;
  options.paths = {writeFile("blocks.log", content)};
  options.read_buffer_bytes = 4096;
  options.ring_capacity = 16;
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source, 700);
  source->stop();

  EXPECT_EQ(got, want);
  EXPECT_EQ(source->counters().received->value(), want.size());
}

// A consumer that holds the messages without popping them keeps the read blocks they
// point into: the source stops at kFileReadBlocks blocks of lines instead of reading
// over them, even though the ring has room for more.
TEST_F(FileSourceTest, SourceWaitsForBlocksStillReferenced) {
  std::string content;
  constexpr int kLines = 2000;
  for (int i = 0; i < kLines; ++i) {
    std::string line = "<13>held " + std::to_string(i);
    content += line + std::string(90 - line.size(), '.') + "\n";  // 91 bytes a line
  }
  FileSourceOptions options;
  options.paths = {writeFile("held.log", content)};
  options.read_buffer_bytes = 4096;
  options.ring_capacity = 4096;
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // At most the lines of kFileReadBlocks reads, plus the one line that ends in the next.
  const size_t max_held = kFileReadBlocks * 4096 / 91 + 1;
  EXPECT_LE(source->ring().size(), max_held);
  EXPECT_GE(source->ring().size(), (kFileReadBlocks - 1) * 4096 / 91);
  EXPECT_FALSE(source->finished());
  RawMessage* first = source->ring().front();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->view().substr(0, 11), "<13>held 0.");

  std::vector<std::string> got = drain(*source);
  source->stop();
  ASSERT_EQ(got.size(), static_cast<size_t>(kLines));
  for (int i = 0; i < kLines; ++i) {
    EXPECT_EQ(got[i].substr(0, got[i].find('.')), "<13>held " + std::to_string(i));
  }
}

// Lines longer than max_message_bytes are cut and flagged.
TEST_F(FileSourceTest, LongLineTruncated) {
  FileSourceOptions options;
  options.max_message_bytes = 32;
  options.paths = {writeFile("long.log", std::string(100, 'q') + "\n<1>short\n")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source);
  source->stop();

  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::string(32, 'q'));
  EXPECT_TRUE(truncated_[0]);
  EXPECT_EQ(got[1], "<1>short");
  EXPECT_FALSE(truncated_[1]);
  EXPECT_EQ(source->counters().truncated->value(), 1u);
}

// Event-time pacing keeps the gaps divided by the speed factor: 3 s of events at speed 5
// take at least 0.6 s, and the order is kept.
TEST_F(FileSourceTest, PacedReplayHonoursGaps) {
  FileSourceOptions options;
  options.pace = Pace::kEventTime;
  options.speed = 5.0;
  options.paths = {
      writeFile("p1.log",
                "<14>1 2024-05-01T10:00:00Z h a - - - first\n"
                "<14>1 2024-05-01T10:00:01.500Z h a - - - second\n"),
      writeFile("p2.log", "no timestamp here\n<14>1 2024-05-01T10:00:03Z h a - - - third\n")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source);
  auto elapsed = std::chrono::steady_clock::now() - begin;
  source->stop();

  ASSERT_EQ(got.size(), 4u);
  EXPECT_NE(got[0].find("first"), std::string::npos);
  EXPECT_NE(got[1].find("second"), std::string::npos);
  EXPECT_EQ(got[2], "no timestamp here");
  EXPECT_NE(got[3].find("third"), std::string::npos);
  EXPECT_GE(elapsed, std::chrono::milliseconds(600));
}

// A line stamped ten years ahead re-anchors the replay instead of stalling it, and so
// does the jump back; both jumps are counted and every line is published.
TEST_F(FileSourceTest, PacedReplayReanchorsOnTimeJump) {
  FileSourceOptions options;
  options.pace = Pace::kEventTime;
  options.paths = {writeFile("jump.log",
                             "<14>1 2024-05-01T10:00:00Z h a - - - first\n"
                             "<14>1 2034-05-01T10:00:00Z h a - - - future\n"
                             "<14>1 2024-05-01T10:00:00.010Z h a - - - back\n")};
  std::string error;
  auto source = FileSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  ASSERT_TRUE(source->start(error)) << error;
  std::vector<std::string> got = drain(*source);
  const bool finished = source->finished();
  source->stop();

  EXPECT_TRUE(finished);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NE(got[1].find("future"), std::string::npos);
  EXPECT_NE(got[2].find("back"), std::string::npos);
  EXPECT_EQ(metrics_.counter("vigil_source_pace_jumps_total", "", {{"source", "file0"}}).value(),
            2u);
}

// A non-positive or infinite max_pace_wait_s is rejected with the value named.
TEST_F(FileSourceTest, InvalidMaxPaceWaitRejected) {
  FileSourceOptions options;
  options.paths = {writeFile("a.log", "<1>x\n")};
  options.max_pace_wait_s = 0;
  std::string error;
  EXPECT_EQ(FileSource::create(options, metrics_, error), nullptr);
  EXPECT_NE(error.find("max_pace_wait_s=0"), std::string::npos) << error;
}

// The sniffer finds the event time in each supported layout.
TEST(SniffEventTimeTest, KnownLayouts) {
  const int64_t t = *parseRfc3339("2024-05-01T10:00:00Z");
  EXPECT_EQ(sniffEventTime("<14>1 2024-05-01T10:00:00Z host app - - - msg"), t);
  EXPECT_EQ(sniffEventTime("{\"@timestamp\": \"2024-05-01T10:00:00Z\", \"a\": 1}"), t);
  EXPECT_EQ(sniffEventTime("{\"timestamp\":\"2024-05-01T12:00:00.000000+0200\"}"), t);
  EXPECT_EQ(sniffEventTime("{\"ts\":1714557600.25,\"uid\":\"C1\"}"), t + 250'000'000);
  EXPECT_EQ(sniffEventTime("2024-05-01T10:00:00Z host message"), t);
  EXPECT_EQ(sniffEventTime("2024-05-01 10:00:00 host message"), t);

  // RFC 3164 has no year: only differences matter.
  auto a = sniffEventTime("<34>Oct 11 22:14:15 host su: x");
  auto b = sniffEventTime("Oct 11 22:14:20 host su: x");
  auto c = sniffEventTime("<34> Nov  1 00:00:00 host su: x");
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(*b - *a, 5 * kNanosPerSecond);
  EXPECT_GT(*c, *b);
}

// Lines without a recognisable time give nullopt.
TEST(SniffEventTimeTest, NoTime) {
  EXPECT_FALSE(sniffEventTime(""));
  EXPECT_FALSE(sniffEventTime("hello world"));
  EXPECT_FALSE(sniffEventTime("<14>1 - host app - - - nil timestamp"));
  EXPECT_FALSE(sniffEventTime("<34>Foo 11 22:14:15 host"));
  EXPECT_FALSE(sniffEventTime("{\"msg\":\"x\"}"));
}

}  // namespace
}  // namespace vigil::dataplane
