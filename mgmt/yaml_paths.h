// Expanding configured paths of YAML content (rules.paths, playbooks.paths) into files.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::mgmt {

// Each path as given when it is a file, or every *.yml / *.yaml file below it when it is
// a folder: sub-folders included, extensions in any case, entries whose names start with
// '.' skipped (".git", an editor's swap file), sorted by path. A file reached twice is
// taken once. Errors start with `key` and name the path: an empty entry, a folder that
// cannot be read or holds no such file, a path that is neither a file nor a folder (a
// `noun` file, such as "rule" or "playbook").
absl::StatusOr<std::vector<std::string>> expandYamlPaths(const std::vector<std::string>& paths,
                                                         const std::string& key,
                                                         const std::string& noun);

}  // namespace vigil::mgmt
