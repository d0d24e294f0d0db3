// IBM QRadar Log Event Extended Format (LEEF) 1.0 and 2.0, as a whole line or as the MSG
// of a syslog message.
#pragma once

#include <string_view>

#include "common/event.h"
#include "dataplane/parser.h"

namespace vigil::dataplane::internal {

// True when `text` starts with "LEEF:".
bool looksLikeLeef(std::string_view text);

// Parses the LEEF record `text` into `event`. LEEF 1.0 is
// "LEEF:1.0|Vendor|Product|Version|EventID|attrs" with TAB between attributes. LEEF 2.0
// adds a delimiter field after EventID: one literal character, hex as "0x5e" or "x5E",
// or empty for TAB. When that sixth field contains '=', it is the attribute list itself
// and the delimiter is TAB. An attribute splits at its first '=', so later '=' belong to
// the value, and a piece without '=' is skipped. Stores leef.leef_version, leef.vendor,
// leef.product, leef.version, leef.event_id and leef.<key> per attribute. Fills source,
// destination, user and message from src, dst, srcPort, dstPort, usrName and msg. A
// devTime that parses (with devTimeFormat when given, else the default formats of
// parseDeviceTime()) becomes the event time. Sets event.format to kLeef. Returns false,
// before changing the event, when the header is incomplete or the delimiter field is
// invalid. Allocates only from the event arena.
bool parseLeef(std::string_view text, const ParseOptions& options, bool raw_is_utf8,
               Event& event);

}  // namespace vigil::dataplane::internal
