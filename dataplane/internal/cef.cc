#include "dataplane/internal/cef.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

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
  // False when nothing after "CEF:" has a backslash, so no field needs unescaping.
  bool has_backslash = true;
};

// Extension key characters: letters, digits, '_', '.' and '-'.
constexpr std::array<bool, 256> kKeyChars = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) {
    table[static_cast<size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  }
  return table;
}();

bool isKeyChar(char c) { return kKeyChars[static_cast<unsigned char>(c)]; }

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

// True when text[pos] is a backslash that escapes the next character, one of `escaped`.
bool isEscapeAt(std::string_view text, size_t pos, std::string_view escaped) {
  return text[pos] == '\\' && pos + 1 < text.size() &&
         escaped.find(text[pos + 1]) != std::string_view::npos;
}

// Splits the header at unescaped '|'. The severity field may end the text.
bool splitHeader(std::string_view text, Header& header) {
  size_t pos = kPrefix.size();
  // Position of the next backslash at or after `pos`. Up to it a plain search for '|'
  // finds the end of a field; a field that contains it is walked byte by byte.
  size_t backslash = text.find('\\', pos);
  header.has_backslash = backslash != std::string_view::npos;
  for (size_t i = 0; i < kHeaderFields; ++i) {
    size_t end = std::min(text.find('|', pos), text.size());
    if (backslash < end) {
      end = pos;
      while (end < text.size() && text[end] != '|') end += isEscapeAt(text, end, "|\\") ? 2 : 1;
      backslash = text.find('\\', std::min(end, text.size()));
    }
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
// It searches for '=' rather than testing each space, because values such as `msg` hold
// many spaces and few '='. A '=' ends the value when the run of key characters before it
// is not empty and starts right after a space inside the value. No escape can hide that
// space or those key characters: a space is never escaped, and the character after an
// escaping backslash is either no key character or (`\n`, `\r`) preceded by the
// backslash, which is no space. A backslash before any other character is data, so the
// value of `a=x \ b=1` is `x \` and the space before `b=` still ends it.
size_t valueEnd(std::string_view text, size_t pos) {
  for (size_t eq = text.find('=', pos); eq != std::string_view::npos;
       eq = text.find('=', eq + 1)) {
    size_t key = eq;
    while (key > pos && isKeyChar(text[key - 1])) --key;
    if (key < eq && key > pos && text[key - 1] == ' ') return key - 1;
  }
  return text.size();
}

// Extension keys that fill the normalized event.
enum class WellKnownKey : uint8_t {
  kNone,
  kSrc,
  kDst,
  kSpt,
  kDpt,
  kSuser,
  kDuser,
  kAct,
  kOutcome,
  kMsg,
  kDvchost,
  kRt,
  kEnd
};

// An extension key with its field name as static text, so a frequent key needs no copy
// of its name into the arena, and the event member it fills.
struct KnownKey {
  std::string_view key;
  std::string_view field_name;
  WellKnownKey role;
};

constexpr KnownKey kKnownKeys[] = {
    {"src", "cef.src", WellKnownKey::kSrc},
    {"dst", "cef.dst", WellKnownKey::kDst},
    {"spt", "cef.spt", WellKnownKey::kSpt},
    {"dpt", "cef.dpt", WellKnownKey::kDpt},
    {"suser", "cef.suser", WellKnownKey::kSuser},
    {"duser", "cef.duser", WellKnownKey::kDuser},
    {"act", "cef.act", WellKnownKey::kAct},
    {"outcome", "cef.outcome", WellKnownKey::kOutcome},
    {"msg", "cef.msg", WellKnownKey::kMsg},
    {"dvchost", "cef.dvchost", WellKnownKey::kDvchost},
    {"rt", "cef.rt", WellKnownKey::kRt},
    {"end", "cef.end", WellKnownKey::kEnd},
    {"cat", "cef.cat", WellKnownKey::kNone},
    {"cnt", "cef.cnt", WellKnownKey::kNone},
    {"dhost", "cef.dhost", WellKnownKey::kNone},
    {"shost", "cef.shost", WellKnownKey::kNone},
    {"dvc", "cef.dvc", WellKnownKey::kNone},
    {"proto", "cef.proto", WellKnownKey::kNone},
    {"request", "cef.request", WellKnownKey::kNone},
    {"externalId", "cef.externalId", WellKnownKey::kNone},
    {"cs1", "cef.cs1", WellKnownKey::kNone},
    {"cs2", "cef.cs2", WellKnownKey::kNone},
    {"cs3", "cef.cs3", WellKnownKey::kNone},
    {"cs4", "cef.cs4", WellKnownKey::kNone},
    {"cs5", "cef.cs5", WellKnownKey::kNone},
    {"cs6", "cef.cs6", WellKnownKey::kNone},
    {"cs1Label", "cef.cs1Label", WellKnownKey::kNone},
    {"cs2Label", "cef.cs2Label", WellKnownKey::kNone},
    {"cs3Label", "cef.cs3Label", WellKnownKey::kNone},
    {"cs4Label", "cef.cs4Label", WellKnownKey::kNone},
    {"cs5Label", "cef.cs5Label", WellKnownKey::kNone},
    {"cs6Label", "cef.cs6Label", WellKnownKey::kNone},
};

constexpr size_t kKnownKeyCount = sizeof(kKnownKeys) / sizeof(kKnownKeys[0]);

// Slot of a key in kKnownKeySlots, from its length and three of its bytes: the ones
// that tell "cs1" from "cs2" and "cs1Label" from "cs2Label" are the third.
constexpr size_t kKnownKeySlotCount = 128;
constexpr size_t knownKeySlot(std::string_view key) {
  const auto byte = [&key](size_t i) { return static_cast<size_t>(static_cast<uint8_t>(key[i])); };
  const size_t third = key.size() > 2 ? byte(2) : 0;
  return (key.size() * 61 + byte(0) * 31 + third * 7 + byte(key.size() - 1)) %
         kKnownKeySlotCount;
}

// Open-addressing table over kKnownKeys with linear probing. A slot contains an entry's
// index + 1, or 0 when empty. At 32 keys in 128 slots most lookups compare one key.
constexpr std::array<uint8_t, kKnownKeySlotCount> kKnownKeySlots = [] {
  std::array<uint8_t, kKnownKeySlotCount> slots{};
  for (size_t i = 0; i < kKnownKeyCount; ++i) {
    size_t slot = knownKeySlot(kKnownKeys[i].key);
    while (slots[slot] != 0) slot = (slot + 1) % kKnownKeySlotCount;
    slots[slot] = static_cast<uint8_t>(i + 1);
  }
  return slots;
}();
static_assert(kKnownKeyCount < kKnownKeySlotCount, "the table needs an empty slot");

const KnownKey* findKnownKey(std::string_view key) {
  if (key.empty()) return nullptr;
  for (size_t slot = knownKeySlot(key); kKnownKeySlots[slot] != 0;
       slot = (slot + 1) % kKnownKeySlotCount) {
    const KnownKey& known = kKnownKeys[kKnownKeySlots[slot] - 1];
    if (known.key == key) return &known;
  }
  return nullptr;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// Event members filled from well-known keys. The first pair of a key fills its member,
// as Event::get() returns the first field of a name, and duser fills the user only while
// no suser came before it.
struct WellKnownValues {
  std::optional<int64_t> rt;
  std::optional<int64_t> end_time;
  bool have_suser = false;
  uint32_t applied_roles = 0;  // bit per WellKnownKey already applied

  // Returns true the first time `role` is seen, and marks it.
  bool firstOf(WellKnownKey role) {
    const uint32_t bit = 1u << static_cast<uint32_t>(role);
    const bool first = (applied_roles & bit) == 0;
    applied_roles |= bit;
    return first;
  }
};

void applyWellKnownKey(WellKnownKey role, std::string_view value, const ParseOptions& options,
                       WellKnownValues& seen, Event& event) {
  switch (role) {
    case WellKnownKey::kNone:
      break;
    case WellKnownKey::kSrc:
      setAddress(event.src_ip, value);
      break;
    case WellKnownKey::kDst:
      setAddress(event.dst_ip, value);
      break;
    case WellKnownKey::kSpt:
      event.src_port = parsePort(value).value_or(event.src_port);
      break;
    case WellKnownKey::kDpt:
      event.dst_port = parsePort(value).value_or(event.dst_port);
      break;
    case WellKnownKey::kSuser:
      if (value.empty()) break;
      event.user = value;
      seen.have_suser = true;
      break;
    case WellKnownKey::kDuser:
      if (!value.empty() && !seen.have_suser) event.user = value;
      break;
    case WellKnownKey::kAct:
      event.action = value;
      break;
    case WellKnownKey::kOutcome:
      if (equalsIgnoreCase(value, "success")) event.outcome = "success";
      if (equalsIgnoreCase(value, "failure")) event.outcome = "failure";
      break;
    case WellKnownKey::kMsg:
      if (!value.empty()) event.message = value;
      break;
    case WellKnownKey::kDvchost:
      if (event.host.empty()) event.host = value;
      break;
    case WellKnownKey::kRt:
      seen.rt = parseDeviceTime(value, options.default_utc_offset_s);
      break;
    case WellKnownKey::kEnd:
      seen.end_time = parseDeviceTime(value, options.default_utc_offset_s);
      break;
  }
}

// Adds every extension pair as a field and applies the well-known keys in the same
// pass. A pair that does not fit the field table (kFlagFieldsOverflow) is not stored as
// a field, but a well-known key still fills its member, so the event keeps its
// addresses, user and action however many other keys come before them. `may_have_backslash` false (the header split found none)
// skips the search for escapes.
// Returns whether a key may name a label (ends in 'l', as `cs1Label` does), so records
// without one skip addLabelledFields().
bool addExtensions(std::string_view extension, bool may_have_backslash,
                   const ParseOptions& options, Event& event) {
  const bool has_backslash =
      may_have_backslash && extension.find('\\') != std::string_view::npos;
  WellKnownValues seen;
  bool may_have_label = false;
  size_t pos = 0;
  while (pos < extension.size()) {
    const size_t key_len = keyLengthAt(extension, pos);
    if (key_len == 0) break;  // only possible at the start, which parseCef() checked
    const std::string_view key = extension.substr(pos, key_len);
    may_have_label |= key.back() == 'l';
    const size_t value_start = pos + key_len + 1;
    const size_t end = std::min(valueEnd(extension, value_start), extension.size());
    std::string_view value = extension.substr(value_start, end - value_start);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (has_backslash) value = unescape(value, event, decodeExtensionEscape);
    pos = end + 1;
    const KnownKey* known = findKnownKey(key);
    if (known == nullptr) {
      addPrefixedField(event, "cef.", key, value);
    } else {
      static_cast<void>(event.addField(known->field_name, value));
      if (seen.firstOf(known->role)) applyWellKnownKey(known->role, value, options, seen, event);
    }
  }
  if (seen.rt) {
    applyDeviceTime(*seen.rt, event);
  } else if (seen.end_time) {
    applyDeviceTime(*seen.end_time, event);
  }
  return may_have_label;
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
    const std::string_view field = header.fields[i];
    event.addField(kHeaderNames[i],
                   header.has_backslash ? unescape(field, event, decodeHeaderEscape) : field);
  }
  if (addExtensions(trimSpaces(header.extension), header.has_backslash, options, event)) {
    addLabelledFields(event, first);
  }
  return true;
}

}  // namespace vigil::dataplane::internal
