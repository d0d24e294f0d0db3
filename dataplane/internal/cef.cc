#include "dataplane/internal/cef.h"

#include <algorithm>
#include <array>
#include <cstddef>

#include "dataplane/internal/device_time.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/internal/vendor_fields.h"

namespace vigil::dataplane::internal {
namespace {

constexpr std::string_view kPrefix = "CEF:";
constexpr size_t kHeaderFields = 7;

// Field names of the seven header fields, in header order.
constexpr std::array<std::string_view, kHeaderFields> kHeaderNames = {
    "cef.cef_version", "cef.vendor", "cef.product",  "cef.version",
    "cef.signature_id", "cef.name",  "cef.severity",
};

struct Header {
  std::array<std::string_view, kHeaderFields> fields;
  std::string_view extension;
};

bool isKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Length of the key at text[pos] when a `key=` starts there, else 0.
size_t keyLengthAt(std::string_view text, size_t pos) {
  size_t end = pos;
  while (end < text.size() && isKeyChar(text[end])) ++end;
  if (end == pos || end >= text.size() || text[end] != '=') return 0;
  return end - pos;
}

bool isVersion(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if ((c < '0' || c > '9') && c != '.') return false;
  }
  return true;
}

// Characters that a backslash escapes in extension values. Any other backslash is data,
// so the value of `a=x \ b=1` is `x \` and the space before `b=` still ends it.
constexpr std::string_view kExtensionEscapes = "=\\nr";

// True when text[pos] is a backslash that escapes the next character, one of `escaped`.
bool isEscapeAt(std::string_view text, size_t pos, std::string_view escaped) {
  return text[pos] == '\\' && pos + 1 < text.size() &&
         escaped.find(text[pos + 1]) != std::string_view::npos;
}

// Splits the header at unescaped '|'. The severity field may end the text.
bool splitHeader(std::string_view text, Header& header) {
  size_t pos = kPrefix.size();
  for (size_t i = 0; i < kHeaderFields; ++i) {
    size_t end = pos;
    while (end < text.size() && text[end] != '|') end += isEscapeAt(text, end, "|\\") ? 2 : 1;
    const bool last = i + 1 == kHeaderFields;
    if (end == text.size() && !last) return false;
    header.fields[i] = text.substr(pos, end - pos);
    pos = end + 1;
  }
  header.extension = pos < text.size() ? text.substr(pos) : std::string_view{};
  return isVersion(header.fields[0]);
}

// Decodes backslash escapes into the arena. `decode` maps the character after a
// backslash to its value, or 0 to keep both characters. Returns `text` itself when it
// has no backslash, and `text` undecoded (with kFlagArenaFull) when the arena is full.
template <typename Decode>
std::string_view unescape(std::string_view text, Event& event, Decode decode) {
  if (text.find('\\') == std::string_view::npos) return text;
  char* out = event.arena.alloc(text.size());
  if (out == nullptr) {
    event.flags |= kFlagArenaFull;
    return text;
  }
  size_t len = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char decoded = text[i] == '\\' && i + 1 < text.size() ? decode(text[i + 1]) : 0;
    if (decoded != 0) {
      out[len++] = decoded;
      ++i;
    } else {
      out[len++] = text[i];
    }
  }
  event.arena.shrinkLast(out, len);
  return {out, len};
}

char decodeHeaderEscape(char c) { return (c == '|' || c == '\\') ? c : 0; }

char decodeExtensionEscape(char c) {
  switch (c) {
    case '=': return '=';
    case '\\': return '\\';
    case 'n': return '\n';
    case 'r': return '\r';
    default: return 0;
  }
}

std::string_view trimSpaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

// End of the value that starts at `pos`: the space before the next `key=`, or the end.
size_t valueEnd(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    if (isEscapeAt(text, pos, kExtensionEscapes)) {
      pos += 2;
      continue;
    }
    if (text[pos] == ' ' && keyLengthAt(text, pos + 1) > 0) return pos;
    ++pos;
  }
  return text.size();
}

