#include "dataplane/framing.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace vigil::dataplane {
namespace {

struct Collected {
  std::vector<std::string> frames;
  std::vector<bool> truncated;
  size_t empty = 0;
  size_t errors = 0;
};

// Feeds `chunks` in order, then ends the stream.
Collected feedAll(Framer& framer, const std::vector<std::string>& chunks) {
  Collected out;
  auto take = [&](FrameStatus status, const Frame& frame) {
    if (status == FrameStatus::kFrame) {
      out.frames.emplace_back(frame.data);
      out.truncated.push_back(frame.truncated);
    } else if (status == FrameStatus::kEmpty) {
      ++out.empty;
    } else if (status == FrameStatus::kError) {
      ++out.errors;
    }
  };
  for (const std::string& chunk : chunks) {
    std::string_view rest = chunk;
    while (!rest.empty()) {
      Frame frame;
      FeedResult r = framer.feed(rest, frame);
      take(r.status, frame);
      if (r.status == FrameStatus::kError) return out;
      rest.remove_prefix(r.consumed);
    }
  }
  Frame frame;
  take(framer.finish(frame), frame);
  return out;
}

std::vector<std::string> splitEvery(const std::string& bytes, size_t size) {
  std::vector<std::string> chunks;
  for (size_t i = 0; i < bytes.size(); i += size) chunks.push_back(bytes.substr(i, size));
  return chunks;
}

std::vector<std::string> splitRandom(const std::string& bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(1, 40);
  std::vector<std::string> chunks;
  for (size_t i = 0; i < bytes.size();) {
    size_t n = size(rng);
    chunks.push_back(bytes.substr(i, n));
    i += n;
  }
  return chunks;
}

std::string readOctetSample() {
  std::ifstream in(VIGIL_SHARED_DIR "/corpus/edge/br06-rfc6587-octet-counting.bin",
                   std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void expectOctetSample(const Collected& got) {
  ASSERT_EQ(got.frames.size(), 4u);
  EXPECT_EQ(got.frames[0].size(), 43u);
  EXPECT_EQ(got.frames[1].size(), 111u);
  EXPECT_EQ(got.frames[2].size(), 95u);
  EXPECT_EQ(got.frames[3].size(), 71u);
  EXPECT_EQ(got.frames[0], "<6>Sep 10 00:00:00 localhost logger: hello!");
  EXPECT_NE(got.frames[1].find("first line\n  second line"), std::string::npos);
  EXPECT_EQ(got.frames[3].substr(got.frames[3].size() - 4), "last");
  EXPECT_EQ(got.errors, 0u);
  for (bool t : got.truncated) EXPECT_FALSE(t);
}

// The RFC 6587 sample stream fed in one piece gives exactly its 4 messages.
TEST(FramerTest, OctetSampleWhole) {
  std::string bytes = readOctetSample();
  ASSERT_EQ(bytes.size(), 333u);
  Framer framer(FramingOptions{});
  expectOctetSample(feedAll(framer, {bytes}));
  EXPECT_EQ(framer.mode(), FramingMode::kAuto);  // reset by finish()
}

// The sample stream fed one byte at a time gives the same 4 messages.
TEST(FramerTest, OctetSampleByteChunks) {
  Framer framer(FramingOptions{});
  expectOctetSample(feedAll(framer, splitEvery(readOctetSample(), 1)));
}

// The sample stream cut at random points, for 20 seeds, gives the same 4 messages.
TEST(FramerTest, OctetSampleRandomChunks) {
  std::string bytes = readOctetSample();
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    Framer framer(FramingOptions{});
    expectOctetSample(feedAll(framer, splitRandom(bytes, seed)));
  }
}

// "LEN SP <" picks octet counting, anything else LF, and the mode stays kAuto until the
// first bytes decide.
TEST(FramerTest, AutoDetectsMode) {
  Framer octet(FramingOptions{});
  Frame frame;
  octet.feed("5 <1>a", frame);
  EXPECT_EQ(octet.mode(), FramingMode::kOctetCounting);
  Framer lf(FramingOptions{});
  lf.feed("<13>hello\n", frame);
  EXPECT_EQ(lf.mode(), FramingMode::kLf);
  Framer undecided(FramingOptions{});
  EXPECT_EQ(undecided.feed("12 ", frame).consumed, 3u);
  EXPECT_EQ(undecided.mode(), FramingMode::kAuto);
  undecided.feed("<", frame);
  EXPECT_EQ(undecided.mode(), FramingMode::kOctetCounting);
}

// LF lines that start with digits (an epoch time, an RFC 3339 date) stay LF framed under
// auto, whole or fed one byte at a time.
TEST(FramerTest, AutoLfLinesStartingWithDigits) {
  const std::vector<std::string> lines = {
      "1700000000 fw1.example.com CEF:0|Vendor|FW|1.0|100|Blocked|5|src=10.0.0.1",
      "2024-01-01T00:00:00Z host app: started",
  };
  for (const std::string& line : lines) {
    const std::string input = line + "\n" + line + "\n";
    for (size_t chunk : {input.size(), size_t{1}, size_t{3}}) {
      SCOPED_TRACE(line + " chunk " + std::to_string(chunk));
      Framer framer(FramingOptions{});
      Collected got = feedAll(framer, splitEvery(input, chunk));
      EXPECT_EQ(got.errors, 0u);
      ASSERT_EQ(got.frames.size(), 2u);
      EXPECT_EQ(got.frames[0], line);
      EXPECT_EQ(got.frames[1], line);
    }
  }
}

// Prefixes that are not a valid "LEN SP <" select LF framing under auto: a leading zero,
// 10 digits, a count over max_octet_count, two spaces, no '<' after the space.
TEST(FramerTest, AutoNearMissesAreLf) {
  FramingOptions options;
  options.max_octet_count = 1000;
  for (const std::string line : {"05 <1>a", "1234567890 <1>a", "2000 <1>a", "5  <1>a",
                                 "5 hello", "12"}) {
    SCOPED_TRACE(line);
    Framer framer(options);
    Collected got = feedAll(framer, splitEvery(line + "\n", 1));
    EXPECT_EQ(got.errors, 0u);
    ASSERT_EQ(got.frames.size(), 1u);
    EXPECT_EQ(got.frames[0], line);
  }
}

// A stream that ends before its first bytes decide is one unterminated LF line.
TEST(FramerTest, AutoUndecidedAtEndIsLine) {
  Framer framer(FramingOptions{});
  Frame frame;
  EXPECT_EQ(framer.feed("42 ", frame).status, FrameStatus::kNeedMore);
  ASSERT_EQ(framer.finish(frame), FrameStatus::kFrame);
  EXPECT_EQ(frame.data, "42 ");
  EXPECT_FALSE(frame.truncated);
}

// LF framing strips one CR, reports empty lines and emits an unterminated last line.
TEST(FramerTest, LfLines) {
  Framer framer(FramingOptions{});
  Collected got = feedAll(framer, {"<1>a\r\n<1>b\n\n\r\n<1>c"});
  ASSERT_EQ(got.frames.size(), 3u);
  EXPECT_EQ(got.frames[0], "<1>a");
  EXPECT_EQ(got.frames[1], "<1>b");
  EXPECT_EQ(got.frames[2], "<1>c");
  EXPECT_EQ(got.empty, 2u);
}

// A CR split from its LF across feeds is still stripped.
TEST(FramerTest, LfCrSplitAcrossFeeds) {
  Framer framer(FramingOptions{});
  Collected got = feedAll(framer, {"<1>a\r", "\n<1>b\r", "\n"});
  ASSERT_EQ(got.frames.size(), 2u);
  EXPECT_EQ(got.frames[0], "<1>a");
  EXPECT_EQ(got.frames[1], "<1>b");
}

// NUL ends a message only when nul_terminates is set.
TEST(FramerTest, NulTerminator) {
  const std::string input("<1>a\0<1>b\n", 10);
  FramingOptions with_nul;
  with_nul.nul_terminates = true;
  Framer framer(with_nul);
  Collected got = feedAll(framer, {input});
  ASSERT_EQ(got.frames.size(), 2u);
  EXPECT_EQ(got.frames[0], "<1>a");
  EXPECT_EQ(got.frames[1], "<1>b");

  Framer plain(FramingOptions{});
  Collected kept = feedAll(plain, {input});
  ASSERT_EQ(kept.frames.size(), 1u);
  EXPECT_EQ(kept.frames[0], std::string("<1>a\0<1>b", 9));
}

// An oversize LF line is cut to the max and flagged; the next line is intact, whether the
// input arrives whole or in pieces.
TEST(FramerTest, LfOversizeTruncated) {
  FramingOptions options;
  options.max_message_bytes = 16;
  const std::string input = "<1>" + std::string(30, 'x') + "\n<1>next\n";
  for (size_t chunk : {input.size(), size_t{1}, size_t{7}}) {
    SCOPED_TRACE(chunk);
    Framer framer(options);
    Collected got = feedAll(framer, splitEvery(input, chunk));
    ASSERT_EQ(got.frames.size(), 2u);
    EXPECT_EQ(got.frames[0], "<1>" + std::string(13, 'x'));
    EXPECT_TRUE(got.truncated[0]);
    EXPECT_EQ(got.frames[1], "<1>next");
    EXPECT_FALSE(got.truncated[1]);
  }
}

// A line of exactly the max followed by CRLF is not truncated.
TEST(FramerTest, LfExactMaxWithCrNotTruncated) {
  FramingOptions options;
  options.max_message_bytes = 16;
  const std::string line(16, 'y');
  for (size_t chunk : {size_t{100}, size_t{1}, size_t{5}}) {
    SCOPED_TRACE(chunk);
    Framer framer(options);
    Collected got = feedAll(framer, splitEvery(line + "\r\n" + line + "\r\n", chunk));
    ASSERT_EQ(got.frames.size(), 2u);
    EXPECT_EQ(got.frames[0], line);
    EXPECT_FALSE(got.truncated[0]);
    EXPECT_FALSE(got.truncated[1]);
  }
}

// An oversize octet-counted frame is cut and flagged, its rest discarded, and the next
// frame is intact.
TEST(FramerTest, OctetOversizeTruncated) {
  FramingOptions options;
  options.max_message_bytes = 16;
  const std::string input = "30 <1>" + std::string(27, 'z') + "7 <1>next";
  for (size_t chunk : {input.size(), size_t{1}, size_t{4}}) {
    SCOPED_TRACE(chunk);
    Framer framer(options);
    Collected got = feedAll(framer, splitEvery(input, chunk));
    ASSERT_EQ(got.frames.size(), 2u);
    EXPECT_EQ(got.frames[0], "<1>" + std::string(13, 'z'));
    EXPECT_TRUE(got.truncated[0]);
    EXPECT_EQ(got.frames[1], "<1>next");
    EXPECT_FALSE(got.truncated[1]);
    EXPECT_EQ(got.errors, 0u);
  }
}

// CR and LF between octet-counted frames are skipped, not framing errors.
TEST(FramerTest, OctetSkipsLfBetweenFrames) {
  Framer framer(FramingOptions{});
  Collected got = feedAll(framer, {"6 <1>abc\n6 <1>def\r\n"});
  ASSERT_EQ(got.frames.size(), 2u);
  EXPECT_EQ(got.frames[0], "<1>abc");
  EXPECT_EQ(got.frames[1], "<1>def");
  EXPECT_EQ(got.errors, 0u);
}

// Each kind of invalid octet count is reported with the bytes of the bad count, and the
// framer stays failed.
TEST(FramerTest, InvalidOctetCounts) {
  struct Case {
    std::string input;
    size_t max_octet_count;
    FramingError error;
    size_t error_bytes;  // the bad count up to and including the byte that failed it
  };
  const std::vector<Case> cases = {
      {"12a hello", 1000, FramingError::kNonDigitInLength, 3},
      {"1234567890 x", 999999999, FramingError::kLengthTooLong, 10},
      {"0 x", 1000, FramingError::kLeadingZero, 1},
      {"05 hello", 1000, FramingError::kLeadingZero, 1},
      {"2000 x", 1000, FramingError::kLengthOverLimit, 4},
      {"3 abc<1>x\n", 1000, FramingError::kNonDigitInLength, 1},
      {" 5 hello", 1000, FramingError::kNonDigitInLength, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    FramingOptions options;
    options.mode = FramingMode::kOctetCounting;
    options.max_message_bytes = 100;
    options.max_octet_count = c.max_octet_count;
    Framer framer(options);
    Collected got = feedAll(framer, {c.input});
    EXPECT_EQ(got.errors, 1u);
    EXPECT_EQ(framer.error(), c.error);
    EXPECT_EQ(framer.errorBytes(), c.error_bytes);
    Frame frame;
    FeedResult again = framer.feed("5 hello", frame);
    EXPECT_EQ(again.status, FrameStatus::kError);
    EXPECT_EQ(again.consumed, 0u);
  }
}

// Forced octet counting rejects a stream that starts with a space.
TEST(FramerTest, ForcedOctetRejectsSpace) {
  FramingOptions options;
  options.mode = FramingMode::kOctetCounting;
  Framer framer(options);
  Frame frame;
  EXPECT_EQ(framer.feed(" 5 hello", frame).status, FrameStatus::kError);
  EXPECT_EQ(framer.error(), FramingError::kNonDigitInLength);
}

// The stream ending inside LEN is an error; ending inside MSG emits a truncated message.
TEST(FramerTest, OctetStreamEnds) {
  FramingOptions forced;
  forced.mode = FramingMode::kOctetCounting;
  Framer in_length(forced);
  Frame frame;
  EXPECT_EQ(in_length.feed("12", frame).status, FrameStatus::kNeedMore);
  EXPECT_EQ(in_length.finish(frame), FrameStatus::kError);
  EXPECT_EQ(in_length.error(), FramingError::kIncompleteFrame);
  EXPECT_EQ(in_length.errorBytes(), 2u);

  Framer second_length(FramingOptions{});
  EXPECT_EQ(second_length.feed("4 <1>a", frame).status, FrameStatus::kFrame);
  EXPECT_EQ(second_length.feed("12", frame).status, FrameStatus::kNeedMore);
  EXPECT_EQ(second_length.finish(frame), FrameStatus::kError);
  EXPECT_EQ(second_length.error(), FramingError::kIncompleteFrame);

  Framer in_body(FramingOptions{});
  EXPECT_EQ(in_body.feed("10 <1>ab", frame).status, FrameStatus::kNeedMore);
  ASSERT_EQ(in_body.finish(frame), FrameStatus::kFrame);
  EXPECT_EQ(frame.data, "<1>ab");
  EXPECT_TRUE(frame.truncated);
}

// A message inside one feed is returned as a view of the input, without a copy.
TEST(FramerTest, WholeFrameIsZeroCopy) {
  const std::string input = "5 <1>hi";
  Framer framer(FramingOptions{});
  Frame frame;
  FeedResult r = framer.feed(input, frame);
  ASSERT_EQ(r.status, FrameStatus::kFrame);
  EXPECT_EQ(r.consumed, input.size());
  EXPECT_EQ(frame.data.data(), input.data() + 2);
}

}  // namespace
}  // namespace vigil::dataplane
