// The alert as playbooks read it, as one JSON object, and the JSON writer of the run
// journal. Workers serve new runs through AlertView (alert_view.h), which tests compare
// with refreshAlertJson()'s object. Not part of the public surface of mgmt.
#pragma once

#include <cstdint>
#include <string>

#include "common/json_text.h"
#include "correlate/alert.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

using ::vigil::appendJsonString;
using ::vigil::appendValidJsonString;
using ::vigil::validUtf8;

// Makes `out` the alert as playbooks read it: the fields of correlate::alertToJson, plus
// "severity" (the Sigma level), every group-by field at the top level (alert.src_ip)
// unless a field above has its name, "group", "events" (one {"raw": TEXT} per evidence
// line) and "inbox_id" when it is not 0. Invalid UTF-8 becomes U+FFFD as in
// alertToJson. `out` may contain the alert of an earlier run, whose nodes and strings are
// reused. So a worker that keeps one object allocates only when an alert has a longer
// text, another group-by field or more evidence lines than the alerts before it.
void refreshAlertJson(const correlate::Alert& alert, int64_t inbox_id, nlohmann::json& out);

// Replaces `out` with the JSON text of `j`, byte for byte what
// j.dump(-1, ' ', false, error_handler_t::replace) returns, reusing `out`'s capacity.
// Strings that are not valid UTF-8 (rare) go through nlohmann's serializer.
void dumpJsonTo(const nlohmann::json& j, std::string& out);

// Appends the JSON text of `j`, as dumpJsonTo() writes it.
void appendJsonValue(const nlohmann::json& j, std::string& out);

}  // namespace vigil::mgmt::internal
