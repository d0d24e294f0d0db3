#include "dataplane/internal/rfc3164.h"

#include <cstdlib>
#include <limits>
#include <optional>

#include "common/ip.h"
#include "common/time.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/internal/vendor_fields.h"

namespace vigil::dataplane::internal {
namespace {

constexpr int64_t kSecondsPerDay = 86400;
// For any date that exists in every year, the nearest of the previous, current and next
// year is at most half a year (plus a day) from the receive time. A farther result only
// happens for Feb 29, and then the timestamp is treated as invalid.
constexpr int64_t kMaxYearInferenceDistanceNs = 184 * kSecondsPerDay * kNanosPerSecond;
constexpr int64_t kSameYearDistanceNs = 182 * kSecondsPerDay * kNanosPerSecond;
// Upper bound for a TAG (RFC 3164 allows 32; RFC 5424 APP-NAME allows 48).
constexpr size_t kMaxTagLength = 48;

struct BsdTimestamp {
  int64_t year = -1;  // -1 when the sender left it out
  unsigned month = 0;
  unsigned day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int64_t fraction_ns = 0;
  std::optional<int32_t> utc_offset_s;
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool readFixedDigits(std::string_view text, size_t pos, size_t count, int& value) {
  if (pos + count > text.size()) return false;
  value = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!isDigit(text[pos + i])) return false;
    value = value * 10 + (text[pos + i] - '0');
  }
  return true;
}

// Month names in any letter case ("Mar", "MAR", "mar"). Returns 1..12 or 0.
unsigned readMonth(std::string_view text, size_t pos) {
  // The three bytes are lower-cased with | 0x20 and packed into one integer. Only a
  // letter in either case becomes a lower-case letter that way, so a match is exact.
  static constexpr uint32_t kMonths[] = {
      0x6a616e, 0x666562, 0x6d6172, 0x617072, 0x6d6179, 0x6a756e,  // jan feb mar apr may jun
      0x6a756c, 0x617567, 0x736570, 0x6f6374, 0x6e6f76, 0x646563,  // jul aug sep oct nov dec
  };
  if (pos + 3 > text.size()) return 0;
  const auto byte = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(text[pos + i]));
  };
  const uint32_t key = ((byte(0) << 16) | (byte(1) << 8) | byte(2)) | 0x202020;
  for (unsigned i = 0; i < 12; ++i) {
    if (key == kMonths[i]) return i + 1;
  }
  return 0;
}

bool atTokenEnd(std::string_view text, size_t pos) { return pos >= text.size() || text[pos] == ' '; }

// A 4-digit year followed by a space or the end of the line.
bool readYear(std::string_view text, size_t pos, int64_t& year) {
  int value = 0;
  if (!readFixedDigits(text, pos, 4, value) || !atTokenEnd(text, pos + 4)) return false;
  if (value < kMinYear || value > kMaxYear) return false;
  year = value;
  return true;
}

// "UTC", "GMT", "Z" or a numeric offset "+hh:mm" / "+hhmm" as its own token.
bool readZone(std::string_view text, size_t& pos, int32_t& offset_s) {
  const size_t end = text.find(' ', pos);
  const std::string_view token = text.substr(pos, end == std::string_view::npos ? text.size() - pos : end - pos);
  if (token == "UTC" || token == "GMT" || token == "Z") {
    offset_s = 0;
    pos += token.size();
    return true;
  }
  if (token.size() != 5 && token.size() != 6) return false;
  if (token[0] != '+' && token[0] != '-') return false;
  int hours = 0;
  int minutes = 0;
  const size_t minute_pos = token.size() == 6 ? 4 : 3;
  if (token.size() == 6 && token[3] != ':') return false;
  if (!readFixedDigits(token, 1, 2, hours) || !readFixedDigits(token, minute_pos, 2, minutes)) {
    return false;
  }
  if (hours > 23 || minutes > 59) return false;
  offset_s = (hours * 3600 + minutes * 60) * (token[0] == '-' ? -1 : 1);
  pos += token.size();
  return true;
}

