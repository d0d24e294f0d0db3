// Flattens a JSON object into event fields with simdjson's DOM parser.
#pragma once

#include <string_view>

#include "common/event.h"

namespace vigil::dataplane::internal {

// Returns the JSON object text inside a syslog MSG: `msg` itself when it starts with
// '{', or the text after an "@cee:" cookie (with or without a space). Returns an empty
// view when `msg` is no JSON candidate.
std::string_view jsonCandidate(std::string_view msg);

// Parses `text` as exactly one JSON object and adds each member as a field. Nested
// objects get dotted names ("id.orig_h") and array elements "name.0", "name.1". Numbers
// keep their exact JSON text, booleans become "true" or "false", and null members are
// skipped.
// `text` must outlive the event (it is event.raw or a view into the arena), because
// names and values without escapes are views into it; decoded strings go to the arena.
// Returns false, with the event's fields and arena as they were before, when `text` is
// not a single valid JSON object (concatenated documents, invalid syntax or UTF-8).
// Sets kFlagJsonPayload on success. Allocates only from the arena after the calling
// thread's first messages: the parser and its padded input buffer are thread_local and
// grow to the largest message seen.
bool flattenJson(std::string_view text, Event& event);

// flattenJson() with simdjson's On-Demand parser, which keeps integers beyond 64 bits as
// their text where the DOM parser rejects the whole document. Same contract.
bool flattenJsonOnDemand(std::string_view text, Event& event);

}  // namespace vigil::dataplane::internal