void addExtensions(std::string_view extension, Event& event) {
  size_t pos = 0;
  while (pos < extension.size()) {
    const size_t key_len = keyLengthAt(extension, pos);
    if (key_len == 0) break;  // only possible at the start, which parseCef() checked
    const std::string_view key = extension.substr(pos, key_len);
    const size_t value_start = pos + key_len + 1;
    const size_t end = std::min(valueEnd(extension, value_start), extension.size());
    std::string_view value = extension.substr(value_start, end - value_start);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    addPrefixedField(event, "cef.", key, unescape(value, event, decodeExtensionEscape));
    pos = end + 1;
  }
}

std::optional<std::string_view> findField(const Event& event, size_t first, std::string_view name) {
  for (size_t i = first; i < event.field_count; ++i) {
    if (event.fields[i].name == name) return event.fields[i].value;
  }
  return std::nullopt;
}

// cs1Label=note with cs1=x adds cef.label.note = x. Works for every <key>Label pair.
void addLabelledFields(Event& event, size_t first) {
  constexpr std::string_view kSuffix = "Label";
  const size_t end = event.field_count;
  for (size_t i = first; i < end; ++i) {
    const std::string_view name = event.fields[i].name;
    const std::string_view label = event.fields[i].value;
    if (label.empty() || name.size() <= kSuffix.size() + 4) continue;
    if (name.substr(name.size() - kSuffix.size()) != kSuffix) continue;
    const auto value = findField(event, first, name.substr(0, name.size() - kSuffix.size()));
    if (value) addPrefixedField(event, "cef.label.", label, *value);
  }
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

void applyWellKnownKeys(Event& event, size_t first, const ParseOptions& options) {
  std::optional<int64_t> rt;
  std::optional<int64_t> end_time;
  bool have_suser = false;
  for (size_t i = first; i < event.field_count; ++i) {
    std::string_view key = event.fields[i].name;
    if (key.substr(0, 4) != "cef.") continue;
    key.remove_prefix(4);
    const std::string_view value = event.fields[i].value;
    if (key == "src") {
      setAddress(event.src_ip, value);
    } else if (key == "dst") {
      setAddress(event.dst_ip, value);
    } else if (key == "spt") {
      event.src_port = parsePort(value).value_or(event.src_port);
    } else if (key == "dpt") {
      event.dst_port = parsePort(value).value_or(event.dst_port);
    } else if (key == "suser" && !value.empty()) {
      event.user = value;
      have_suser = true;
    } else if (key == "duser" && !value.empty() && !have_suser) {
      event.user = value;
    } else if (key == "act") {
      event.action = value;
    } else if (key == "outcome") {
      if (equalsIgnoreCase(value, "success")) event.outcome = "success";
      if (equalsIgnoreCase(value, "failure")) event.outcome = "failure";
    } else if (key == "msg" && !value.empty()) {
      event.message = value;
    } else if (key == "dvchost" && event.host.empty()) {
      event.host = value;
    } else if (key == "rt") {
      rt = parseDeviceTime(value, options.default_utc_offset_s);
    } else if (key == "end") {
      end_time = parseDeviceTime(value, options.default_utc_offset_s);
    }
  }
  if (rt) {
    event.timestamp_ns = *rt;
  } else if (end_time) {
    event.timestamp_ns = *end_time;
  }
}

}  // namespace

bool looksLikeCef(std::string_view text) { return text.substr(0, kPrefix.size()) == kPrefix; }

bool parseCef(std::string_view text, const ParseOptions& options, bool raw_is_utf8,
              Event& event) {
  if (!looksLikeCef(text)) return false;
  Header header;
  if (!splitHeader(text, header)) return false;
  const std::string_view extension = trimSpaces(header.extension);
  if (!extension.empty() && keyLengthAt(extension, 0) == 0) return false;

  // Repairing invalid UTF-8 may copy the text, so split the repaired copy again.
  const std::string_view decoded = decodeText(text, raw_is_utf8, event);
  if (decoded.data() != text.data() && !splitHeader(decoded, header)) return false;

  event.format = EventFormat::kCef;
  event.message = decoded;
  const size_t first = event.field_count;
  for (size_t i = 0; i < kHeaderFields; ++i) {
    event.addField(kHeaderNames[i], unescape(header.fields[i], event, decodeHeaderEscape));
  }
  addExtensions(trimSpaces(header.extension), event);
  addLabelledFields(event, first);
  applyWellKnownKeys(event, first, options);
  return true;
}

}  // namespace vigil::dataplane::internal
