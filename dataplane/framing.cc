#include "dataplane/framing.h"

#include <algorithm>
#include <cstring>

namespace vigil::dataplane {
namespace {

constexpr unsigned kMaxLengthDigits = 9;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Position of the first terminator in `input`, or npos.
size_t findTerminator(std::string_view input, bool nul_terminates) {
  const void* lf = std::memchr(input.data(), '\n', input.size());
  size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - input.data())
                  : std::string_view::npos;
  if (nul_terminates) {
    size_t limit = std::min(end, input.size());
    const void* nul = std::memchr(input.data(), '\0', limit);
    if (nul) end = static_cast<size_t>(static_cast<const char*>(nul) - input.data());
  }
  return end;
}

}  // namespace

std::string_view framingModeName(FramingMode mode) {
  switch (mode) {
    case FramingMode::kAuto:
      return "auto";
    case FramingMode::kOctetCounting:
      return "octet_counting";
    case FramingMode::kLf:
      return "lf";
  }
  return "unknown";
}

std::string_view framingErrorText(FramingError error) {
  switch (error) {
    case FramingError::kNone:
      return "no error";
    case FramingError::kNonDigitInLength:
      return "non-digit in octet count";
    case FramingError::kLengthTooLong:
      return "octet count has more than 9 digits";
    case FramingError::kLeadingZero:
      return "octet count is zero or has a leading zero";
    case FramingError::kLengthOverLimit:
      return "octet count exceeds the hard limit";
    case FramingError::kIncompleteFrame:
      return "stream ended inside an octet count or before the first MSG byte";
  }
  return "unknown framing error";
}

Framer::Framer(const FramingOptions& options)
    : options_(options),
      mode_(options.mode),
      pending_(std::make_unique<char[]>(std::max<size_t>(options.max_message_bytes, 1))) {}

void Framer::reset() {
  mode_ = options_.mode;
  state_ = State::kStart;
  error_ = FramingError::kNone;
  pending_len_ = 0;
  discarded_ = 0;
  last_discarded_cr_ = false;
  length_ = 0;
  length_digits_ = 0;
  remaining_ = 0;
  error_bytes_ = 0;
  probe_len_ = 0;
  probe_length_ = 0;
  probe_digits_ = 0;
  probe_space_ = false;
}

FeedResult Framer::feed(std::string_view input, Frame& frame) {
  if (state_ == State::kError) return {FrameStatus::kError, 0};
  if (mode_ == FramingMode::kAuto) return feedAuto(input, frame);
  return feedDetected(input, frame);
}

// Classifies one more byte of the stream's first bytes. The prefix "LEN SP" is at most
// kProbeBytes long, so the byte after it always decides.
Framer::Detect Framer::detectStep(char c) {
  if (probe_space_) return c == '<' ? Detect::kOctetCounting : Detect::kLf;
  if (c == ' ') {
    if (probe_digits_ == 0) return Detect::kLf;
    probe_space_ = true;
    return Detect::kUndecided;
  }
  if (!isDigit(c) || (probe_digits_ == 0 && c == '0') || probe_digits_ == kMaxLengthDigits) {
    return Detect::kLf;
  }
  probe_length_ = probe_length_ * 10 + static_cast<uint64_t>(c - '0');
  ++probe_digits_;
  return probe_length_ > options_.max_octet_count ? Detect::kLf : Detect::kUndecided;
}

FeedResult Framer::feedAuto(std::string_view input, Frame& frame) {
  Detect detect = Detect::kUndecided;
  size_t scanned = 0;
  for (; scanned < input.size(); ++scanned) {
    detect = detectStep(input[scanned]);
    if (detect != Detect::kUndecided) break;
  }
  if (detect == Detect::kUndecided) {
    std::memcpy(probe_ + probe_len_, input.data(), input.size());
    probe_len_ += input.size();
    return {FrameStatus::kNeedMore, input.size()};
  }
  mode_ = detect == Detect::kOctetCounting ? FramingMode::kOctetCounting : FramingMode::kLf;
  if (probe_len_ > 0) {
    // Replay the prefix kept from earlier feeds. It is digits and at most one SP, so it
    // holds no terminator and no whole frame, and the framer only buffers it.
    std::string_view kept(probe_, probe_len_);
    probe_len_ = 0;
    while (!kept.empty()) {
      Frame unused;
      FeedResult r = feedDetected(kept, unused);
      if (r.consumed == 0) break;
      kept.remove_prefix(r.consumed);
    }
  }
  return feedDetected(input, frame);
}

FeedResult Framer::feedDetected(std::string_view input, Frame& frame) {
  if (mode_ == FramingMode::kLf) return feedLine(input, frame);

  size_t pos = 0;
  if (state_ == State::kStart) {
    // Many octet-counting senders end each frame with LF anyway; skip CR and LF between
    // frames instead of calling them framing errors.
    while (pos < input.size() && (input[pos] == '\n' || input[pos] == '\r')) ++pos;
    if (pos == input.size()) return {FrameStatus::kNeedMore, pos};
    state_ = State::kLength;
    length_ = 0;
    length_digits_ = 0;
  }
  if (state_ == State::kLength) {
    FeedResult r = feedLength(input.substr(pos));
    pos += r.consumed;
    if (r.status == FrameStatus::kError || state_ != State::kBody) return {r.status, pos};
  }
  FeedResult r = feedBody(input.substr(pos), frame);
  r.consumed += pos;
  return r;
}

FeedResult Framer::fail(FramingError error, size_t consumed, size_t error_bytes) {
  error_ = error;
  error_bytes_ = error_bytes;
  state_ = State::kError;
  pending_len_ = 0;
  discarded_ = 0;
  return {FrameStatus::kError, consumed};
}

