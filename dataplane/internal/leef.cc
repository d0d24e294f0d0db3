#include "dataplane/internal/leef.h"

#include <array>
#include <cstddef>
#include <cstdint>
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

// Attribute keys that fill the normalized event.
enum class WellKnownKey : uint8_t {
  kNone,
  kSrc,
  kDst,
  kSrcPort,
  kDstPort,
  kUsrName,
  kMsg,
  kDevTime,
  kDevTimeFormat
};

// An attribute key with its field name as static text, so a frequent key needs no copy
// of its name into the arena, and the event member it fills.
struct KnownKey {
  std::string_view key;
  std::string_view field_name;
  WellKnownKey role;
};

constexpr KnownKey kKnownKeys[] = {
    {"src", "leef.src", WellKnownKey::kSrc},
    {"dst", "leef.dst", WellKnownKey::kDst},
    {"srcPort", "leef.srcPort", WellKnownKey::kSrcPort},
    {"dstPort", "leef.dstPort", WellKnownKey::kDstPort},
    {"usrName", "leef.usrName", WellKnownKey::kUsrName},
    {"msg", "leef.msg", WellKnownKey::kMsg},
    {"devTime", "leef.devTime", WellKnownKey::kDevTime},
    {"devTimeFormat", "leef.devTimeFormat", WellKnownKey::kDevTimeFormat},
    {"cat", "leef.cat", WellKnownKey::kNone},
    {"sev", "leef.sev", WellKnownKey::kNone},
    {"proto", "leef.proto", WellKnownKey::kNone},
    {"identSrc", "leef.identSrc", WellKnownKey::kNone},
    {"identHostName", "leef.identHostName", WellKnownKey::kNone},
    {"policy", "leef.policy", WellKnownKey::kNone},
    {"action", "leef.action", WellKnownKey::kNone},
};

const KnownKey* findKnownKey(std::string_view key) {
  if (key.empty()) return nullptr;
  for (const KnownKey& known : kKnownKeys) {
    // Length and first byte rule out most entries without a memcmp() call.
    if (known.key.size() == key.size() && known.key[0] == key[0] && known.key == key) {
      return &known;
    }
  }
  return nullptr;
}

// devTime and devTimeFormat as found.
struct DeviceTimeText {
  std::optional<std::string_view> time;
  std::optional<std::string_view> format;
};

void applyWellKnownKey(WellKnownKey role, std::string_view value, DeviceTimeText& dev_time,
                       Event& event) {
  switch (role) {
    case WellKnownKey::kNone:
      break;
    case WellKnownKey::kSrc:
      setAddress(event.src_ip, value);
      break;
    case WellKnownKey::kDst:
      setAddress(event.dst_ip, value);
      break;
    case WellKnownKey::kSrcPort:
      event.src_port = parsePort(value).value_or(event.src_port);
      break;
    case WellKnownKey::kDstPort:
      event.dst_port = parsePort(value).value_or(event.dst_port);
      break;
    case WellKnownKey::kUsrName:
      if (!value.empty()) event.user = value;
      break;
    case WellKnownKey::kMsg:
      if (!value.empty()) event.message = value;
      break;
    case WellKnownKey::kDevTime:
      dev_time.time = value;
      break;
    case WellKnownKey::kDevTimeFormat:
      dev_time.format = value;
      break;
  }
}

// Adds every attribute as a field and applies the well-known keys in the same pass. The
// first attribute of a key fills its member, as Event::get() returns the first field of a
// name. An attribute that does not fit the field table (kFlagFieldsOverflow) is not
// stored as a field, but a well-known key still fills its member.
void addAttributes(const Header& header, const ParseOptions& options, Event& event) {
  DeviceTimeText dev_time;
  uint32_t applied_roles = 0;  // bit per WellKnownKey already applied
  std::string_view rest = header.attributes;
  while (!rest.empty()) {
    const size_t end = rest.find(header.delimiter);
    const std::string_view piece = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    const size_t eq = piece.find('=');
    if (eq == 0 || eq == std::string_view::npos) continue;
    const std::string_view key = piece.substr(0, eq);
    const std::string_view value = piece.substr(eq + 1);
    const KnownKey* known = findKnownKey(key);
    if (known == nullptr) {
      addPrefixedField(event, "leef.", key, value);
    } else {
      static_cast<void>(event.addField(known->field_name, value));
      const uint32_t bit = 1u << static_cast<uint32_t>(known->role);
      if ((applied_roles & bit) == 0) applyWellKnownKey(known->role, value, dev_time, event);
      applied_roles |= bit;
    }
  }
  if (!dev_time.time) return;
  const std::optional<int64_t> ns =
      dev_time.format
          ? parseWithJavaPattern(*dev_time.time, *dev_time.format, options.default_utc_offset_s)
          : parseDeviceTime(*dev_time.time, options.default_utc_offset_s);
  if (ns) applyDeviceTime(*ns, event);
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
  for (size_t i = 0; i < kHeaderFields; ++i) event.addField(kHeaderNames[i], header.fields[i]);
  addAttributes(header, options, event);
  return true;
}

}  // namespace vigil::dataplane::internal
