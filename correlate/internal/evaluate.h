// Matching of one event against one detection rule: field lookup through Event::get with
// names resolved at load, value tests, selections and the condition. Never allocates.
#pragma once

#include <hs.h>

#include "common/event.h"
#include "correlate/internal/detection_index.h"
#include "correlate/internal/regex_table.h"
#include "correlate/rules.h"

namespace vigil::correlate::internal {

// What detect() passes on from the prefilter scan of the event: a value whose literal
// the scan looked for in the field read and did not find cannot match.
struct PrefilterResult {
  const DetectionIndex* index = nullptr;
  const PrefilterScratch* scan = nullptr;
};

// Returns true when `event` satisfies `rule`. `scratch` is the calling thread's
// Hyperscan scratch for `regexes` (may be null when the rule set has no `re` values).
// `logsource` is the log source definition whose field mapping applies (see
// logSourceFor() in detection_index.h), or UINT32_MAX for the global mapping only.
// `prefilter` is the scan of this event by the index the rule's ids come from, or empty.
bool matchesRule(const DetectionRule& rule, const Event& event, const RegexTable& regexes,
                 hs_scratch_t* scratch, uint32_t logsource = UINT32_MAX,
                 PrefilterResult prefilter = {});

}  // namespace vigil::correlate::internal
