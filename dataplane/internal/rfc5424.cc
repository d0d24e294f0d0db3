#include "dataplane/internal/rfc5424.h"

#include <array>
#include <cstring>

#include "dataplane/internal/syslog_header.h"

namespace vigil::dataplane::internal {
namespace {

// Reads one space-terminated header token starting at `pos` and moves `pos` past the
// space. Returns false when the token is empty or the line ends before the space.
bool readToken(std::string_view line, size_t& pos, std::string_view& token) {
  const size_t end = line.find(' ', pos);
  if (end == std::string_view::npos || end == pos) return false;
  token = line.substr(pos, end - pos);
  pos = end + 1;
  return true;
}

std::string_view nilToEmpty(std::string_view token) { return token == "-" ? std::string_view{} : token; }

// SD-NAME characters: printable US-ASCII except '=', SP, ']' and '"'.
constexpr std::array<bool, 256> kSdNameChars = [] {
  std::array<bool, 256> table{};
  for (int c = 33; c < 127; ++c) table[static_cast<size_t>(c)] = c != '=' && c != ']' && c != '"';
  return table;
}();

size_t readSdName(std::string_view line, size_t pos) {
  size_t end = pos;
  while (end < line.size() && kSdNameChars[static_cast<unsigned char>(line[end])]) ++end;
  return end;
}

bool isSdEscape(char c) { return c == '"' || c == '\\' || c == ']'; }

// Copies a PARAM-VALUE into the arena with its three escapes decoded. A backslash before
// any other character stays, as RFC 5424 section 6.3.3 requires.
std::string_view unescapeParamValue(std::string_view value, Arena& arena) {
  char* out = arena.alloc(value.size());
  if (out == nullptr) return {};
  size_t written = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size() && isSdEscape(value[i + 1])) ++i;
    out[written++] = value[i];
  }
  arena.shrinkLast(out, written);
  return {out, written};
}

// Builds "sd.<SD-ID>.<PARAM-NAME>" in the arena.
std::string_view buildFieldName(std::string_view id, std::string_view param, Arena& arena) {
  const size_t len = 3 + id.size() + 1 + param.size();
  char* out = arena.alloc(len);
  if (out == nullptr) return {};
  std::memcpy(out, "sd.", 3);
  std::memcpy(out + 3, id.data(), id.size());
  out[3 + id.size()] = '.';
  std::memcpy(out + 4 + id.size(), param.data(), param.size());
  return {out, len};
}

// Parses one PARAM-VALUE after its opening quote. On success `pos` is past the closing
// quote and `value` is the decoded text.
bool readParamValue(std::string_view line, size_t& pos, Event& event, bool raw_is_utf8,
                    std::string_view& value) {
  bool escaped = false;
  size_t end = line.find('"', pos);
  if (end == std::string_view::npos) return false;
  // Without a backslash before the first quote, that quote closes the value. Otherwise
  // walk the value byte by byte, because an escaped quote does not close it.
  const size_t backslash = line.substr(0, end).find('\\', pos);
  end = backslash == std::string_view::npos ? end : pos;
  while (end < line.size() && line[end] != '"') {
    if (line[end] == '\\' && end + 1 < line.size() && isSdEscape(line[end + 1])) {
      escaped = true;
      ++end;
    }
    ++end;
  }
  if (end >= line.size()) return false;
  value = line.substr(pos, end - pos);
  pos = end + 1;
  if (escaped) {
    const size_t before = value.size();
    value = unescapeParamValue(value, event.arena);
    if (value.empty() && before != 0) event.flags |= kFlagArenaFull;
  }
  value = decodeText(value, raw_is_utf8, event);
  return true;
}

