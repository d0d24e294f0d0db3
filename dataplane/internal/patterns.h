// Known message patterns that fill the event's source, destination, user, action and
// outcome. docs/event.md lists every pattern and the values it sets.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/event.h"

namespace vigil::dataplane::internal {

// sshd and its PAM messages (event.app "sshd", "sshd(pam_unix)", "sshd-session"):
// login failures and successes, invalid users, closed connections, disconnects and
// "maximum authentication attempts exceeded". Returns true when a pattern matched.
bool applySshdPatterns(Event& event);

// Windows Security logon events rendered as text (EvntSLog, NXLog and Snare forward the
// event's message, as MSG or as the "msg" member of a JSON payload), given as `text`: 4625 "An account failed to log on." and 4624 "An account was
// successfully logged on." set action windows_logon with outcome failure or success, the
// target account as user, "Source Network Address" and "Source Port" as the source, and
// the field windows.logon_type. Returns true when a pattern matched.
bool applyWindowsLogonPatterns(Event& event, std::string_view text);

// key=value pairs in free text: src, dst, spt, dpt and user (with their usual spellings,
// any letter case). Sets only values that are still unset.
void applyKeyValuePatterns(Event& event);

// Fields flattened from a JSON payload: Zeek (id.orig_h, _path ssh/rdp), Suricata EVE
// (src_ip, dest_ip, alert.signature) and generic names (source.ip, user.name, ...). A
// parseable ts/timestamp/@timestamp member becomes the event time.
void applyJsonPatterns(Event& event);

// Parses a JSON time: an RFC 3339 string (also with a "+hhmm" offset, as Suricata
// writes it) or epoch seconds with an optional fraction ("1521911799.739898").
// Returns UTC nanoseconds, or nullopt when the text is neither.
std::optional<int64_t> parseJsonTime(std::string_view text);

}  // namespace vigil::dataplane::internal
