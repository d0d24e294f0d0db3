// Stream framing for syslog over TCP and for line-oriented files: bytes go in, whole
// messages come out. Two framings exist (RFC 6587):
//   octet counting  "LEN SP MSG", LEN is 1-9 decimal digits without a leading zero and
//                   counts the octets of MSG only;
//   non-transparent MSG ends at LF (and at NUL when enabled); a trailing CR is stripped.
// In auto mode the first bytes of the stream pick the framing: octet counting when they are
// a valid LEN within max_octet_count, one SP and '<' (the PRI that starts every syslog
// message), else LF framing. So LF lines that start with a digit, such as an epoch time
// or an RFC 3339 date, stay LF framed. The choice then holds for the whole stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace vigil::dataplane {

enum class FramingMode : uint8_t { kAuto, kOctetCounting, kLf };

// Returns "auto", "octet_counting" or "lf".
std::string_view framingModeName(FramingMode mode);

inline constexpr size_t kDefaultMaxMessageBytes = 64 * 1024;
// Octet counts above this are treated as a corrupt stream, not as an oversize message.
inline constexpr size_t kDefaultMaxOctetCount = 16 * 1024 * 1024;

struct FramingOptions {
  FramingMode mode = FramingMode::kAuto;
  // Longer messages are cut to this size, flagged truncated, and the rest of the frame
  // is discarded.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // Hard limit for an octet count; a larger LEN is a framing error. Must be at least
  // max_message_bytes.
  size_t max_octet_count = kDefaultMaxOctetCount;
  // LF framing: NUL also ends a message (some senders terminate with NUL).
  bool nul_terminates = false;
  // LF framing: strip one CR before the terminator.
  bool strip_cr = true;
};

enum class FramingError : uint8_t {
  kNone,
  kNonDigitInLength,  // a byte other than a digit or SP inside LEN
  kLengthTooLong,     // more than 9 digits
  kLeadingZero,       // LEN is 0 or starts with 0
  kLengthOverLimit,   // LEN > max_octet_count
  kIncompleteFrame,   // the stream ended inside LEN or before the first MSG byte
};

// Returns a short description, e.g. "non-digit in octet count".
std::string_view framingErrorText(FramingError error);

struct Frame {
  std::string_view data;   // valid until the next feed()/finish()/reset() call
  bool truncated = false;  // the message was longer than max_message_bytes
};

enum class FrameStatus : uint8_t {
  kNeedMore,  // every input byte was consumed and no message is complete yet
  kFrame,     // `frame` contains one message
  kEmpty,     // an empty LF-framed message was consumed; callers count and skip it
  kError,     // invalid octet count; see error(). The stream cannot be resynchronized.
};

struct FeedResult {
  FrameStatus status = FrameStatus::kNeedMore;
  size_t consumed = 0;  // bytes of the input used; feed the rest in the next call
};

// Splits one byte stream into messages. Feed it the stream in pieces of any size; it
// stops after each message so the caller can check for room before taking the next.
// The constructor allocates the buffer for messages split across feeds (max_message_bytes);
// feed() and finish() never allocate. One thread at a time.
class Framer {
 public:
  explicit Framer(const FramingOptions& options);

  // Consumes input up to and including the end of the next message. A message that lies
  // whole inside `input` is returned as a view into `input`; one that spans feeds is
  // returned from the framer's buffer. After kError every call returns kError.
  FeedResult feed(std::string_view input, Frame& frame);

  // Ends the stream and resets the framer. Returns kFrame for a message still buffered: an
  // LF-framed message without its terminator, or a partial octet-counted message (flagged
  // truncated), or in auto mode the undecided first bytes as an LF-framed line. Returns
  // kEmpty for a buffered lone CR, and kError (kIncompleteFrame) when the stream stopped
  // inside LEN or right after it. Otherwise, and after an earlier
  // kError, returns kNeedMore. `frame` stays valid until the next call.
  FrameStatus finish(Frame& frame);

  // Forgets any partial message, the error and the detected mode.
  void reset();

  // The framing in use: the configured one, or the detected one in auto mode (kAuto until
  // enough bytes arrived to decide).
  FramingMode mode() const { return mode_; }
  FramingError error() const { return error_; }
  // Bytes of the failed frame that the framer consumed before it reported the error: the
  // bad octet count, including the byte that made it invalid. 0 when there is no error.
  size_t errorBytes() const { return error_bytes_; }
  const FramingOptions& options() const { return options_; }

 private:
  enum class State : uint8_t { kStart, kLength, kBody, kLine, kError };

  // Outcome of auto detection over the bytes seen so far.
  enum class Detect : uint8_t { kUndecided, kOctetCounting, kLf };

  FeedResult feedAuto(std::string_view input, Frame& frame);
  FeedResult feedDetected(std::string_view input, Frame& frame);
  Detect detectStep(char c);
  FeedResult feedLength(std::string_view input);
  FeedResult feedBody(std::string_view input, Frame& frame);
  FeedResult feedLine(std::string_view input, Frame& frame);
  FeedResult fail(FramingError error, size_t consumed, size_t error_bytes);
  void keep(std::string_view bytes);
  FrameStatus takeLine(Frame& frame);
  Frame takePending(bool truncated);

  FramingOptions options_;
  FramingMode mode_;
  State state_ = State::kStart;
  FramingError error_ = FramingError::kNone;
  std::unique_ptr<char[]> pending_;
  size_t pending_len_ = 0;
  size_t discarded_ = 0;  // bytes of the current message beyond max_message_bytes
  bool last_discarded_cr_ = false;
  uint64_t length_ = 0;  // octet counting: LEN being parsed
  unsigned length_digits_ = 0;
  uint64_t remaining_ = 0;  // octet counting: MSG bytes still to read
  size_t error_bytes_ = 0;
  // Auto detection: the undecided prefix ("LEN" or "LEN SP") kept across feeds, and the
  // value and digit count of LEN parsed so far.
  static constexpr size_t kProbeBytes = 10;
  char probe_[kProbeBytes] = {};
  size_t probe_len_ = 0;
  uint64_t probe_length_ = 0;
  unsigned probe_digits_ = 0;
  bool probe_space_ = false;
};

}  // namespace vigil::dataplane
