#include "dataplane/internal/patterns.h"

#include <string.h>  // memrchr(), a GNU extension

#include <array>
#include <cstring>

#include "common/ip.h"
#include "common/time.h"
#include "dataplane/internal/device_time.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/internal/vendor_fields.h"

namespace vigil::dataplane::internal {
namespace {

// The prefixes and suffixes below are literals. Once these functions are inlined, the
// length is a constant and the comparison compiles to register compares, not a memcmp().
inline bool startsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::memcmp(text.data(), prefix.data(), prefix.size()) == 0;
}

inline bool eat(std::string_view& text, std::string_view prefix) {
  if (!startsWith(text, prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

// Position of the first `needle` (two bytes or more) at or after `from`, or npos, as
// std::string_view::find() returns it. The needles of these patterns start with a space,
// the most common byte of log text, so memchr() looks for their second byte instead.
size_t findNeedle(std::string_view text, std::string_view needle, size_t from = 0) {
  if (text.size() < needle.size()) return std::string_view::npos;
  const size_t last = text.size() - needle.size();  // last possible start
  for (size_t i = from; i <= last;) {
    const void* hit = std::memchr(text.data() + i + 1, needle[1], last - i + 1);
    if (hit == nullptr) break;
    i = static_cast<size_t>(static_cast<const char*>(hit) - text.data()) - 1;
    if (text.compare(i, needle.size(), needle) == 0) return i;
    ++i;
  }
  return std::string_view::npos;
}

// Position of the last `needle` (two bytes or more), or npos, as rfind() returns it.
size_t rfindNeedle(std::string_view text, std::string_view needle) {
  if (text.size() < needle.size()) return std::string_view::npos;
  size_t starts = text.size() - needle.size() + 1;  // candidates 0 .. starts - 1
  while (starts > 0) {
    const void* hit = memrchr(text.data() + 1, needle[1], starts);
    if (hit == nullptr) break;
    const size_t i = static_cast<size_t>(static_cast<const char*>(hit) - text.data()) - 1;
    if (text.compare(i, needle.size(), needle) == 0) return i;
    starts = i;
  }
  return std::string_view::npos;
}

inline void dropSuffix(std::string_view& text, std::string_view suffix) {
  if (text.size() >= suffix.size() &&
      std::memcmp(text.data() + text.size() - suffix.size(), suffix.data(), suffix.size()) == 0) {
    text.remove_suffix(suffix.size());
  }
}

// A decimal port in 1..65535, or 0.
uint16_t portOrZero(std::string_view text) {
  if (text.empty() || text.size() > 5) return 0;
  uint32_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return 0;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value <= 65535 ? static_cast<uint16_t>(value) : 0;
}

void setSource(Event& event, std::string_view addr, std::string_view port) {
  if (const auto ip = parseIp(addr)) event.src_ip = ip;
  if (const uint16_t p = portOrZero(port)) event.src_port = p;
}

void setOutcome(Event& event, std::string_view action, std::string_view outcome) {
  event.action = action;
  event.outcome = outcome;
}

// Splits "[USER ]ADDR[ port N]" after the trailing "[preauth]" and "ssh2" are removed.
// The address is the last token, so a user name with spaces stays whole.
void readUserAddrPort(std::string_view text, std::string_view& user, std::string_view& addr,
                      std::string_view& port) {
  dropSuffix(text, " [preauth]");
  dropSuffix(text, " ssh2");
  const size_t port_at = rfindNeedle(text, " port ");
  if (port_at != std::string_view::npos) {
    // The port is the run of digits after " port " ("22 ssh2: ED25519 SHA256:...").
    port = text.substr(port_at + 6);
    size_t digits = 0;
    while (digits < port.size() && port[digits] >= '0' && port[digits] <= '9') ++digits;
    port = port.substr(0, digits);
    text = text.substr(0, port_at);
  }
  const size_t space = text.rfind(' ');
  if (space == std::string_view::npos) {
    addr = text;
    return;
  }
  addr = text.substr(space + 1);
  user = text.substr(0, space);
}

// "U from ADDR port N ssh2": the user is everything before the last " from ". OpenSSH
// writes an empty user as "user  from" with two spaces, and relays that collapse runs of
// spaces leave "user from": text that starts with "from " and has no " from " has no user.
bool readUserFrom(std::string_view text, Event& event) {
  size_t from = rfindNeedle(text, " from ");
  size_t after = from + 6;
  if (from == std::string_view::npos) {
    if (!text.starts_with("from ")) return false;
    from = 0;
    after = 5;
  }
  std::string_view user, addr, port;
  readUserAddrPort(text.substr(after), user, addr, port);
  event.user = text.substr(0, from);
  setSource(event, addr, port);
  return true;
}

// "[authenticating user U |invalid user U |user U ]ADDR port N [preauth]".
void readPeerWithOptionalUser(std::string_view text, Event& event) {
  std::string_view user, addr, port;
  readUserAddrPort(text, user, addr, port);
  if (!eat(user, "authenticating user ") && !eat(user, "invalid user ")) eat(user, "user ");
  event.user = user;
  setSource(event, addr, port);
}

// pam_unix "authentication failure; logname= uid=0 ... rhost=ADDR  user=U".
bool readPamFailure(std::string_view msg, Event& event) {
  const size_t at = msg.find("authentication failure;");
  if (at == std::string_view::npos) return false;
  std::string_view rest = msg.substr(at);
  const auto valueOf = [&rest](std::string_view key) -> std::string_view {
    size_t pos = rest.find(key);
    while (pos != std::string_view::npos && pos > 0 && rest[pos - 1] != ' ') {
      pos = rest.find(key, pos + 1);  // "ruser=" must not match "user="
    }
    if (pos == std::string_view::npos) return {};
    const std::string_view value = rest.substr(pos + key.size());
    return value.substr(0, value.find(' '));
  };
  if (const auto ip = parseIp(valueOf("rhost="))) event.src_ip = ip;
  event.user = valueOf("user=");
  setOutcome(event, "pam_auth_failure", "failure");
  return true;
}

// Epoch seconds, with the fraction read digit by digit to keep nanoseconds exact.
std::optional<int64_t> parseEpochSeconds(std::string_view text) {
  int64_t seconds = 0;
  int64_t fraction_ns = 0;
  size_t pos = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (pos == 10) return std::nullopt;  // more digits would overflow `seconds` below
    seconds = seconds * 10 + (text[pos++] - '0');
  }
  // Seconds past 9e9 (year 2255) would overflow int64_t nanoseconds.
  if (pos == 0 || seconds >= 9'000'000'000) return std::nullopt;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction_ns += (text[pos++] - '0') * scale;
      scale /= 10;
    }
  }
  if (pos != text.size()) return std::nullopt;
  return seconds * kNanosPerSecond + fraction_ns;
}

}  // namespace

bool applySshdPatterns(Event& event) {
  if (!startsWith(event.app, "sshd")) return false;
  std::string_view msg = event.message;
  if (msg.empty()) return false;
  // Each message form starts with its own letter, so only the matching form is tried.
  switch (msg.front()) {
    case 'F':
    case 'A':
    case 'I':
    case 'e':
    case 'C':
    case 'D':
    case 'R':
      break;
    default:
      return readPamFailure(msg, event);
  }
  if (eat(msg, "Failed ")) {
    const size_t for_at = findNeedle(msg, " for ");
    if (for_at == std::string_view::npos) return false;
    msg.remove_prefix(for_at + 5);
    eat(msg, "invalid user ");
    if (!readUserFrom(msg, event)) return false;
    setOutcome(event, "ssh_login", "failure");
    return true;
  }
  if (eat(msg, "Accepted ")) {
    const size_t for_at = findNeedle(msg, " for ");
    if (for_at == std::string_view::npos) return false;
    if (!readUserFrom(msg.substr(for_at + 5), event)) return false;
    setOutcome(event, "ssh_login", "success");
    return true;
  }
  if (eat(msg, "Invalid user ")) {
    if (!readUserFrom(msg, event)) return false;
    setOutcome(event, "ssh_invalid_user", "failure");
    return true;
  }
  if (eat(msg, "error: maximum authentication attempts exceeded for ")) {
    eat(msg, "invalid user ");
    if (!readUserFrom(msg, event)) return false;
    setOutcome(event, "ssh_max_auth_attempts", "failure");
    return true;
  }
  if (eat(msg, "Connection closed by ")) {
    readPeerWithOptionalUser(msg, event);
    setOutcome(event, "ssh_connection_closed", "");
    return true;
  }
  if (eat(msg, "Disconnected from ")) {
    readPeerWithOptionalUser(msg, event);
    setOutcome(event, "ssh_disconnect", "");
    return true;
  }
  if (eat(msg, "Received disconnect from ")) {
    // "ADDR port N:11: reason" or, from older releases, "ADDR: 11: reason".
    const size_t port_at = findNeedle(msg, " port ");
    const size_t colon = port_at == std::string_view::npos ? msg.find(": ") : msg.find(':', port_at);
    std::string_view user, addr, port;
    readUserAddrPort(msg.substr(0, colon), user, addr, port);
    setSource(event, addr, port);
    setOutcome(event, "ssh_disconnect", "");
    return true;
  }
  return readPamFailure(msg, event);
}

namespace {

// Returns the value after `label` in Windows event text: the label is followed by spaces,
// tabs or line breaks (the JSON form keeps the event's "\t\t" and "\r\n"), and the value
// runs to the next such character. Empty when the label is missing or the value is "-".
std::string_view windowsValue(std::string_view text, std::string_view label) {
  size_t at = text.find(label);
  if (at == std::string_view::npos) return {};
  std::string_view rest = text.substr(at + label.size());
  constexpr std::string_view kSpace = " \t\r\n";
  size_t begin = rest.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  rest = rest.substr(begin);
  std::string_view value = rest.substr(0, rest.find_first_of(kSpace));
  return value == "-" ? std::string_view{} : value;
}

}  // namespace

bool applyWindowsLogonPatterns(Event& event, std::string_view text) {
  std::string_view outcome;
  std::string_view account_section;
  if (startsWith(text, "An account failed to log on.")) {
    outcome = "failure";
    account_section = "Account For Which Logon Failed:";
  } else if (startsWith(text, "An account was successfully logged on.")) {
    outcome = "success";
    account_section = "New Logon:";
  } else {
    return false;
  }
  setOutcome(event, "windows_logon", outcome);
  // The Subject section comes first and names the caller (often "-"); the account that
  // logged on is the Account Name after the section header.
  size_t section = text.find(account_section);
  if (section != std::string_view::npos) {
    std::string_view user = windowsValue(text.substr(section), "Account Name:");
    if (!user.empty()) event.user = user;
  }
  setSource(event, windowsValue(text, "Source Network Address:"),
            windowsValue(text, "Source Port:"));
  std::string_view logon_type = windowsValue(text, "Logon Type:");
  if (!logon_type.empty()) event.addField("windows.logon_type", logon_type);
  return true;
}

namespace {

// The event member that a key of free text names.
enum class KeyRole : uint8_t { kNone, kSrcIp, kDstIp, kSrcPort, kDstPort, kUser };

// The bytes of a key of up to eight bytes as one little-endian word, zero-padded.
constexpr uint64_t packKey(std::string_view key) {
  uint64_t word = 0;
  for (size_t i = 0; i < key.size(); ++i) {
    word |= static_cast<uint64_t>(static_cast<uint8_t>(key[i])) << (8 * i);
  }
  return word;
}

// Maps the known spellings of an address, port or user key, in any case, to their role:
// src, srcip, src_ip; dst, dstip, dst_ip; spt, sport, src_port; dpt, dport, dst_port;
// user, usrname, suser. The key is lowered and packed into a register word, so the
// comparisons are integer compares; lowering it into a byte buffer and reading that back
// stalled on store forwarding.
KeyRole keyRole(std::string_view key) {
  constexpr size_t kLongestKey = 8;
  if (key.size() < 3 || key.size() > kLongestKey) return KeyRole::kNone;
  uint64_t word = 0;
  for (size_t i = 0; i < key.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(key[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
    word |= static_cast<uint64_t>(c) << (8 * i);
  }
  // Names of different lengths pack to different words unless the key contains NUL bytes,
  // so each case checks the length too.
  struct Spelling {
    uint64_t word;
    size_t size;
    KeyRole role;
  };
  static constexpr Spelling kSpellings[] = {
      {packKey("src"), 3, KeyRole::kSrcIp},       {packKey("srcip"), 5, KeyRole::kSrcIp},
      {packKey("src_ip"), 6, KeyRole::kSrcIp},    {packKey("dst"), 3, KeyRole::kDstIp},
      {packKey("dstip"), 5, KeyRole::kDstIp},     {packKey("dst_ip"), 6, KeyRole::kDstIp},
      {packKey("spt"), 3, KeyRole::kSrcPort},     {packKey("sport"), 5, KeyRole::kSrcPort},
      {packKey("src_port"), 8, KeyRole::kSrcPort}, {packKey("dpt"), 3, KeyRole::kDstPort},
      {packKey("dport"), 5, KeyRole::kDstPort},   {packKey("dst_port"), 8, KeyRole::kDstPort},
      {packKey("user"), 4, KeyRole::kUser},       {packKey("usrname"), 7, KeyRole::kUser},
      {packKey("suser"), 5, KeyRole::kUser},
  };
  for (const Spelling& spelling : kSpellings) {
    if (spelling.word == word && spelling.size == key.size()) return spelling.role;
  }
  return KeyRole::kNone;
}

// Stores one key=value pair from free text when its key is a known spelling of an
// address, port or user that the event does not have yet.
void applyKeyValue(Event& event, std::string_view key, std::string_view value) {
  switch (keyRole(key)) {
    case KeyRole::kSrcIp:
      if (!event.src_ip) event.src_ip = parseIp(value);
      break;
    case KeyRole::kDstIp:
      if (!event.dst_ip) event.dst_ip = parseIp(value);
      break;
    case KeyRole::kSrcPort:
      if (event.src_port == 0) event.src_port = portOrZero(value);
      break;
    case KeyRole::kDstPort:
      if (event.dst_port == 0) event.dst_port = portOrZero(value);
      break;
    case KeyRole::kUser:
      if (event.user.empty()) event.user = value;
      break;
    case KeyRole::kNone:
      break;
  }
}

}  // namespace

void applyKeyValuePatterns(Event& event) {
  // Tokens are split at spaces and only a token with '=' (not first) is a pair, so the
  // scan jumps from one '=' to the next and finds the token around it.
  const std::string_view text = event.message;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t eq = text.find('=', pos);
    if (eq == std::string_view::npos) return;
    const size_t space_before = eq == 0 ? std::string_view::npos : text.rfind(' ', eq - 1);
    const size_t start =
        space_before == std::string_view::npos || space_before < pos ? pos : space_before + 1;
    const size_t space_after = text.find(' ', eq);
    const size_t end = space_after == std::string_view::npos ? text.size() : space_after;
    pos = end + 1;
    if (eq == start) continue;
    const std::string_view key = text.substr(start, eq - start);
    std::string_view value = text.substr(eq + 1, end - eq - 1);
    while (!value.empty() && (value.back() == ',' || value.back() == ';')) value.remove_suffix(1);
    if (value.empty()) continue;
    applyKeyValue(event, key, value);
  }
}

std::optional<int64_t> parseJsonTime(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.find('-') == std::string_view::npos) return parseEpochSeconds(text);
  if (const auto ns = parseTimestamp(text)) return ns;
  // "2011-08-12T14:52:57.716360+0200": insert the colon RFC 3339 requires.
  if (text.size() < 6 || text.size() > 60) return std::nullopt;
  const char sign = text[text.size() - 5];
  if (sign != '+' && sign != '-') return std::nullopt;
  std::array<char, 64> buf{};
  std::memcpy(buf.data(), text.data(), text.size() - 2);
  buf[text.size() - 2] = ':';
  std::memcpy(buf.data() + text.size() - 1, text.data() + text.size() - 2, 2);
  return parseTimestamp(std::string_view(buf.data(), text.size() + 1));
}

namespace {

// Kinds of the JSON field names that applyJsonPatterns() reads.
enum class JsonName : uint8_t {
  kOther,
  kZeekSource,  // id.orig_h: the source, and the event is Zeek's
  kZeekPath,
  kSource,
  kDestination,
  kSourcePort,
  kDestinationPort,
  kUser,
  kCookie,
  kTime,
  kAuthSuccess,
  kResult,
  kEventType,
  kSignature,
};

struct NamedField {
  std::string_view name;
  JsonName kind;
};

constexpr NamedField kJsonNames[] = {
    {"id.orig_h", JsonName::kZeekSource},    {"_path", JsonName::kZeekPath},
    {"src_ip", JsonName::kSource},           {"source.ip", JsonName::kSource},
    {"srcip", JsonName::kSource},            {"id.resp_h", JsonName::kDestination},
    {"dest_ip", JsonName::kDestination},     {"dst_ip", JsonName::kDestination},
    {"destination.ip", JsonName::kDestination},
    {"id.orig_p", JsonName::kSourcePort},    {"src_port", JsonName::kSourcePort},
    {"source.port", JsonName::kSourcePort},  {"id.resp_p", JsonName::kDestinationPort},
    {"dest_port", JsonName::kDestinationPort}, {"dst_port", JsonName::kDestinationPort},
    {"destination.port", JsonName::kDestinationPort},
    {"user", JsonName::kUser},               {"user.name", JsonName::kUser},
    {"username", JsonName::kUser},           {"cookie", JsonName::kCookie},
    {"ts", JsonName::kTime},                 {"timestamp", JsonName::kTime},
    {"@timestamp", JsonName::kTime},         {"auth_success", JsonName::kAuthSuccess},
    {"result", JsonName::kResult},           {"event_type", JsonName::kEventType},
    {"alert.signature", JsonName::kSignature},
};

constexpr size_t kMaxJsonNameLength = 16;

// kJsonNames grouped by name length, so a field name is compared only with the names of
// its own length.
struct JsonNameTable {
  std::array<std::array<NamedField, std::size(kJsonNames)>, kMaxJsonNameLength + 1> by_length{};
  std::array<uint8_t, kMaxJsonNameLength + 1> count{};
};

constexpr JsonNameTable kJsonNameTable = [] {
  JsonNameTable table;
  for (const NamedField& entry : kJsonNames) {
    const size_t length = entry.name.size();
    table.by_length[length][table.count[length]++] = entry;
  }
  return table;
}();

static_assert([] {
  for (const NamedField& entry : kJsonNames) {
    if (entry.name.size() > kMaxJsonNameLength) return false;
  }
  return true;
}());

JsonName classifyJsonName(std::string_view name) {
  if (name.size() > kMaxJsonNameLength) return JsonName::kOther;
  const auto& candidates = kJsonNameTable.by_length[name.size()];
  for (size_t i = 0; i < kJsonNameTable.count[name.size()]; ++i) {
    // Most names of an event share a length with some candidate (EventID and dest_ip),
    // so the first and last bytes decide before a call to memcmp().
    const std::string_view candidate = candidates[i].name;
    if (candidate.front() != name.front() || candidate.back() != name.back()) continue;
    if (std::memcmp(candidate.data(), name.data(), name.size()) == 0) return candidates[i].kind;
  }
  return JsonName::kOther;
}

// Sets `slot` to `value` unless an earlier field of the same group set it.
void takeFirst(std::string_view& slot, std::string_view value) {
  if (slot.empty()) slot = value;
}

}  // namespace

void applyJsonPatterns(Event& event) {
  std::string_view src, dst, src_port, dst_port, user, cookie, time;
  std::string_view zeek_path, auth_success, rdp_result, event_type, signature;
  bool zeek = false;
  event.visitFields([&](const Field& field) {
    const std::string_view value = field.value;
    switch (classifyJsonName(field.name)) {
      case JsonName::kZeekSource:
        src = value;
        zeek = true;
        break;
      case JsonName::kZeekPath:
        zeek_path = value;
        zeek = true;
        break;
      case JsonName::kSource: takeFirst(src, value); break;
      case JsonName::kDestination: takeFirst(dst, value); break;
      case JsonName::kSourcePort: takeFirst(src_port, value); break;
      case JsonName::kDestinationPort: takeFirst(dst_port, value); break;
      case JsonName::kUser: takeFirst(user, value); break;
      case JsonName::kCookie: takeFirst(cookie, value); break;
      case JsonName::kTime: takeFirst(time, value); break;
      case JsonName::kAuthSuccess: takeFirst(auth_success, value); break;
      case JsonName::kResult: takeFirst(rdp_result, value); break;
      case JsonName::kEventType: takeFirst(event_type, value); break;
      case JsonName::kSignature: takeFirst(signature, value); break;
      case JsonName::kOther: break;
    }
    return true;
  });

  if (const auto ip = parseIp(src)) event.src_ip = ip;
  if (const auto ip = parseIp(dst)) event.dst_ip = ip;
  if (const uint16_t port = portOrZero(src_port)) event.src_port = port;
  if (const uint16_t port = portOrZero(dst_port)) event.dst_port = port;
  // Windows event log exporters write "N\A" (or "-") when an event has no user.
  if (!user.empty() && user != "N\\A" && user != "-") event.user = user;
  if (const auto ns = parseJsonTime(time)) {
    applyDeviceTime(*ns, event);
  } else if (!time.empty() && event.format == EventFormat::kJson) {
    // A bare JSON event keeps the receive time, flagged as RFC 3164 and RFC 5424 events
    // with a bad stamp are. JSON inside syslog keeps the header's time, which is valid.
    event.flags |= kFlagTimestampInvalid;
  }

  if (zeek && zeek_path == "ssh") {
    if (auth_success == "true") setOutcome(event, "ssh_login", "success");
    if (auth_success == "false") setOutcome(event, "ssh_login", "failure");
  } else if (zeek && zeek_path == "rdp") {
    setOutcome(event, "rdp_connection", rdp_result == "Success" ? "success" : "");
    if (!cookie.empty()) event.user = cookie;
  } else if (!event_type.empty() && !signature.empty()) {
    event.action = signature;
  }
}

}  // namespace vigil::dataplane::internal
