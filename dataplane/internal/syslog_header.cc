#include "dataplane/internal/syslog_header.h"

#include "common/time.h"
#include "dataplane/internal/utf8.h"

namespace vigil::dataplane::internal {

std::optional<Pri> parsePri(std::string_view text) {
  if (text.size() < 3 || text[0] != '<') return std::nullopt;
  int value = 0;
  size_t pos = 1;
  while (pos < text.size() && pos <= 4 && text[pos] >= '0' && text[pos] <= '9') {
    value = value * 10 + (text[pos] - '0');
    ++pos;
  }
  const size_t digits = pos - 1;
  if (digits == 0 || digits > 3 || pos >= text.size() || text[pos] != '>') return std::nullopt;
  if (digits > 1 && text[1] == '0') return std::nullopt;
  if (value > 191) return std::nullopt;
  Pri pri;
  pri.facility = static_cast<int16_t>(value / 8);
  pri.severity = static_cast<int16_t>(value % 8);
  pri.length = pos + 1;
  return pri;
}

void applyPri(const Pri& pri, Event& event) {
  event.facility = pri.facility;
  event.severity = pri.severity;
}

std::string_view decodeText(std::string_view text, bool raw_is_utf8, Event& event) {
  if (raw_is_utf8) return text;
  return repairUtf8(text, event.arena, event.flags);
}

std::optional<int64_t> parseTimestamp(std::string_view text) {
  if (text.size() < 4) return std::nullopt;
  int64_t year = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    year = year * 10 + (text[i] - '0');
  }
  if (year < kMinYear || year > kMaxYear) return std::nullopt;
  return parseRfc3339(text);
}

bool hasUtcOffset(std::string_view timestamp) {
  // The date and time take the first 19 bytes, so a sign after them starts the offset.
  const char last = timestamp.back();
  return last == 'Z' || last == 'z' || timestamp.find_first_of("+-", 19) != std::string_view::npos;
}

std::string_view stripBom(std::string_view msg, Event& event) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (msg.substr(0, kBom.size()) != kBom) return msg;
  event.flags |= kFlagMsgUtf8Bom;
  return msg.substr(kBom.size());
}

}  // namespace vigil::dataplane::internal
