#include "dataplane/internal/leef.h"

#include <array>
#include <cstddef>
#include <optional>

#include "dataplane/internal/device_time.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/internal/vendor_fields.h"

namespace vigil::dataplane::internal {
namespace {

constexpr std::string_view kPrefix = "LEEF:";
constexpr size_t kHeaderFields = 5;

constexpr std::array<std::string_view, kHeaderFields> kHeaderNames = {
    "leef.leef_version", "leef.vendor", "leef.product", "leef.version", "leef.event_id",
};

struct Header {
  std::array<std::string_view, kHeaderFields> fields;
  char delimiter = '\t';
  std::string_view attributes;
};

std::optional<unsigned> hexValue(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<unsigned>(c - 'A' + 10);
  return std::nullopt;
}

// The LEEF 2.0 delimiter field: "", "^", "0x5e", "x5E" (one or two hex digits).
std::optional<char> parseDelimiter(std::string_view field) {
  if (field.empty()) return '\t';
  if (field.size() == 1) return field[0];
  if (field.size() > 2 && field[0] == '0' && (field[1] == 'x' || field[1] == 'X')) {
    field.remove_prefix(2);
  } else if (field[0] == 'x' || field[0] == 'X') {
    field.remove_prefix(1);
  } else {
    return std::nullopt;
  }
  if (field.empty() || field.size() > 2) return std::nullopt;
  unsigned value = 0;
  for (char c : field) {
    const auto digit = hexValue(c);
    if (!digit) return std::nullopt;
    value = value * 16 + *digit;
  }
  if (value == 0) return std::nullopt;
  return static_cast<char>(value);
}

bool splitHeader(std::string_view text, Header& header) {
  size_t pos = kPrefix.size();
  for (size_t i = 0; i < kHeaderFields; ++i) {
    const size_t bar = text.find('|', pos);
    if (bar == std::string_view::npos) return false;
    header.fields[i] = text.substr(pos, bar - pos);
    pos = bar + 1;
  }
  const std::string_view version = header.fields[0];
  if (version != "1.0" && version != "2.0" && version != "1" && version != "2") return false;
  std::string_view rest = text.substr(pos);
  header.delimiter = '\t';
  if (version[0] == '2') {
    const size_t bar = rest.find('|');
    const std::string_view candidate = rest.substr(0, bar);
    if (bar != std::string_view::npos && candidate.find('=') == std::string_view::npos) {
      const auto delimiter = parseDelimiter(candidate);
      if (!delimiter) return false;
      header.delimiter = *delimiter;
      rest = rest.substr(bar + 1);
    }
  }
  header.attributes = rest;
  return true;
}

void addAttributes(const Header& header, Event& event) {
  std::string_view rest = header.attributes;
  while (!rest.empty()) {
    const size_t end = rest.find(header.delimiter);
    const std::string_view piece = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    const size_t eq = piece.find('=');
    if (eq == 0 || eq == std::string_view::npos) continue;
    addPrefixedField(event, "leef.", piece.substr(0, eq), piece.substr(eq + 1));
  }
}

void applyWellKnownKeys(Event& event, size_t first, const ParseOptions& options) {
  std::optional<std::string_view> dev_time;
  std::optional<std::string_view> dev_time_format;
  for (size_t i = first; i < event.field_count; ++i) {
    std::string_view key = event.fields[i].name;
    if (key.substr(0, 5) != "leef.") continue;
    key.remove_prefix(5);
    const std::string_view value = event.fields[i].value;
    if (key == "src") {
      setAddress(event.src_ip, value);
    } else if (key == "dst") {
      setAddress(event.dst_ip, value);
    } else if (key == "srcPort") {
      event.src_port = parsePort(value).value_or(event.src_port);
    } else if (key == "dstPort") {
      event.dst_port = parsePort(value).value_or(event.dst_port);
    } else if (key == "usrName" && !value.empty()) {
      event.user = value;
    } else if (key == "msg" && !value.empty()) {
      event.message = value;
    } else if (key == "devTime") {
      dev_time = value;
    } else if (key == "devTimeFormat") {
      dev_time_format = value;
    }
  }
  if (!dev_time) return;
  const std::optional<int64_t> ns =
      dev_time_format
          ? parseWithJavaPattern(*dev_time, *dev_time_format, options.default_utc_offset_s)
          : parseDeviceTime(*dev_time, options.default_utc_offset_s);
  if (ns) event.timestamp_ns = *ns;
}

}  // namespace

bool looksLikeLeef(std::string_view text) { return text.substr(0, kPrefix.size()) == kPrefix; }

bool parseLeef(std::string_view text, const ParseOptions& options, bool raw_is_utf8,
               Event& event) {
  if (!looksLikeLeef(text)) return false;
  Header header;
  if (!splitHeader(text, header)) return false;

  // Repairing invalid UTF-8 may copy the text, so split the repaired copy again.
  const std::string_view decoded = decodeText(text, raw_is_utf8, event);
  if (decoded.data() != text.data() && !splitHeader(decoded, header)) return false;

  event.format = EventFormat::kLeef;
  event.message = decoded;
  const size_t first = event.field_count;
  for (size_t i = 0; i < kHeaderFields; ++i) event.addField(kHeaderNames[i], header.fields[i]);
  addAttributes(header, event);
  applyWellKnownKeys(event, first, options);
  return true;
}

}  // namespace vigil::dataplane::internal
