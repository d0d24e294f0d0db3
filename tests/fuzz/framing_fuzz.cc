// Fuzzes the stream framer over arbitrary bytes in every mode. The first input byte picks
// the options (mode, NUL terminator, CR stripping, a small max_message_bytes so truncation
// is reached) and the second the chunk size. The target checks that each message fits
// max_message_bytes, and that feeding the stream in chunks gives exactly the messages of
// feeding it whole. A violation aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/framing.h"

namespace {

using vigil::dataplane::FeedResult;
using vigil::dataplane::Frame;
using vigil::dataplane::Framer;
using vigil::dataplane::FrameStatus;
using vigil::dataplane::FramingMode;
using vigil::dataplane::FramingOptions;

struct Outcome {
  std::vector<std::string> frames;
  std::vector<bool> truncated;
  size_t empty = 0;
  bool error = false;

  bool operator==(const Outcome&) const = default;
};

void check(bool condition) {
  if (!condition) std::abort();
}

void record(Outcome& out, FrameStatus status, const Frame& frame, size_t max_bytes) {
  if (status == FrameStatus::kFrame) {
    check(frame.data.size() <= max_bytes);
    out.frames.emplace_back(frame.data);
    out.truncated.push_back(frame.truncated);
  } else if (status == FrameStatus::kEmpty) {
    ++out.empty;
  } else if (status == FrameStatus::kError) {
    out.error = true;
  }
}

Outcome run(const FramingOptions& options, std::string_view stream, size_t chunk) {
  Framer framer(options);
  Outcome out;
  for (size_t pos = 0; pos < stream.size() && !out.error; pos += chunk) {
    std::string_view piece = stream.substr(pos, chunk);
    while (!piece.empty()) {
      Frame frame;
      FeedResult r = framer.feed(piece, frame);
      check(r.consumed <= piece.size());
      record(out, r.status, frame, options.max_message_bytes);
      if (r.status == FrameStatus::kError) break;
      // Progress: a call that consumes nothing must have returned a result.
      check(r.consumed > 0 || r.status != FrameStatus::kNeedMore);
      piece.remove_prefix(r.consumed);
    }
  }
  if (!out.error) {
    Frame frame;
    record(out, framer.finish(frame), frame, options.max_message_bytes);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t config = data[0];
  FramingOptions options;
  static constexpr FramingMode kModes[] = {FramingMode::kAuto, FramingMode::kOctetCounting,
                                           FramingMode::kLf, FramingMode::kAuto};
  options.mode = kModes[config & 3];
  options.nul_terminates = (config & 4) != 0;
  options.strip_cr = (config & 8) == 0;
  options.max_message_bytes = 16 + (config >> 4) * 8;
  options.max_octet_count = options.max_message_bytes * 4;
  const size_t chunk = 1 + data[1] % 64;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  Outcome whole = run(options, stream, stream.size() + 1);
  Outcome pieces = run(options, stream, chunk);
  check(whole == pieces);
  return 0;
}