// Parses one SD-ELEMENT starting at '['.
bool readSdElement(std::string_view line, size_t& pos, Event& event, bool raw_is_utf8) {
  ++pos;  // '['
  const size_t id_end = readSdName(line, pos);
  if (id_end == pos) return false;
  const std::string_view id = line.substr(pos, id_end - pos);
  pos = id_end;
  while (pos < line.size() && line[pos] == ' ') {
    ++pos;
    const size_t name_end = readSdName(line, pos);
    if (name_end == pos || name_end + 1 >= line.size()) return false;
    if (line[name_end] != '=' || line[name_end + 1] != '"') return false;
    const std::string_view param = line.substr(pos, name_end - pos);
    pos = name_end + 2;
    std::string_view value;
    if (!readParamValue(line, pos, event, raw_is_utf8, value)) return false;
    const std::string_view name = buildFieldName(id, param, event.arena);
    if (name.empty()) {
      event.flags |= kFlagArenaFull;
      continue;
    }
    event.addField(name, value);
  }
  if (pos >= line.size() || line[pos] != ']') return false;
  ++pos;
  return true;
}

bool readStructuredData(std::string_view line, size_t& pos, Event& event, bool raw_is_utf8) {
  const size_t start = pos;
  if (pos < line.size() && line[pos] == '-') {
    ++pos;
  } else {
    if (pos >= line.size() || line[pos] != '[') return false;
    while (pos < line.size() && line[pos] == '[') {
      if (!readSdElement(line, pos, event, raw_is_utf8)) return false;
    }
  }
  event.structured_data = line.substr(start, pos - start);
  return true;
}

}  // namespace

bool looksLikeRfc5424(std::string_view line) {
  const auto pri = parsePri(line);
  if (!pri) return false;
  return line.substr(pri->length, 2) == "1 ";
}

bool parseRfc5424(Event& event, bool raw_is_utf8, std::string_view& msg) {
  return parseRfc5424(event, raw_is_utf8, msg, parsePri(event.raw));
}

bool parseRfc5424(Event& event, bool raw_is_utf8, std::string_view& msg,
                  const std::optional<Pri>& pri) {
  const std::string_view line = event.raw;
  if (!pri || line.substr(pri->length, 2) != "1 ") return false;
  applyPri(*pri, event);
  size_t pos = pri->length + 2;

  std::string_view timestamp, host, app, procid, msgid;
  if (!readToken(line, pos, timestamp) || !readToken(line, pos, host) ||
      !readToken(line, pos, app) || !readToken(line, pos, procid) ||
      !readToken(line, pos, msgid)) {
    return false;
  }

  event.timestamp_ns = event.receive_ns;
  if (timestamp != "-") {
    const auto ns = parseTimestamp(timestamp);
    if (ns) {
      event.timestamp_ns = *ns;
      // RFC 5424 section 6.2.3 requires the offset. Without one the time is read as UTC.
      if (!hasUtcOffset(timestamp)) event.flags |= kFlagZoneAssumed;
    } else {
      event.flags |= kFlagTimestampInvalid;
    }
  }
  event.host = decodeText(nilToEmpty(host), raw_is_utf8, event);
  event.app = decodeText(nilToEmpty(app), raw_is_utf8, event);
  event.procid = decodeText(nilToEmpty(procid), raw_is_utf8, event);
  event.msgid = decodeText(nilToEmpty(msgid), raw_is_utf8, event);

  // Some senders leave STRUCTURED-DATA out entirely and start MSG right after MSGID.
  // Anything at that spot that cannot start SD ('[' or a lone '-') is taken as MSG;
  // a broken '[' element is still a syntax error.
  const bool sd_nil = line.substr(pos, 2) == "- " || line.substr(pos) == "-";
  if (pos < line.size() && line[pos] != '[' && !sd_nil) {
    event.structured_data = {};
    msg = line.substr(pos);
    return true;
  }
  if (!readStructuredData(line, pos, event, raw_is_utf8)) return false;
  if (pos == line.size()) {
    msg = {};
    return true;
  }
  if (line[pos] != ' ') return false;
  msg = line.substr(pos + 1);
  return true;
}

}  // namespace vigil::dataplane::internal
