#include "common/time.h"

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace vigil {
namespace {

bool readDigits(std::string_view text, size_t pos, size_t count, int64_t& out) {
  if (pos + count > text.size()) return false;
  int64_t v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

// Howard Hinnant's days_from_civil algorithm (public domain, chrono-compatible).
int64_t daysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

CivilDate civilFromDays(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return CivilDate{y + (m <= 2), m, d};
}

bool isLeapYear(int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned daysInMonth(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && isLeapYear(year)) return 29;
  return month >= 1 && month <= 12 ? kDays[month - 1] : 0;
}

std::optional<int64_t> parseRfc3339(std::string_view text) {
  if (text.size() < 19) return std::nullopt;
  // Consecutive timestamps nearly always share their date, so each thread keeps the last
  // valid "YYYY-MM-DD" with its day number and checks and converts a date once.
  struct DateCache {
    bool valid = false;
    char text[10];
    int64_t days = 0;
  };
  thread_local DateCache date_cache;
  int64_t days;
  if (date_cache.valid && std::memcmp(text.data(), date_cache.text, 10) == 0) {
    days = date_cache.days;
  } else {
    int64_t year, month, day;
    if (!readDigits(text, 0, 4, year) || text[4] != '-' || !readDigits(text, 5, 2, month) ||
        text[7] != '-' || !readDigits(text, 8, 2, day)) {
      return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 ||
        day > daysInMonth(year, static_cast<unsigned>(month))) {
      return std::nullopt;
    }
    days = daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    std::memcpy(date_cache.text, text.data(), 10);
    date_cache.days = days;
    date_cache.valid = true;
  }
  int64_t hour, minute, second;
  char sep = text[10];
  if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
  if (!readDigits(text, 11, 2, hour) || text[13] != ':' || !readDigits(text, 14, 2, minute) ||
      text[16] != ':' || !readDigits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;

  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 9) frac_ns = frac_ns * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (size_t i = digits; i < 9; ++i) frac_ns *= 10;
  }

  int64_t offset_s = 0;
  if (pos < text.size()) {
    char z = text[pos];
    if (z == 'Z' || z == 'z') {
      ++pos;
    } else if (z == '+' || z == '-') {
      int64_t oh, om;
      if (!readDigits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
          !readDigits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_s = (oh * 3600 + om * 60) * (z == '-' ? -1 : 1);
      pos += 6;
    } else {
      return std::nullopt;
    }
  }
  if (pos != text.size()) return std::nullopt;

  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  // int64 nanoseconds reach from 1677-09-21 to 2262-04-11; a time outside that range
  // (year 2999, say) has no representation, so it is invalid rather than wrapped.
  constexpr int64_t kMaxSecs = INT64_MAX / kNanosPerSecond - 1;
  if (secs > kMaxSecs || secs < -kMaxSecs) return std::nullopt;
  return secs * kNanosPerSecond + frac_ns;
}

size_t formatRfc3339(int64_t ns, char* buf, size_t buf_len) {
  if (buf_len < 31) return 0;
  int64_t secs = ns / kNanosPerSecond;
  int64_t frac = ns % kNanosPerSecond;
  if (frac < 0) {
    frac += kNanosPerSecond;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  CivilDate d = civilFromDays(days);
  // Written digit by digit: snprintf was about a third of the cost of building a playbook
  // run's alert in a perf profile. int64 nanoseconds span the years 1677 to 2262, so the
  // year always has 4 digits.
  char* out = buf;
  auto digits = [&out](int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      out[i] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
    out += width;
  };
  digits(d.year, 4);
  *out++ = '-';
  digits(d.month, 2);
  *out++ = '-';
  digits(d.day, 2);
  *out++ = 'T';
  digits(rem / 3600, 2);
  *out++ = ':';
  digits(rem / 60 % 60, 2);
  *out++ = ':';
  digits(rem % 60, 2);
  if (frac != 0) {
    *out++ = '.';
    digits(frac, 9);
  }
  *out++ = 'Z';
  *out = '\0';
  return static_cast<size_t>(out - buf);
}

std::string formatRfc3339(int64_t ns) {
  char buf[40];
  return std::string(buf, formatRfc3339(ns, buf, sizeof(buf)));
}

}  // namespace vigil
