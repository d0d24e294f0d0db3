// Turns one YAML document with a `detection` section into a DetectionRule. Used by
// RuleLoader; split out because modifiers and value conversion are most of the loader.
#pragma once

#include <yaml-cpp/yaml.h>

#include "absl/status/statusor.h"
#include "correlate/internal/regex_table.h"
#include "correlate/rules.h"

namespace vigil::correlate::internal {

// Reads the common header fields (title, id, name, level, status, tags) into the rule
// fields given. Stores `level` in lower case, and "medium" when the rule has none.
// Returns InvalidArgument when a field has the wrong YAML type, the title is missing or
// the level is not one of informational, low, medium, high, critical.
absl::Status readHeader(const YAML::Node& document, std::string& title, std::string& id,
                        std::string& name, std::string& level, std::vector<std::string>& tags);

// Builds the detection rule from `document`. Compiles `re` values into `regexes`; on
// error the caller truncates `regexes` back. Errors name the selection, field and value.
absl::StatusOr<DetectionRule> loadDetection(const YAML::Node& document, const FieldMapping& mapping,
                                            RegexTable& regexes);

}  // namespace vigil::correlate::internal
