// Matching of one event against one detection rule: field lookup through Event::get with
// names resolved at load, value tests, selections and the condition. Never allocates.
#pragma once

#include <hs.h>

#include "common/event.h"
#include "correlate/internal/regex_table.h"
#include "correlate/rules.h"

namespace vigil::correlate::internal {

// Returns true when `event` satisfies `rule`. `scratch` is the calling thread's
// Hyperscan scratch for `regexes` (may be null when the rule set has no `re` values).
bool matchesRule(const DetectionRule& rule, const Event& event, const RegexTable& regexes,
                 hs_scratch_t* scratch);

}  // namespace vigil::correlate::internal
