// RFC 3164 ("BSD syslog") parser with the variants seen from real senders.
#pragma once

#include <string_view>

#include "common/event.h"
#include "dataplane/internal/syslog_header.h"
#include "dataplane/parser.h"

namespace vigil::dataplane::internal {

// Parses event.raw as RFC 3164. Accepted timestamps: "Mmm dd hh:mm:ss" (any letter case,
// one- or two-digit day with one or two spaces, optional fraction, optional year before
// the time or, when a zone follows, after it, optional trailing ':' and optional
// UTC/GMT/numeric zone) and an RFC 3339 timestamp. A missing year is inferred from the
// receive time and a missing zone is options.default_utc_offset_s. Then comes HOSTNAME
// (absent when the first token contains '=' or ends in ':', see hostname rules in
// rfc3164.cc) and TAG with an optional "[pid]". Stores the undecoded MSG in `msg`.
// A line without PRI is RFC 3164 only when it starts with a valid timestamp, and then
// gets facility 1 and severity 5 (PRI 13). A line with PRI but no timestamp gets the
// receive time and kFlagTimestampInvalid, and the rest of the line is MSG.
// Returns false when the line is not RFC 3164. Allocates only from the event arena.
bool parseRfc3164(Event& event, const ParseOptions& options, bool raw_is_utf8,
                  std::string_view& msg);
// The same with parsePri(event.raw) already read by the caller.
bool parseRfc3164(Event& event, const ParseOptions& options, bool raw_is_utf8,
                  std::string_view& msg, const std::optional<Pri>& pri);

}  // namespace vigil::dataplane::internal
