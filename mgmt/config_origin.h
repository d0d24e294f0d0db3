// The origin of a configuration setting (file and line), for errors found after parsing.
#pragma once

#include <string>

namespace vigil::mgmt {

// The text errors begin with, such as "vigil.yaml:12: rules.paths". It is not part of the
// setting's value: two configurations that differ only in where a setting sits (a comment
// line added above it) compare equal, so a reload does not see a change there.
struct ConfigOrigin {
  std::string text;

  bool operator==(const ConfigOrigin&) const { return true; }
};

}  // namespace vigil::mgmt
