// Mapping of MISP attribute types to indicator types, shared by the MISP loader and the
// warninglists (whose matching_attributes name MISP types).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "common/event.h"

namespace vigil::intel::internal {

// The indicator type of each '|'-separated part of a MISP attribute value: one element
// for "domain", two for "domain|ip" or "filename|md5". A part of nullopt is ignored (the
// port of "ip-dst|port"). Returns nullopt for types that hold no indicator ("text",
// "link", "comment") or that this module does not support.
std::optional<std::vector<std::optional<IndicatorType>>> mispTypeParts(std::string_view type);

}  // namespace vigil::intel::internal
