// ArcSight Common Event Format (CEF), as a whole line or as the MSG of a syslog message.
#pragma once

#include <string_view>

#include "common/event.h"
#include "dataplane/parser.h"

namespace vigil::dataplane::internal {

// True when `text` starts with "CEF:".
bool looksLikeCef(std::string_view text);

// Parses the CEF record `text` ("CEF:Version|Device Vendor|Device Product|Device
// Version|Signature ID|Name|Severity|Extension") into `event`. The header needs all
// seven fields. `\|` and `\\` are decoded in header fields, and `\=`, `\\`, `\n` and `\r`
// in extension values. An extension value runs up to the space before the next `key=`.
// Stores header fields as cef.cef_version, cef.vendor, cef.product, cef.version (device
// version), cef.signature_id, cef.name and cef.severity, each extension as cef.<key>, and
// for a custom field with a label (cs1Label=note cs1=x) also cef.label.<label> = x.
// Fills source, destination, user, action, outcome, message and host from src, dst, spt,
// dpt, suser (else duser), act, outcome, msg and dvchost. A parseable rt (else end)
// becomes the event time. Sets event.format to kCef. Returns false, before changing the
// event, when the header is incomplete or the extension does not start with `key=`.
// Allocates only from the event arena.
bool parseCef(std::string_view text, const ParseOptions& options, bool raw_is_utf8,
              Event& event);

}  // namespace vigil::dataplane::internal
