// RFC 5424 syslog header and structured-data parser.
#pragma once

#include <string_view>

#include "common/event.h"
#include "dataplane/internal/syslog_header.h"

namespace vigil::dataplane::internal {

// True when `line` starts with "<PRI>1 ", the RFC 5424 PRI and VERSION.
bool looksLikeRfc5424(std::string_view line);

// Parses event.raw as RFC 5424: PRI, VERSION, TIMESTAMP (NILVALUE or invalid -> receive
// time, no UTC offset -> UTC with kFlagZoneAssumed), HOSTNAME, APP-NAME, PROCID, MSGID
// (NILVALUE -> empty) and STRUCTURED-DATA, each SD-PARAM added as field
// "sd.<SD-ID>.<PARAM-NAME>" with the escapes \" \\ \] decoded.
// Stores the MSG part, still undecoded, in `msg`. Returns false on any syntax error
// (the event may then hold partial values, which the caller discards). `raw_is_utf8`
// skips UTF-8 repair of header fields and SD values. Allocates only from the event arena.
bool parseRfc5424(Event& event, bool raw_is_utf8, std::string_view& msg);
// The same with parsePri(event.raw) already read by the caller.
bool parseRfc5424(Event& event, bool raw_is_utf8, std::string_view& msg,
                  const std::optional<Pri>& pri);

}  // namespace vigil::dataplane::internal