bool readTime(std::string_view text, size_t& pos, BsdTimestamp& ts) {
  if (!readFixedDigits(text, pos, 2, ts.hour) || pos + 8 > text.size() || text[pos + 2] != ':' ||
      !readFixedDigits(text, pos + 3, 2, ts.minute) || text[pos + 5] != ':' ||
      !readFixedDigits(text, pos + 6, 2, ts.second)) {
    return false;
  }
  if (ts.hour > 23 || ts.minute > 59 || ts.second > 60) return false;
  pos += 8;
  if (pos < text.size() && text[pos] == '.' && pos + 1 < text.size() && isDigit(text[pos + 1])) {
    ++pos;
    int64_t scale = 100'000'000;
    while (pos < text.size() && isDigit(text[pos])) {
      ts.fraction_ns += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
  }
  return true;
}

// Reads "Mmm dd [yyyy] hh:mm:ss[.frac][:] [yyyy] [zone]" at `pos`. On success `pos` is at
// the space after the timestamp or at the end of the line.
// NOTE: numeric months ("03/07 19:06:53") and zone names other than UTC/GMT/Z are not
// accepted; such lines fall back to the ISO form or to "no timestamp".
bool readBsdTimestamp(std::string_view text, size_t& pos, BsdTimestamp& ts) {
  size_t p = pos;
  ts.month = readMonth(text, p);
  if (ts.month == 0 || p + 3 >= text.size() || text[p + 3] != ' ') return false;
  p += 3;
  while (p < text.size() && text[p] == ' ') ++p;
  int day = 0;
  if (readFixedDigits(text, p, 2, day)) {
    p += 2;
  } else if (readFixedDigits(text, p, 1, day)) {
    p += 1;
  } else {
    return false;
  }
  if (day < 1 || day > 31 || p >= text.size() || text[p] != ' ') return false;
  ts.day = static_cast<unsigned>(day);
  ++p;
  if (readYear(text, p, ts.year)) p += 5;
  if (!readTime(text, p, ts)) return false;
  if (p < text.size() && text[p] == ':') ++p;
  if (!atTokenEnd(text, p)) return false;
  // A 4-digit token after the time is the year only when a zone follows it ("23:00:00
  // 2023 UTC"). Otherwise it is the HOSTNAME, as rsyslog reads "22:18:24 2009  host".
  int64_t year = 0;
  int32_t offset_s = 0;
  size_t after_year = p + 6;
  if (ts.year < 0 && p < text.size() && readYear(text, p + 1, year) && after_year < text.size() &&
      readZone(text, after_year, offset_s)) {
    ts.year = year;
    p += 5;
  }
  size_t zone_pos = p + 1;
  if (p < text.size() && readZone(text, zone_pos, offset_s)) {
    ts.utc_offset_s = offset_s;
    p = zone_pos;
  }
  pos = p;
  return true;
}

// Returns the day number of a date. Year inference converts one date in up to three
// neighbouring years, and consecutive lines nearly always share their date. So each
// thread caches the last date's day numbers in the three years around its first request.
int64_t cachedDaysFromCivil(int64_t year, unsigned month, unsigned day) {
  struct DayCache {
    int64_t middle_year = 0;
    unsigned month = 0;  // 0: empty
    unsigned day = 0;
    uint8_t known = 0;  // bit i set: days[i] is the day number in middle_year - 1 + i
    int64_t days[3] = {};
  };
  thread_local DayCache cache;
  if (month != cache.month || day != cache.day || year < cache.middle_year - 1 ||
      year > cache.middle_year + 1) {
    cache.middle_year = year;
    cache.month = month;
    cache.day = day;
    cache.known = 0;
  }
  const auto i = static_cast<size_t>(year - cache.middle_year + 1);
  if ((cache.known & (1u << i)) == 0) {
    cache.days[i] = daysFromCivil(year, month, day);
    cache.known = static_cast<uint8_t>(cache.known | (1u << i));
  }
  return cache.days[i];
}

int64_t toEpochNs(const BsdTimestamp& ts, int64_t year, int32_t offset_s) {
  const int64_t days = cachedDaysFromCivil(year, ts.month, ts.day);
  const int64_t secs = days * kSecondsPerDay + ts.hour * 3600 + ts.minute * 60 + ts.second - offset_s;
  return secs * kNanosPerSecond + ts.fraction_ns;
}

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Year of `local_day` (days since 1970-01-01). Consecutive events nearly always arrive
// on the same day, so each thread keeps the last result and converts once per day.
int64_t yearOfDay(int64_t local_day) {
  thread_local int64_t cached_day = std::numeric_limits<int64_t>::min();
  thread_local int64_t cached_year = 0;
  if (local_day != cached_day) {
    cached_year = civilFromDays(local_day).year;
    cached_day = local_day;
  }
  return cached_year;
}

// Resolves the timestamp to UTC nanoseconds, inferring a missing year from the receive
// time. Returns nullopt when the date exists in none of the candidate years. Sets
// kFlagYearInferred only when it returns a time with an inferred year.
std::optional<int64_t> resolveTimestamp(const BsdTimestamp& ts, int64_t receive_ns,
                                        int32_t offset_s, Event& event) {
  if (ts.year >= 0) {
    if (ts.day > daysInMonth(ts.year, ts.month)) return std::nullopt;
    return toEpochNs(ts, ts.year, offset_s);
  }
  const int64_t local_s = floorDiv(receive_ns, kNanosPerSecond) + offset_s;
  const int64_t receive_year = yearOfDay(floorDiv(local_s, kSecondsPerDay));
  // The same date in the previous or next year lies at least 365 days from this one, so
  // a result less than 182 days from the receive time is the nearest of the three.
  if (ts.day <= daysInMonth(receive_year, ts.month)) {
    const int64_t ns = toEpochNs(ts, receive_year, offset_s);
    if (std::llabs(ns - receive_ns) < kSameYearDistanceNs) {
      event.flags |= kFlagYearInferred;
      return ns;
    }
  }
  std::optional<int64_t> best;
  int64_t best_distance = 0;
  for (int64_t year = receive_year - 1; year <= receive_year + 1; ++year) {
    if (ts.day > daysInMonth(year, ts.month)) continue;
    const int64_t ns = toEpochNs(ts, year, offset_s);
    const int64_t distance = std::llabs(ns - receive_ns);
    if (!best || distance < best_distance) {
      best = ns;
      best_distance = distance;
    }
  }
  if (!best || best_distance > kMaxYearInferenceDistanceNs) return std::nullopt;
  event.flags |= kFlagYearInferred;
  return best;
}

// An RFC 3339 timestamp right after PRI ("<13>2024-01-01T10:00:00Z host ...").
bool readIsoTimestamp(std::string_view text, size_t& pos, int32_t default_offset_s,
                      int64_t& ns) {
  if (pos + 19 > text.size() || !isDigit(text[pos]) || text[pos + 4] != '-') return false;
  const size_t end = text.find(' ', pos);
  const std::string_view token = text.substr(pos, end == std::string_view::npos ? text.size() - pos : end - pos);
  const auto parsed = parseTimestamp(token);
  if (!parsed) return false;
  ns = hasUtcOffset(token) ? *parsed : *parsed - int64_t{default_offset_s} * kNanosPerSecond;
  pos += token.size();
  return true;
}

std::string_view firstToken(std::string_view text) { return text.substr(0, text.find(' ')); }

std::string_view afterFirstSpace(std::string_view text) {
  const size_t space = text.find(' ');
  return space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Parses "TAG[pid]: MSG", "TAG: MSG" or "TAG MSG". Returns false (and leaves the event
// alone) when `text` does not start with a tag; then all of `text` is MSG.
bool readTag(std::string_view text, bool raw_is_utf8, Event& event, std::string_view& msg) {
  const std::string_view token = firstToken(text);
  if (token.empty() || token[0] == '[' || token.find('=') != std::string_view::npos) return false;
  if (startsWith(text, "last message repeated")) return false;
  size_t end = 0;
  while (end < text.size() && text[end] != ':' && text[end] != '[' && text[end] != ' ') ++end;
  if (end == 0 || end > kMaxTagLength) return false;
  const std::string_view app = text.substr(0, end);
  std::string_view procid;
  size_t pos = end;
  if (pos < text.size() && text[pos] == '[') {
    const size_t close = text.find(']', pos);
    if (close == std::string_view::npos || close > token.size()) return false;
    procid = text.substr(pos + 1, close - pos - 1);
    pos = close + 1;
  }
  const bool colon = pos < text.size() && text[pos] == ':';
  if (colon) ++pos;
  if (!colon && pos < text.size() && text[pos] != ' ') return false;  // "app[1]x" is no tag
  if (pos < text.size() && text[pos] == ' ') ++pos;
  event.app = decodeText(app, raw_is_utf8, event);
  event.procid = decodeText(procid, raw_is_utf8, event);
  msg = text.substr(pos);
  return true;
}

// Host name for a message that carries none: the peer address as text.
void setHostFromPeer(Event& event) {
  event.flags |= kFlagNoHostname;
  if (!event.peer) return;
  char* out = event.arena.alloc(64);
  if (out == nullptr) {
    event.flags |= kFlagArenaFull;
    return;
  }
  const size_t len = formatIp(*event.peer, out, 64);
  event.arena.shrinkLast(out, len);
  event.host = {out, len};
}

// A first token is the HOSTNAME unless it is a key=value pair or ends like a tag
// ("app:" or "app[pid]:"), which happens when the sender leaves the hostname out.
bool isHostnameToken(std::string_view rest, std::string_view token) {
  if (token.empty()) return false;
  if (token.find('=') != std::string_view::npos) return false;
  if (token.back() == ':') return false;
  if (token.find('[') != std::string_view::npos) return false;
  if (startsWith(rest, "last message repeated")) return false;
  return true;
}

void parseHostAndTag(std::string_view rest, bool raw_is_utf8, Event& event, std::string_view& msg) {
  const std::string_view token = firstToken(rest);
  if (!isHostnameToken(rest, token)) {
    setHostFromPeer(event);
    if (!readTag(rest, raw_is_utf8, event, msg)) msg = rest;
    return;
  }
  event.host = decodeText(token, raw_is_utf8, event);
  const std::string_view after_host = afterFirstSpace(rest);
  if (readTag(after_host, raw_is_utf8, event, msg)) return;
  // Cisco ASA and FTD put a lone colon where the TAG goes ("firepower : %FTD-4-...").
  // The TAG is empty and the colon with its space is no part of MSG.
  if (startsWith(after_host, ": ")) {
    msg = after_host.substr(2);
    return;
  }
  // A second space after HOSTNAME leaves an empty TAG. As after a TAG, the one space
  // that follows it is no part of MSG.
  msg = after_host.substr(!after_host.empty() && after_host.front() == ' ' ? 1 : 0);
}

}  // namespace

bool parseRfc3164(Event& event, const ParseOptions& options, bool raw_is_utf8,
                  std::string_view& msg) {
  return parseRfc3164(event, options, raw_is_utf8, msg, parsePri(event.raw));
}

bool parseRfc3164(Event& event, const ParseOptions& options, bool raw_is_utf8,
                  std::string_view& msg, const std::optional<Pri>& pri) {
  const std::string_view line = event.raw;
  size_t pos = 0;
  if (pri) {
    applyPri(*pri, event);
    pos = pri->length;
  }
  while (pos < line.size() && line[pos] == ' ') ++pos;
  // Cisco devices mark an unsynchronized clock with '*' and a synchronized one with '.'.
  if (pos < line.size() && (line[pos] == '*' || line[pos] == '.')) ++pos;

  bool have_time = false;
  int64_t ns = 0;
  BsdTimestamp ts;
  if (readBsdTimestamp(line, pos, ts)) {
    const int32_t offset_s = ts.utc_offset_s.value_or(options.default_utc_offset_s);
    const auto resolved = resolveTimestamp(ts, event.receive_ns, offset_s, event);
    have_time = true;
    if (resolved) {
      ns = *resolved;
    } else {
      ns = event.receive_ns;
      event.flags |= kFlagTimestampInvalid;
    }
  } else if (readIsoTimestamp(line, pos, options.default_utc_offset_s, ns)) {
    have_time = true;
  }

  if (!have_time) {
    if (!pri) return false;
    event.timestamp_ns = event.receive_ns;
    event.flags |= kFlagTimestampInvalid;
    setHostFromPeer(event);
    msg = line.substr(pos);
    return true;
  }
  if (!pri) {
    // RFC 3164 section 4.3.3: a relay that receives a message without PRI gives it PRI
    // 13 (user.notice). ParseCounters::missing_pri counts such events.
    event.facility = kMissingPriFacility;
    event.severity = kMissingPriSeverity;
    event.flags |= kFlagPriMissing;
  }
  event.timestamp_ns = ns;
  const std::string_view rest = pos < line.size() ? line.substr(pos + 1) : std::string_view{};
  parseHostAndTag(rest, raw_is_utf8, event, msg);
  return true;
}

}  // namespace vigil::dataplane::internal
