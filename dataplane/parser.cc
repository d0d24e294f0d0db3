#include "dataplane/parser.h"

#include <array>
#include <string_view>

#include "dataplane/internal/json_payload.h"
#include "dataplane/internal/patterns.h"
#include "dataplane/internal/rfc3164.h"
#include "dataplane/internal/rfc5424.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/internal/utf8.h"

namespace vigil::dataplane {
namespace {

using internal::decodeText;

// Arena top and flags before parsing, kept so a failed attempt can be undone completely.
struct ParseMark {
  char* arena_top;
  uint32_t flags;
};

ParseMark markEvent(Event& event) { return {event.arena.alloc(0), event.flags}; }

void undoParse(Event& event, const ParseMark& mark) {
  event.arena.shrinkLast(mark.arena_top, 0);
  event.flags = mark.flags;
  event.timestamp_ns = 0;
  event.facility = event.severity = -1;
  event.host = event.app = event.procid = event.msgid = event.structured_data = {};
  event.message = {};
  event.src_ip.reset();
  event.dst_ip.reset();
  event.src_port = event.dst_port = 0;
  event.user = event.action = event.outcome = {};
  event.field_count = 0;
}

// Decodes MSG, detects a JSON payload and runs the pattern extractors.
void finishMessage(Event& event, std::string_view msg, bool raw_is_utf8) {
  msg = internal::stripBom(msg, event);
  event.message = decodeText(msg, raw_is_utf8, event);
  const std::string_view json = internal::jsonCandidate(event.message);
  if (!json.empty() && internal::flattenJson(json, event)) {
    internal::applyJsonPatterns(event);
    std::array<char, 64> scratch;
    if (auto text = event.get("msg", scratch)) internal::applyWindowsLogonPatterns(event, *text);
    return;
  }
  if (internal::applySshdPatterns(event)) return;
  if (internal::applyWindowsLogonPatterns(event, event.message)) return;
  internal::applyKeyValuePatterns(event);
}

void makeRaw(Event& event, const ParseMark& mark, bool raw_is_utf8) {
  undoParse(event, mark);
  event.format = EventFormat::kRaw;
  event.flags |= kFlagParseError;
  event.timestamp_ns = event.receive_ns;
  event.message = decodeText(event.raw, raw_is_utf8, event);
  internal::applyKeyValuePatterns(event);
}

bool tryRfc5424(Event& event, bool raw_is_utf8) {
  std::string_view msg;
  if (!internal::parseRfc5424(event, raw_is_utf8, msg)) return false;
  event.format = EventFormat::kRfc5424;
  finishMessage(event, msg, raw_is_utf8);
  return true;
}

bool tryRfc3164(Event& event, const ParseOptions& options, bool raw_is_utf8) {
  std::string_view msg;
  if (!internal::parseRfc3164(event, options, raw_is_utf8, msg)) return false;
  event.format = EventFormat::kRfc3164;
  finishMessage(event, msg, raw_is_utf8);
  return true;
}

std::string_view skipSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

// A bare JSON line. simdjson rejects invalid UTF-8, so such a line falls back to raw.
bool tryJson(Event& event) {
  const std::string_view line = skipSpaces(event.raw);
  if (line.empty() || line.front() != '{') return false;
  if (!internal::flattenJson(line, event)) return false;
  event.format = EventFormat::kJson;
  event.timestamp_ns = event.receive_ns;
  event.message = line;
  internal::applyJsonPatterns(event);
  return true;
}

bool parseAuto(Event& event, const ParseOptions& options, bool raw_is_utf8) {
  const std::string_view raw = event.raw;
  if (internal::looksLikeRfc5424(raw)) return tryRfc5424(event, raw_is_utf8);
  if (internal::parsePri(raw)) return tryRfc3164(event, options, raw_is_utf8);
  if (tryJson(event)) return true;
  return tryRfc3164(event, options, raw_is_utf8);
}

}  // namespace

void parseEvent(Event& event, const ParseOptions& options) {
  const bool raw_is_utf8 = internal::isValidUtf8(event.raw);
  const ParseMark mark = markEvent(event);
  bool parsed = false;
  switch (options.format) {
    case Format::kAuto:
      parsed = parseAuto(event, options, raw_is_utf8);
      break;
    case Format::kRfc5424:
      parsed = tryRfc5424(event, raw_is_utf8);
      break;
    case Format::kRfc3164:
      parsed = tryRfc3164(event, options, raw_is_utf8);
      break;
    case Format::kJson:
      parsed = tryJson(event);
      break;
  }
  if (!parsed) makeRaw(event, mark, raw_is_utf8);
}

void countParseResult(const Event& event, const ParseCounters& counters) {
  Counter* outcome = event.has(kFlagParseError) ? counters.parse_errors : counters.parsed;
  if (outcome != nullptr) outcome->add();
  if (counters.truncated != nullptr && event.has(kFlagTruncated)) counters.truncated->add();
  if (counters.invalid_utf8 != nullptr && event.has(kFlagInvalidUtf8)) counters.invalid_utf8->add();
}

}  // namespace vigil::dataplane
