#include "dataplane/parser.h"

#include <optional>
#include <string_view>

#include "common/ip.h"
#include "dataplane/internal/cef.h"
#include "dataplane/internal/device_time.h"
#include "dataplane/internal/json_payload.h"
#include "dataplane/internal/leef.h"
#include "dataplane/internal/patterns.h"
#include "dataplane/internal/rfc3164.h"
#include "dataplane/internal/rfc5424.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/internal/utf8.h"
#include "dataplane/internal/vendor_fields.h"

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
  event.truncateFields(0);
}

// The value of the first field named `name`, as Event::get() would return it. A scan
// instead of get(), so parsing does not build the field index that only later lookups
// need.
std::optional<std::string_view> firstField(const Event& event, std::string_view name) {
  std::optional<std::string_view> found;
  event.visitFields([&](const Field& field) {
    if (field.name != name) return true;
    found = field.value;
    return false;
  });
  return found;
}

// Decodes MSG, detects a JSON payload and runs the pattern extractors.
void finishMessage(Event& event, std::string_view msg, bool raw_is_utf8) {
  msg = internal::stripBom(msg, event);
  event.message = decodeText(msg, raw_is_utf8, event);
  const std::string_view json = internal::jsonCandidate(event.message);
  if (!json.empty() && internal::flattenJson(json, event)) {
    internal::applyJsonPatterns(event);
    if (auto text = firstField(event, "msg")) internal::applyWindowsLogonPatterns(event, *text);
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

// Parses `text` as CEF or LEEF when it starts with "CEF:" or "LEEF:".
bool tryVendorFormat(Event& event, std::string_view text, const ParseOptions& options,
                     bool raw_is_utf8) {
  if (internal::looksLikeCef(text)) return internal::parseCef(text, options, raw_is_utf8, event);
  if (internal::looksLikeLeef(text)) return internal::parseLeef(text, options, raw_is_utf8, event);
  return false;
}

bool tryRfc5424(Event& event, const ParseOptions& options, bool raw_is_utf8,
                const std::optional<internal::Pri>& pri) {
  std::string_view msg;
  if (!internal::parseRfc5424(event, raw_is_utf8, msg, pri)) return false;
  event.format = EventFormat::kRfc5424;
  msg = internal::stripBom(msg, event);
  if (tryVendorFormat(event, msg, options, raw_is_utf8)) return true;
  finishMessage(event, msg, raw_is_utf8);
  return true;
}

// The RFC 3164 parser reads "CEF:0|..." after the hostname as the tag "CEF" followed by
// MSG "0|...". Returns the record with its "CEF:" or "LEEF:" put back, or empty.
std::string_view vendorRecordAfterTag(const Event& event, std::string_view msg) {
  if (!event.procid.empty()) return {};
  for (std::string_view tag : {std::string_view("CEF"), std::string_view("LEEF")}) {
    const size_t prefix = tag.size() + 1;
    if (event.app != tag || msg.data() < event.raw.data() + prefix) continue;
    const std::string_view record(msg.data() - prefix, msg.size() + prefix);
    if (record.substr(tag.size(), 1) == ":") return record;
  }
  return {};
}

bool tryRfc3164(Event& event, const ParseOptions& options, bool raw_is_utf8,
                const std::optional<internal::Pri>& pri) {
  std::string_view msg;
  if (!internal::parseRfc3164(event, options, raw_is_utf8, msg, pri)) return false;
  event.format = EventFormat::kRfc3164;
  const std::string_view record = vendorRecordAfterTag(event, msg);
  if (!record.empty() && tryVendorFormat(event, record, options, raw_is_utf8)) {
    event.app = {};
    return true;
  }
  if (tryVendorFormat(event, msg, options, raw_is_utf8)) return true;
  finishMessage(event, msg, raw_is_utf8);
  return true;
}

// Host name for a record that carries none: the peer address as text.
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

// A CEF or LEEF record as the whole line, stamped with the receive time unless the
// record carries a device time.
bool tryBareVendorFormat(Event& event, const ParseOptions& options, bool raw_is_utf8) {
  event.timestamp_ns = event.receive_ns;
  if (!tryVendorFormat(event, event.raw, options, raw_is_utf8)) return false;
  if (event.host.empty()) setHostFromPeer(event);
  return true;
}

// "1493738863000 host CEF:..." (epoch seconds or milliseconds, then the host name), as
// some collectors prefix the records they forward.
bool tryEpochPrefixedVendorFormat(Event& event, const ParseOptions& options, bool raw_is_utf8) {
  const std::string_view raw = event.raw;
  const size_t time_end = raw.find(' ');
  if (time_end != 10 && time_end != 13) return false;
  const size_t host_end = raw.find(' ', time_end + 1);
  if (host_end == std::string_view::npos || host_end == time_end + 1) return false;
  const std::string_view record = raw.substr(host_end + 1);
  if (!internal::looksLikeCef(record) && !internal::looksLikeLeef(record)) return false;
  const auto ns = internal::parseDeviceTime(raw.substr(0, time_end), 0);
  if (!ns) return false;
  event.timestamp_ns = *ns;
  event.host = decodeText(raw.substr(time_end + 1, host_end - time_end - 1), raw_is_utf8, event);
  if (tryVendorFormat(event, record, options, raw_is_utf8)) return true;
  event.host = {};
  return false;
}

std::string_view skipSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

// A bare JSON line, after an optional UTF-8 BOM. simdjson rejects invalid UTF-8, so
// invalid bytes are replaced first, as in a syslog payload: one bad byte in a user agent
// must not cost the event its address fields.
bool tryJson(Event& event, bool raw_is_utf8) {
  std::string_view line = skipSpaces(event.raw);
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  const bool bom = line.substr(0, kBom.size()) == kBom;
  if (bom) line.remove_prefix(kBom.size());
  if (line.empty() || line.front() != '{') return false;
  const ParseMark mark = markEvent(event);
  const std::string_view text = decodeText(line, raw_is_utf8, event);
  if (!internal::flattenJson(text, event)) {
    undoParse(event, mark);
    return false;
  }
  if (bom) event.flags |= kFlagMsgUtf8Bom;
  event.format = EventFormat::kJson;
  event.timestamp_ns = event.receive_ns;
  event.message = text;
  internal::applyJsonPatterns(event);
  return true;
}

// Senders often end a UDP datagram or an octet-counted frame with LF or CRLF. That is
// transport framing, not message text (rsyslog drops it on reception by default), and
// left in place it would hide an address or a value at the end of the line. LF-framed
// streams and files never pass it on, so every source gives the same event.
std::string_view withoutLineEnd(std::string_view raw) {
  if (!raw.empty() && raw.back() == '\n') raw.remove_suffix(1);
  if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
  return raw;
}

bool parseAuto(Event& event, const ParseOptions& options, bool raw_is_utf8) {
  const std::string_view raw = event.raw;
  // PRI is read once here and handed to the syslog parsers.
  const std::optional<internal::Pri> pri = internal::parsePri(raw);
  if (pri) {
    if (raw.substr(pri->length, 2) == "1 ") return tryRfc5424(event, options, raw_is_utf8, pri);
    return tryRfc3164(event, options, raw_is_utf8, pri);
  }
  if (tryBareVendorFormat(event, options, raw_is_utf8)) return true;
  if (tryEpochPrefixedVendorFormat(event, options, raw_is_utf8)) return true;
  if (tryJson(event, raw_is_utf8)) return true;
  return tryRfc3164(event, options, raw_is_utf8, std::nullopt);
}

}  // namespace

void parseEvent(Event& event, const ParseOptions& options) {
  event.raw = withoutLineEnd(event.raw);
  // A source that cuts a message at its maximum size can split a multi-byte character.
  // Its leading bytes are no invalid input from the sender, so they go with the cut.
  if (event.has(kFlagTruncated)) {
    event.raw = event.raw.substr(0, internal::lengthWithoutCutCharacter(event.raw));
  }
  const bool raw_is_utf8 = internal::isValidUtf8(event.raw);
  const ParseMark mark = markEvent(event);
  bool parsed = false;
  switch (options.format) {
    case Format::kAuto:
      parsed = parseAuto(event, options, raw_is_utf8);
      break;
    case Format::kRfc5424:
      parsed = tryRfc5424(event, options, raw_is_utf8, internal::parsePri(event.raw));
      break;
    case Format::kRfc3164:
      parsed = tryRfc3164(event, options, raw_is_utf8, internal::parsePri(event.raw));
      break;
    case Format::kJson:
      parsed = tryJson(event, raw_is_utf8);
      break;
    case Format::kCef:
      parsed = parseAuto(event, options, raw_is_utf8) && event.format == EventFormat::kCef;
      break;
    case Format::kLeef:
      parsed = parseAuto(event, options, raw_is_utf8) && event.format == EventFormat::kLeef;
      break;
  }
  if (!parsed) makeRaw(event, mark, raw_is_utf8);
}

void countParseResult(const Event& event, const ParseCounters& counters) {
  Counter* outcome = event.has(kFlagParseError) ? counters.parse_errors : counters.parsed;
  if (outcome != nullptr) outcome->add();
  countParseFlags(event, counters);
}

void countParseFlags(const Event& event, const ParseCounters& counters) {
  if (counters.truncated != nullptr && event.has(kFlagTruncated)) counters.truncated->add();
  if (counters.invalid_utf8 != nullptr && event.has(kFlagInvalidUtf8)) counters.invalid_utf8->add();
  if (counters.fields_overflow != nullptr && event.has(kFlagFieldsOverflow)) {
    counters.fields_overflow->add();
  }
  if (counters.arena_full != nullptr && event.has(kFlagArenaFull)) counters.arena_full->add();
  if (counters.missing_pri != nullptr && event.has(kFlagPriMissing)) {
    counters.missing_pri->add();
  }
  if (counters.zone_assumed != nullptr && event.has(kFlagZoneAssumed)) {
    counters.zone_assumed->add();
  }
}

}  // namespace vigil::dataplane