FeedResult Framer::feedLength(std::string_view input) {
  for (size_t i = 0; i < input.size(); ++i) {
    char c = input[i];
    if (c == ' ') {
      if (length_digits_ == 0) return fail(FramingError::kNonDigitInLength, i + 1, 1);
      state_ = State::kBody;
      remaining_ = length_;
      pending_len_ = 0;
      discarded_ = 0;
      return {FrameStatus::kNeedMore, i + 1};
    }
    // The bad frame's bytes: the digits of LEN so far plus this one.
    const size_t error_bytes = length_digits_ + 1;
    if (!isDigit(c)) return fail(FramingError::kNonDigitInLength, i + 1, error_bytes);
    if (length_digits_ == 0 && c == '0') {
      return fail(FramingError::kLeadingZero, i + 1, error_bytes);
    }
    if (length_digits_ == kMaxLengthDigits) {
      return fail(FramingError::kLengthTooLong, i + 1, error_bytes);
    }
    length_ = length_ * 10 + static_cast<uint64_t>(c - '0');
    ++length_digits_;
    if (length_ > options_.max_octet_count) {
      return fail(FramingError::kLengthOverLimit, i + 1, error_bytes);
    }
  }
  return {FrameStatus::kNeedMore, input.size()};
}

FeedResult Framer::feedBody(std::string_view input, Frame& frame) {
  size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size()));
  remaining_ -= take;
  if (remaining_ == 0 && pending_len_ == 0 && discarded_ == 0) {
    // The whole message is inside this input: return it without copying.
    size_t keep_len = std::min(take, options_.max_message_bytes);
    frame = Frame{input.substr(0, keep_len), take > keep_len};
    state_ = State::kStart;
    return {FrameStatus::kFrame, take};
  }
  keep(input.substr(0, take));
  if (remaining_ > 0) return {FrameStatus::kNeedMore, take};
  frame = takePending(discarded_ > 0);
  state_ = State::kStart;
  return {FrameStatus::kFrame, take};
}

FeedResult Framer::feedLine(std::string_view input, Frame& frame) {
  size_t end = findTerminator(input, options_.nul_terminates);
  if (end == std::string_view::npos) {
    keep(input);
    return {FrameStatus::kNeedMore, input.size()};
  }
  size_t consumed = end + 1;
  std::string_view body = input.substr(0, end);
  if (pending_len_ == 0 && discarded_ == 0) {
    // The whole message is inside this input: return it without copying.
    if (options_.strip_cr && !body.empty() && body.back() == '\r') body.remove_suffix(1);
    if (body.empty()) return {FrameStatus::kEmpty, consumed};
    size_t keep_len = std::min(body.size(), options_.max_message_bytes);
    frame = Frame{body.substr(0, keep_len), body.size() > keep_len};
    return {FrameStatus::kFrame, consumed};
  }
  keep(body);
  return {takeLine(frame), consumed};
}

FrameStatus Framer::takeLine(Frame& frame) {
  bool truncated = discarded_ > 0;
  if (options_.strip_cr) {
    if (discarded_ == 1 && last_discarded_cr_) {
      truncated = false;  // the only byte beyond the limit was the CR being stripped
    } else if (discarded_ == 0 && pending_len_ > 0 && pending_[pending_len_ - 1] == '\r') {
      --pending_len_;
    }
  }
  if (pending_len_ == 0 && !truncated) {
    discarded_ = 0;
    return FrameStatus::kEmpty;
  }
  frame = takePending(truncated);
  return FrameStatus::kFrame;
}

void Framer::keep(std::string_view bytes) {
  size_t room = options_.max_message_bytes - pending_len_;
  size_t n = std::min(room, bytes.size());
  if (n > 0) std::memcpy(pending_.get() + pending_len_, bytes.data(), n);
  pending_len_ += n;
  if (bytes.size() > n) {
    discarded_ += bytes.size() - n;
    last_discarded_cr_ = bytes.back() == '\r';
  }
}

Frame Framer::takePending(bool truncated) {
  Frame frame{std::string_view(pending_.get(), pending_len_), truncated};
  pending_len_ = 0;
  discarded_ = 0;
  last_discarded_cr_ = false;
  return frame;
}

FrameStatus Framer::finish(Frame& frame) {
  FrameStatus status = FrameStatus::kNeedMore;
  if (mode_ == FramingMode::kAuto && probe_len_ > 0) {
    // The stream ended before its first bytes could be octet counting: it is one
    // unterminated LF-framed line.
    mode_ = FramingMode::kLf;
    keep(std::string_view(probe_, probe_len_));
    probe_len_ = 0;
  }
  if (state_ == State::kError) {
    status = FrameStatus::kNeedMore;
  } else if (mode_ == FramingMode::kLf) {
    if (pending_len_ > 0 || discarded_ > 0) status = takeLine(frame);
  } else if (state_ == State::kLength) {
    error_ = FramingError::kIncompleteFrame;
    error_bytes_ = length_digits_;
    status = FrameStatus::kError;
  } else if (state_ == State::kBody) {
    if (pending_len_ > 0) {
      frame = takePending(true);
      status = FrameStatus::kFrame;
    } else {
      error_ = FramingError::kIncompleteFrame;
      error_bytes_ = length_digits_ + 1;  // LEN and its SP
      status = FrameStatus::kError;
    }
  }
  const FramingError error = error_;
  const size_t error_bytes = error_bytes_;
  reset();
  if (status == FrameStatus::kError) {
    error_ = error;
    error_bytes_ = error_bytes;
  }
  return status;
}

}  // namespace vigil::dataplane
