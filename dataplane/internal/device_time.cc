#include "dataplane/internal/device_time.h"

#include <array>
#include <cstddef>
#include <limits>

#include "common/time.h"
#include "dataplane/internal/syslog_header.h"

namespace vigil::dataplane::internal {
namespace {

constexpr int64_t kMaxNanos = std::numeric_limits<int64_t>::max();

constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                      "jul", "aug", "sep", "oct", "nov", "dec"};

constexpr std::array<std::string_view, 8> kDefaultPatterns = {
    "MMM dd yyyy HH:mm:ss.SSS z", "MMM dd yyyy HH:mm:ss.SSS", "MMM dd yyyy HH:mm:ss z",
    "MMM dd yyyy HH:mm:ss",       "yyyy-MM-dd HH:mm:ss.SSS",  "yyyy-MM-dd HH:mm:ss z",
    "yyyy-MM-dd HH:mm:ss",        "MMM dd HH:mm:ss yyyy",
};

struct Fields {
  int64_t year = -1;
  unsigned month = 0;
  unsigned day = 0;
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  unsigned millis = 0;
  std::optional<int32_t> offset_s;
};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `count` digits at `pos`.
bool readDigits(std::string_view text, size_t& pos, size_t count, unsigned& out) {
  if (pos + count > text.size()) return false;
  unsigned value = 0;
  for (size_t i = 0; i < count; ++i) {
    const char c = text[pos + i];
    if (!isDigit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  pos += count;
  out = value;
  return true;
}

bool readMonthName(std::string_view text, size_t& pos, unsigned& month) {
  if (pos + 3 > text.size()) return false;
  for (size_t m = 0; m < kMonths.size(); ++m) {
    const std::string_view name = kMonths[m];
    if (lower(text[pos]) == name[0] && lower(text[pos + 1]) == name[1] &&
        lower(text[pos + 2]) == name[2]) {
      month = static_cast<unsigned>(m + 1);
      pos += 3;
      return true;
    }
  }
  return false;
}

// "+hh:mm", "+hhmm" or "+hh" at `pos`.
bool readNumericOffset(std::string_view text, size_t& pos, int32_t& offset_s) {
  if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return false;
  const int32_t sign = text[pos] == '-' ? -1 : 1;
  ++pos;
  unsigned hours = 0;
  unsigned minutes = 0;
  if (!readDigits(text, pos, 2, hours)) return false;
  if (pos < text.size() && text[pos] == ':') ++pos;
  if (pos < text.size() && isDigit(text[pos]) && !readDigits(text, pos, 2, minutes)) return false;
  if (hours > 23 || minutes > 59) return false;
  offset_s = sign * static_cast<int32_t>(hours * 3600 + minutes * 60);
  return true;
}

bool readZone(std::string_view text, size_t& pos, int32_t& offset_s) {
  const std::string_view rest = text.substr(pos);
  for (std::string_view name : {"UTC", "GMT"}) {
    if (rest.substr(0, 3) == name) {
      pos += 3;
      offset_s = 0;
      if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        return readNumericOffset(text, pos, offset_s);
      }
      return true;
    }
  }
  if (!rest.empty() && rest[0] == 'Z') {
    ++pos;
    offset_s = 0;
    return true;
  }
  return readNumericOffset(text, pos, offset_s);
}

size_t runLength(std::string_view pattern, size_t pos) {
  size_t end = pos;
  while (end < pattern.size() && pattern[end] == pattern[pos]) ++end;
  return end - pos;
}

// Matches one pattern letter run ("yyyy", "MMM", ...) at text[pos].
bool readLetterRun(std::string_view text, size_t& pos, char letter, size_t count, Fields& out) {
  unsigned value = 0;
  switch (letter) {
    case 'y':
      if (count != 4 || !readDigits(text, pos, 4, value)) return false;
      out.year = value;
      return true;
    case 'M':
      if (count == 3) return readMonthName(text, pos, out.month);
      return count == 2 && readDigits(text, pos, 2, out.month);
    case 'd':
      return count == 2 && readDigits(text, pos, 2, out.day);
    case 'H':
      return count == 2 && readDigits(text, pos, 2, out.hour);
    case 'm':
      return count == 2 && readDigits(text, pos, 2, out.minute);
    case 's':
      return count == 2 && readDigits(text, pos, 2, out.second);
    case 'S':
      return count == 3 && readDigits(text, pos, 3, out.millis);
    case 'z': {
      int32_t offset_s = 0;
      if (!readZone(text, pos, offset_s)) return false;
      out.offset_s = offset_s;
      return true;
    }
    default:
      return false;
  }
}

std::optional<int64_t> toNanos(const Fields& f, int32_t default_utc_offset_s) {
  if (f.year < kMinYear || f.year > kMaxYear) return std::nullopt;
  if (f.month < 1 || f.month > 12) return std::nullopt;
  if (f.day < 1 || f.day > daysInMonth(f.year, f.month)) return std::nullopt;
  if (f.hour > 23 || f.minute > 59 || f.second > 60) return std::nullopt;
  const int64_t days = daysFromCivil(f.year, f.month, f.day);
  const int64_t seconds = days * 86400 + f.hour * 3600 + f.minute * 60 + f.second -
                          f.offset_s.value_or(default_utc_offset_s);
  return seconds * kNanosPerSecond + int64_t{f.millis} * 1'000'000;
}

std::optional<int64_t> parseEpoch(std::string_view text) {
  if (text.size() != 10 && text.size() != 13) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (!isDigit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  // Thirteen digits of milliseconds or ten of seconds can exceed int64_t nanoseconds.
  const int64_t max_value = text.size() == 13 ? kMaxNanos / 1'000'000 : kMaxNanos / kNanosPerSecond;
  if (value > max_value) return std::nullopt;
  return text.size() == 13 ? value * 1'000'000 : value * kNanosPerSecond;
}

}  // namespace

std::optional<int64_t> parseWithJavaPattern(std::string_view text, std::string_view pattern,
                                            int32_t default_utc_offset_s) {
  Fields fields;
  size_t pos = 0;
  size_t p = 0;
  while (p < pattern.size()) {
    const char c = pattern[p];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      const size_t count = runLength(pattern, p);
      if (!readLetterRun(text, pos, c, count, fields)) return std::nullopt;
      p += count;
      continue;
    }
    if (c == '\'') {
      const size_t close = pattern.find('\'', p + 1);
      if (close == std::string_view::npos) return std::nullopt;
      const std::string_view literal = pattern.substr(p + 1, close - p - 1);
      if (text.substr(pos, literal.size()) != literal) return std::nullopt;
      pos += literal.size();
      p = close + 1;
      continue;
    }
    if (pos >= text.size() || text[pos] != c) return std::nullopt;
    ++pos;
    ++p;
  }
  if (pos != text.size()) return std::nullopt;
  return toNanos(fields, default_utc_offset_s);
}

std::optional<int64_t> parseDeviceTime(std::string_view text, int32_t default_utc_offset_s) {
  if (auto epoch = parseEpoch(text)) return epoch;
  for (std::string_view pattern : kDefaultPatterns) {
    if (auto ns = parseWithJavaPattern(text, pattern, default_utc_offset_s)) return ns;
  }
  return parseTimestamp(text);
}

void applyDeviceTime(int64_t ns, Event& event) {
  event.timestamp_ns = ns;
  event.flags &= ~(kFlagYearInferred | kFlagZoneAssumed | kFlagTimestampInvalid);
}

}  // namespace vigil::dataplane::internal
