// Expanding configured paths of YAML content (rules.paths, playbooks.paths) into files.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::mgmt {

// Expands `paths` into files. A file is taken as given. A folder gives every *.yml and
// *.yaml file below it, sub-folders included and extensions in any case, sorted by path.
// Entries whose names start with '.' (".git", an editor's swap file) are skipped, and a
// file reached twice is taken once.
//
// Errors start with `key` and name the path: an empty entry, a folder that cannot be read
// or contains no such file, or a path that is neither a `noun` file (such as "rule" or
// "playbook") nor a folder.
absl::StatusOr<std::vector<std::string>> expandYamlPaths(const std::vector<std::string>& paths,
                                                         const std::string& key,
                                                         const std::string& noun);

}  // namespace vigil::mgmt
