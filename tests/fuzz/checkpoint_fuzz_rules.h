// The rule set the checkpoint fuzz target restores into: one correlation of each type,
// one with `suppress`, one whose window closes (an upper bound), a chained one, and a
// detection rule with `suppress`.
#pragma once

inline constexpr char kCheckpointFuzzRules[] = R"(
title: A
name: a
detection: {sel: {rule: a}, condition: sel}
---
title: B
name: b
detection: {sel: {rule: b}, condition: sel}
---
title: Scan
id: det_scan
suppress: {timespan: 5m, group-by: [host]}
detection: {sel: {rule: a}, condition: sel}
---
title: Count
id: corr_count
suppress: 10m
correlation: {type: event_count, rules: [a], group-by: [host], timespan: 5m, condition: {gte: 3}}
---
title: Values
id: corr_values
correlation: {type: value_count, rules: [a], group-by: [host], timespan: 5m, condition: {field: User, gte: 3}}
---
title: Temporal
id: corr_temporal
correlation: {type: temporal, rules: [a, b], group-by: [host], timespan: 2m}
---
title: Ordered
id: corr_ordered
correlation: {type: temporal_ordered, rules: [a, b], group-by: [host], timespan: 5m}
---
title: Absence
id: corr_absence
correlation: {type: absence, rules: [a, b], group-by: [host], timespan: 3m}
---
title: Sum
id: corr_sum
correlation: {type: value_avg, rules: [b], group-by: [host], timespan: 5m, condition: {field: Bytes, gte: 10}}
---
title: Range
id: corr_range
correlation: {type: event_count, rules: [b], group-by: [host], timespan: 2m, condition: {gte: 2, lte: 3}}
---
title: Percentile
id: corr_percentile
correlation: {type: value_percentile, rules: [b], group-by: [host], timespan: 5m, condition: {field: Bytes, percentile: 90, gt: 40}}
---
title: Chain
id: corr_chain
correlation: {type: event_count, rules: [corr_count], group-by: [host], timespan: 30m, condition: {gte: 2}, generate: true}
)";
